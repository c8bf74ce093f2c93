"""The in-memory ledger's executor: each step of a rule as dictionary operations.

One rule runs at a time (the whole of it between two awaits of the event loop), so the
locking steps have nothing to wait for. Every write goes through :class:`Changes`, so a rule
that raises is undone as a rolled back transaction would be. Stored progress is passed
through the same JSON encoding as in the SQL ledgers, so what is read back is the same on
every backend.
"""

from __future__ import annotations

import dataclasses
from typing import assert_never

from ..._errors import LedgerError
from ..._records import CallIntent, HandoffRecord
from ..._vocabulary import State
from .._pending_counts import count_deltas
from .._rows import as_read_back, event_params, progress_as_read_back, row_to_event
from .._rules import (
    AppendEvent,
    ClaimDueChecks,
    ClaimExpired,
    CountPending,
    DropEmptyPendingCounts,
    EarlyOutcomeOf,
    EndAllCalls,
    EndCall,
    FinishRow,
    ForgetToken,
    HandoffByDigest,
    HandoffById,
    HandoffIdByDigest,
    InsertHandoff,
    KeepEarlyOutcome,
    KeptProgress,
    LiveCallExists,
    LockHandoff,
    LockToken,
    MarkCall,
    OlderPendingAttempts,
    ProbeWrite,
    ProgressOf,
    PruneFinished,
    ReleaseClaim,
    ScheduleCheck,
    SetDeadline,
    SetProgress,
    Step,
    TakeEarlyOutcome,
    WrittenIntent,
)
from ._tables import Changes, Claim, MemoryTables


def execute(tables: MemoryTables, changes: Changes, step: Step) -> object:  # noqa: PLR0911, PLR0912, PLR0915 - one case per step
    """Take ``step`` on ``tables``, noting its writes in ``changes``; its answer."""
    match step:
        case LockToken() | LockHandoff():
            return None
        case InsertHandoff():
            return _insert(tables, changes, step.record, step.digest)
        case FinishRow():
            return _finish(tables, changes, step)
        case ForgetToken():
            current = tables.handoffs.get(step.handoff_id)
            if current is not None:
                changes.put(
                    tables.handoffs, step.handoff_id, dataclasses.replace(current, task_token=b"")
                )
            return None
        case PruneFinished():
            return _prune(tables, changes, step)
        case EndAllCalls():
            changes.delete(tables.calls_in_flight, step.handoff_id)
            changes.delete(tables.intents, step.handoff_id)
            return None
        case OlderPendingAttempts():
            older = [
                r
                for r in tables.handoffs.values()
                if r.is_pending
                and r.attempt < step.attempt
                and (r.namespace, r.workflow_id, r.run_id, r.activity_id)
                == (step.namespace, step.workflow_id, step.run_id, step.activity_id)
            ]
            return [r.handoff_id for r in sorted(older, key=lambda r: r.attempt)]
        case TakeEarlyOutcome():
            early = tables.early_outcomes.get(step.digest)
            changes.delete(tables.early_outcomes, step.digest)
            return early
        case MarkCall():
            if _pending(tables, step.handoff_id) is not None:
                marks = tables.calls_in_flight.get(step.handoff_id, {})
                changes.put(
                    tables.calls_in_flight, step.handoff_id, {**marks, step.call_id: step.until}
                )
                if step.intent is not None:
                    intents = tables.intents.get(step.handoff_id, {})
                    changes.put(
                        tables.intents, step.handoff_id, {**intents, step.call_id: step.intent}
                    )
            return None
        case WrittenIntent():
            return _written_intent(tables, step.handoff_id)
        case ProbeWrite():
            changes.put(tables.probe, 1, step.at)
            return None
        case EndCall():
            _end_call(tables, changes, step)
            return None
        case LiveCallExists():
            return _live_call(tables, step)
        case ProgressOf():
            current = tables.handoffs.get(step.handoff_id)
            return None if current is None else KeptProgress(current.progress_sequence)
        case SetProgress():
            _set_progress(tables, changes, step)
            return None
        case HandoffIdByDigest():
            return tables.ids_by_digest.get(step.digest)
        case HandoffByDigest():
            handoff_id = tables.ids_by_digest.get(step.digest)
            return None if handoff_id is None else tables.handoffs.get(handoff_id)
        case HandoffById():
            return tables.handoffs.get(step.handoff_id)
        case EarlyOutcomeOf():
            return tables.early_outcomes.get(step.digest)
        case KeepEarlyOutcome():
            changes.put(tables.early_outcomes, step.digest, step.early)
            return None
        case SetDeadline():
            current = _pending(tables, step.handoff_id)
            if current is None:
                return None
            moved = dataclasses.replace(current, deadline=step.deadline)
            changes.put(tables.handoffs, step.handoff_id, moved)
            return moved
        case ClaimExpired():
            return _claim(tables, changes, step)
        case ReleaseClaim():
            _release(tables, changes, step.handoff_id, step.claimant)
            return None
        case ClaimDueChecks():
            return _claim_checks(tables, changes, step)
        case ScheduleCheck():
            if step.handoff_id in tables.handoffs:
                changes.put(tables.next_checks, step.handoff_id, step.next_check_at)
                _release(tables, changes, step.handoff_id, step.claimant)
            return None
        case AppendEvent():
            # Stored as the SQL ledgers read it back (details through JSON).
            event = row_to_event(step.event.handoff_id, event_params(step.event)[1:])
            kept = tables.events.get(event.handoff_id, ())
            changes.put(tables.events, event.handoff_id, (*kept, event))
            return None
        case CountPending():
            _count_pending(tables, changes, step)
            return None
        case DropEmptyPendingCounts():
            return None  # a count that reaches zero goes at once (see _count_pending)
        case _:
            assert_never(step)


def _insert(
    tables: MemoryTables, changes: Changes, record: HandoffRecord, digest: bytes
) -> HandoffRecord | None:
    if digest in tables.ids_by_digest:
        return None
    if record.handoff_id in tables.handoffs:  # the SQL ledgers' primary key refuses it too
        raise LedgerError(f"ledger (memory): handoff id {record.handoff_id!r} is taken")
    stored = as_read_back(record)
    changes.put(tables.handoffs, record.handoff_id, stored)
    changes.put(tables.ids_by_digest, digest, record.handoff_id)
    return stored


def _finish(tables: MemoryTables, changes: Changes, step: FinishRow) -> HandoffRecord | None:
    current = _pending(tables, step.handoff_id)
    if current is None:
        return None
    finished = dataclasses.replace(
        current,
        state=State.FINISHED,
        outcome=step.outcome,
        finished_at=step.at,
        error_type=step.error_type,
        error_message=step.error_message,
    )
    changes.put(tables.handoffs, step.handoff_id, finished)
    return finished


def _count_pending(tables: MemoryTables, changes: Changes, step: CountPending) -> None:
    for target, bucket, _, delta in count_deltas(step.changes, 1):
        key = (target, bucket)
        count = tables.pending_counts.get(key, 0) + delta
        if count:
            changes.put(tables.pending_counts, key, count)
        else:
            changes.delete(tables.pending_counts, key)


def _live_call(tables: MemoryTables, step: LiveCallExists) -> bool:
    marks = tables.calls_in_flight.get(step.handoff_id, {})
    counted = tables.intents.get(step.handoff_id, {}) if step.finishing else marks
    return any(marks[call] > step.at for call in counted if call in marks)


def _written_intent(tables: MemoryTables, handoff_id: str) -> CallIntent | None:
    marks = tables.calls_in_flight.get(handoff_id, {})
    intents = tables.intents.get(handoff_id, {})
    oldest = sorted(intents, key=lambda call: marks.get(call, 0.0))
    return intents[oldest[0]] if oldest else None


def _end_call(tables: MemoryTables, changes: Changes, step: EndCall) -> None:
    marks = tables.calls_in_flight.get(step.handoff_id, {})
    if step.call_id not in marks:
        return
    rest = {call: until for call, until in marks.items() if call != step.call_id}
    if rest:
        changes.put(tables.calls_in_flight, step.handoff_id, rest)
    else:
        changes.delete(tables.calls_in_flight, step.handoff_id)
    intents = tables.intents.get(step.handoff_id, {})
    if step.call_id in intents:
        kept = {call: i for call, i in intents.items() if call != step.call_id}
        if kept:
            changes.put(tables.intents, step.handoff_id, kept)
        else:
            changes.delete(tables.intents, step.handoff_id)


def _set_progress(tables: MemoryTables, changes: Changes, step: SetProgress) -> None:
    current = tables.handoffs.get(step.handoff_id)
    if current is None:
        return
    updated = dataclasses.replace(
        current,
        progress=progress_as_read_back(step.progress),
        progress_sequence=step.sequence,
        progress_at=step.at,
    )
    changes.put(tables.handoffs, step.handoff_id, updated)


def _claim(tables: MemoryTables, changes: Changes, step: ClaimExpired) -> list[HandoffRecord]:
    def claimable(record: HandoffRecord) -> bool:
        claim = tables.claims.get(record.handoff_id)
        return (
            record.is_pending
            and record.deadline is not None
            and record.deadline <= step.now
            and (claim is None or claim.until < step.now)
        )

    expired = sorted(filter(claimable, tables.handoffs.values()), key=lambda r: r.deadline or 0.0)
    picked = expired[: step.limit]
    for record in picked:
        changes.put(tables.claims, record.handoff_id, Claim(step.claimant, step.until))
    return picked


def _prune(tables: MemoryTables, changes: Changes, step: PruneFinished) -> int:
    old = sorted(
        (
            r
            for r in tables.handoffs.values()
            if not r.is_pending and r.finished_at is not None and r.finished_at < step.before
        ),
        key=lambda r: r.finished_at or 0.0,
    )[: step.limit]
    digests = {h: d for d, h in tables.ids_by_digest.items()} if old else {}
    for record in old:
        changes.delete(tables.handoffs, record.handoff_id)
        changes.delete(tables.claims, record.handoff_id)
        changes.delete(tables.events, record.handoff_id)  # the timeline goes with it
        changes.delete(tables.ids_by_digest, digests[record.handoff_id])
    for digest in [d for d, e in tables.early_outcomes.items() if e.finished_at < step.before]:
        changes.delete(tables.early_outcomes, digest)
    return len(old)


def _claim_checks(
    tables: MemoryTables, changes: Changes, step: ClaimDueChecks
) -> list[HandoffRecord]:
    delay = step.now - step.first_check_before

    def due_at(record: HandoffRecord) -> float:
        return tables.next_checks.get(record.handoff_id, record.started_at + delay)

    def claimable(record: HandoffRecord) -> bool:
        claim = tables.claims.get(record.handoff_id)
        return (
            record.is_pending
            and due_at(record) <= step.now
            and (claim is None or claim.until < step.now)
        )

    picked = sorted(filter(claimable, tables.handoffs.values()), key=due_at)[: step.limit]
    for record in picked:
        changes.put(tables.claims, record.handoff_id, Claim(step.claimant, step.until))
    return picked


def _release(tables: MemoryTables, changes: Changes, handoff_id: str, claimant: str) -> None:
    claim = tables.claims.get(handoff_id)
    if claim is not None and claim.claimant == claimant:
        changes.delete(tables.claims, handoff_id)


def _pending(tables: MemoryTables, handoff_id: str) -> HandoffRecord | None:
    current = tables.handoffs.get(handoff_id)
    return current if current is not None and current.is_pending else None
