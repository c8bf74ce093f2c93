"""The handshake end to end against a real Temporal dev server: record, complete, count."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from handshake_obs import (
    ActivityAlreadyClosedError,
    HandoffAlreadyFinishedError,
    Handshake,
    InvalidTaskTokenError,
    Outcome,
    State,
    UnknownHandoffError,
)

from .conftest import StartWorkflow
from .support.activities import EXTERNAL
from .support.ledger_inspection import count_outcomes
from .support.waiting import assert_eventually


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_explicit_handoff_completed_by_id_reaches_workflow_and_is_counted(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent", payload="hi")
    delivery = await EXTERNAL.receive(handle.id)
    assert delivery.handoff is not None
    record = await handshake.ledger.get(delivery.handoff.handoff_id)
    assert record is not None
    assert record.state is State.PENDING
    assert record.workflow_id == handle.id
    assert record.target == "agent"
    assert record.deadline is not None
    assert record.started_at < record.deadline <= record.started_at + 60

    await handshake.completer(client).complete(delivery.handoff.handoff_id, {"answer": 42})

    assert await handle.result() == {"result": {"answer": 42}}
    record = await handshake.ledger.get(delivery.handoff.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.COMPLETED
    assert sample(registry, "handshake_handoffs_started_total", target="agent") == 1
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="agent", outcome="completed")
        == 1
    )
    assert (
        sample(
            registry,
            "handshake_completion_latency_seconds_count",
            target="agent",
            outcome="completed",
        )
        == 1
    )
    assert (
        sample(registry, "handshake_completion_rpc_duration_seconds_count", operation="complete")
        == 1
    )


async def test_failure_with_custom_error_type_reaches_the_workflow_as_that_type(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="approval")
    delivery = await EXTERNAL.receive(handle.id)
    assert delivery.handoff is not None

    await handshake.completer(client).fail(
        delivery.handoff.handoff_id,
        error_type="ApprovalRejected",
        message="rejected by alice",
        details=[{"reviewer": "alice"}],
        non_retryable=True,
    )

    result = await handle.result()
    assert result["error_type"] == "ApprovalRejected"
    assert result["message"] == "rejected by alice"
    assert result["details"] == [{"reviewer": "alice"}]
    record = await handshake.ledger.get(delivery.handoff.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert record.error_type == "ApprovalRejected"
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="approval", outcome="failed")
        == 1
    )


async def test_heartbeat_keeps_latest_progress_and_ignores_out_of_order_reports(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent", heartbeat_timeout_seconds=30)
    delivery = await EXTERNAL.receive(handle.id)
    assert delivery.handoff is not None
    handoff_id = delivery.handoff.handoff_id
    completer = handshake.completer(client)

    first = await completer.heartbeat(handoff_id, {"percent": 10}, sequence=1)
    third = await completer.heartbeat(handoff_id, {"percent": 60}, sequence=3)
    late = await completer.heartbeat(handoff_id, {"percent": 30}, sequence=2)
    unnumbered = await completer.heartbeat(handoff_id, {"percent": 80})

    assert first is not None
    assert first.accepted
    assert third is not None
    assert third.accepted
    assert late is not None
    assert not late.accepted
    assert late.sequence == 3
    assert unnumbered is not None
    assert unnumbered.accepted
    assert unnumbered.sequence == 4
    record = await handshake.ledger.get(handoff_id)
    assert record is not None
    assert record.progress == {"percent": 80}
    assert record.progress_sequence == 4
    assert record.is_pending
    description = await handle.describe()
    assert description.raw_description.pending_activities[0].heartbeat_details.payloads
    await completer.complete(handoff_id, "done")
    assert await handle.result() == {"result": "done"}


async def test_double_completion_records_one_outcome_and_counts_once(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent")
    delivery = await EXTERNAL.receive(handle.id)
    assert delivery.handoff is not None
    completer = handshake.completer(client)

    await completer.complete(delivery.handoff.handoff_id, "first")
    with pytest.raises(HandoffAlreadyFinishedError):
        await completer.complete(delivery.handoff.handoff_id, "second")
    # A plain handle on the same token asks Temporal, which says the activity is closed.
    with pytest.raises(RPCError) as raised:
        await client.get_async_activity_handle(task_token=delivery.task_token).complete("third")
    assert raised.value.status == RPCStatusCode.NOT_FOUND

    assert await handle.result() == {"result": "first"}
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="agent", outcome="completed")
        == 1
    )
    assert (
        sample(
            registry, "handshake_handoffs_finished_total", target="agent", outcome="already_closed"
        )
        == 0
    )
    assert (
        sample(
            registry,
            "handshake_completion_errors_total",
            target="agent",
            error_type="already_finished",
        )
        == 1
    )
    assert (
        sample(
            registry,
            "handshake_completion_errors_total",
            target="agent",
            error_type="already_closed",
        )
        == 1
    )


async def test_concurrent_duplicate_completions_record_the_winner(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent")
    delivery = await EXTERNAL.receive(handle.id)
    handles = [client.get_async_activity_handle(task_token=delivery.task_token) for _ in range(5)]

    results = await asyncio.gather(
        *(h.complete(n) for n, h in enumerate(handles)), return_exceptions=True
    )

    winners = [r for r in results if r is None]
    assert len(winners) == 1
    assert all(
        isinstance(r, RPCError) and r.status == RPCStatusCode.NOT_FOUND
        for r in results
        if r is not None
    )
    assert delivery.handoff is not None
    record = await handshake.ledger.get(delivery.handoff.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.COMPLETED
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="agent", outcome="completed")
        == 1
    )
    assert (
        sample(
            registry, "handshake_handoffs_finished_total", target="agent", outcome="already_closed"
        )
        == 0
    )
    assert (await handle.result())["result"] in range(5)


async def test_garbage_token_is_an_invalid_token_error(
    handshake: Handshake, client: Client, registry: CollectorRegistry
) -> None:
    with pytest.raises(InvalidTaskTokenError):
        await handshake.completer(client).complete(b"\x00not-a-task-token\xff", "x")
    assert (
        sample(
            registry,
            "handshake_completion_errors_total",
            target="other",
            error_type="invalid_token",
        )
        == 1
    )


async def test_unknown_handoff_id_is_refused_without_a_temporal_call(
    handshake: Handshake, client: Client, registry: CollectorRegistry
) -> None:
    with pytest.raises(UnknownHandoffError):
        await handshake.completer(client).complete("ho_doesnotexistdoesnotexist", "x")
    assert (
        sample(registry, "handshake_completion_rpc_duration_seconds_count", operation="complete")
        == 0
    )


async def test_plain_activity_is_recorded_by_the_interceptor_and_plain_handle_is_observed(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_plain")
    delivery = await EXTERNAL.receive(handle.id)

    async def recorded() -> Any:
        record = await handshake.ledger.find_by_token(delivery.task_token)
        assert record is not None
        return record

    record = await assert_eventually(recorded)
    assert record.target == "default"
    assert record.activity_type == "hand_off_plain"

    await client.get_async_activity_handle(task_token=delivery.task_token).complete("ok")

    assert await handle.result() == {"result": "ok"}
    finished = await handshake.ledger.get(record.handoff_id)
    assert finished is not None
    assert finished.outcome is Outcome.COMPLETED
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="default", outcome="completed")
        == 1
    )


async def test_completion_before_its_record_is_reconciled_not_lost_nor_double_counted(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_plain", extra={"wait_for_completion": True})
    delivery = await EXTERNAL.receive(handle.id)
    # The activity is still running: Temporal accepts the completion, the ledger has no row.
    await client.get_async_activity_handle(task_token=delivery.task_token).complete("early")
    assert await handshake.ledger.find_by_token(delivery.task_token) is None
    EXTERNAL.completed[handle.id].set()

    async def reconciled() -> Any:
        record = await handshake.ledger.find_by_token(delivery.task_token)
        assert record is not None
        assert record.outcome is Outcome.COMPLETED
        return record

    await assert_eventually(reconciled)
    assert await handle.result() == {"result": "early"}
    assert sample(registry, "handshake_handoffs_started_total", target="default") == 1
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="default", outcome="completed")
        == 1
    )


async def test_retried_activity_supersedes_the_stale_token(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow(
        "hand_off_explicit", target="agent", start_to_close_seconds=2, max_attempts=2
    )
    first = await EXTERNAL.receive(handle.id)
    second = await EXTERNAL.receive(handle.id)  # attempt 1 timed out; Temporal retried
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.handoff is not None
    assert second.handoff is not None
    completer = handshake.completer(client)

    stale = await handshake.ledger.get(first.handoff.handoff_id)
    assert stale is not None
    assert stale.outcome is Outcome.ALREADY_CLOSED
    assert stale.error_type == "superseded"
    with pytest.raises(HandoffAlreadyFinishedError):
        await completer.complete(first.handoff.handoff_id, "stale")
    with pytest.raises(HandoffAlreadyFinishedError) as by_token:
        await completer.complete(first.task_token, "stale by token")
    assert by_token.value.outcome == "already_closed"
    with pytest.raises(RPCError) as plain:
        await client.get_async_activity_handle(task_token=first.task_token).complete("stale")
    assert plain.value.status == RPCStatusCode.NOT_FOUND
    await completer.complete(second.handoff.handoff_id, "fresh")

    assert await handle.result() == {"result": "fresh"}
    assert sample(registry, "handshake_handoffs_started_total", target="agent") == 2
    assert (
        sample(
            registry, "handshake_handoffs_finished_total", target="agent", outcome="already_closed"
        )
        == 1
    )
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="agent", outcome="completed")
        == 1
    )


async def test_body_raising_aborts_the_handoff_and_fails_the_attempt(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow(
        "hand_off_explicit", target="agent", extra={"raise_before_release": True}
    )
    result = await handle.result()
    assert result["error_type"] == "RuntimeError"
    counts = {(c.target, c.outcome): c.count for c in await count_outcomes(handshake.ledger)}
    assert counts == {("agent", "aborted"): 1}
    assert (
        sample(registry, "handshake_handoffs_finished_total", target="agent", outcome="aborted")
        == 1
    )


async def test_ordinary_activity_leaves_no_record_and_no_metric(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("plain_result", payload="x")
    assert await handle.result() == {"result": {"echo": "x"}}
    assert await count_outcomes(handshake.ledger) == []
    for target in ("default", "agent", "other"):
        assert sample(registry, "handshake_handoffs_started_total", target=target) == 0


async def test_completing_a_timed_out_activity_records_already_closed(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent", start_to_close_seconds=1)
    delivery = await EXTERNAL.receive(handle.id)
    assert delivery.handoff is not None
    assert (await handle.result())["error_type"] == "TimeoutError"

    with pytest.raises(ActivityAlreadyClosedError):
        await handshake.completer(client).complete(delivery.handoff.handoff_id, "too late")

    record = await handshake.ledger.get(delivery.handoff.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.ALREADY_CLOSED
    assert (
        sample(
            registry, "handshake_handoffs_finished_total", target="agent", outcome="already_closed"
        )
        == 1
    )
    assert (
        sample(
            registry,
            "handshake_completion_errors_total",
            target="agent",
            error_type="already_closed",
        )
        == 1
    )
