"""The SQLite ledger's executor: each step of a rule as statements on the write connection.

It runs on the writer thread, inside the ``BEGIN IMMEDIATE`` transaction the ledger opened:
that transaction holds the database's one write lock, so the locking steps have nothing left
to do.
"""

from __future__ import annotations

import sqlite3
from typing import assert_never

from ..._vocabulary import Outcome
from .._pending_counts import SQLITE_SHARDS, count_deltas
from .._rows import RowCodec, as_read_back, encode_progress, event_params
from .._rules import (
    AppendEvent,
    CallIntent,
    ClaimDueChecks,
    ClaimExpired,
    CountPending,
    DropEmptyPendingCounts,
    EarlyOutcome,
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
from ._statements import SQL


def execute(conn: sqlite3.Connection, codec: RowCodec, step: Step) -> object:  # noqa: PLR0911, PLR0912, PLR0915 - one case per step
    """Take ``step`` on ``conn`` (rows read and written through ``codec``); its answer."""
    match step:
        case LockToken() | LockHandoff():
            return None
        case InsertHandoff():
            # Without RETURNING, which costs SQLite more than the whole rest of the rule.
            inserted = conn.execute(SQL.insert, codec.params(step.record, step.digest)).rowcount
            return as_read_back(step.record) if inserted else None
        case FinishRow():
            row = conn.execute(
                SQL.finish,
                (step.outcome.value, step.at, step.error_type, step.error_message, step.handoff_id),
            ).fetchone()
            return None if row is None else codec.record(row)
        case ForgetToken():
            conn.execute(SQL.forget_token, (b"", None, step.handoff_id))
            return None
        case PruneFinished():
            pruned = conn.execute(SQL.prune, (step.before, step.limit)).fetchall()
            # The timelines go with their handoffs.
            conn.executemany(SQL.prune_events, pruned)
            conn.execute(SQL.prune_early, (step.before,))
            return len(pruned)
        case EndAllCalls():
            conn.execute(SQL.end_all_calls, (step.handoff_id,))
            return None
        case OlderPendingAttempts():
            rows = conn.execute(
                SQL.older_pending_attempts,
                (step.namespace, step.workflow_id, step.run_id, step.activity_id, step.attempt),
            ).fetchall()
            return [handoff_id for (handoff_id,) in rows]
        case TakeEarlyOutcome():
            # Looked up first: most records find none, and a SELECT costs less than a DELETE.
            early = _early(conn.execute(SQL.early_of, (step.digest,)).fetchone())
            if early is not None:
                conn.execute(SQL.forget_early, (step.digest,))
            return early
        case MarkCall():
            conn.execute(SQL.mark_call, (step.call_id, step.until, *_intent(step), step.handoff_id))
            return None
        case WrittenIntent():
            return _written(conn.execute(SQL.written_intent, (step.handoff_id,)).fetchone())
        case ProbeWrite():
            conn.execute(SQL.probe_write, (step.at,))
            return None
        case EndCall():
            conn.execute(SQL.end_call, (step.handoff_id, step.call_id))
            return None
        case LiveCallExists():
            live = SQL.live_finishing_call if step.finishing else SQL.live_call
            return conn.execute(live, (step.handoff_id, step.at)).fetchone() is not None
        case ProgressOf():
            row = conn.execute(SQL.progress_of, (step.handoff_id,)).fetchone()
            return None if row is None else KeptProgress(row[0])
        case SetProgress():
            conn.execute(
                SQL.set_progress,
                (encode_progress(step.progress), step.sequence, step.at, step.handoff_id),
            )
            return None
        case HandoffIdByDigest():
            row = conn.execute(SQL.id_by_digest, (step.digest,)).fetchone()
            return None if row is None else row[0]
        case HandoffByDigest():
            row = conn.execute(SQL.by_digest, (step.digest,)).fetchone()
            return None if row is None else codec.record(row)
        case HandoffById():
            row = conn.execute(SQL.by_id, (step.handoff_id,)).fetchone()
            return None if row is None else codec.record(row)
        case EarlyOutcomeOf():
            return _early(conn.execute(SQL.early_of, (step.digest,)).fetchone())
        case KeepEarlyOutcome():
            early = step.early
            conn.execute(
                SQL.keep_early,
                (
                    step.digest,
                    early.outcome.value,
                    early.finished_at,
                    early.error_type,
                    early.error_message,
                ),
            )
            return None
        case SetDeadline():
            row = conn.execute(SQL.set_deadline, (step.deadline, step.handoff_id)).fetchone()
            return None if row is None else codec.record(row)
        case ClaimExpired():
            rows = conn.execute(
                SQL.claim, (step.claimant, step.until, step.now, step.now, step.limit)
            ).fetchall()
            return [codec.record(r) for r in rows]
        case ReleaseClaim():
            conn.execute(SQL.release, (step.handoff_id, step.claimant))
            return None
        case ClaimDueChecks():
            delay = step.now - step.first_check_before
            rows = conn.execute(
                SQL.claim_checks,
                (
                    step.claimant,
                    step.until,
                    step.now,
                    step.now,
                    step.limit,
                    delay,
                    step.first_check_before,
                    step.now,
                    step.limit,
                    step.limit,
                ),
            ).fetchall()
            return [codec.record(r) for r in rows]
        case ScheduleCheck():
            conn.execute(
                SQL.schedule_check,
                (step.next_check_at, step.claimant, step.claimant, step.handoff_id),
            )
            return None
        case AppendEvent():
            conn.execute(SQL.append_event, event_params(step.event))
            return None
        case CountPending():
            conn.executemany(SQL.count_pending, count_deltas(step.changes, SQLITE_SHARDS))
            return None
        case DropEmptyPendingCounts():
            conn.execute(SQL.drop_empty_counts)
            return None
        case _:
            assert_never(step)


def _early(row: tuple[str, float, str | None, str | None] | None) -> EarlyOutcome | None:
    if row is None:
        return None
    outcome, finished_at, error_type, error_message = row
    return EarlyOutcome(Outcome(outcome), finished_at, error_type, error_message)


def _intent(step: MarkCall) -> tuple[str | None, str | None, str | None]:
    """The intent columns of a call mark (all NULL for a heartbeat)."""
    intent = step.intent
    if intent is None:
        return (None, None, None)
    return (intent.outcome.value, intent.error_type, intent.error_message)


def _written(row: tuple[str, str | None, str | None] | None) -> CallIntent | None:
    if row is None:
        return None
    outcome, error_type, error_message = row
    return CallIntent(Outcome(outcome), error_type, error_message)
