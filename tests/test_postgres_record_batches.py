"""PostgreSQL records batched into one server-side statement: what a batch writes is what
the record rule writes, and every case the batch leaves (a token recorded already or twice
in the batch, an early outcome waiting, a handoff id taken) ends as the rule decides it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from handshake_obs import Outcome
from handshake_obs._errors import LedgerError
from handshake_obs._records import HandoffRecord
from handshake_obs._vocabulary import HandoffEventKind
from handshake_obs.ledger import PostgresLedger
from handshake_obs.ledger.postgres._record_function import BatchArguments

from .support.ledger_inspection import OutcomeCount, assert_side_tables_consistent, count_outcomes
from .support.postgres import POSTGRES_URL, throwaway_schema
from .support.record_batches import (
    as_handoff_of,
    assert_each_recorded_once,
    record_from_writers,
    timeline,
)
from .test_ledger_contract import T0, make_record

pytestmark = pytest.mark.postgres


@pytest.fixture
async def ledger() -> AsyncIterator[PostgresLedger]:
    async with throwaway_schema() as schema:
        opened = PostgresLedger(POSTGRES_URL, schema=schema, pool_size=10)
        async with opened:
            yield opened
            await assert_side_tables_consistent(opened)


def batch_sizes(ledger: PostgresLedger) -> list[int]:
    """The number of records in each call the ledger makes from now on."""
    batches = ledger._record_batches
    assert batches is not None
    sizes: list[int] = []
    call = batches._call

    async def counted(batch: BatchArguments) -> list[HandoffRecord]:
        sizes.append(len(batch))
        return await call(batch)

    batches._call = counted
    return sizes


async def test_concurrent_records_share_calls_and_each_is_stored_once(
    ledger: PostgresLedger,
) -> None:
    sizes = batch_sizes(ledger)
    records = [make_record(target=f"agent-{i % 3}") for i in range(300)]
    await record_from_writers(ledger, records)

    assert sum(sizes) == len(records)
    assert max(sizes) > 1, "no two records shared a call"
    await assert_each_recorded_once(ledger, records)


async def test_what_a_batch_leaves_ends_as_the_record_rule_decides(
    ledger: PostgresLedger,
) -> None:
    taken = make_record()
    await ledger.record(taken)
    awaited = make_record()
    await ledger.record_early_outcome(awaited.task_token, Outcome.COMPLETED, T0 + 5)
    fresh, other = make_record(), make_record()
    sizes = batch_sizes(ledger)

    # The first two records each take one of the two calls; the rest wait and share one.
    fillers = [make_record(), make_record()]
    results = await asyncio.gather(
        *(ledger.record(r) for r in [*fillers, fresh, fresh, awaited, taken, other])
    )

    assert sizes[:3] == [1, 1, 4]  # the second record of fresh's token is not batched
    first, twin, reconciled, again, stored = results[2:]
    # The twin goes to the program at once and races its batch: one of the two stores it.
    assert sorted([first.created, twin.created]) == [False, True]
    assert first.record == twin.record == fresh
    assert reconciled.reconciled is not None
    assert reconciled.record.outcome is Outcome.COMPLETED
    assert not again.created
    assert again.record == taken
    assert stored.created
    assert stored.record == other
    assert [kind for kind, _ in await timeline(ledger, awaited)] == [
        HandoffEventKind.RECORDED.value,
        HandoffEventKind.FINISHED.value,
    ]
    for record in (fresh, taken, other):
        assert [kind for kind, _ in await timeline(ledger, record)] == ["recorded"]


async def test_a_record_that_fails_its_batch_fails_alone(ledger: PostgresLedger) -> None:
    taken = make_record()
    await ledger.record(taken)
    clash = dataclasses.replace(make_record(), handoff_id=taken.handoff_id)
    others = [make_record() for _ in range(3)]
    sizes = batch_sizes(ledger)

    fillers = [make_record(), make_record()]
    results = await asyncio.gather(
        *(ledger.record(r) for r in [*fillers, clash, *others]), return_exceptions=True
    )

    assert sizes[:3] == [1, 1, 4]
    refused, *stored = results[2:]
    assert isinstance(refused, LedgerError)
    assert [not isinstance(r, BaseException) and r.created for r in stored] == [True] * 3
    assert await ledger.get(taken.handoff_id) == taken
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "pending", 6)]


async def test_a_batch_writes_what_the_rules_program_writes(ledger: PostgresLedger) -> None:
    batched, programmed = make_record(deadline=None), make_record(deadline=None)
    long_error = "x" * 10_000
    batched = dataclasses.replace(batched, error_message=long_error)
    programmed = dataclasses.replace(programmed, error_message=long_error)

    by_batch = await ledger.record(batched)
    batches, ledger._record_batches = ledger._record_batches, None
    try:
        by_program = await ledger.record(programmed)
    finally:
        ledger._record_batches = batches

    for result, record in ((by_batch, batched), (by_program, programmed)):
        assert result.created
        assert result.reconciled is None
        assert tuple(result.superseded) == ()
        assert await ledger.get(record.handoff_id) == result.record
    assert as_handoff_of(by_batch.record, by_program.record) == by_program.record
    assert await timeline(ledger, batched) == await timeline(ledger, programmed)
