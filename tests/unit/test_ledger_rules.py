"""The ledger's rules, branch by branch, on the in-memory ledger (no file, no server).

The rules are written once (``handshake_obs.ledger._rules``) and run by every backend; the
contract suite (``tests/test_ledger_contract.py``) shows that SQLite and PostgreSQL execute
them as the in-memory ledger does. Side tables are read through the test support's direct
look inside the store, never through the ledger's interface.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

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
from handshake_obs._vocabulary import CloseReason
from handshake_obs.ledger import MemoryLedger, ledger_from_url
from handshake_obs.ledger._rules import (
    MAX_ERROR_MESSAGE,
    EarlyOutcome,
    EndCall,
    InsertHandoff,
    KeepEarlyOutcome,
    LockToken,
    MarkCall,
    Program,
    ask,
    check_schema_version,
    programs,
)
from handshake_obs.ledger.memory import MemoryTables

from ..support.ledger_inspection import OutcomeCount, count_outcomes, side_tables

T0 = 1_800_000_000.0


def make_record(
    *,
    workflow_id: str = "wf",
    run_id: str = "run-1",
    activity_id: str = "1",
    attempt: int = 1,
    namespace: str = "default",
    started_at: float = T0,
    deadline: float | None = T0 + 3600,
    task_token: bytes | None = None,
) -> HandoffRecord:
    token = task_token if task_token is not None else secrets.token_bytes(32)
    return HandoffRecord(
        handoff_id=new_handoff_id(),
        task_token=token,
        token_fingerprint=token_fingerprint(token),
        namespace=namespace,
        workflow_id=workflow_id,
        run_id=run_id,
        activity_id=activity_id,
        activity_type="hand_off",
        attempt=attempt,
        target="agent",
        started_at=started_at,
        deadline=deadline,
    )


@pytest.fixture
async def ledger() -> AsyncIterator[MemoryLedger]:
    async with MemoryLedger() as opened:
        assert isinstance(opened, MemoryLedger)
        yield opened


async def marks_of(ledger: MemoryLedger, handoff_id: str) -> set[str]:
    return (await side_tables(ledger)).marks_of(handoff_id)


# -- supersede --------------------------------------------------------------------------------


async def test_a_new_attempt_finishes_older_pending_attempts_as_superseded(
    ledger: MemoryLedger,
) -> None:
    first = make_record(attempt=1, started_at=T0)
    second = make_record(attempt=2, started_at=T0 + 5)
    for record in (first, second):
        await ledger.record(record)
    # second superseded first already; put a mark on second, then a third attempt arrives
    await ledger.begin_call(second.handoff_id, until=T0 + 100)
    third = make_record(attempt=3, started_at=T0 + 20)

    result = await ledger.record(third)

    (done,) = result.superseded
    assert done.record.handoff_id == second.handoff_id
    assert done.outcome is Outcome.ALREADY_CLOSED
    assert done.finished_at == T0 + 20
    assert done.record.error_type == CloseReason.SUPERSEDED
    assert done.record.error_message == "superseded by attempt 3"
    assert await marks_of(ledger, second.handoff_id) == set()
    stored = await ledger.get(third.handoff_id)
    assert stored is not None
    assert stored.is_pending


async def test_supersede_finishes_several_older_attempts_lowest_attempt_first(
    ledger: MemoryLedger,
) -> None:
    # Recorded newest first, so no attempt supersedes another until the fourth.
    older = [make_record(attempt=n, started_at=T0 + n) for n in (3, 2, 1)]
    for record in older:
        await ledger.record(record)

    result = await ledger.record(make_record(attempt=4, started_at=T0 + 10))

    assert [d.record.attempt for d in result.superseded] == [1, 2, 3]


async def test_supersede_spares_other_activities_runs_namespaces_and_newer_attempts(
    ledger: MemoryLedger,
) -> None:
    spared = [
        make_record(activity_id="2", attempt=1),
        make_record(run_id="run-2", attempt=1),
        make_record(namespace="other", attempt=1),
        make_record(workflow_id="wf-2", attempt=1),
        make_record(attempt=5),  # a newer attempt, recorded before
    ]
    for record in spared:
        await ledger.record(record)

    result = await ledger.record(make_record(attempt=2))

    assert result.superseded == ()
    for record in spared:
        stored = await ledger.get(record.handoff_id)
        assert stored is not None
        assert stored.is_pending


async def test_supersede_leaves_finished_attempts_as_they_finished(ledger: MemoryLedger) -> None:
    first = make_record(attempt=1)
    await ledger.record(first)
    await ledger.finish(first.handoff_id, Outcome.COMPLETED, T0 + 1)

    result = await ledger.record(make_record(attempt=2, started_at=T0 + 5))

    assert result.superseded == ()
    stored = await ledger.get(first.handoff_id)
    assert stored is not None
    assert stored.outcome is Outcome.COMPLETED


# -- recording --------------------------------------------------------------------------------


async def test_recording_a_known_token_changes_nothing(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record(record)
    again = make_record(task_token=record.task_token, attempt=9)

    result = await ledger.record(again)

    assert result.created is False
    assert result.record == record
    assert result.superseded == ()
    assert await ledger.get(again.handoff_id) is None


def test_the_record_rule_locks_the_token_before_it_inserts() -> None:
    """Driven by hand, as a backend does: the steps come out in order, answers go in."""
    record = make_record()
    program = programs.record(record)

    first = program.send(None)
    second = program.send(None)

    assert first == LockToken(token_digest(record.task_token))
    assert isinstance(second, InsertHandoff)
    assert second.record == record


# -- progress ---------------------------------------------------------------------------------


async def test_heartbeat_without_a_sequence_numbers_the_report_next(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record(record)

    first = await ledger.heartbeat(record.handoff_id, {"p": 1}, None, T0 + 1)
    second = await ledger.heartbeat(record.handoff_id, {"p": 2}, None, T0 + 2)

    assert (first.accepted, first.sequence) == (True, 1)
    assert (second.accepted, second.sequence) == (True, 2)


async def test_heartbeat_with_an_older_or_equal_sequence_is_ignored(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.heartbeat(record.handoff_id, {"p": "kept"}, 7, T0 + 1)

    older = await ledger.heartbeat(record.handoff_id, {"p": "older"}, 6, T0 + 2)
    equal = await ledger.heartbeat(record.handoff_id, {"p": "equal"}, 7, T0 + 3)

    assert (older.accepted, older.sequence) == (False, 7)
    assert (equal.accepted, equal.sequence) == (False, 7)
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert (stored.progress, stored.progress_sequence, stored.progress_at) == (
        {"p": "kept"},
        7,
        T0 + 1,
    )


async def test_heartbeat_with_a_newer_sequence_is_kept_even_after_a_gap(
    ledger: MemoryLedger,
) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.heartbeat(record.handoff_id, {"p": 1}, None, T0 + 1)

    jump = await ledger.heartbeat(record.handoff_id, {"p": 10}, 10, T0 + 2)
    following = await ledger.heartbeat(record.handoff_id, ("not", "json", {1}), None, T0 + 3)

    assert (jump.accepted, jump.sequence) == (True, 10)
    assert (following.accepted, following.sequence) == (True, 11)
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.progress == ["not", "json", "{1}"]  # stored as the SQL ledgers store it


async def test_heartbeat_of_an_unknown_handoff_is_refused(ledger: MemoryLedger) -> None:
    with pytest.raises(UnknownHandoffError):
        await ledger.heartbeat("ho_unknown", {}, None, T0)


# -- deadlines --------------------------------------------------------------------------------


async def test_extend_deadline_moves_a_pending_deadline_either_way(ledger: MemoryLedger) -> None:
    record = make_record(deadline=T0 + 100)
    await ledger.record(record)

    later = await ledger.extend_deadline(record.handoff_id, T0 + 500)
    earlier = await ledger.extend_deadline(record.handoff_id, T0 + 10)

    assert (later.deadline, earlier.deadline) == (T0 + 500, T0 + 10)
    assert await ledger.get(record.handoff_id) == earlier


async def test_extend_deadline_of_an_unknown_handoff_is_refused(ledger: MemoryLedger) -> None:
    with pytest.raises(UnknownHandoffError):
        await ledger.extend_deadline("ho_unknown", T0)


async def test_extend_deadline_of_a_finished_handoff_is_refused_with_its_outcome(
    ledger: MemoryLedger,
) -> None:
    record = make_record(deadline=T0 + 100)
    await ledger.record(record)
    await ledger.finish(record.handoff_id, Outcome.REAPED, T0 + 101)

    with pytest.raises(HandoffAlreadyFinishedError) as refused:
        await ledger.extend_deadline(record.handoff_id, T0 + 500)

    assert refused.value.outcome == "reaped"
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.deadline == T0 + 100


# -- schema versions --------------------------------------------------------------------------


@pytest.mark.parametrize("found", [0, 2, 3])
def test_a_schema_version_up_to_the_known_one_opens(found: int) -> None:
    check_schema_version(found, 3)


def test_a_schema_version_newer_than_the_known_one_is_refused() -> None:
    with pytest.raises(LedgerError, match="newer"):
        check_schema_version(4, 3)


# -- early outcomes ---------------------------------------------------------------------------


async def test_an_outcome_for_an_unrecorded_token_is_kept_and_not_counted(
    ledger: MemoryLedger,
) -> None:
    token = secrets.token_bytes(32)

    kept = await ledger.record_early_outcome(token, Outcome.FAILED, T0, error_type="Nope")

    assert kept is None
    assert await count_outcomes(ledger) == []
    assert (await side_tables(ledger)).early_outcomes == {token_digest(token)}


async def test_a_kept_already_closed_gives_way_to_a_later_outcome(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record_early_outcome(record.task_token, Outcome.ALREADY_CLOSED, T0 + 1)
    await ledger.record_early_outcome(record.task_token, Outcome.ALREADY_CLOSED, T0 + 2)
    await ledger.record_early_outcome(record.task_token, Outcome.CANCELED, T0 + 3)

    result = await ledger.record(record)

    assert result.reconciled is not None
    assert (result.reconciled.outcome, result.reconciled.finished_at) == (
        Outcome.CANCELED,
        T0 + 3,
    )


@pytest.mark.parametrize("later", [Outcome.ALREADY_CLOSED, Outcome.FAILED])
async def test_a_kept_real_outcome_is_not_replaced(ledger: MemoryLedger, later: Outcome) -> None:
    record = make_record()
    await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 1)
    await ledger.record_early_outcome(record.task_token, later, T0 + 2)

    result = await ledger.record(record)

    assert result.reconciled is not None
    assert (result.reconciled.outcome, result.reconciled.finished_at) == (
        Outcome.COMPLETED,
        T0 + 1,
    )


async def test_a_kept_outcome_is_applied_when_recorded_and_its_row_removed(
    ledger: MemoryLedger,
) -> None:
    record = make_record(started_at=T0)
    await ledger.record_early_outcome(
        record.task_token, Outcome.FAILED, T0 - 5, error_type="E", error_message="m"
    )

    result = await ledger.record(record)

    assert result.created is True
    assert result.reconciled is not None
    assert result.reconciled.finished_at == T0  # never before the handoff started
    assert result.record.state is State.FINISHED
    assert (result.record.error_type, result.record.error_message) == ("E", "m")
    assert result.record == await ledger.get(record.handoff_id)
    assert (await side_tables(ledger)).early_outcomes == frozenset()
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "failed", 1)]


async def test_an_outcome_for_a_recorded_token_finishes_its_handoff_at_once(
    ledger: MemoryLedger,
) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)

    done = await ledger.record_early_outcome(record.task_token, Outcome.COMPLETED, T0 + 1)
    again = await ledger.record_early_outcome(record.task_token, Outcome.FAILED, T0 + 2)

    assert done is not None
    assert done.outcome is Outcome.COMPLETED
    assert again is None  # finished already: nothing changes, nothing is kept
    tables = await side_tables(ledger)
    assert tables.early_outcomes == frozenset()
    assert tables.marks_of(record.handoff_id) == set()


# -- in-flight marks --------------------------------------------------------------------------


async def test_not_found_does_not_close_while_another_calls_mark_is_live(
    ledger: MemoryLedger,
) -> None:
    record = make_record()
    await ledger.record(record)
    lost = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    running = await ledger.begin_call(record.handoff_id, until=T0 + 30)

    assert await ledger.finish_closed(record.handoff_id, T0 + 10, call_id=lost) is None

    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending
    assert await marks_of(ledger, record.handoff_id) == {running}


async def test_not_found_closes_once_the_other_mark_has_lapsed(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)  # lapses at T0 + 30 exactly

    closed = await ledger.finish_closed(record.handoff_id, T0 + 30)

    assert closed is not None
    assert closed.outcome is Outcome.ALREADY_CLOSED
    assert closed.record.error_type == CloseReason.NOT_FOUND
    assert closed.finished_at == T0 + 30
    assert await marks_of(ledger, record.handoff_id) == set()


async def test_not_found_without_other_calls_closes(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record(record)
    mine = await ledger.begin_call(record.handoff_id, until=T0 + 30)

    closed = await ledger.finish_closed(record.handoff_id, T0 + 1, call_id=mine)

    assert closed is not None
    assert await ledger.finish_closed(record.handoff_id, T0 + 2) is None  # closed already
    assert await ledger.finish_closed("ho_unknown", T0) is None


async def test_finishing_removes_every_mark_and_ends_the_finishing_call(
    ledger: MemoryLedger,
) -> None:
    record = make_record()
    await ledger.record(record)
    mine = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    await ledger.begin_call(record.handoff_id, until=T0 + 30)

    done = await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1, ends_call=mine)
    late = await ledger.finish(record.handoff_id, Outcome.FAILED, T0 + 2, ends_call=mine)

    assert done is not None
    assert late is None
    assert await marks_of(ledger, record.handoff_id) == set()


async def test_a_call_ending_without_an_outcome_removes_only_its_mark(
    ledger: MemoryLedger,
) -> None:
    record = make_record()
    await ledger.record(record)
    first = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    second = await ledger.begin_call(record.handoff_id, until=T0 + 30)

    await ledger.end_call(record.handoff_id, first)
    await ledger.end_call(record.handoff_id, first)  # twice: nothing more

    assert await marks_of(ledger, record.handoff_id) == {second}
    await ledger.end_call(record.handoff_id, second)
    assert (await side_tables(ledger)).calls_in_flight == frozenset()


async def test_no_mark_is_kept_on_a_finished_or_unknown_handoff(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1)

    call_id = await ledger.begin_call(record.handoff_id, until=T0 + 30)
    await ledger.begin_call("ho_unknown", until=T0 + 30)

    assert call_id
    assert (await side_tables(ledger)).calls_in_flight == frozenset()


# -- finishing --------------------------------------------------------------------------------


async def test_only_the_first_finish_records_an_outcome(ledger: MemoryLedger) -> None:
    record = make_record()
    await ledger.record(record)

    first = await ledger.finish(record.handoff_id, Outcome.FAILED, T0 + 1, error_type="X")
    second = await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 2)

    assert first is not None
    assert first.latency_seconds == 1
    assert second is None
    assert await ledger.finish("ho_unknown", Outcome.COMPLETED, T0) is None
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "failed", 1)]


@pytest.mark.parametrize(
    ("length", "kept"),
    [(MAX_ERROR_MESSAGE, "x" * MAX_ERROR_MESSAGE), (MAX_ERROR_MESSAGE + 1, None)],
)
async def test_error_messages_are_cut_to_the_longest_kept(
    ledger: MemoryLedger, length: int, kept: str | None
) -> None:
    finished = make_record()
    early = make_record()
    await ledger.record(finished)

    done = await ledger.finish(
        finished.handoff_id, Outcome.FAILED, T0 + 1, error_message="x" * length
    )
    await ledger.record_early_outcome(
        early.task_token, Outcome.FAILED, T0 + 1, error_message="x" * length
    )
    applied = await ledger.record(early)

    expected = kept if kept is not None else "x" * (MAX_ERROR_MESSAGE - 1) + "…"
    assert done is not None
    assert done.record.error_message == expected
    assert applied.record.error_message == expected


# -- claims -----------------------------------------------------------------------------------


async def test_claims_take_expired_handoffs_oldest_deadline_first_for_a_lease(
    ledger: MemoryLedger,
) -> None:
    records = [make_record(deadline=T0 + d, workflow_id=f"wf-{d}") for d in (30, 10, 20, 99)]
    for record in records:
        await ledger.record(record)
    now = T0 + 50

    claimed = await ledger.claim_expired(now, limit=2, claimant="a", lease_seconds=5)
    held = await ledger.claim_expired(now + 4, limit=10, claimant="b", lease_seconds=5)
    await ledger.release_claim(claimed[0].handoff_id, "b")  # not b's claim: kept
    await ledger.release_claim(claimed[1].handoff_id, "a")
    retaken = await ledger.claim_expired(now + 4, limit=10, claimant="b", lease_seconds=5)
    after_lease = await ledger.claim_expired(now + 6, limit=10, claimant="c", lease_seconds=5)

    assert [r.deadline for r in claimed] == [T0 + 10, T0 + 20]
    assert [r.deadline for r in held] == [T0 + 30]
    assert [r.deadline for r in retaken] == [T0 + 20]
    assert [r.deadline for r in after_lease] == [T0 + 10]


# -- the in-memory ledger itself ------------------------------------------------------------


def _insert_then_fail(record: HandoffRecord) -> Program[None]:
    """A rule that writes, then raises: what a failing transaction looks like."""
    digest = token_digest(record.task_token)
    yield from ask(InsertHandoff(record, digest))
    yield from ask(MarkCall(record.handoff_id, "call", T0 + 30))
    yield from ask(EndCall(record.handoff_id, "other"))
    yield from ask(KeepEarlyOutcome(b"digest", EarlyOutcome(Outcome.COMPLETED, T0, None, None)))
    raise RuntimeError("the rule failed")


async def test_a_rule_that_raises_leaves_the_memory_tables_as_they_were(
    ledger: MemoryLedger,
) -> None:
    before = make_record()
    await ledger.record(before)
    await ledger.begin_call(before.handoff_id, until=T0 + 30)
    snapshot = await side_tables(ledger)

    record = make_record()
    with pytest.raises(RuntimeError):
        await ledger._run(lambda: _insert_then_fail(record))

    assert await side_tables(ledger) == snapshot
    assert await count_outcomes(ledger) == [OutcomeCount("agent", "pending", 1)]


async def test_memory_ledgers_given_the_same_tables_share_their_handoffs() -> None:
    tables = MemoryTables()
    record = make_record()
    async with MemoryLedger(tables) as writer, MemoryLedger(tables) as reader:
        await writer.record(record)
        assert await reader.find_by_token(record.task_token) == record


async def test_a_closed_memory_ledger_refuses_every_call() -> None:
    ledger = MemoryLedger()
    with pytest.raises(LedgerError, match="not open"):
        await ledger.record(make_record())
    await ledger.open()
    await ledger.close()
    with pytest.raises(LedgerError, match="not open"):
        await ledger.ping()


def test_the_memory_url_gives_a_fresh_memory_ledger_each_time() -> None:
    first = ledger_from_url("memory://")
    second = ledger_from_url("memory://")

    assert isinstance(first, MemoryLedger)
    assert isinstance(second, MemoryLedger)
    assert first is not second
    for invalid in ("memory://name", "memory:///x", "memory://?a=1"):
        with pytest.raises(ConfigurationError, match="memory://"):
            ledger_from_url(invalid)
