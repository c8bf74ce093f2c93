"""A workflow's cancellation reaches whoever holds the handoff: the Completer, a plain handle,
and an HTTP-only external system through the sidecar, against a real dev server.

The workflow cancels while its activity is handed off; the next heartbeat tells the caller
(``cancel_requested``, a 200 over HTTP: it used to be a plain-text 500), the caller reports
the cancellation, the handoff ends ``canceled`` in the ledger and the metrics, and the
workflow's history shows ``ActivityTaskCanceled`` (not a reap, not ``HandoffDeadlineExceeded``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import AsyncActivityCancelledError, Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import Handshake, Outcome

from .conftest import StartWorkflow
from .support.activities import EXTERNAL
from .support.ledger_inspection import side_tables
from .support.sidecar import ExternalReceiver, Sidecar, running_sidecar
from .support.waiting import assert_eventually
from .support.workflows import SidecarCall, SidecarWorkflow


async def cancel_requested(handle: WorkflowHandle[Any, Any]) -> None:
    (activity,) = (await handle.describe()).raw_description.pending_activities
    assert activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED


async def history_events(handle: WorkflowHandle[Any, Any]) -> list[int]:
    return [event.event_type async for event in handle.fetch_history_events()]


def finished(registry: CollectorRegistry, outcome: str, target: str) -> float:
    labels = {"target": target, "outcome": outcome}
    return registry.get_sample_value("handshake_handoffs_finished_total", labels) or 0.0


# -- the library ----------------------------------------------------------------------------


async def test_completer_heartbeat_says_cancel_requested_and_the_report_cancels(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent")
    delivery = await EXTERNAL.receive(handle.id, timeout=60)
    assert delivery.handoff is not None
    handoff_id = delivery.handoff.handoff_id
    completer = handshake.completer(client)

    before = await completer.heartbeat(handoff_id, {"step": 1})
    await handle.cancel()
    await assert_eventually(lambda: cancel_requested(handle))
    told = await completer.heartbeat(handoff_id, {"step": 2})  # raised the SDK's error before

    assert before is not None
    assert before.cancel_requested is False
    assert told is not None
    assert told.cancel_requested is True
    assert told.accepted
    await marks_ended(handshake)

    await completer.report_cancellation(handoff_id)
    result = await handle.result()

    assert result["error_type"] == "CancelledError"
    stored = await handshake.ledger.get(handoff_id)
    assert stored is not None
    assert stored.outcome is Outcome.CANCELED
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED in await history_events(handle)
    assert finished(registry, "canceled", "agent") == 1


async def test_a_plain_handle_keeps_the_sdk_error_and_leaves_no_in_flight_mark(
    handshake: Handshake, client: Client, worker: Worker, start_workflow: StartWorkflow
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent")
    delivery = await EXTERNAL.receive(handle.id, timeout=60)
    await handle.cancel()
    await assert_eventually(lambda: cancel_requested(handle))
    plain = client.get_async_activity_handle(task_token=delivery.task_token)

    with pytest.raises(AsyncActivityCancelledError):
        await plain.heartbeat({"step": 1})

    await marks_ended(handshake)
    await plain.report_cancellation()
    assert (await handle.result())["error_type"] == "CancelledError"


# -- an HTTP-only external system -----------------------------------------------------------


@pytest.fixture
async def sidecar(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> AsyncIterator[Sidecar]:
    async with running_sidecar(
        tmp_path, temporal_address, targets={"billing": receiver.url}
    ) as running:
        yield running


async def metric(sidecar: Sidecar, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    async with sidecar.client(None) as http:
        text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_http_heartbeat_says_cancel_requested_and_post_cancel_cancels_the_workflow(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    handle = await plain_client.start_workflow(
        SidecarWorkflow.run,
        SidecarCall(
            activity="handshake.http_handoff",
            task_queue=sidecar.task_queue,
            argument={"target": "billing"},
            wait_for_cancellation=True,
        ),
        id=f"cancel-{uuid.uuid4()}",
        task_queue=workflows,
    )
    handoff_id = (await receiver.receive()).body["handoff_id"]
    async with sidecar.client() as http:
        calm = await http.post(f"/v1/handoffs/{handoff_id}/heartbeat", json={"progress": 1})
        await handle.cancel()
        await assert_eventually(lambda: cancel_requested(handle))
        told = await http.post(f"/v1/handoffs/{handoff_id}/heartbeat", json={"progress": 2})
        cancelled = await http.post(
            f"/v1/handoffs/{handoff_id}/cancel", json={"details": ["stopped at step 2"]}
        )
        again = await http.post(f"/v1/handoffs/{handoff_id}/cancel", json={})

    assert calm.status_code == 200, calm.text
    assert calm.json()["cancel_requested"] is False
    assert told.status_code == 200, told.text  # a plain-text 500 before
    assert told.json()["cancel_requested"] is True
    assert told.json()["heartbeat"] == {"accepted": True, "sequence": 2}
    assert told.json()["handoff"]["state"] == "pending"
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["handoff"]["outcome"] == "canceled"
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_finished"

    result = await handle.result()
    assert result["error_type"] == "CancelledError"  # not HandoffDeadlineExceeded
    events = await history_events(handle)
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED in events
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED in events
    assert (
        await metric(
            sidecar, "handshake_handoffs_finished_total", target="billing", outcome="canceled"
        )
        == 1
    )
    assert (
        await metric(
            sidecar, "handshake_handoffs_finished_total", target="billing", outcome="reaped"
        )
        == 0
    )


async def marks_ended(handshake: Handshake) -> None:
    """No in-flight mark is left: a heartbeat's ends in the background (it never waits on
    the ledger), within moments."""

    async def none_left() -> None:
        assert (await side_tables(handshake.ledger)).calls_in_flight == frozenset()

    await assert_eventually(none_left, timeout=5, interval=0.1)
