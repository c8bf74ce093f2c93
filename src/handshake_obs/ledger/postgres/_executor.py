"""The PostgreSQL ledger's executor: each step of a rule as statements on one connection.

It runs inside the transaction the ledger opened (READ COMMITTED). The conditional updates
(``... WHERE state = 'pending' RETURNING``) make one outcome per handoff: concurrent callers
queue on the row lock and only the first finds the row still pending. The locking steps take
a transaction-scoped advisory lock on the token digest (a handoff record and an early outcome
of one token serialise, so neither misses the other) and the handoff's row lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

import psycopg
from psycopg.rows import TupleRow

from ..._vocabulary import Outcome
from .._pending_counts import POSTGRES_SHARDS, count_deltas
from .._rows import RowCodec, encode_progress, event_params
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
from ._statements import Statements

Connection = psycopg.AsyncConnection[TupleRow]


async def execute(conn: Connection, sql: Statements, codec: RowCodec, step: Step) -> object:  # noqa: PLR0911, PLR0912, PLR0915 - one case per step
    """Take ``step`` on ``conn`` (rows read and written through ``codec``); its answer."""
    match step:
        case LockToken():
            await conn.execute(sql.lock_digest, (lock_key(step.digest),))
            return None
        case LockHandoff():
            await conn.execute(sql.lock_handoff, (step.handoff_id,))
            return None
        case InsertHandoff():
            row = await _one(conn, sql.insert, codec.params(step.record, step.digest))
            return None if row is None else codec.record(row)
        case FinishRow():
            row = await _one(
                conn,
                sql.finish,
                (step.outcome.value, step.at, step.error_type, step.error_message, step.handoff_id),
            )
            return None if row is None else codec.record(row)
        case ForgetToken():
            await conn.execute(sql.forget_token, (b"", None, step.handoff_id))
            return None
        case PruneFinished():
            cur = await conn.execute(sql.prune, (step.before, step.limit))
            pruned = [handoff_id for (handoff_id,) in await cur.fetchall()]
            # The timelines go with their handoffs.
            await conn.execute(sql.prune_events, (pruned,))
            await conn.execute(sql.prune_early, (step.before,))
            return len(pruned)
        case EndAllCalls():
            await conn.execute(sql.end_all_calls, (step.handoff_id,))
            return None
        case OlderPendingAttempts():
            cur = await conn.execute(
                sql.older_pending_attempts,
                (step.namespace, step.workflow_id, step.run_id, step.activity_id, step.attempt),
            )
            return [handoff_id for (handoff_id,) in await cur.fetchall()]
        case TakeEarlyOutcome():
            return _early(await _one(conn, sql.take_early, (step.digest,)))
        case MarkCall():
            await conn.execute(
                sql.mark_call, (step.call_id, step.until, *_intent(step), step.handoff_id)
            )
            return None
        case WrittenIntent():
            return _written(await _one(conn, sql.written_intent, (step.handoff_id,)))
        case ProbeWrite():
            await conn.execute(sql.probe_write, (step.at,))
            return None
        case EndCall():
            await conn.execute(sql.end_call, (step.handoff_id, step.call_id))
            return None
        case LiveCallExists():
            live = sql.live_finishing_call if step.finishing else sql.live_call
            return await _one(conn, live, (step.handoff_id, step.at)) is not None
        case ProgressOf():
            row = await _one(conn, sql.progress_of, (step.handoff_id,))
            return None if row is None else KeptProgress(row[0])
        case SetProgress():
            await conn.execute(
                sql.set_progress,
                (encode_progress(step.progress), step.sequence, step.at, step.handoff_id),
            )
            return None
        case HandoffIdByDigest():
            row = await _one(conn, sql.id_by_digest, (step.digest,))
            return None if row is None else row[0]
        case HandoffByDigest():
            row = await _one(conn, sql.by_digest, (step.digest,))
            return None if row is None else codec.record(row)
        case HandoffById():
            row = await _one(conn, sql.by_id, (step.handoff_id,))
            return None if row is None else codec.record(row)
        case EarlyOutcomeOf():
            return _early(await _one(conn, sql.early_of, (step.digest,)))
        case KeepEarlyOutcome():
            early = step.early
            await conn.execute(
                sql.keep_early,
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
            row = await _one(conn, sql.set_deadline, (step.deadline, step.handoff_id))
            return None if row is None else codec.record(row)
        case ClaimExpired():
            cur = await conn.execute(
                sql.claim, (step.now, step.now, step.limit, step.claimant, step.until)
            )
            return [codec.record(r) for r in await cur.fetchall()]
        case ReleaseClaim():
            await conn.execute(sql.release, (step.handoff_id, step.claimant))
            return None
        case ClaimDueChecks():
            cur = await conn.execute(
                sql.claim_checks,
                (
                    step.now,
                    step.now,
                    step.limit,
                    step.now - step.first_check_before,
                    step.first_check_before,
                    step.now,
                    step.limit,
                    step.limit,
                    step.claimant,
                    step.until,
                ),
            )
            return [codec.record(r) for r in await cur.fetchall()]
        case ScheduleCheck():
            await conn.execute(
                sql.schedule_check,
                (step.next_check_at, step.claimant, step.claimant, step.handoff_id),
            )
            return None
        case AppendEvent():
            await conn.execute(sql.append_event, event_params(step.event))
            return None
        case CountPending():
            await count_pending(conn, sql, step)
            return None
        case DropEmptyPendingCounts():
            await conn.execute(sql.drop_empty_counts)
            return None
        case _:
            assert_never(step)


async def count_pending(conn: Connection, sql: Statements, step: CountPending) -> None:
    """Change the count rows in key order, one statement each (most rules change one)."""
    for delta in count_deltas(step.changes, POSTGRES_SHARDS):
        await conn.execute(sql.count_pending, delta)


def lock_key(digest: bytes) -> int:
    """The advisory lock key of a token: its digest's first 64 bits."""
    return int.from_bytes(digest[:8], "big", signed=True)


async def _one(conn: Connection, sql: str, params: Sequence[Any]) -> TupleRow | None:
    cur = await conn.execute(sql, params)
    return await cur.fetchone()


def _early(row: TupleRow | None) -> EarlyOutcome | None:
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
