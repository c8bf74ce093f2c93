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
from ..._records import HandoffRecord
from ..._vocabulary import State
from .._rows import as_read_back, event_params, progress_as_read_back, row_to_event
from .._rules import (
    AppendEvent,
    ClaimExpired,
    EarlyOutcomeOf,
    EndAllCalls,
    EndCall,
    FinishRow,
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
    ProgressOf,
    ReleaseClaim,
    SetDeadline,
    SetProgress,
    Step,
    TakeEarlyOutcome,
)
from ._tables import Changes, Claim, MemoryTables


def execute(tables: MemoryTables, changes: Changes, step: Step) -> object:  # noqa: PLR0911, PLR0912 - one case per step
    """Take ``step`` on ``tables``, noting its writes in ``changes``; its answer."""
    match step:
        case LockToken() | LockHandoff():
            return None
        case InsertHandoff():
            return _insert(tables, changes, step.record, step.digest)
        case FinishRow():
            return _finish(tables, changes, step)
        case EndAllCalls():
            changes.delete(tables.calls_in_flight, step.handoff_id)
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
            return None
        case EndCall():
            _end_call(tables, changes, step)
            return None
        case LiveCallExists():
            marks = tables.calls_in_flight.get(step.handoff_id, {})
            return any(until > step.at for until in marks.values())
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
            claim = tables.claims.get(step.handoff_id)
            if claim is not None and claim.claimant == step.claimant:
                changes.delete(tables.claims, step.handoff_id)
            return None
        case AppendEvent():
            # Stored as the SQL ledgers read it back (details through JSON).
            event = row_to_event(step.event.handoff_id, event_params(step.event)[1:])
            kept = tables.events.get(event.handoff_id, ())
            changes.put(tables.events, event.handoff_id, (*kept, event))
            return None
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


def _end_call(tables: MemoryTables, changes: Changes, step: EndCall) -> None:
    marks = tables.calls_in_flight.get(step.handoff_id, {})
    if step.call_id not in marks:
        return
    rest = {call: until for call, until in marks.items() if call != step.call_id}
    if rest:
        changes.put(tables.calls_in_flight, step.handoff_id, rest)
    else:
        changes.delete(tables.calls_in_flight, step.handoff_id)


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


def _pending(tables: MemoryTables, handoff_id: str) -> HandoffRecord | None:
    current = tables.handoffs.get(handoff_id)
    return current if current is not None and current.is_pending else None
