"""A worker process for crash tests: hands off tokens and prints what it handed over.

    python -m tests.support.worker_main ADDRESS TASK_QUEUE LEDGER_PATH

Prints ``READY`` once polling, then one JSON line per handoff: ``{"workflow_id", "handoff_id"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig, configure_logging, handoff

from .workflows import HandoffRequest, HandoffWorkflow


@activity.defn(name="hand_off_explicit")
async def hand_off_and_print(request: HandoffRequest) -> Any:
    async with handoff(target=request.target) as h:
        line = {"workflow_id": activity.info().workflow_id, "handoff_id": h.handoff_id}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


async def main(address: str, task_queue: str, ledger_path: str) -> None:
    configure_logging(json=True)  # to stderr: stdout carries the handoffs
    config = HandshakeConfig(ledger_url=f"sqlite:///{ledger_path}", targets=("agent",))
    async with Handshake(config, registry=CollectorRegistry()) as handshake:
        client = await Client.connect(address, interceptors=[handshake.interceptor])
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[HandoffWorkflow],
            activities=[hand_off_and_print],
        ):
            sys.stdout.write("READY\n")
            sys.stdout.flush()
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
