"""Ledger writes that outlived their bound: finished in the background, retried until the
ledger takes them.

A write on the completion path (or the worker's post-release record) is given
``ledger_call_timeout``; past it, or when it fails, what it was for has already happened in
Temporal, so the write is not dropped: it is followed here, and retried with backoff until it
succeeds or the process stops. A write still open at stop is left to the intent the call
wrote before it went to Temporal (a later NOT_FOUND records that outcome), and logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import structlog

from ._vocabulary import Component
from .telemetry._metrics import HandshakeMetrics

_log = structlog.get_logger("handshake_obs.ledger")

_T = TypeVar("_T")

#: First wait before retrying a failed write, doubled up to :data:`MAX_RETRY_SECONDS`.
FIRST_RETRY_SECONDS: Final = 0.5
MAX_RETRY_SECONDS: Final = 10.0
#: How long stopping waits for the writes still owed.
DRAIN_SECONDS: Final = 15.0


async def bounded(write: asyncio.Future[_T], seconds: float) -> _T:
    """``write``'s result within ``seconds``; raises :class:`TimeoutError` past it (the
    write goes on: a cancelled waiter never cancels the write)."""
    return await asyncio.wait_for(asyncio.shield(write), seconds)


class DelayedWrites:
    """The ledger writes one process still owes; shared by its completion path and its
    worker recorder."""

    def __init__(self, metrics: HandshakeMetrics) -> None:
        self._metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Writes not done yet."""
        return len(self._tasks)

    def follow(
        self,
        first: asyncio.Future[_T],
        retry: Callable[[], Awaitable[_T]] | None,
        done: Callable[[_T], None],
        *,
        what: str,
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        """Wait for ``first`` (already running); if it fails, call ``retry`` (None: give up)
        with backoff until it succeeds; hand the result to ``done``."""
        task = asyncio.get_running_loop().create_task(
            self._follow(first, retry, done, what, log or _log)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(
        self,
        first: asyncio.Future[_T],
        retry: Callable[[], Awaitable[_T]] | None,
        done: Callable[[_T], None],
        what: str,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        attempt: Awaitable[_T] = first
        delay = FIRST_RETRY_SECONDS
        tries = 0
        while True:
            tries += 1
            try:
                result = await attempt
            except Exception as err:  # noqa: BLE001 - a ledger fault: retry, never raise
                if retry is None:
                    log.error("delayed ledger write failed", write=what, error=str(err))
                    return
                if tries == 1:
                    log.warning("ledger write delayed, retrying", write=what, error=str(err))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                attempt = retry()
                continue
            if tries > 1:
                log.info("delayed ledger write done", write=what, attempts=tries)
            done(result)
            return

    async def drain(self, seconds: float) -> int:
        """Give the writes still owed up to ``seconds``, then stop them; how many were left
        (each is recorded later from its written intent)."""
        if not self._tasks:
            return 0
        _, left = await asyncio.wait(set(self._tasks), timeout=seconds)
        for task in left:
            task.cancel()
        if left:
            self._metrics.observe_instrumentation_error(Component.LEDGER)
            _log.error(
                "ledger writes still owed at stop; recorded later from their intent",
                count=len(left),
            )
        await asyncio.gather(*left, return_exceptions=True)
        return len(left)
