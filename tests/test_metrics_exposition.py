"""The /metrics exposition is clean for promtool, and the SDK's own metrics are served too."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.request
import uuid

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from handshake_obs import Handshake

from .conftest import StartWorkflow
from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ports import free_port
from .support.workflows import HandoffRequest, HandoffWorkflow

METRIC_NAMES = {
    "handshake_handoffs_started_total",
    "handshake_handoffs_finished_total",
    "handshake_completion_latency_seconds_bucket",
    "handshake_completion_errors_total",
    "handshake_completion_rpc_duration_seconds_bucket",
    "handshake_pending_handoffs",
    "handshake_oldest_pending_handoff_timestamp_seconds",
    "handshake_pending_handoffs_by_age",
    "handshake_pending_snapshot_timestamp_seconds",
    "handshake_instrumentation_errors_total",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install the Debian package prometheus (scripts/setup)")
    return found


def promtool_check_metrics(exposition: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [promtool(), "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=30,
        check=False,
    )


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
        return str(response.read().decode())


async def test_exposition_passes_promtool_check_metrics_and_has_every_contract_name(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    completer = handshake.completer(client)
    for n in range(3):
        handle = await start_workflow("hand_off_explicit", target="agent")
        delivery = await EXTERNAL.receive(handle.id)
        if n == 0:
            await completer.complete(delivery.task_token, "ok")
        elif n == 1:
            await completer.fail(delivery.task_token, error_type="Nope", message="no")
    await handshake.refresh_pending_gauges()
    exposition = generate_latest(registry)

    checked = await asyncio.to_thread(promtool_check_metrics, exposition)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == b""
    names = {line.split(b"{")[0].split(b" ")[0].decode() for line in exposition.splitlines()}
    assert names >= METRIC_NAMES
    assert b'handshake_pending_handoffs{target="agent"} 1.0' in exposition


async def test_temporal_sdk_metrics_are_served_on_their_own_endpoint(
    temporal_address: str,
) -> None:
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    client = await Client.connect(temporal_address, runtime=runtime)
    task_queue = f"sdk-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
    ):
        result = await client.execute_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity="plain_result", payload=1),
            id=f"sdk-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    assert result == {"result": {"echo": 1}}
    text = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
    assert "temporal_activity_execution_latency" in text
    assert "temporal_workflow_completed" in text
