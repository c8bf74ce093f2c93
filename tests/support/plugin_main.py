"""A process written as a user would, with nothing but plugins: a worker, a completer and a
starter, each connected with ``plugins=[OpenTelemetryPlugin(...), HandshakePlugin(config)]``.

    OTEL_EXPORTER_OTLP_ENDPOINT=... python -m tests.support.plugin_main ADDRESS LEDGER_PATH

Runs two workflows: one hands off through ``handoff()`` and is completed by handoff id
through the completer plugin's :class:`~handshake_obs.Completer`; one gives its token away
without handshake-obs code and is completed through a plain async-activity handle of the
completer's client. Exports every span over OTLP (the SDK's replay-safe provider, as the
plugin's docs ask), then prints one JSON line: the workflows, handoffs, results, ledger
outcomes and whether each plugin stopped its handshake when it should.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider
from temporalio.worker import Worker

from handshake_obs import HandshakeConfig, HandshakePlugin

from .activities import EXTERNAL, hand_off_explicit, hand_off_plain
from .workflows import HandoffRequest, HandoffWorkflow


def plugins(ledger: Path) -> tuple[OpenTelemetryPlugin, HandshakePlugin]:
    config = HandshakeConfig(ledger_url=f"sqlite:///{ledger}", targets=("agent",))
    # Temporal's tracing first: RunActivity is current when the handoff span starts.
    return OpenTelemetryPlugin(add_temporal_spans=True), HandshakePlugin(
        config, registry=CollectorRegistry()
    )


async def main(address: str, ledger_path: str) -> dict[str, Any]:
    ledger = Path(ledger_path)
    worker_plugins = plugins(ledger)
    completer_plugins = plugins(ledger)
    worker_handshake, completer_handshake = worker_plugins[1], completer_plugins[1]
    task_queue = f"plugin-{uuid.uuid4()}"
    worker_client = await Client.connect(address, plugins=list(worker_plugins))
    report: dict[str, Any] = {"started_at_connect": worker_handshake._started}
    async with completer_handshake:
        completer_client = await Client.connect(address, plugins=list(completer_plugins))
        async with Worker(
            worker_client,
            task_queue=task_queue,
            workflows=[HandoffWorkflow],
            activities=[hand_off_explicit, hand_off_plain],
        ):
            explicit = await completer_client.start_workflow(
                HandoffWorkflow.run,
                HandoffRequest(activity="hand_off_explicit", target="agent"),
                id=f"plugin-explicit-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            h = (await EXTERNAL.receive(explicit.id)).explicit
            await completer_handshake.completer(completer_client).complete(h.handoff_id, "done")

            plain = await completer_client.start_workflow(
                HandoffWorkflow.run,
                HandoffRequest(activity="hand_off_plain"),
                id=f"plugin-plain-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            token = (await EXTERNAL.receive(plain.id)).task_token
            # Recorded by the worker's plugin after the activity released its token.
            for _ in range(100):
                if await worker_handshake.handshake.ledger.find_by_token(token) is not None:
                    break
                await asyncio.sleep(0.1)
            await completer_client.get_async_activity_handle(task_token=token).complete(7)

            report["results"] = [await explicit.result(), await plain.result()]
        report["worker_stopped_with_its_worker"] = not worker_handshake._started
        report["completer_running_in_its_block"] = completer_handshake._started
        plain_record = await completer_handshake.handshake.ledger.find_by_token(token)
        explicit_record = await completer_handshake.handshake.ledger.get(h.handoff_id)
        assert plain_record is not None
        assert explicit_record is not None
        report["outcomes"] = [explicit_record.outcome, plain_record.outcome]
        report["workflows"] = [explicit.id, plain.id]
        report["handoffs"] = [h.handoff_id, plain_record.handoff_id]
    report["completer_stopped_after_its_block"] = not completer_handshake._started
    return report


if __name__ == "__main__":
    provider = create_tracer_provider(resource=Resource.create({"service.name": "plugin-user"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    result = asyncio.run(main(*sys.argv[1:3]))
    provider.force_flush()
    sys.stdout.write(json.dumps(result, default=str) + "\n")
