"""The ledger operations that decide something, written once over a backend's executor.

Every backend subclasses :class:`RulesLedger` and supplies :meth:`RulesLedger._run`: run one
rule (a program of steps, see :mod:`._rules`) inside one transaction, taking each step on its
store. The operations below only build the program; what they decide is in
:mod:`._rules.programs`, the same for SQLite, PostgreSQL and memory. Operations of a single
step go through :meth:`RulesLedger._take`, which a backend may run without a transaction:
marking a call is on every completion's path, and a transaction would cost PostgreSQL two
more round trips.
"""

from __future__ import annotations

import abc
import time
import uuid
from typing import Any, TypeVar

import structlog

from .._records import CallFailure, FinishedOutcome, HandoffEvent, HandoffRecord
from .._vocabulary import CloseReason, Outcome
from ._interface import MAX_EVENTS_READ, HeartbeatResult, Ledger, RecordResult
from ._pending_counts import PendingCountMismatch, mismatches
from ._rules import (
    CallIntent,
    MarkCall,
    ProbeWrite,
    ReleaseClaim,
    Returns,
    Rule,
    ScheduleCheck,
    ask,
    programs,
)

_T = TypeVar("_T")

#: (target, bucket) -> pending handoffs.
BucketCounts = dict[tuple[str, int], int]

_log = structlog.get_logger("handshake_obs.ledger")


class RulesLedger(Ledger):
    """A ledger whose writes are the shared rules, run by its backend."""

    @abc.abstractmethod
    async def _run(self, rule: Rule[_T]) -> _T:
        """Run ``rule``'s program to its result in one transaction (rolled back if it
        raises); raise :class:`LedgerError` if the store fails or the ledger is not open.
        A backend may roll a rule back and run it again (SQLite's group commit does, when
        another rule of its batch raised): starting it anew is all that takes."""

    async def _take(self, step: Returns[_T]) -> _T:
        """Take one step, as a program of its own unless the backend has a cheaper way
        (its one statement is atomic without a transaction)."""
        return await self._run(lambda: ask(step))

    # -- handoffs -----------------------------------------------------------------------

    async def record(self, record: HandoffRecord) -> RecordResult:
        return await self._run(lambda: programs.record(record))

    # -- the completion path ------------------------------------------------------------

    async def begin_call(
        self, handoff_id: str, until: float, *, intent: CallIntent | None = None
    ) -> str:
        call_id = uuid.uuid4().hex
        # Only on a pending handoff; the intent is durable once this returns.
        await self._take(MarkCall(handoff_id, call_id, until, intent))
        return call_id

    async def begin_finishing_call(
        self, handoff_id: str, until: float, intent: CallIntent, at: float
    ) -> str | None:
        call_id = uuid.uuid4().hex
        begun = await self._run(
            lambda: programs.begin_finishing_call(handoff_id, call_id, until, intent, at)
        )
        return call_id if begun else None

    async def end_call(
        self, handoff_id: str, call_id: str, *, failure: CallFailure | None = None
    ) -> None:
        await self._run(lambda: programs.end_call(handoff_id, call_id, failure))

    async def finish(
        self,
        handoff_id: str,
        outcome: Outcome,
        at: float,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        ends_call: str | None = None,
    ) -> FinishedOutcome | None:
        return await self._run(
            lambda: programs.finish(
                handoff_id,
                outcome,
                at,
                error_type=error_type,
                error_message=error_message,
                ends_call=ends_call,
            )
        )

    async def finish_closed(
        self, handoff_id: str, at: float, *, call_id: str | None = None
    ) -> FinishedOutcome | None:
        return await self._run(lambda: programs.finish_closed(handoff_id, at, call_id=call_id))

    async def record_early_outcome(
        self,
        task_token: bytes,
        outcome: Outcome,
        at: float,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> FinishedOutcome | None:
        return await self._run(
            lambda: programs.record_early_outcome(
                task_token, outcome, at, error_type=error_type, error_message=error_message
            )
        )

    async def heartbeat(
        self, handoff_id: str, progress: Any, sequence: int | None, at: float
    ) -> HeartbeatResult:
        return await self._run(lambda: programs.heartbeat(handoff_id, progress, sequence, at))

    # -- deadlines and reaping ----------------------------------------------------------

    async def extend_deadline(
        self, handoff_id: str, deadline: float, *, at: float | None = None
    ) -> HandoffRecord:
        when = time.time() if at is None else at
        return await self._run(lambda: programs.extend_deadline(handoff_id, deadline, at=when))

    async def events(self, handoff_id: str, *, limit: int = MAX_EVENTS_READ) -> list[HandoffEvent]:
        return await self._events(handoff_id, limit)

    @abc.abstractmethod
    async def _events(self, handoff_id: str, limit: int) -> list[HandoffEvent]:
        """The backend's read of a handoff's timeline, oldest first."""

    async def claim_expired(
        self, now: float, *, limit: int, claimant: str, lease_seconds: float
    ) -> list[HandoffRecord]:
        return await self._run(
            lambda: programs.claim_expired(
                now, limit=limit, claimant=claimant, lease_seconds=lease_seconds
            )
        )

    async def release_claim(self, handoff_id: str, claimant: str) -> None:
        await self._take(ReleaseClaim(handoff_id, claimant))

    # -- the pending counts -------------------------------------------------------------

    async def verify_pending_counts(self, *, repair: bool = True) -> list[PendingCountMismatch]:
        counted, recounted = await self._pending_counts_and_recount()
        wrong = mismatches(counted, recounted)
        if wrong:
            _log.warning(
                "pending counts differ from a recount",
                buckets=len(wrong),
                counted=sum(m.counted for m in wrong),
                recounted=sum(m.recounted for m in wrong),
                repaired=repair,
            )
            if repair:
                await self._rebuild_pending_counts()
        return wrong

    @abc.abstractmethod
    async def _pending_counts_and_recount(self) -> tuple[BucketCounts, BucketCounts]:
        """The kept pending counts and a full recount, both of one consistent snapshot."""

    @abc.abstractmethod
    async def _rebuild_pending_counts(self) -> None:
        """Replace the pending counts with a recount, with the counts' writers held off."""

    # -- health -------------------------------------------------------------------------

    async def check_writable(self) -> None:
        await self._take(ProbeWrite(time.time()))

    # -- retention ----------------------------------------------------------------------

    async def prune_finished(self, before: float, *, limit: int) -> int:
        return await self._run(lambda: programs.prune_finished(before, limit=limit))

    # -- reconciling ----------------------------------------------------------------------

    async def claim_due_checks(
        self,
        now: float,
        *,
        first_check_before: float,
        limit: int,
        claimant: str,
        lease_seconds: float,
    ) -> list[HandoffRecord]:
        return await self._run(
            lambda: programs.claim_due_checks(
                now,
                first_check_before=first_check_before,
                limit=limit,
                claimant=claimant,
                lease_seconds=lease_seconds,
            )
        )

    async def schedule_check(self, handoff_id: str, next_check_at: float, claimant: str) -> None:
        await self._take(ScheduleCheck(handoff_id, next_check_at, claimant))

    async def finish_reconciled(
        self, handoff_id: str, at: float, *, reason: CloseReason, detail: str | None = None
    ) -> FinishedOutcome | None:
        return await self._run(
            lambda: programs.finish_reconciled(handoff_id, at, reason=reason, detail=detail)
        )
