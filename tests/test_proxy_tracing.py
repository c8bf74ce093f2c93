"""One trace across languages: a TypeScript workflow, the proxy's handoff, the completion.

The TypeScript worker runs the SDK's OpenTelemetry plugin, which puts the workflow's trace
context in the activity task's header. The proxy's handoff span joins that trace (child of
the workflow's ``StartActivity`` span) and the completion span, made when the external Node
process completes through the proxy, is the handoff span's child. Every span is checked as
a real OTLP receiver got it.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from handshake_obs.telemetry import _semconv as sc

from .support.otlp_receiver import OtlpReceiver, ReceivedSpan
from .support.proxy import start_proxy_process
from .support.typescript import start_completer, start_worker
from .support.waiting import assert_eventually

pytestmark = pytest.mark.timeout(300)


def named(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in spans]}"
    return found[0]


async def test_a_typescript_handoff_is_one_trace_workflow_handoff_completion(
    temporal_address: str, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    task_queue = f"ts-traced-{uuid.uuid4()}"
    with OtlpReceiver() as receiver:
        proxy, port, _ = start_proxy_process(
            name="proxy",
            upstream=temporal_address,
            ledger_url=f"sqlite:///{tmp_path / 'proxy-ledger.db'}",
            async_activities=["handOff=approval"],
            log_dir=tmp_path,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_SERVICE_NAME": "proxy",
                "OTEL_BSP_SCHEDULE_DELAY": "50",
            },
        )
        address = f"127.0.0.1:{port}"
        worker = start_worker(
            address, task_queue, outbox, tmp_path, otlp_endpoint=receiver.endpoint
        )
        completer = start_completer(address, outbox, tmp_path)
        try:
            client = await Client.connect(temporal_address)
            handle = await client.start_workflow(
                "handoffWorkflow",
                {"plan": [{"op": "complete", "result": "traced"}]},
                id=f"traced-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            assert await asyncio.wait_for(handle.result(), 90) == {"result": "traced"}

            async def whole_trace() -> tuple[ReceivedSpan, ReceivedSpan, ReceivedSpan]:
                spans = receiver.spans
                handoff = named(spans, "handoff approval")
                complete = named(spans, "complete approval")
                schedule = named(spans, "StartActivity:handOff")
                return handoff, complete, schedule

            handoff, complete, schedule = await assert_eventually(whole_trace, timeout=30)
        finally:
            for process in (completer, worker, proxy):
                process.stop()
    workflow = named(receiver.trace(handoff.trace_id), "RunWorkflow:handoffWorkflow")
    assert (handoff.service, complete.service, workflow.service) == ("proxy", "proxy", "ts-worker")
    assert handoff.trace_id == schedule.trace_id == workflow.trace_id == complete.trace_id
    assert handoff.parent_span_id == schedule.span_id
    assert complete.parent_span_id == handoff.span_id
    assert handoff.attributes[sc.TARGET] == "approval"
    assert handoff.attributes[sc.WORKFLOW_ID] == complete.attributes[sc.WORKFLOW_ID]
    assert complete.attributes[sc.HANDOFF_ID] == handoff.attributes[sc.HANDOFF_ID]
