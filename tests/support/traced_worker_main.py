"""A traced worker process: Temporal's TracingInterceptor, handshake-obs, OTLP export.

    OTEL_EXPORTER_OTLP_ENDPOINT=... python -m tests.support.traced_worker_main \
        ADDRESS TASK_QUEUE LEDGER_PATH

Tracing is configured from the ``OTEL_*`` environment by ``configure_tracing()``. Prints
``READY`` once polling, then one JSON line per handoff: ``workflow_id``, ``handoff_id``,
``traceparent`` and the raw ``task_token`` in hex (for the test's "never in a span" check).
Logs go to stderr as JSON. SIGTERM stops it and flushes the spans still queued.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker

from handshake_obs import (
    Handshake,
    HandshakeConfig,
    configure_logging,
    configure_tracing,
    handoff,
    shutdown_tracing,
)

from .workflows import HandoffRequest, HandoffWorkflow


@activity.defn(name="hand_off_traced")
async def hand_off_traced(request: HandoffRequest) -> Any:
    seconds = request.extra.get("deadline_seconds")
    deadline = None if seconds is None else timedelta(seconds=seconds)
    async with handoff(target=request.target, deadline=deadline) as h:
        line = {
            "workflow_id": activity.info().workflow_id,
            "handoff_id": h.handoff_id,
            "traceparent": h.traceparent,
            "task_token": h.task_token.hex(),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


async def main(address: str, task_queue: str, ledger_path: str) -> None:
    configure_logging(json=True)  # to stderr: stdout carries the handoffs
    provider = configure_tracing()
    if provider is None:
        raise SystemExit("OTEL_EXPORTER_OTLP_ENDPOINT is not set")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    config = HandshakeConfig(ledger_url=f"sqlite:///{ledger_path}", targets=("agent",))
    try:
        async with Handshake(config, registry=CollectorRegistry()) as handshake:
            # TracingInterceptor first: it is the outermost, so RunActivity is the span
            # current while handshake-obs records the handoff.
            client = await Client.connect(
                address, interceptors=[TracingInterceptor(), handshake.interceptor]
            )
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=[hand_off_traced],
            ):
                sys.stdout.write("READY\n")
                sys.stdout.flush()
                await stop.wait()
    finally:
        shutdown_tracing(provider)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
