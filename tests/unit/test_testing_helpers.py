"""``handshake_obs.testing``: records built as the recorder builds them, and the bulk load
that seeds a ledger with fresh pending rows, on the in-memory ledger and a SQLite file.

PostgreSQL's bulk load (``COPY``) runs in ``bench.reaper``'s scan; the unit tier stays off
the network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import handshake_obs.testing
from handshake_obs import HandoffRecord, LedgerError, Outcome, State, token_fingerprint
from handshake_obs.ledger import HandoffQuery, Ledger, SqliteLedger
from handshake_obs.testing import MemoryLedger, bulk_insert, pending_record

T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "sqlite"])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ledger]:
    """An open ledger of each backend the unit tier can reach."""
    opened: Ledger = (
        MemoryLedger() if request.param == "memory" else SqliteLedger(tmp_path / "ledger.db")
    )
    async with opened:
        yield opened


async def pending_count(ledger: Ledger) -> int:
    return sum(s.pending for s in await ledger.pending_summary(T0, ()))


def records(count: int, *, deadline: float | None = T0 + 3600) -> list[HandoffRecord]:
    return [pending_record(target="agent", started_at=T0, deadline=deadline) for _ in range(count)]


# -- the namespace ----------------------------------------------------------------------------


def test_the_namespace_offers_exactly_its_helpers_sorted() -> None:
    assert handshake_obs.testing.__all__ == ["MemoryLedger", "bulk_insert", "pending_record"]
    assert handshake_obs.testing.MemoryLedger is handshake_obs.ledger.MemoryLedger


# -- pending_record ---------------------------------------------------------------------------


def test_a_pending_record_is_new_pending_and_carries_its_tokens_fingerprint() -> None:
    record = pending_record(target="agent", started_at=T0, deadline=T0 + 60)
    assert record.state is State.PENDING
    assert record.outcome is None
    assert record.finished_at is None
    assert len(record.task_token) == 106
    assert record.token_fingerprint == token_fingerprint(record.task_token)
    assert record.handoff_id.startswith("ho_")
    assert (record.target, record.started_at, record.deadline) == ("agent", T0, T0 + 60)


def test_every_pending_record_has_its_own_token_handoff_id_and_workflow() -> None:
    first, second = pending_record(), pending_record()
    assert first.task_token != second.task_token
    assert first.handoff_id != second.handoff_id
    assert (first.workflow_id, first.run_id) != (second.workflow_id, second.run_id)


def test_a_given_token_is_used_with_its_fingerprint() -> None:
    record = pending_record(task_token=b"token-1")
    assert record.task_token == b"token-1"
    assert record.token_fingerprint == token_fingerprint(b"token-1")


@pytest.mark.parametrize(
    ("given", "message"),
    [({"task_token": b""}, "task_token"), ({"attempt": 0}, "attempt")],
)
def test_a_pending_record_refuses_bad_input_clearly(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pending_record(**given)  # type: ignore[arg-type]


# -- bulk_insert ------------------------------------------------------------------------------


async def test_bulk_insert_stores_every_record_as_recorded_across_batches(ledger: Ledger) -> None:
    seeded = records(7)
    assert await bulk_insert(ledger, seeded, batch_size=3) == 7
    assert await pending_count(ledger) == 7
    for record in seeded:
        assert await ledger.get(record.handoff_id) == record
        assert await ledger.find_by_token(record.task_token) == record


async def test_bulk_insert_reads_the_records_lazily(ledger: Ledger) -> None:
    taken: list[int] = []

    def generate() -> Iterator[HandoffRecord]:
        for number in range(5):
            taken.append(number)
            yield pending_record(started_at=T0)

    assert await bulk_insert(ledger, generate(), batch_size=2) == 5
    assert taken == [0, 1, 2, 3, 4]
    assert await bulk_insert(ledger, iter(())) == 0
    assert await pending_count(ledger) == 5


async def test_bulk_inserted_handoffs_follow_the_ledgers_rules_afterwards(ledger: Ledger) -> None:
    expired = records(3, deadline=T0 - 1)
    await bulk_insert(ledger, [*expired, *records(2)])
    claimed = await ledger.claim_expired(T0, limit=10, claimant="test", lease_seconds=60)
    assert {r.handoff_id for r in claimed} == {r.handoff_id for r in expired}
    done = await ledger.finish(expired[0].handoff_id, Outcome.COMPLETED, T0 + 1)
    assert done is not None
    assert await ledger.finish(expired[0].handoff_id, Outcome.FAILED, T0 + 2) is None
    assert await pending_count(ledger) == 4


async def test_a_token_recorded_already_stops_the_load_and_keeps_earlier_batches(
    ledger: Ledger,
) -> None:
    known = pending_record(started_at=T0)
    assert (await ledger.record(known)).created
    first_batch = records(2)
    failing_batch = [pending_record(started_at=T0), dataclasses.replace(known, handoff_id="ho_x")]
    with pytest.raises(LedgerError, match="stopped after 2 records") as raised:
        await bulk_insert(ledger, [*first_batch, *failing_batch, *records(2)], batch_size=2)
    assert "records 2 to 3 was not stored" in str(raised.value)
    assert await pending_count(ledger) == 3  # the known one and the first batch
    assert await ledger.get(failing_batch[0].handoff_id) is None
    assert await ledger.get("ho_x") is None
    assert await ledger.find_by_token(known.task_token) == known


async def test_a_token_repeated_in_one_batch_stores_nothing_of_it(ledger: Ledger) -> None:
    record = pending_record(started_at=T0)
    again = dataclasses.replace(pending_record(started_at=T0), task_token=record.task_token)
    with pytest.raises(LedgerError, match="stopped after 0 records"):
        await bulk_insert(ledger, [record, again])
    assert await pending_count(ledger) == 0


async def test_a_handoff_id_recorded_already_is_refused(ledger: Ledger) -> None:
    record = pending_record(started_at=T0)
    await bulk_insert(ledger, [record])
    with pytest.raises(LedgerError, match="stopped after 0 records"):
        await bulk_insert(
            ledger, [dataclasses.replace(pending_record(), handoff_id=record.handoff_id)]
        )
    assert await pending_count(ledger) == 1


async def test_a_finished_record_is_refused_before_its_batch_is_written(ledger: Ledger) -> None:
    finished = dataclasses.replace(
        pending_record(started_at=T0),
        state=State.FINISHED,
        outcome=Outcome.COMPLETED,
        finished_at=T0 + 1,
    )
    with pytest.raises(ValueError, match=r"stopped after 2 records: .* record 3"):
        await bulk_insert(ledger, [*records(3), finished], batch_size=2)
    assert await pending_count(ledger) == 2
    listed = await ledger.list_handoffs(HandoffQuery(state=State.FINISHED))
    assert listed == []


async def test_bulk_insert_refuses_what_is_not_a_record(ledger: Ledger) -> None:
    with pytest.raises(TypeError, match="record 0 is a str"):
        await bulk_insert(ledger, ["not a record"])  # type: ignore[list-item]


async def test_bulk_insert_refuses_a_batch_size_below_one(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await bulk_insert(ledger, records(1), batch_size=0)
    assert await pending_count(ledger) == 0


async def test_bulk_insert_needs_an_open_ledger(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="not open"):
        await bulk_insert(SqliteLedger(tmp_path / "closed.db"), records(1))
    with pytest.raises(LedgerError, match="not open"):
        await bulk_insert(MemoryLedger(), records(1))


async def test_bulk_insert_refuses_what_is_not_one_of_the_three_backends() -> None:
    with pytest.raises(TypeError, match=r"bulk insert needs one of .* not object"):
        await bulk_insert(object(), records(1))  # type: ignore[arg-type]
