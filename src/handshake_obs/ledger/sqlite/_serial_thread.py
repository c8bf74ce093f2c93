"""One thread that runs the jobs it is given, one at a time, in the order given.

A SQLite connection belongs to one thread, and the ledger hops to it several times per
handoff. ``loop.run_in_executor`` on a one-thread ``ThreadPoolExecutor`` costs about 146 µs
of CPU per hop (a concurrent future, its callbacks, a work item, a wrapper future); a
``SimpleQueue`` read by a thread of our own and the answer handed back with
``call_soon_threadsafe`` costs about 86 µs. Jobs never block each other's callers beyond
their turn; a job that raises answers its own caller and the thread goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

import structlog

_T = TypeVar("_T")

_log = structlog.get_logger("handshake_obs.ledger")

#: A job's answer: (True, its result) or (False, the exception it raised).
Answer = tuple[bool, Any]


class SerialThread:
    """A thread of our own serving a queue of jobs; ``call`` awaits one job's answer."""

    def __init__(self, name: str) -> None:
        #: None, put by ``shutdown``, ends the thread once what was queued before it ran.
        self._jobs: SimpleQueue[Callable[[], object] | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def post(self, job: Callable[[], object]) -> None:
        """Queue ``job``; raises RuntimeError once the thread is shut down (nothing would
        run it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the thread is shut down")
            self._jobs.put(job)

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` run on the thread; its result, or what it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()

        def job() -> None:
            try:
                result = fn(*args)
            except BaseException as err:  # noqa: BLE001 - the caller hears it, whatever it is
                deliver([(loop, future, (False, err))])
            else:
                deliver([(loop, future, (True, result))])

        self.post(job)
        return await future

    def shutdown(self) -> None:
        """Run what is queued, then end the thread, and wait for it (not from the thread)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._jobs.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # noqa: BLE001 - a job's own failure: logged; the next one runs
                _log.exception("a ledger thread job failed")


def deliver(
    answers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Answer]],
) -> None:
    """Settle each future with its answer, on its own loop: one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Answer]]] = {}
    for loop, future, answer in answers:
        by_loop.setdefault(loop, []).append((future, answer))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], Answer]]) -> None:
    for future, (ok, value) in settled:
        if future.done():
            continue  # its caller was cancelled; the job ran all the same
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
