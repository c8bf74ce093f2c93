"""The reaper: fail handoffs past their deadline, once, across replicas.

A lost token would leave its workflow waiting until Temporal's own timeout, often a day, with
nobody told. Each scan claims expired handoffs in the ledger (a claim is a lease: replicas
skip each other's rows, and the rows of a reaper that died are taken over when its lease runs
out) and fails each through its token with a typed ``HandoffDeadlineExceeded`` the workflow
can handle. Temporal decides any race with a completion or with its own timeout: the loser's
NOT_FOUND ends as ``already_closed`` and nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from .._errors import (
    ActivityAlreadyClosedError,
    CompletionError,
    HandoffAlreadyFinishedError,
    LedgerError,
    TemporalUnavailableError,
)
from .._periodic import PeriodicTask
from .._records import HandoffRecord
from .._vocabulary import DEADLINE_EXCEEDED_TYPE, ReapStatus
from ..telemetry._logging import handoff_fields
from ._pruner import Pruner

if TYPE_CHECKING:
    from .._handshake import Handshake

_log = structlog.get_logger("handshake_obs.reaper")


@dataclass(frozen=True, slots=True)
class ReapResult:
    """What happened to one expired handoff in a scan."""

    record: HandoffRecord
    result: ReapStatus
    age_seconds: float


def reaper_identity() -> str:
    """A name for this reaper that no other live reaper has."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def deadline_details(record: HandoffRecord, now: float) -> dict[str, Any]:
    """The details carried by a ``HandoffDeadlineExceeded`` failure."""
    return {
        "handoff_id": record.handoff_id,
        "target": record.target,
        "deadline": _iso(record.deadline),
        "started_at": _iso(record.started_at),
        "age_seconds": round(now - record.started_at, 3),
        "last_progress": record.progress,
        "last_progress_sequence": record.progress_sequence,
        "last_progress_at": _iso(record.progress_at),
    }


class Reaper:
    """Scans the ledger and fails expired handoffs through Temporal."""

    def __init__(
        self,
        client: Client,
        handshake: Handshake,
        *,
        identity: str | None = None,
    ) -> None:
        self._client = client
        self._ledger = handshake.ledger
        self._completion = handshake._completion
        self._metrics = handshake._metrics
        self._config = handshake.config
        self._clock = handshake._clock
        self.identity = identity or reaper_identity()
        self._pruner = Pruner(self._ledger, self._config, clock=self._clock)
        self._loop = PeriodicTask(
            self._scan,
            interval=self._config.reaper_interval.total_seconds(),
            name="handshake-reaper",
        )

    async def reap_once(self) -> list[ReapResult]:
        """One scan: claim what expired and fail it. Never raises for a failed scan."""
        now = self._clock()
        try:
            claimed = await self._ledger.claim_expired(
                now,
                limit=self._config.reaper_batch_size,
                claimant=self.identity,
                lease_seconds=self._config.reaper_lease.total_seconds(),
            )
        except LedgerError as err:
            self._metrics.observe_reaper_run(succeeded=False, at=now)
            _log.error("reaper scan failed: ledger unavailable", error=str(err))
            return []
        gate = asyncio.Semaphore(self._config.reaper_concurrency)

        async def reap(record: HandoffRecord) -> ReapResult:
            async with gate:
                return await self._reap(record)

        results = list(await asyncio.gather(*(reap(r) for r in claimed)))
        succeeded = all(r.result is not ReapStatus.ERROR for r in results)
        self._metrics.observe_reaper_run(succeeded=succeeded, at=self._clock())
        if claimed:
            _log.info(
                "reaper scan",
                claimed=len(claimed),
                reaped=sum(r.result is ReapStatus.REAPED for r in results),
                errors=sum(r.result is ReapStatus.ERROR for r in results),
            )
        return results

    async def prune_once(self) -> int:
        """Delete finished handoffs past their retention, in bounded batches (see
        :mod:`._pruner`); how many went. Never raises for a ledger failure."""
        return await self._pruner.prune_once()

    async def _reap(self, record: HandoffRecord) -> ReapResult:
        now = self._clock()
        age = now - record.started_at
        retryable = self._config.policy(record.target).retryable
        error = ApplicationError(
            f"handoff {record.handoff_id} to {record.target} passed its deadline",
            deadline_details(record, now),
            type=DEADLINE_EXCEEDED_TYPE,
            non_retryable=not retryable,
        )
        handle = self._client.get_async_activity_handle(task_token=record.task_token)
        try:
            await self._completion.reap(
                record, lambda timeout: handle.fail(error, rpc_timeout=timeout), message=str(error)
            )
        except (ActivityAlreadyClosedError, HandoffAlreadyFinishedError) as err:
            if isinstance(err, ActivityAlreadyClosedError):
                # Still pending if another call's mark held it back: the next scan looks
                # again (once that mark lapses, its intent or already_closed is recorded).
                await self._release(record)
            result = (
                ReapStatus.ALREADY_CLOSED
                if isinstance(err, ActivityAlreadyClosedError)
                else ReapStatus.ALREADY_FINISHED
            )
            return ReapResult(record, result, age)
        except (CompletionError, LedgerError) as err:
            if isinstance(err, TemporalUnavailableError | LedgerError):
                # Nothing was done (Temporal unreachable, or the intent not written and the
                # call never sent): the next scan (this reaper's or another's) tries again.
                await self._release(record)
            _log.warning("handoff not reaped", error=str(err), **handoff_fields(record))
            return ReapResult(record, ReapStatus.ERROR, age)
        if record.deadline is not None:
            self._metrics.observe_reap_lag(now - record.deadline)
        _log.info(
            "handoff reaped",
            age_seconds=round(age, 3),
            deadline=_iso(record.deadline),
            retryable=retryable,
            **handoff_fields(record),
        )
        return ReapResult(record, ReapStatus.REAPED, age)

    async def _release(self, record: HandoffRecord) -> None:
        try:
            await self._ledger.release_claim(record.handoff_id, self.identity)
        except LedgerError as err:
            _log.warning("claim not released; it expires", error=str(err))

    # -- running in the background ------------------------------------------------------

    def start(self) -> None:
        """Scan every ``reaper_interval`` until :meth:`stop`."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop: the scan in progress is cancelled; its claims expire with their lease."""
        await self._loop.stop()

    async def _scan(self) -> None:
        try:
            await self.reap_once()
            await self.prune_once()
        except Exception as err:  # noqa: BLE001 - the loop must outlive any one scan
            self._metrics.observe_reaper_run(succeeded=False, at=self._clock())
            _log.error("reaper scan crashed", error=repr(err))


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()
