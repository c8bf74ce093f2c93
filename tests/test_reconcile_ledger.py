"""The reconciler's part of the ledger contract, on SQLite, PostgreSQL and memory: what a
record keeps for reconciling, due checks claimed with the reaper's claims, and a reconciled
close that gives way to a completion call in flight."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

from handshake_obs import HandoffRecord, Outcome, State
from handshake_obs._vocabulary import CloseReason
from handshake_obs.ledger import Ledger, SqliteLedger
from handshake_obs.ledger.sqlite._statements import SQL

from . import test_ledger_contract as contract
from .test_ledger_contract import HOUR, T0, Store, make_record

# The contract's fixtures: every backend, side tables checked after each test.
store = contract.store
ledger = contract.ledger

FIRST_CHECK = 5.0
LEASE = 60.0


async def claim(ledger: Ledger, now: float, claimant: str = "r1", limit: int = 100) -> set[str]:
    claimed = await ledger.claim_due_checks(
        now,
        first_check_before=now - FIRST_CHECK,
        limit=limit,
        claimant=claimant,
        lease_seconds=LEASE,
    )
    return {r.handoff_id for r in claimed}


async def test_the_record_keeps_the_activity_run_id_and_temporal_timeouts(ledger: Ledger) -> None:
    record = dataclasses.replace(
        make_record(run_id=""),
        workflow_id="",
        activity_run_id="0190-run",
        scheduled_at=T0 - 2,
        attempt_started_at=T0 - 1,
        schedule_to_close_timeout=600.0,
        start_to_close_timeout=30.0,
        heartbeat_timeout=10.0,
    )
    await ledger.record(record)
    stored = await ledger.get(record.handoff_id)
    assert stored == record
    assert stored is not None
    assert stored.is_standalone
    assert stored.temporal_closes_at == T0 - 1 + 30.0


async def test_young_handoffs_wait_for_their_first_check_then_are_claimed_once(
    ledger: Ledger,
) -> None:
    old = make_record(started_at=T0 - 60)
    young = make_record(started_at=T0 - 1)
    for r in (old, young):
        await ledger.record(r)

    assert await claim(ledger, T0) == {old.handoff_id}
    # Claimed: no other reconciler (nor reaper) takes it while the lease lasts.
    assert await claim(ledger, T0 + 1, "r2") == set()
    await ledger.schedule_check(old.handoff_id, T0 + 30, "r1")
    # The claim is given back, and the next check waits for its time.
    assert await claim(ledger, T0 + 3.5, "r2") == set()
    assert await claim(ledger, T0 + 4, "r2") == {young.handoff_id}
    assert await claim(ledger, T0 + 30, "r3") == {old.handoff_id}


async def test_the_most_overdue_check_comes_first(ledger: Ledger) -> None:
    records = [make_record(started_at=T0 - age) for age in (100, 300, 200)]
    for r in records:
        await ledger.record(r)
    await ledger.schedule_check(records[1].handoff_id, T0 - 10, "nobody")
    # Due at T0 - 195 (never checked, first check at age 5), T0 - 95, and T0 - 10.
    assert await claim(ledger, T0, limit=1) == {records[2].handoff_id}
    assert await claim(ledger, T0, limit=1) == {records[0].handoff_id}
    assert await claim(ledger, T0, limit=1) == {records[1].handoff_id}


async def test_claims_take_the_most_overdue_of_checked_and_unchecked_handoffs_in_turn(
    ledger: Ledger,
) -> None:
    # Never checked: due FIRST_CHECK after their start. Checked: due at their next check.
    unchecked = {T0 - 400: make_record(started_at=T0 - 400 - FIRST_CHECK)}
    unchecked |= {due: make_record(started_at=due - FIRST_CHECK) for due in (T0 - 250, T0 - 50)}
    checked = {due: make_record(started_at=T0 - 1000) for due in (T0 - 300, T0 - 200, T0 - 10)}
    not_due = make_record(started_at=T0 - 1000)
    held = make_record(started_at=T0 - 2000)  # the most overdue, under a reaper's claim
    for r in (*unchecked.values(), *checked.values(), not_due, held):
        await ledger.record(r)
    for due, r in checked.items():
        await ledger.schedule_check(r.handoff_id, due, "nobody")
    await ledger.schedule_check(not_due.handoff_id, T0 + 10, "nobody")
    await ledger.schedule_check(held.handoff_id, T0 - 2000, "nobody")
    # A reaper claims them all (every deadline has passed by then) and gives back all but one.
    reaped = await ledger.claim_expired(
        T0 + 2 * HOUR, limit=10, claimant="reaper", lease_seconds=LEASE
    )
    assert len(reaped) == 8
    for r in (*unchecked.values(), *checked.values(), not_due):
        await ledger.release_claim(r.handoff_id, "reaper")

    by_due = [r.handoff_id for _, r in sorted({**unchecked, **checked}.items())]
    assert await claim(ledger, T0, "r1", limit=2) == set(by_due[:2])
    assert await claim(ledger, T0, "r2", limit=3) == set(by_due[2:5])
    assert await claim(ledger, T0, "r3", limit=3) == set(by_due[5:])


async def test_a_sqlite_claim_reads_each_kind_of_due_check_from_the_index_in_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    async with SqliteLedger(path):
        pass
    conn = sqlite3.connect(path)
    try:
        params = ("r1", T0 + LEASE, T0, T0, 10, FIRST_CHECK, T0 - FIRST_CHECK, T0, 10, 10)
        plan = [
            str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {SQL.claim_checks}", params)
        ]
    finally:
        conn.close()
    # Never every pending row, and a sort only of what the two reads merge (at most twice
    # the limit): reading and sorting every due row took 37 to 65 ms at 200k pending.
    assert not [step for step in plan if step.startswith("SCAN handoffs")], plan
    assert len([step for step in plan if "INDEX handoffs_pending_next_check" in step]) == 2, plan
    assert plan.count("USE TEMP B-TREE FOR ORDER BY") == 1, plan


async def test_a_reapers_claim_keeps_the_reconciler_off_and_back(ledger: Ledger) -> None:
    expired = make_record(started_at=T0 - 60, deadline=T0 - 1)
    await ledger.record(expired)
    assert [r.handoff_id for r in await ledger.claim_expired(
        T0, limit=10, claimant="reaper", lease_seconds=LEASE
    )] == [expired.handoff_id]  # fmt: skip
    assert await claim(ledger, T0) == set()
    # The reconciler's claim keeps the reaper off in turn.
    assert await claim(ledger, T0 + LEASE + 1) == {expired.handoff_id}
    assert (
        await ledger.claim_expired(T0 + LEASE + 2, limit=10, claimant="reaper", lease_seconds=LEASE)
        == []
    )


async def test_a_reconciled_close_gives_way_to_a_call_in_flight(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    call = await ledger.begin_call(record.handoff_id, until=T0 + 30)

    assert await ledger.finish_reconciled(
        record.handoff_id, T0 + 1, reason=CloseReason.COMPLETED_ELSEWHERE
    ) is None  # fmt: skip
    still = await ledger.get(record.handoff_id)
    assert still is not None
    assert still.state is State.PENDING
    done = await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 2, ends_call=call)
    assert done is not None
    assert await ledger.finish_reconciled(
        record.handoff_id, T0 + 3, reason=CloseReason.COMPLETED_ELSEWHERE
    ) is None  # fmt: skip
    final = await ledger.get(record.handoff_id)
    assert final is not None
    assert final.outcome is Outcome.COMPLETED


async def test_a_reconciled_close_keeps_its_reason_and_detail(ledger: Ledger) -> None:
    record = make_record()
    await ledger.record(record)
    # A mark that lapsed (its caller died) holds nothing back.
    await ledger.begin_call(record.handoff_id, until=T0)
    done = await ledger.finish_reconciled(
        record.handoff_id, T0 + 1, reason=CloseReason.WORKFLOW_CLOSED, detail="terminated"
    )
    assert done is not None
    assert done.outcome is Outcome.ALREADY_CLOSED
    assert done.record.error_type == "workflow_closed"
    assert done.record.error_message == "terminated"
    assert await claim(ledger, T0 + 100) == set()  # finished: never checked again


async def test_replicas_claiming_together_split_the_due_checks(store: Store) -> None:
    records = [make_record(started_at=T0 - 60) for _ in range(120)]
    async with store.new() as first, store.new() as second:
        for r in records:
            await first.record(r)
        claims = await asyncio.gather(
            *(
                claim(replica, T0, f"r{n}", limit=20)
                for n in range(6)
                for replica in (first, second)
            )
        )
    seen: set[str] = set()
    for claimed in claims:
        assert not claimed & seen
        seen |= claimed
    assert seen == {r.handoff_id for r in records}


async def test_a_standalone_activity_is_found_by_its_activity_id_and_run_id(
    ledger: Ledger,
) -> None:
    def standalone(run: str, attempt: int, started_at: float) -> HandoffRecord:
        return dataclasses.replace(
            make_record(activity_id="sa-1", attempt=attempt, started_at=started_at, run_id=run),
            workflow_id="",
            activity_run_id=run,
        )

    first, retried, other_run = (
        standalone("r1", 1, T0),
        standalone("r1", 2, T0 + 5),
        standalone("r2", 1, T0 + 10),
    )
    for r in (first, retried, other_run):
        await ledger.record(r)
    of_workflow = make_record(activity_id="sa-1")
    await ledger.record(of_workflow)

    found = await ledger.find_standalone("default", "sa-1", "r1")
    assert found is not None
    assert found.handoff_id == retried.handoff_id
    newest = await ledger.find_standalone(None, "sa-1", None)
    assert newest is not None
    assert newest.handoff_id == other_run.handoff_id
    assert await ledger.find_standalone(None, "sa-2", None) is None
    assert await ledger.find_standalone("elsewhere", "sa-1", "r1") is None
