"""How the PostgreSQL ledger batches records into calls of its record function: which
records share a call, and what each caller hears back (the calls here are a stand-in for
the database; ``tests/test_postgres_record_batches.py`` runs them on PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from handshake_obs._records import HandoffRecord
from handshake_obs.ledger._rows import RowCodec
from handshake_obs.ledger.postgres._record_batches import MAX_BATCH, RecordBatches
from handshake_obs.ledger.postgres._record_function import BatchArguments
from handshake_obs.testing import pending_record


class Database:
    """Stores every record of a call unless told to fail; keeps each call's handoff ids."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.open = asyncio.Event()
        self.open.set()
        self.failing = False

    async def call(self, batch: BatchArguments) -> list[HandoffRecord]:
        _, rows, _ = batch.params()
        ids = [row["handoff_id"] for row in json.loads(rows)]
        self.calls.append(ids)
        await self.open.wait()
        if self.failing:
            raise RuntimeError("the database went away")
        return [dataclasses.replace(pending_record(), handoff_id=i) for i in ids]


def batches(database: Database, max_calls: int = 1) -> RecordBatches:
    return RecordBatches(database.call, RowCodec(None), max_calls=max_calls)


async def test_a_lone_record_is_called_at_once_and_answered_as_stored() -> None:
    database = Database()
    record = pending_record()

    stored = await batches(database).record(record)

    assert stored is not None
    assert stored.handoff_id == record.handoff_id
    assert database.calls == [[record.handoff_id]]


async def test_records_arriving_while_the_calls_are_busy_share_the_next_call() -> None:
    database = Database()
    database.open.clear()
    recorder = batches(database, max_calls=1)
    first = asyncio.ensure_future(recorder.record(pending_record()))
    await asyncio.sleep(0)
    waiting = [pending_record() for _ in range(5)]
    rest = [asyncio.ensure_future(recorder.record(r)) for r in waiting]
    await asyncio.sleep(0)
    assert len(database.calls) == 1  # the one call in flight holds the first record only

    database.open.set()
    answers = await asyncio.gather(first, *rest)

    assert all(answer is not None for answer in answers)
    assert database.calls[1] == [r.handoff_id for r in waiting]


async def test_a_call_takes_at_most_max_batch_records() -> None:
    database = Database()
    database.open.clear()
    recorder = batches(database, max_calls=1)
    blocker = asyncio.ensure_future(recorder.record(pending_record()))
    await asyncio.sleep(0)
    many = [asyncio.ensure_future(recorder.record(pending_record())) for _ in range(MAX_BATCH + 3)]
    await asyncio.sleep(0)

    database.open.set()
    await asyncio.gather(blocker, *many)

    assert [len(ids) for ids in database.calls] == [1, MAX_BATCH, 3]


async def test_every_record_of_a_failed_call_is_left_to_its_program() -> None:
    database = Database()
    database.failing = True
    recorder = batches(database, max_calls=2)

    answers = await asyncio.gather(*(recorder.record(pending_record()) for _ in range(4)))

    assert answers == [None] * 4
    database.failing = False
    assert await recorder.record(pending_record()) is not None  # the next call goes on


async def test_a_second_record_of_one_token_or_handoff_in_a_batch_is_left_to_its_program() -> None:
    database = Database()
    database.open.clear()
    recorder = batches(database, max_calls=1)
    blocker = asyncio.ensure_future(recorder.record(pending_record()))
    await asyncio.sleep(0)
    record = pending_record()
    same_token = pending_record(task_token=record.task_token)
    same_id = dataclasses.replace(pending_record(), handoff_id=record.handoff_id)
    futures = [asyncio.ensure_future(recorder.record(r)) for r in (record, same_token, same_id)]
    await asyncio.sleep(0)

    database.open.set()
    _, stored, *left = await asyncio.gather(blocker, *futures)

    assert stored is not None
    assert stored.handoff_id == record.handoff_id
    assert left == [None, None]
    assert database.calls[1] == [record.handoff_id]


async def test_a_caller_cancelled_before_its_call_is_not_called_for() -> None:
    database = Database()
    database.open.clear()
    recorder = batches(database, max_calls=1)
    blocker = asyncio.ensure_future(recorder.record(pending_record()))
    await asyncio.sleep(0)
    cancelled, kept = pending_record(), pending_record()
    gone = asyncio.ensure_future(recorder.record(cancelled))
    stays = asyncio.ensure_future(recorder.record(kept))
    await asyncio.sleep(0)
    gone.cancel()

    database.open.set()
    await asyncio.gather(blocker, stays)

    with pytest.raises(asyncio.CancelledError):
        await gone
    assert database.calls[1] == [kept.handoff_id]


def test_only_first_attempts_with_finite_times_go_in_a_batch() -> None:
    record = pending_record()

    assert BatchArguments.fits(record)
    assert not BatchArguments.fits(dataclasses.replace(record, attempt=2))
    assert not BatchArguments.fits(dataclasses.replace(record, deadline=float("inf")))


def test_at_least_one_call_must_be_allowed() -> None:
    with pytest.raises(ValueError, match="at least one call"):
        batches(Database(), max_calls=0)
