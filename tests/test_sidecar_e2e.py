"""The sidecar end to end, as a separate process: a workflow hands off over HTTP, a plain HTTP
client (as a non-Python service would) completes it through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client, WorkflowHandle

from .support.otlp_receiver import OtlpReceiver
from .support.sidecar import ExternalReceiver, Sidecar, running_sidecar
from .support.waiting import assert_eventually
from .support.workflows import SidecarCall, SidecarWorkflow


@pytest.fixture
async def sidecar(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> AsyncIterator[Sidecar]:
    async with running_sidecar(
        tmp_path, temporal_address, targets={"billing": receiver.url}
    ) as running:
        yield running


async def start(
    client: Client,
    workflows: str,
    sidecar: Sidecar,
    activity: str,
    argument: dict[str, Any],
    *,
    start_to_close_seconds: float = 120.0,
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        SidecarWorkflow.run,
        SidecarCall(
            activity=activity,
            task_queue=sidecar.task_queue,
            argument=argument,
            start_to_close_seconds=start_to_close_seconds,
        ),
        id=f"e2e-{uuid.uuid4()}",
        task_queue=workflows,
    )


async def metric(sidecar: Sidecar, name: str, **labels: str) -> float:
    async with sidecar.client(None) as http:
        text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_http_handoff_completed_through_the_gateway_reaches_the_workflow(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    handle = await start(
        plain_client, workflows, sidecar, "handshake.http_handoff",
        {"target": "billing", "payload": {"invoice": 7}},
    )  # fmt: skip
    delivery = await receiver.receive()
    body = delivery.body
    assert body["payload"] == {"invoice": 7}
    assert body["workflow_id"] == handle.id
    assert body["callback_url"] == f"{sidecar.url}/v1/handoffs/{body['handoff_id']}"
    assert "task_token" not in body

    async with sidecar.client() as http:
        pending = (await http.get(f"/v1/handoffs/{body['handoff_id']}")).json()
        assert pending["state"] == "pending"
        assert pending["target"] == "billing"
        response = await http.post(f"{body['callback_url']}/complete", json={"result": "paid"})
    assert response.status_code == 200, response.text
    assert response.json()["handoff"]["outcome"] == "completed"

    assert await handle.result() == {"result": "paid"}
    async with sidecar.client() as http:
        record = (await http.get(f"/v1/handoffs/{body['handoff_id']}")).json()
    assert record["outcome"] == "completed"
    assert record["links"]["temporal_ui"].endswith(
        f"/workflows/{handle.id}/{record['run_id']}/history"
    )
    assert (
        await metric(
            sidecar, "handshake_handoffs_finished_total", target="billing", outcome="completed"
        )
        == 1
    )
    assert await metric(sidecar, "handshake_handoffs_started_total", target="billing") == 1


async def test_fail_heartbeat_and_extend_through_the_gateway(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    # Temporal's own timeout (3 h) leaves room to extend by 2 h.
    handle = await start(
        plain_client,
        workflows,
        sidecar,
        "handshake.http_handoff",
        {"target": "billing"},
        start_to_close_seconds=3 * 3600,
    )
    handoff_id = (await receiver.receive()).body["handoff_id"]
    async with sidecar.client() as http:
        beat = await http.post(
            f"/v1/handoffs/{handoff_id}/heartbeat", json={"progress": {"step": 2}, "sequence": 2}
        )
        assert beat.status_code == 200, beat.text
        assert beat.json()["heartbeat"] == {"accepted": True, "sequence": 2}
        stale = await http.post(
            f"/v1/handoffs/{handoff_id}/heartbeat", json={"progress": {"step": 1}, "sequence": 1}
        )
        assert stale.json()["heartbeat"] == {"accepted": False, "sequence": 2}
        extended = await http.post(
            f"/v1/handoffs/{handoff_id}/extend", json={"extend_by_seconds": 7200}
        )
        assert extended.status_code == 200, extended.text
        assert extended.json()["progress"] == {"step": 2}
        failed = await http.post(
            f"/v1/handoffs/{handoff_id}/fail",
            json={
                "error_type": "CardDeclined",
                "message": "insufficient funds",
                "non_retryable": True,
            },
        )
        assert failed.status_code == 200, failed.text
    result = await handle.result()
    assert result["error_type"] == "CardDeclined"
    assert result["message"] == "insufficient funds"
    assert (
        await metric(
            sidecar, "handshake_handoffs_finished_total", target="billing", outcome="failed"
        )
        == 1
    )


async def test_complete_external_activity_completes_another_workflows_handoff(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    waiting = await start(
        plain_client, workflows, sidecar, "handshake.http_handoff", {"target": "billing"}
    )
    handoff_id = (await receiver.receive()).body["handoff_id"]

    completing = await start(
        plain_client, workflows, sidecar, "handshake.complete_external",
        {"handoff_id": handoff_id, "result": {"approved": True}},
    )  # fmt: skip

    assert await completing.result() == {
        "result": {"handoff_id": handoff_id, "outcome": "completed"}
    }
    assert await waiting.result() == {"result": {"approved": True}}
    again = await start(
        plain_client, workflows, sidecar, "handshake.fail_external",
        {"handoff_id": handoff_id, "error_type": "Late", "message": "too late"},
    )  # fmt: skip
    assert (await again.result())["error_type"] == "HandoffAlreadyFinishedError"


async def test_delivery_failure_fails_the_attempt_and_temporal_retries_it(
    tmp_path: Path, temporal_address: str, plain_client: Client, workflows: str
) -> None:
    refusing = ExternalReceiver(status=500)
    refusing.start()
    try:
        async with running_sidecar(
            tmp_path, temporal_address, targets={"billing": refusing.url}
        ) as sc:
            handle = await plain_client.start_workflow(
                SidecarWorkflow.run,
                SidecarCall(
                    activity="handshake.http_handoff",
                    task_queue=sc.task_queue,
                    argument={"target": "billing"},
                    max_attempts=2,
                ),
                id=f"refused-{uuid.uuid4()}",
                task_queue=workflows,
            )
            result = await handle.result()
            assert result["error_type"] == "HandoffDeliveryFailed"
            first, second = refusing.deliveries.get_nowait(), refusing.deliveries.get_nowait()
            assert first.body["attempt"] == 1
            assert second.body["attempt"] == 2
            assert (
                await metric(
                    sc, "handshake_handoffs_finished_total", target="billing", outcome="aborted"
                )
                == 2
            )
    finally:
        refusing.stop()


async def test_inventory_lists_pending_handoffs_with_filters_and_pages(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    for _ in range(5):
        await start(
            plain_client, workflows, sidecar, "handshake.http_handoff", {"target": "billing"}
        )
    ids = [(await receiver.receive()).body["handoff_id"] for _ in range(5)]
    async with sidecar.client(None) as http:
        first = (await http.get("/v1/handoffs", params={"state": "pending", "limit": 3})).json()
        second = (
            await http.get(
                "/v1/handoffs",
                params={"state": "pending", "limit": 3, "cursor": first["next_cursor"]},
            )
        ).json()
        none_old = (await http.get("/v1/handoffs", params={"min_age_seconds": 3600})).json()
    listed = [h["handoff_id"] for h in first["items"] + second["items"]]
    assert sorted(listed) == sorted(ids)
    assert second["next_cursor"] is None
    assert none_old["items"] == []
    for item in first["items"]:
        assert "task_token" not in item


async def test_metrics_ledger_and_trace_agree_for_a_gateway_completion(
    tmp_path: Path,
    temporal_address: str,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
) -> None:
    with OtlpReceiver() as collector:
        traced = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_SERVICE_NAME": "handshake-obs-sidecar",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        async with running_sidecar(
            tmp_path, temporal_address, targets={"billing": receiver.url}, extra_env=traced
        ) as sidecar:
            handle = await start(
                plain_client, workflows, sidecar, "handshake.http_handoff", {"target": "billing"}
            )
            delivery = await receiver.receive()
            traceparent = delivery.headers["traceparent"]
            trace_id = traceparent.split("-")[1]
            handoff_id = delivery.body["handoff_id"]
            async with sidecar.client() as http:
                done = await http.post(f"/v1/handoffs/{handoff_id}/complete", json={"result": 1})
                assert done.status_code == 200, done.text
                assert done.json()["handoff"]["traceparent"] == traceparent
                exposition = (
                    await http.get(
                        "/metrics",
                        headers={"accept": "application/openmetrics-text; version=1.0.0"},
                    )
                ).text
            assert await handle.result() == {"result": 1}

            async def whole_trace() -> dict[str, Any]:
                spans = {span.name: span for span in collector.trace(trace_id)}
                assert {"handoff billing", "complete billing"} <= spans.keys(), spans.keys()
                return spans

            spans = await assert_eventually(whole_trace, timeout=20)
    handoff_span, completion = spans["handoff billing"], spans["complete billing"]
    assert traceparent.split("-")[2] == handoff_span.span_id
    assert completion.parent_span_id == handoff_span.span_id
    assert handoff_span.attributes["handshake.handoff.id"] == handoff_id
    run_activity = [s for s in spans.values() if s.name.startswith("RunActivity:")]
    assert [s.span_id for s in run_activity] == [handoff_span.parent_span_id]
    latency = [
        line for line in exposition.splitlines()
        if line.startswith("handshake_completion_latency_seconds_bucket")
        and 'outcome="completed"' in line and "# {" in line
    ]  # fmt: skip
    assert any(f'trace_id="{trace_id}"' in line for line in latency), latency
