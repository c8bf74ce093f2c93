"""SQLite records of one group-commit batch written together: what a batch writes is what
the record rule writes, and every case the batch leaves (a token recorded already or twice
in the batch, an early outcome waiting, a later attempt, a handoff id taken) ends as the
rule decides it. The WAL is checkpointed by the ledger's checkpointer, not the writer."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from handshake_obs import Outcome
from handshake_obs._errors import LedgerError
from handshake_obs._vocabulary import HandoffEventKind
from handshake_obs.ledger import RecordResult, SqliteLedger
from handshake_obs.ledger.sqlite._checkpointer import (
    CHECKPOINT_EVERY_ROWS,
    WRITER_CHECKPOINT_PAGES,
)

from .support.ledger_inspection import OutcomeCount, assert_side_tables_consistent, count_outcomes
from .support.record_batches import (
    as_handoff_of,
    assert_each_recorded_once,
    record_from_writers,
    timeline,
)
from .test_ledger_contract import T0, make_record

_T = TypeVar("_T")


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    opened = SqliteLedger(tmp_path / "ledger.db")
    async with opened:
        yield opened
        await assert_side_tables_consistent(opened)


def batches_written_together(ledger: SqliteLedger) -> list[int]:
    """How many records each batch writes together from now on."""
    group = ledger._group
    assert group is not None
    together = group.together
    assert together is not None
    sizes: list[int] = []

    def counted(conn: sqlite3.Connection, bodies: Sequence[Any]) -> dict[int, Any]:
        answers = together(conn, bodies)
        sizes.append(len(answers))
        return answers

    group.together = counted
    return sizes


async def in_one_batch(ledger: SqliteLedger, *calls: Awaitable[_T]) -> list[_T | BaseException]:
    """``calls`` queued while the writer is held, so that they share one batch."""
    writer = ledger._writer
    assert writer is not None
    release = threading.Event()
    writer.post(lambda: release.wait(10))
    runs = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0.05)
    release.set()
    return await asyncio.gather(*runs, return_exceptions=True)


def succeeded(results: Sequence[RecordResult | BaseException]) -> list[RecordResult]:
    """``results``, none of which may be a failure."""
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures
    return [r for r in results if not isinstance(r, BaseException)]


async def test_concurrent_records_are_written_together_and_each_is_stored_once(
    ledger: SqliteLedger,
) -> None:
    sizes = batches_written_together(ledger)
    records = [make_record(target=f"agent-{i % 3}") for i in range(300)]
    await record_from_writers(ledger, records)

    assert max(sizes) > 1, "no two records were written together"
    await assert_each_recorded_once(ledger, records)


async def test_what_a_batch_leaves_ends_as_the_record_rule_decides(
    ledger: SqliteLedger,
) -> None:
    awaited = make_record()
    await ledger.record_early_outcome(awaited.task_token, Outcome.COMPLETED, T0 + 5)
    first_attempt = make_record(workflow_id="wf-retried")
    await ledger.record(first_attempt)
    retry = dataclasses.replace(
        make_record(workflow_id="wf-retried"), attempt=2, started_at=T0 + 10
    )
    fresh, other = make_record(), make_record()
    sizes = batches_written_together(ledger)

    results = await in_one_batch(
        ledger, *(ledger.record(r) for r in (fresh, fresh, awaited, retry, other))
    )

    assert sizes == [2]  # fresh and other; the rest go to the program
    first, twin, reconciled, superseding, stored = succeeded(results)
    assert (first.created, first.record) == (True, fresh)
    assert (twin.created, twin.record) == (False, fresh)
    assert reconciled.reconciled is not None
    assert reconciled.record.outcome is Outcome.COMPLETED
    assert [s.record.handoff_id for s in superseding.superseded] == [first_attempt.handoff_id]
    assert (stored.created, stored.record) == (True, other)
    assert [kind for kind, _ in await timeline(ledger, awaited)] == [
        HandoffEventKind.RECORDED.value,
        HandoffEventKind.FINISHED.value,
    ]
    for record in (fresh, other, retry):
        assert [kind for kind, _ in await timeline(ledger, record)] == ["recorded"]
    assert await count_outcomes(ledger) == [
        OutcomeCount("agent", "already_closed", 1),
        OutcomeCount("agent", "completed", 1),
        OutcomeCount("agent", "pending", 3),
    ]


async def test_a_batch_whose_tokens_all_have_early_outcomes_leaves_them_to_the_programs(
    ledger: SqliteLedger,
) -> None:
    awaited = [make_record(), make_record()]
    for record in awaited:
        await ledger.record_early_outcome(record.task_token, Outcome.FAILED, T0 + 5)
    sizes = batches_written_together(ledger)

    results = succeeded(await in_one_batch(ledger, *(ledger.record(r) for r in awaited)))

    assert sizes == [0]
    assert [r.record.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "failed", 2)]


async def test_a_token_recorded_already_sends_its_batch_to_the_programs(
    ledger: SqliteLedger,
) -> None:
    taken = make_record()
    await ledger.record(taken)
    again = dataclasses.replace(make_record(), task_token=taken.task_token)
    others = [make_record() for _ in range(3)]
    sizes = batches_written_together(ledger)

    results = await in_one_batch(ledger, *(ledger.record(r) for r in (*others, again)))

    assert sizes == []  # the insert found the token: the batch ran again as programs
    *stored, found = succeeded(results)
    assert [r.created for r in stored] == [True] * 3
    assert (found.created, found.record) == (False, taken)
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "pending", 4)]


async def test_a_record_that_fails_its_batch_fails_alone(ledger: SqliteLedger) -> None:
    taken = make_record()
    await ledger.record(taken)
    clash = dataclasses.replace(make_record(), handoff_id=taken.handoff_id)
    others = [make_record() for _ in range(3)]

    results = await in_one_batch(
        ledger, *(ledger.record(r) for r in (others[0], clash, *others[1:]))
    )

    refused = results[1]
    assert isinstance(refused, LedgerError)
    assert [r.created for r in succeeded([results[0], *results[2:]])] == [True] * 3
    assert await ledger.get(taken.handoff_id) == taken
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "pending", 4)]


async def test_a_batch_writes_what_the_rules_program_writes(ledger: SqliteLedger) -> None:
    long_error = "x" * 10_000
    batched = [
        dataclasses.replace(make_record(deadline=None), error_message=long_error),
        make_record(),
    ]
    programmed = dataclasses.replace(make_record(deadline=None), error_message=long_error)
    sizes = batches_written_together(ledger)

    by_batch = await in_one_batch(ledger, *(ledger.record(r) for r in batched))
    group = ledger._group
    assert group is not None
    together, group.together = group.together, None
    try:
        by_program = await ledger.record(programmed)
    finally:
        group.together = together

    assert sizes == [2]
    result = succeeded(by_batch)[0]
    for done, record in ((result, batched[0]), (by_program, programmed)):
        assert done.created
        assert done.reconciled is None
        assert tuple(done.superseded) == ()
        assert await ledger.get(record.handoff_id) == done.record
    assert as_handoff_of(result.record, by_program.record) == by_program.record
    assert await timeline(ledger, batched[0]) == await timeline(ledger, programmed)


async def test_the_checkpointer_not_the_writer_copies_the_log_back(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    async with ledger:
        size_after_open = path.stat().st_size
        for _ in range(3):  # each batch writes a row and a timeline entry per record
            await in_one_batch(
                ledger, *(ledger.record(make_record()) for _ in range(CHECKPOINT_EVERY_ROWS // 4))
            )
        (writer_pages,) = await ledger._write(
            lambda: ledger._wconn().execute("PRAGMA wal_autocheckpoint").fetchone()
        )
        assert writer_pages == WRITER_CHECKPOINT_PAGES  # more than these batches wrote
        # Only a checkpoint writes to the database file itself; it runs on its own thread.
        for _ in range(100):
            if path.stat().st_size > size_after_open:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > size_after_open, "no checkpoint copied the log back"
