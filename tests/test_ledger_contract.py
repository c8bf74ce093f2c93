"""The ``Ledger`` contract, pinned once and run against every backend.

Each test runs on SQLite (a file in ``tmp_path``), on PostgreSQL at 127.0.0.1:5432 (database
``test``, trust auth) in a throwaway schema ``hs_test_<uuid hex>``, dropped when the test
ends, and on the in-memory ledger. An unreachable PostgreSQL fails the postgres tests: it
never skips them. Tests of schemas and files run on the durable backends only.

Besides what the interface returns, the suite checks what each store keeps beside its
handoffs (``tests/support/ledger_inspection.py`` reads it directly): every test that uses the
``ledger`` fixture ends by checking that no finished handoff keeps an in-flight call mark and
that no applied early outcome is still kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import secrets
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql

from handshake_obs import (
    ConfigurationError,
    HandoffAlreadyFinishedError,
    HandoffRecord,
    LedgerError,
    Outcome,
    State,
    UnknownHandoffError,
    token_fingerprint,
)
from handshake_obs._tokens import new_handoff_id, token_digest
from handshake_obs._vocabulary import HandoffEventKind
from handshake_obs.ledger import (
    CallIntent,
    HandoffQuery,
    Ledger,
    MemoryLedger,
    OutcomeTally,
    PostgresLedger,
    SqliteLedger,
    age_bucket_labels,
    ledger_from_url,
)
from handshake_obs.ledger.memory import MemoryTables
from handshake_obs.ledger.postgres._schema import VERSION_TABLE

from .support.ledger_inspection import (
    OutcomeCount,
    assert_side_tables_consistent,
    count_outcomes,
    side_tables,
)
from .support.postgres import POSTGRES_URL, postgres_admin, throwaway_schema

#: A fixed "now" for the tests: every timestamp is given by the caller.
T0 = 1_800_000_000.0
HOUR = 3600.0


def make_record(
    *,
    target: str = "agent",
    workflow_id: str | None = None,
    run_id: str = "run-1",
    activity_id: str = "1",
    attempt: int = 1,
    started_at: float = T0,
    deadline: float | None = T0 + HOUR,
    namespace: str = "default",
    task_token: bytes | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> HandoffRecord:
    """A new pending handoff, shaped like the ones the recorder builds."""
    token = task_token if task_token is not None else secrets.token_bytes(106)
    return HandoffRecord(
        handoff_id=new_handoff_id(),
        task_token=token,
        token_fingerprint=token_fingerprint(token),
        namespace=namespace,
        workflow_id=workflow_id or f"wf-{uuid.uuid4()}",
        run_id=run_id,
        activity_id=activity_id,
        activity_type="hand_off",
        attempt=attempt,
        target=target,
        started_at=started_at,
        deadline=deadline,
        traceparent=traceparent,
        tracestate=tracestate,
    )


# -- backends -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """Where one test's ledger lives."""

    backend: str
    #: Another (unopened) ledger on the same store.
    new: Callable[[], Ledger]
    #: Overwrite the stored schema version, as a newer handshake-obs would have left it
    #: (None: the store has no schema, in memory).
    set_schema_version: Callable[[int], Awaitable[None]] | None
    #: The PostgreSQL schema (None for SQLite and memory).
    schema: str | None = None


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[Store]:
    """A store in a fresh schema ``hs_test_<uuid hex>``, dropped (with its tables) afterwards."""
    admin = await postgres_admin()
    try:
        async with throwaway_schema(admin) as schema:

            async def set_version(version: int) -> None:
                await admin.execute(
                    sql.SQL("UPDATE {}.{} SET version = %s").format(
                        sql.Identifier(schema), sql.Identifier(VERSION_TABLE)
                    ),
                    (version,),
                )

            yield Store(
                "postgres",
                lambda: PostgresLedger(POSTGRES_URL, schema=schema),
                set_version,
                schema,
            )
    finally:
        await admin.close()


@asynccontextmanager
async def backend_store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, empty store of ``backend``."""
    if backend == "memory":
        tables = MemoryTables()
        yield Store("memory", lambda: MemoryLedger(tables), None)
    elif backend == "sqlite":
        path = tmp_path / "ledger.db"

        async def set_version(version: int) -> None:
            conn = sqlite3.connect(path)
            try:
                conn.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                conn.close()

        yield Store("sqlite", lambda: SqliteLedger(path), set_version)
    else:
        async with postgres_schema() as pg_store:
            yield pg_store


_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=["sqlite", _POSTGRES, "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store of each backend: for what every ledger must do."""
    async with backend_store(request.param, tmp_path) as fresh:
        yield fresh


@pytest.fixture(params=["sqlite", _POSTGRES])
async def durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store of each durable backend: for schemas and migrations."""
    async with backend_store(request.param, tmp_path) as fresh:
        yield fresh


@pytest.fixture
async def ledger(store: Store) -> AsyncIterator[Ledger]:
    """An open ledger; when the test ends, its side tables must be consistent."""
    async with store.new() as opened:
        yield opened
        await assert_side_tables_consistent(opened)


# -- recording and looking up -------------------------------------------------------------


async def test_record_stores_a_pending_handoff_found_by_id_token_and_activity(
    ledger: Ledger,
) -> None:
    record = make_record(
        deadline=T0 + 60.5,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate="vendor=1",
    )

    result = await ledger.record(record)

    assert result.created is True
    assert result.reconciled is None
    assert list(result.superseded) == []
    assert result.record == record
    assert await ledger.get(record.handoff_id) == record
    assert await ledger.find_by_token(record.task_token) == record
    assert (await ledger.find_by_activity("default", record.workflow_id, "run-1", "1")) == record
    assert await ledger.find_by_activity(None, record.workflow_id, None, "1") == record
    assert await ledger.get("ho_unknown") is None
    assert await ledger.find_by_token(b"not a recorded token") is None
    assert await ledger.find_by_activity("other-ns", record.workflow_id, None, "1") is None
    assert await ledger.find_by_activity(None, record.workflow_id, "run-2", "1") is None


async def test_find_by_activity_returns_the_newest_attempt_of_the_newest_run(
    ledger: Ledger,
) -> None:
    first = make_record(run_id="run-1", attempt=1, started_at=T0)
    wf = first.workflow_id
    second = make_record(workflow_id=wf, run_id="run-1", attempt=2, started_at=T0 + 10)
    other_run = make_record(workflow_id=wf, run_id="run-2", attempt=1, started_at=T0 + 20)
    for record in (first, second, other_run):
        await ledger.record(record)

    newest = await ledger.find_by_activity(None, wf, None, "1")
    in_run_1 = await ledger.find_by_activity("default", wf, "run-1", "1")

    assert newest is not None
    assert newest.handoff_id == other_run.handoff_id
    assert in_run_1 is not None
    assert in_run_1.handoff_id == second.handoff_id


async def test_recording_a_token_twice_returns_created_false_and_keeps_the_first(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    again = make_record(task_token=record.task_token, workflow_id=record.workflow_id)

    result = await ledger.record(again)

    assert result.created is False
    assert result.record == record
    assert await ledger.get(again.handoff_id) is None
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "pending", 1)]


async def test_progress_round_trips_json_values_and_unicode(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    progress = {"step": 3, "of": 7, "note": "naïve ✓", "items": [1, 2.5, None, True]}

    await ledger.heartbeat(record.handoff_id, progress, None, T0 + 1)

    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.progress == progress
    assert stored.progress_at == T0 + 1


# -- one outcome per handoff --------------------------------------------------------------


async def test_concurrent_finish_calls_record_exactly_one_outcome(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    outcomes = [Outcome.COMPLETED, Outcome.FAILED, Outcome.REAPED, Outcome.CANCELED] * 10

    results = await asyncio.gather(
        *(
            ledger.finish(record.handoff_id, outcome, T0 + 5 + i, error_type=f"e{i}")
            for i, outcome in enumerate(outcomes)
        )
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    (winner,) = winners
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.state is State.FINISHED
    assert stored.outcome is winner.outcome
    assert stored.finished_at == winner.finished_at
    assert winner.record == stored
    assert winner.latency_seconds == winner.finished_at - T0
    assert await count_outcomes(ledger) == [OutcomeCount("agent", winner.outcome.value, 1)]


async def test_finish_on_a_finished_handoff_returns_none_and_changes_nothing(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    first = await ledger.finish(
        record.handoff_id, Outcome.FAILED, T0 + 1, error_type="Boom", error_message="boom"
    )

    second = await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 2)

    assert first is not None
    assert second is None
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert (stored.outcome, stored.finished_at, stored.error_type, stored.error_message) == (
        Outcome.FAILED,
        T0 + 1,
        "Boom",
        "boom",
    )
    assert await ledger.finish("ho_unknown", Outcome.COMPLETED, T0) is None


async def test_long_error_messages_are_truncated(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)

    done = await ledger.finish(record.handoff_id, Outcome.FAILED, T0, error_message="x" * 10_000)

    assert done is not None
    assert done.record.error_message is not None
    assert len(done.record.error_message) == 4096
    assert done.record.error_message.endswith("…")


async def test_finish_closed_does_not_close_while_another_call_is_in_flight(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    lost = await ledger.begin_call(record.handoff_id, until=T0 + 30)  # got NOT_FOUND
    running = await ledger.begin_call(record.handoff_id, until=T0 + 30)  # still running

    assert await ledger.finish_closed(record.handoff_id, T0 + 10, call_id=lost) is None

    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending
    won = await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 11, ends_call=running)
    assert won is not None
    assert won.outcome is Outcome.COMPLETED


async def test_finish_closed_closes_once_the_other_calls_mark_has_lapsed(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    lost = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)  # its caller died silently

    closed = await ledger.finish_closed(record.handoff_id, T0 + 31, call_id=lost)

    assert closed is not None
    assert closed.outcome is Outcome.ALREADY_CLOSED
    assert closed.record.error_type == "already_closed"
    assert closed.finished_at == T0 + 31


async def test_a_dead_callers_mark_lapses_even_while_new_calls_keep_coming(
    ledger: Ledger,
) -> None:
    """Reapers retrying every few seconds must not keep a dead caller's mark alive."""
    record = make_record()
    await ledger.record(record)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)  # a reaper that was killed

    closed = None
    for attempt in range(10):
        now = T0 + 5 + 5 * attempt
        mine = await ledger.begin_call(record.handoff_id, until=now + 33)
        closed = await ledger.finish_closed(record.handoff_id, now + 0.1, call_id=mine)
        if closed is not None:
            break

    assert closed is not None, "the dead caller's mark never lapsed"
    assert closed.finished_at > T0 + 30


async def test_finish_closed_closes_when_the_other_calls_have_ended(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    lost = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    other = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    await ledger.end_call(record.handoff_id, other)  # ended without an outcome

    closed = await ledger.finish_closed(record.handoff_id, T0 + 10, call_id=lost)

    assert closed is not None
    assert closed.outcome is Outcome.ALREADY_CLOSED
    assert await ledger.finish_closed("ho_unknown", T0) is None


async def test_two_not_founds_at_once_close_the_handoff_exactly_once(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    first = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    second = await ledger.begin_call(record.handoff_id, until=T0 + 30)

    results = await asyncio.gather(
        ledger.finish_closed(record.handoff_id, T0 + 10, call_id=first),
        ledger.finish_closed(record.handoff_id, T0 + 10, call_id=second),
    )

    assert [r is not None for r in results].count(True) == 1
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.outcome is Outcome.ALREADY_CLOSED


# -- early outcomes -----------------------------------------------------------------------


async def test_an_early_outcome_is_kept_and_reconciled_when_the_handoff_is_recorded(
    ledger: Ledger,
) -> None:
    record = make_record(started_at=T0)
    kept = await ledger.record_early_outcome(
        record.task_token, Outcome.FAILED, T0 - 1, error_type="Rejected", error_message="no"
    )
    assert kept is None
    assert await count_outcomes(ledger) == []  # nothing kept is counted before the record

    result = await ledger.record(record)

    assert result.created is True
    assert result.reconciled is not None
    assert result.reconciled.outcome is Outcome.FAILED
    assert result.reconciled.finished_at == T0  # never before the handoff started
    assert result.record.state is State.FINISHED
    assert result.record.error_type == "Rejected"
    assert result.record.error_message == "no"
    assert await ledger.get(record.handoff_id) == result.record
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "failed", 1)]


async def test_an_early_outcome_for_a_recorded_token_finishes_its_handoff(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)

    done = await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 3)
    again = await ledger.record_early_outcome(record.task_token, Outcome.FAILED, T0 + 4)

    assert done is not None
    assert done.outcome is Outcome.COMPLETED
    assert done.record.handoff_id == record.handoff_id
    assert again is None


async def test_an_early_already_closed_gives_way_to_a_later_real_outcome(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record_early_outcome(record.task_token, Outcome.ALREADY_CLOSED, T0 + 1)
    await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 2)

    result = await ledger.record(record)

    assert result.reconciled is not None
    assert result.reconciled.outcome is Outcome.COMPLETED
    assert result.reconciled.finished_at == T0 + 2


async def test_an_early_real_outcome_is_not_replaced_by_a_later_one(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 1)
    await ledger.record_early_outcome(record.task_token, Outcome.ALREADY_CLOSED, T0 + 2)
    await ledger.record_early_outcome(record.task_token, Outcome.FAILED, T0 + 3)

    result = await ledger.record(record)

    assert result.reconciled is not None
    assert result.reconciled.outcome is Outcome.COMPLETED
    assert result.reconciled.finished_at == T0 + 1


async def test_an_outcome_racing_its_handoff_record_is_applied_exactly_once(
    ledger: Ledger,
) -> None:
    records = [make_record() for _ in range(40)]

    async def race(record: HandoffRecord) -> tuple[bool, bool]:
        recorded, early = await asyncio.gather(
            ledger.record(record),
            ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 1),
        )
        return recorded.reconciled is not None, early is not None

    results = await asyncio.gather(*(race(r) for r in records))

    assert all(reconciled != finished_directly for reconciled, finished_directly in results)
    for record in records:
        stored = await ledger.get(record.handoff_id)
        assert stored is not None
        assert stored.outcome is Outcome.COMPLETED
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "completed", 40)]


# -- attempts -----------------------------------------------------------------------------


async def test_a_new_attempt_supersedes_older_pending_attempts_of_the_same_activity(
    ledger: Ledger,
) -> None:
    first = make_record(attempt=1, started_at=T0)
    wf = first.workflow_id
    second = make_record(workflow_id=wf, attempt=2, started_at=T0 + 10)
    finished = make_record(workflow_id=wf, activity_id="2", attempt=1)
    other_activity = make_record(workflow_id=wf, activity_id="3", attempt=1)
    other_run = make_record(workflow_id=wf, run_id="run-2", attempt=1)
    await ledger.record(second)
    late_first = await ledger.record(first)  # recorded late: it supersedes nothing newer
    for record in (finished, other_activity, other_run):
        await ledger.record(record)
    await ledger.finish(finished.handoff_id, Outcome.COMPLETED, T0 + 5)

    third = make_record(workflow_id=wf, attempt=3, started_at=T0 + 20)
    result = await ledger.record(third)
    unrelated = await ledger.record(make_record(workflow_id=wf, activity_id="2", attempt=2))

    assert sorted(done.record.handoff_id for done in result.superseded) == sorted(
        [first.handoff_id, second.handoff_id]
    )
    for done in result.superseded:
        assert done.outcome is Outcome.ALREADY_CLOSED
        assert done.finished_at == T0 + 20
        assert done.record.error_type == "superseded"
        assert done.record.error_message == "superseded by attempt 3"
        assert done.record.state is State.FINISHED
    assert list(late_first.superseded) == []
    assert list(unrelated.superseded) == []  # attempt 1 of activity 2 had finished already
    for record in (other_activity, other_run, third):
        stored = await ledger.get(record.handoff_id)
        assert stored is not None
        assert stored.is_pending
    counts = {c.outcome: c.count for c in await count_outcomes(ledger)}
    assert counts == {"already_closed": 2, "completed": 1, "pending": 4}


# -- side tables: in-flight marks and kept early outcomes ---------------------------------


async def test_finishing_a_handoff_removes_every_in_flight_mark_of_it(ledger: Ledger) -> None:
    record = make_record()
    other = make_record()
    for r in (record, other):
        await ledger.record(r)
    mine = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)  # a caller that died
    kept = await ledger.begin_call(other.handoff_id, until=T0 + 30)

    done = await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1, ends_call=mine)

    assert done is not None
    tables = await side_tables(ledger)
    assert tables.marks_of(record.handoff_id) == set()
    assert tables.marks_of(other.handoff_id) == {kept}


async def test_a_call_that_ends_without_an_outcome_removes_only_its_own_mark(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    ended = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    running = await ledger.begin_call(record.handoff_id, until=T0 + 30)

    await ledger.end_call(record.handoff_id, ended)

    assert (await side_tables(ledger)).marks_of(record.handoff_id) == {running}


async def test_a_call_begun_on_a_finished_or_unknown_handoff_leaves_no_mark(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1)

    late = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    await ledger.begin_call("ho_unknown", until=T0 + 30)

    assert late
    assert (await side_tables(ledger)).calls_in_flight == frozenset()
    assert await ledger.finish(record.handoff_id, Outcome.FAILED, T0 + 2, ends_call=late) is None


async def test_calls_begun_while_their_handoff_finishes_leave_no_mark(ledger: Ledger) -> None:
    """A mark taken as the handoff finishes either goes with the finish or is not taken."""
    records = [make_record() for _ in range(20)]
    for record in records:
        await ledger.record(record)

    await asyncio.gather(
        *(
            call
            for record in records
            for call in (
                ledger.begin_call(record.handoff_id, until=T0 + 30),
                ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1),
                ledger.begin_call(record.handoff_id, until=T0 + 30),
            )
        )
    )

    tables = await side_tables(ledger)
    assert tables.calls_in_flight == frozenset()


async def test_finish_closed_that_closes_removes_every_mark(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    lost = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)  # its caller died

    closed = await ledger.finish_closed(record.handoff_id, T0 + 31, call_id=lost)

    assert closed is not None
    assert (await side_tables(ledger)).marks_of(record.handoff_id) == set()


async def test_finish_closed_that_does_not_close_ends_only_its_own_call(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    lost = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    running = await ledger.begin_call(record.handoff_id, until=T0 + 30)

    assert await ledger.finish_closed(record.handoff_id, T0 + 10, call_id=lost) is None

    assert (await side_tables(ledger)).marks_of(record.handoff_id) == {running}


async def test_a_superseded_attempt_keeps_no_in_flight_mark(ledger: Ledger) -> None:
    """Retrying finishes the older attempt through the same finish as every other outcome:
    the marks of calls that were in flight on it go with it."""
    first = make_record(attempt=1, started_at=T0)
    await ledger.record(first)
    await ledger.begin_call(first.handoff_id, until=T0 + 30)  # its caller died with it
    second = make_record(workflow_id=first.workflow_id, attempt=2, started_at=T0 + 10)
    running = await ledger.record(second)
    await ledger.record(second)  # recorded again: nothing changes
    call = await ledger.begin_call(second.handoff_id, until=T0 + 40)

    third = await ledger.record(
        make_record(workflow_id=first.workflow_id, attempt=3, started_at=T0 + 20)
    )

    assert [done.record.handoff_id for done in running.superseded] == [first.handoff_id]
    assert [done.record.handoff_id for done in third.superseded] == [second.handoff_id]
    tables = await side_tables(ledger)
    assert tables.marks_of(first.handoff_id) == set()
    assert tables.marks_of(second.handoff_id) == set(), f"call {call} outlived its handoff"
    assert tables.marks_of_finished == frozenset()


async def test_an_early_outcome_for_a_recorded_handoff_removes_its_marks(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)

    done = await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 1)

    assert done is not None
    tables = await side_tables(ledger)
    assert tables.marks_of(record.handoff_id) == set()
    assert tables.early_outcomes == frozenset()  # finished directly: nothing kept


async def test_an_early_outcome_is_kept_once_and_removed_when_applied(ledger: Ledger) -> None:
    record = make_record()
    digest = token_digest(record.task_token)
    await ledger.record_early_outcome(record.task_token, Outcome.ALREADY_CLOSED, T0 + 1)
    await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 2)
    assert (await side_tables(ledger)).early_outcomes == {digest}

    result = await ledger.record(record)

    assert result.reconciled is not None
    tables = await side_tables(ledger)
    assert tables.early_outcomes == frozenset()
    assert tables.marks_of(record.handoff_id) == set()


async def test_recording_a_finished_token_again_leaves_nothing_beside_it(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)  # a caller that died
    await ledger.finish(record.handoff_id, Outcome.FAILED, T0 + 1)
    await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 2)

    again = await ledger.record(make_record(task_token=record.task_token))

    assert again.created is False
    assert again.record.outcome is Outcome.FAILED
    tables = await side_tables(ledger)
    assert tables.calls_in_flight == frozenset()
    assert tables.early_outcomes == frozenset()


async def test_a_handoff_id_recorded_twice_with_another_token_is_refused(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.record_early_outcome(b"another token", Outcome.COMPLETED, T0 + 1)
    clash = dataclasses.replace(
        make_record(task_token=b"another token"), handoff_id=record.handoff_id
    )

    with pytest.raises(LedgerError):
        await ledger.record(clash)

    assert await ledger.get(record.handoff_id) == record
    assert await ledger.find_by_token(b"another token") is None
    assert (await side_tables(ledger)).early_outcomes == {token_digest(b"another token")}


# -- progress -----------------------------------------------------------------------------


async def test_heartbeat_keeps_newer_progress_ignores_stale_and_numbers_none_as_next(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    hid = record.handoff_id

    first = await ledger.heartbeat(hid, {"step": 1}, None, T0 + 1)
    explicit = await ledger.heartbeat(hid, {"step": 5}, 5, T0 + 2)
    stale = await ledger.heartbeat(hid, {"step": 4}, 4, T0 + 3)
    same = await ledger.heartbeat(hid, {"step": "dup"}, 5, T0 + 4)
    following = await ledger.heartbeat(hid, {"step": 6}, None, T0 + 5)

    assert (first.accepted, first.sequence) == (True, 1)
    assert (explicit.accepted, explicit.sequence) == (True, 5)
    assert (stale.accepted, stale.sequence) == (False, 5)
    assert (same.accepted, same.sequence) == (False, 5)
    assert (following.accepted, following.sequence) == (True, 6)
    stored = await ledger.get(hid)
    assert stored is not None
    assert (stored.progress, stored.progress_sequence, stored.progress_at) == (
        {"step": 6},
        6,
        T0 + 5,
    )
    with pytest.raises(UnknownHandoffError):
        await ledger.heartbeat("ho_unknown", {}, None, T0)


# -- deadlines and reaping ----------------------------------------------------------------


async def test_extend_deadline_moves_a_pending_deadline_and_refuses_unknown_or_finished(
    ledger: Ledger,
) -> None:
    record = make_record(deadline=T0 + HOUR)
    await ledger.record(record)

    later = await ledger.extend_deadline(record.handoff_id, T0 + 2 * HOUR)
    earlier = await ledger.extend_deadline(record.handoff_id, T0 + 60)

    assert later.deadline == T0 + 2 * HOUR
    assert earlier.deadline == T0 + 60
    assert await ledger.get(record.handoff_id) == earlier
    with pytest.raises(UnknownHandoffError):
        await ledger.extend_deadline("ho_unknown", T0)
    await ledger.finish(record.handoff_id, Outcome.CANCELED, T0 + 1)
    with pytest.raises(HandoffAlreadyFinishedError) as refused:
        await ledger.extend_deadline(record.handoff_id, T0 + 3 * HOUR)
    assert refused.value.outcome == "canceled"


async def test_claim_expired_claims_only_expired_pending_handoffs_oldest_deadline_first(
    ledger: Ledger,
) -> None:
    now = T0 + HOUR
    expired = [make_record(deadline=now - offset) for offset in (5, 50, 1, 500, 20)]
    not_yet = make_record(deadline=now + 1)
    no_deadline = make_record(deadline=None)
    finished = make_record(deadline=now - 1000)
    for record in (*expired, not_yet, no_deadline, finished):
        await ledger.record(record)
    await ledger.finish(finished.handoff_id, Outcome.COMPLETED, T0 + 1)

    first = await ledger.claim_expired(now, limit=3, claimant="reaper-a", lease_seconds=60)
    rest = await ledger.claim_expired(now, limit=3, claimant="reaper-a", lease_seconds=60)
    nothing = await ledger.claim_expired(now, limit=3, claimant="reaper-a", lease_seconds=60)

    by_deadline = sorted(expired, key=lambda r: r.deadline or 0.0)
    assert [r.handoff_id for r in first] == [r.handoff_id for r in by_deadline[:3]]
    assert [r.handoff_id for r in rest] == [r.handoff_id for r in by_deadline[3:]]
    assert nothing == []
    assert all(r.is_pending for r in (*first, *rest))  # claiming does not finish


async def test_a_live_claim_is_skipped_and_an_expired_lease_is_taken_over(
    ledger: Ledger,
) -> None:
    now = T0 + HOUR
    record = make_record(deadline=now - 10)
    await ledger.record(record)

    claimed = await ledger.claim_expired(now, limit=10, claimant="reaper-a", lease_seconds=30)
    while_live = await ledger.claim_expired(
        now + 29, limit=10, claimant="reaper-b", lease_seconds=30
    )
    after_lease = await ledger.claim_expired(
        now + 31, limit=10, claimant="reaper-b", lease_seconds=30
    )

    assert [r.handoff_id for r in claimed] == [record.handoff_id]
    assert while_live == []
    assert [r.handoff_id for r in after_lease] == [record.handoff_id]


async def test_release_claim_by_its_claimant_makes_the_handoff_claimable_again(
    ledger: Ledger,
) -> None:
    now = T0 + HOUR
    record = make_record(deadline=now - 10)
    await ledger.record(record)
    await ledger.claim_expired(now, limit=10, claimant="reaper-a", lease_seconds=300)

    await ledger.release_claim(record.handoff_id, "reaper-b")  # not its claim: no effect
    still_held = await ledger.claim_expired(now, limit=10, claimant="reaper-b", lease_seconds=300)
    await ledger.release_claim(record.handoff_id, "reaper-a")
    reclaimed = await ledger.claim_expired(now, limit=10, claimant="reaper-b", lease_seconds=300)

    assert still_held == []
    assert [r.handoff_id for r in reclaimed] == [record.handoff_id]


# -- reading ------------------------------------------------------------------------------


async def test_pending_summary_counts_oldest_and_disjoint_age_buckets_per_target(
    ledger: Ledger,
) -> None:
    now = T0 + 2 * 86_400
    bounds = [60.0, 3600.0, 86_400.0]
    ages = {"agent": [10, 59, 60, 61, 3599, 7200, 90_000], "approval": [5]}
    for target, target_ages in ages.items():
        for age in target_ages:
            await ledger.record(make_record(target=target, started_at=now - age))
    done = make_record(target="agent", started_at=now - 200_000)
    await ledger.record(done)
    await ledger.finish(done.handoff_id, Outcome.COMPLETED, now)

    summaries = {s.target: s for s in await ledger.pending_summary(now, bounds)}

    assert set(summaries) == {"agent", "approval"}
    agent = summaries["agent"]
    assert agent.pending == 7
    assert agent.oldest_started_at == now - 90_000
    assert list(agent.by_age) == age_bucket_labels(bounds)
    assert agent.by_age == {"0s-60s": 3, "60s-3600s": 2, "3600s-86400s": 1, ">86400s": 1}
    assert sum(agent.by_age.values()) == agent.pending
    approval = summaries["approval"]
    assert (approval.pending, approval.oldest_started_at) == (1, now - 5)
    assert approval.by_age == {"0s-60s": 1, "60s-3600s": 0, "3600s-86400s": 0, ">86400s": 0}
    no_bounds = await ledger.pending_summary(now, [])
    assert {s.target: s.by_age for s in no_bounds} == {
        "agent": {">0s": 7},
        "approval": {">0s": 1},
    }


async def test_count_outcomes_gives_handoffs_per_target_and_outcome(ledger: Ledger) -> None:
    """The count the conservation and recovery tests compare with metrics, on each store."""
    plan = [
        ("agent", Outcome.COMPLETED),
        ("agent", Outcome.COMPLETED),
        ("agent", Outcome.REAPED),
        ("agent", None),
        ("approval", Outcome.FAILED),
        ("approval", None),
        ("approval", None),
    ]
    for target, outcome in plan:
        record = make_record(target=target)
        await ledger.record(record)
        if outcome is not None:
            await ledger.finish(record.handoff_id, outcome, T0 + 1)

    counts = await count_outcomes(ledger)

    assert counts == [
        OutcomeCount("agent", "completed", 2),
        OutcomeCount("agent", "pending", 1),
        OutcomeCount("agent", "reaped", 1),
        OutcomeCount("approval", "failed", 1),
        OutcomeCount("approval", "pending", 2),
    ]


# -- lifecycle ----------------------------------------------------------------------------


async def test_handoffs_and_early_outcomes_survive_close_and_reopen(store: Store) -> None:
    pending = make_record()
    done = make_record()
    late = make_record()
    async with store.new() as ledger:
        await ledger.record(pending)
        await ledger.record(done)
        await ledger.finish(done.handoff_id, Outcome.COMPLETED, T0 + 1)
        await ledger.heartbeat(pending.handoff_id, {"p": 1}, 3, T0 + 2)
        await ledger.record_early_outcome(late.task_token, Outcome.FAILED, T0 + 3)

    reopened = store.new()
    await reopened.open()
    try:
        stored = await reopened.get(pending.handoff_id)
        assert stored is not None
        assert (stored.state, stored.progress, stored.progress_sequence) == (
            State.PENDING,
            {"p": 1},
            3,
        )
        finished = await reopened.get(done.handoff_id)
        assert finished is not None
        assert finished.outcome is Outcome.COMPLETED
        result = await reopened.record(late)
        assert result.reconciled is not None
        assert result.reconciled.outcome is Outcome.FAILED
    finally:
        await reopened.close()
        await reopened.close()  # closing twice is safe


async def test_a_closed_ledger_raises_ledger_error(store: Store) -> None:
    ledger = store.new()
    with pytest.raises(LedgerError):
        await ledger.get("ho_x")
    await ledger.open()
    await ledger.close()
    with pytest.raises(LedgerError):
        await ledger.record(make_record())


async def test_a_schema_version_newer_than_the_code_is_refused(durable_store: Store) -> None:
    store = durable_store
    async with store.new():
        pass
    assert store.set_schema_version is not None
    await store.set_schema_version(999)

    newer = store.new()
    with pytest.raises(LedgerError, match="newer"):
        await newer.open()

    with pytest.raises(LedgerError, match="not open"):  # a refused open leaves it closed
        await newer.get("ho_x")
    await newer.close()


async def test_several_ledgers_opening_a_fresh_store_at_once_share_one_schema(
    durable_store: Store,
) -> None:
    ledgers = [durable_store.new() for _ in range(4)]
    await asyncio.gather(*(ledger.open() for ledger in ledgers))
    try:
        record = make_record()
        await ledgers[0].record(record)
        assert await ledgers[-1].get(record.handoff_id) == record
    finally:
        for ledger in ledgers:
            await ledger.close()


# -- PostgreSQL specifics -----------------------------------------------------------------


@pytest.mark.postgres
async def test_two_postgres_ledgers_claim_each_of_2000_expired_handoffs_exactly_once() -> None:
    now = T0 + HOUR
    records = [make_record(deadline=now - 1 - i % 500) for i in range(2000)]

    async def reap(ledger: Ledger, claimant: str) -> list[list[str]]:
        batches: list[list[str]] = []
        while batch := await ledger.claim_expired(
            now, limit=100, claimant=claimant, lease_seconds=600
        ):
            batches.append([r.handoff_id for r in batch])
        return batches

    async with postgres_schema() as pg:
        a = PostgresLedger(POSTGRES_URL, schema=pg.schema)
        b = PostgresLedger(POSTGRES_URL, schema=pg.schema)
        await asyncio.gather(a.open(), b.open())
        try:
            for chunk in range(0, len(records), 200):
                await asyncio.gather(*(a.record(r) for r in records[chunk : chunk + 200]))
            started = time.perf_counter()
            by_a, by_b = await asyncio.gather(reap(a, "reaper-a"), reap(b, "reaper-b"))
            elapsed = time.perf_counter() - started
        finally:
            await a.close()
            await b.close()

    batches = by_a + by_b
    claimed = Counter(hid for batch in batches for hid in batch)
    assert all(len(batch) <= 100 for batch in batches)
    assert set(claimed) == {r.handoff_id for r in records}
    assert set(claimed.values()) == {1}, "a handoff was claimed twice"
    assert by_a
    assert by_b
    assert elapsed < 30


async def test_postgres_errors_never_show_the_password() -> None:
    password = "s3cr%zz-pw"  # not valid percent-encoding: libpq quotes it in its error
    ledger = PostgresLedger(f"postgresql://hs:{password}@127.0.0.1:5432/test")

    with pytest.raises(LedgerError) as refused:
        await ledger.open()

    chain: list[BaseException] = []
    error: BaseException | None = refused.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert all(password not in str(e) for e in chain)
    assert "***" in str(refused.value)
    await ledger.close()


async def test_ledger_from_url_accepts_postgres_urls_and_strips_the_schema_parameter() -> None:
    with_schema = ledger_from_url(f"{POSTGRES_URL}?schema=hs_run1")
    plain = ledger_from_url("postgres://127.0.0.1:5432/test?sslmode=disable")

    assert isinstance(with_schema, PostgresLedger)
    assert with_schema.schema == "hs_run1"
    assert isinstance(plain, PostgresLedger)
    assert plain.schema is None
    with pytest.raises(ConfigurationError):
        ledger_from_url("postgresql://127.0.0.1/test?schema=")
    with pytest.raises(ConfigurationError) as unsupported:
        ledger_from_url("mysql://u:hunter2@db/x")
    assert "hunter2" not in str(unsupported.value)


@pytest.mark.postgres
async def test_postgres_url_schema_parameter_puts_the_tables_in_that_schema() -> None:
    record = make_record()
    async with postgres_schema() as pg:
        async with ledger_from_url(f"{POSTGRES_URL}?schema={pg.schema}") as ledger:
            await ledger.record(record)
        admin = await postgres_admin()
        try:
            cur = await admin.execute(
                sql.SQL("SELECT handoff_id FROM {}.handoffs").format(
                    sql.Identifier(pg.schema or "")
                )
            )
            assert await cur.fetchall() == [(record.handoff_id,)]
        finally:
            await admin.close()


# -- inventory ----------------------------------------------------------------------------


async def test_list_handoffs_pages_oldest_first_with_filters_and_a_keyset_cursor(
    ledger: Ledger,
) -> None:
    records = [
        make_record(target="agent" if n % 2 else "approval", started_at=T0 + n) for n in range(7)
    ]
    for record in records:
        await ledger.record(record)
    await ledger.finish(records[3].handoff_id, Outcome.COMPLETED, T0 + 100)

    first = await ledger.list_handoffs(HandoffQuery(state=State.PENDING, limit=3))
    assert [r.handoff_id for r in first] == [records[n].handoff_id for n in (0, 1, 2)]
    last = first[-1]
    second = await ledger.list_handoffs(
        HandoffQuery(state=State.PENDING, limit=3, after=(last.started_at, last.handoff_id))
    )
    assert [r.handoff_id for r in second] == [records[n].handoff_id for n in (4, 5, 6)]

    agents = await ledger.list_handoffs(HandoffQuery(target="agent", limit=10))
    assert [r.started_at for r in agents] == [T0 + 1, T0 + 3, T0 + 5]
    old = await ledger.list_handoffs(HandoffQuery(started_before=T0 + 1.5, limit=10))
    assert len(old) == 2
    finished = await ledger.list_handoffs(HandoffQuery(state=State.FINISHED, limit=10))
    assert [r.handoff_id for r in finished] == [records[3].handoff_id]


async def test_list_handoffs_of_any_state_pages_pending_and_finished_merged_in_order(
    ledger: Ledger,
) -> None:
    """Any state: the pending and the finished rows interleaved by start time (ties by
    handoff id), page after page, with and without a filter."""
    rng = random.Random(14)
    # Few start times: many ties, ordered by handoff id.
    records = [
        make_record(target=rng.choice(["agent", "approval"]), started_at=T0 + rng.randrange(6))
        for _ in range(40)
    ]
    for record in records:
        await ledger.record(record)
    finished = set(rng.sample([r.handoff_id for r in records], 15))
    for handoff_id in finished:
        await ledger.finish(handoff_id, Outcome.COMPLETED, T0 + 100)

    async def every_page(target: str | None) -> list[tuple[str, State]]:
        seen: list[tuple[str, State]] = []
        after: tuple[float, str] | None = None
        while page := await ledger.list_handoffs(HandoffQuery(target=target, limit=7, after=after)):
            seen.extend((r.handoff_id, r.state) for r in page)
            after = (page[-1].started_at, page[-1].handoff_id)
        return seen

    for target in (None, "agent"):
        expected = [
            (r.handoff_id, State.FINISHED if r.handoff_id in finished else State.PENDING)
            for r in sorted(records, key=lambda r: (r.started_at, r.handoff_id))
            if target is None or r.target == target
        ]
        assert await every_page(target) == expected


async def test_list_handoffs_finds_by_handoff_id_and_by_workflow_id_prefix_case_sensitively(
    ledger: Ledger,
) -> None:
    """The on-call search: an exact handoff id, or the start of a workflow id (its case
    kept: ``Order-`` does not find ``order-``, and ``%`` or ``_`` match only themselves)."""
    names = ["order-1001", "order-1002", "Order-1003", "refund-7", "order_%x"]
    records = [make_record(workflow_id=name, started_at=T0 + n) for n, name in enumerate(names)]
    for record in records:
        await ledger.record(record)

    async def workflows(
        *, handoff_id: str | None = None, workflow_id_prefix: str | None = None
    ) -> list[str]:
        query = HandoffQuery(limit=10, handoff_id=handoff_id, workflow_id_prefix=workflow_id_prefix)
        return [r.workflow_id for r in await ledger.list_handoffs(query)]

    assert await workflows(workflow_id_prefix="order-") == ["order-1001", "order-1002"]
    assert await workflows(workflow_id_prefix="Order-") == ["Order-1003"]
    assert await workflows(workflow_id_prefix="order-1002") == ["order-1002"]
    assert await workflows(workflow_id_prefix="order_%") == ["order_%x"]
    assert await workflows(workflow_id_prefix="order%") == []
    assert await workflows(handoff_id=records[3].handoff_id) == ["refund-7"]
    assert await workflows(handoff_id=records[3].handoff_id, workflow_id_prefix="order") == []
    assert await workflows(handoff_id="ho_unknown") == []


async def test_each_rule_writes_its_timeline_entry_in_the_order_it_happened(
    ledger: Ledger,
) -> None:
    """Recorded, each heartbeat (an ignored one too), a deadline set, the outcome and its
    reason: what the handoff page's timeline reads, the same on every backend."""
    record = make_record(started_at=T0)
    await ledger.record(record)
    await ledger.record(record)  # recorded again: nothing changes, nothing is written
    await ledger.heartbeat(record.handoff_id, {"percent": 10}, 1, T0 + 1)
    await ledger.heartbeat(record.handoff_id, {"percent": 50}, 2, T0 + 2)
    await ledger.heartbeat(record.handoff_id, {"percent": 5}, 1, T0 + 3)  # stale: ignored
    await ledger.extend_deadline(record.handoff_id, T0 + 2 * HOUR, at=T0 + 4)
    await ledger.finish(
        record.handoff_id, Outcome.FAILED, T0 + 5, error_type="CardDeclined", error_message="no"
    )
    with pytest.raises(HandoffAlreadyFinishedError):
        await ledger.extend_deadline(record.handoff_id, T0 + 3 * HOUR, at=T0 + 6)
    events = await ledger.events(record.handoff_id)
    assert [(e.at, e.kind, e.detail) for e in events] == [
        (T0, HandoffEventKind.RECORDED, {"attempt": 1, "target": "agent", "deadline": T0 + HOUR}),
        (T0 + 1, HandoffEventKind.HEARTBEAT, {"sequence": 1, "progress": {"percent": 10}}),
        (T0 + 2, HandoffEventKind.HEARTBEAT, {"sequence": 2, "progress": {"percent": 50}}),
        (T0 + 3, HandoffEventKind.HEARTBEAT_IGNORED, {"sequence": 1, "kept": 2}),
        (T0 + 4, HandoffEventKind.DEADLINE_SET, {"deadline": T0 + 2 * HOUR}),
        (
            T0 + 5,
            HandoffEventKind.FINISHED,
            {"outcome": "failed", "error_type": "CardDeclined", "error_message": "no"},
        ),
    ]
    assert all(e.handoff_id == record.handoff_id for e in events)
    assert await ledger.events(record.handoff_id, limit=2) == events[:2]
    assert await ledger.events("ho_unknown") == []


async def test_a_superseded_attempt_and_an_early_outcome_are_in_the_timeline(
    ledger: Ledger,
) -> None:
    first = make_record(workflow_id="wf-retry", attempt=1, started_at=T0)
    await ledger.record(first)
    second = make_record(workflow_id="wf-retry", attempt=2, started_at=T0 + 10)
    await ledger.record(second)
    kinds = [(e.kind, e.detail.get("outcome")) for e in await ledger.events(first.handoff_id)]
    assert kinds == [
        (HandoffEventKind.RECORDED, None),
        (HandoffEventKind.FINISHED, "already_closed"),
    ]

    early = make_record(started_at=T0 + 20)
    await ledger.record_early_outcome(early.task_token, Outcome.COMPLETED, T0 + 19)
    await ledger.record(early)
    events = await ledger.events(early.handoff_id)
    assert [(e.at, e.kind) for e in events] == [
        (T0 + 20, HandoffEventKind.RECORDED),
        (T0 + 20, HandoffEventKind.FINISHED),  # dated no earlier than the start
    ]


async def test_latencies_since_gives_start_to_outcome_of_recent_finishes_newest_first(
    ledger: Ledger,
) -> None:
    records = [make_record(target="agent", started_at=T0 + n) for n in range(4)]
    for record in records:
        await ledger.record(record)
    await ledger.finish(records[0].handoff_id, Outcome.COMPLETED, T0 + 10)  # took 10 s
    await ledger.finish(records[1].handoff_id, Outcome.FAILED, T0 + 101)  # took 100 s
    await ledger.finish(records[2].handoff_id, Outcome.REAPED, T0 + 52)  # took 50 s
    recent = await ledger.latencies_since(T0 + 50, limit=10)
    assert [(x.target, x.outcome, round(x.seconds, 6)) for x in recent] == [
        ("agent", "failed", 100.0),
        ("agent", "reaped", 50.0),
    ]
    assert len(await ledger.latencies_since(T0, limit=1)) == 1


async def test_outcomes_since_tallies_recent_outcomes_by_target_outcome_and_error_type(
    ledger: Ledger,
) -> None:
    records = [make_record(target="agent") for _ in range(4)]
    for record in records:
        await ledger.record(record)
    await ledger.finish(records[0].handoff_id, Outcome.COMPLETED, T0 + 10)
    await ledger.finish(records[1].handoff_id, Outcome.FAILED, T0 + 20, error_type="Nope")
    await ledger.finish(records[2].handoff_id, Outcome.FAILED, T0 + 30, error_type="Nope")

    tallies = await ledger.outcomes_since(T0 + 15)

    assert tallies == [OutcomeTally("agent", "failed", "Nope", 2)]
    await ledger.ping()


async def test_a_written_intent_is_what_a_later_not_found_records(ledger: Ledger) -> None:
    """A completion whose final write was lost (its process died after Temporal accepted)
    is recorded as what it did, not as already_closed, when the reaper's call gets
    NOT_FOUND."""
    record = make_record()
    await ledger.record(record)
    intent = CallIntent(Outcome.FAILED, "PaymentDeclined", "card refused")
    await ledger.begin_call(record.handoff_id, until=T0 + 30, intent=intent)
    reap = await ledger.begin_call(
        record.handoff_id, until=T0 + 90, intent=CallIntent(Outcome.REAPED)
    )

    done = await ledger.finish_closed(record.handoff_id, T0 + 60, call_id=reap)

    assert done is not None
    assert done.outcome is Outcome.FAILED
    assert (done.record.error_type, done.record.error_message) == (
        "PaymentDeclined",
        "card refused",
    )
    assert (await side_tables(ledger)).calls_in_flight == frozenset()


async def test_an_intent_ended_with_its_call_is_forgotten(ledger: Ledger) -> None:
    """A call Temporal refused ends its mark, intent and all: a NOT_FOUND afterwards is
    already_closed."""
    record = make_record()
    await ledger.record(record)
    refused = await ledger.begin_call(
        record.handoff_id, until=T0 + 30, intent=CallIntent(Outcome.COMPLETED)
    )
    await ledger.end_call(record.handoff_id, refused)

    done = await ledger.finish_closed(record.handoff_id, T0 + 60)

    assert done is not None
    assert done.outcome is Outcome.ALREADY_CLOSED


async def test_check_writable_commits_a_write(ledger: Ledger) -> None:
    await ledger.check_writable()
    await ledger.check_writable()


async def test_a_finishing_call_is_held_back_while_another_is_live(ledger: Ledger) -> None:
    """One finishing call per handoff across processes: the second gets no mark while the
    first's is live, and gets one once that mark ended or lapsed."""
    record = make_record()
    await ledger.record(record)
    intent = CallIntent(Outcome.COMPLETED)
    heartbeat = await ledger.begin_call(record.handoff_id, until=T0 + 30)  # not finishing
    first = await ledger.begin_finishing_call(record.handoff_id, T0 + 30, intent, T0)
    assert first is not None

    held = await asyncio.gather(
        *(ledger.begin_finishing_call(record.handoff_id, T0 + 30, intent, T0 + 1) for _ in range(5))
    )
    assert held == [None] * 5
    lapsed = await ledger.begin_finishing_call(record.handoff_id, T0 + 90, intent, T0 + 31)
    assert lapsed is not None
    await ledger.end_call(record.handoff_id, lapsed)
    again = await ledger.begin_finishing_call(record.handoff_id, T0 + 90, intent, T0 + 32)
    assert again is not None
    assert (await side_tables(ledger)).marks_of(record.handoff_id) == {heartbeat, first, again}


async def test_a_finishing_call_on_a_handoff_finished_meanwhile_is_refused(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1)

    with pytest.raises(HandoffAlreadyFinishedError):
        await ledger.begin_finishing_call(
            record.handoff_id, T0 + 30, CallIntent(Outcome.FAILED), T0 + 2
        )
    assert (await side_tables(ledger)).calls_in_flight == frozenset()
