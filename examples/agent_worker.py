"""A worker whose activity hands work to an external agent, and the agent completing it.

The README's example, whole and runnable: ``python examples/agent_worker.py`` with a Temporal
server at ``TEMPORAL_ADDRESS`` (default ``localhost:7233``; ``handshake-obs dev`` starts one).
It runs one workflow to its end and prints the answer.

* The activity hands the prompt to the agent with ``handshake_obs.handoff()``: the handoff is
  in the ledger before the prompt leaves, and leaving the block completes the activity
  asynchronously (the worker slot is free while the agent works).
* The agent (here a task in the same process, reading an ``asyncio.Queue``; in production a
  separate system) answers by handoff id through ``plugin.completer(client)``. A completer in
  another process must use the same ledger (``HANDSHAKE_LEDGER_URL``) as the worker, and so
  must the reaper (``handshake-obs serve`` or ``handshake-obs reap``): the ledger is where a
  handoff id finds its task token and where a lost handoff is found.
* handshake-obs's metrics are served on ``METRICS_PORT`` (default 9466: ``handshake-obs dev``
  and the sidecar take 9464 and 9465).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

from agent_workflow import AskAgent
from opentelemetry import trace
from prometheus_client import start_http_server
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider
from temporalio.worker import Worker

import handshake_obs
from handshake_obs import HandshakeConfig, HandshakePlugin

#: Stands in for the agent's work queue (a message broker, an HTTP call...).
agent_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()


@activity.defn
async def ask_agent(prompt: str) -> str:
    # Recorded before anything leaves the process; a clean exit completes asynchronously.
    async with handshake_obs.handoff(target="agent-runner") as h:
        await agent_queue.put(
            {"handoff_id": h.handoff_id, "traceparent": h.traceparent, "prompt": prompt}
        )
    raise AssertionError("unreachable: leaving the block completes the activity asynchronously")


async def agent(plugin: HandshakePlugin, client: Client) -> None:
    """The external system: takes requests, works, completes each by its handoff id."""
    completer = plugin.completer(client)
    while True:
        request = await agent_queue.get()
        answer = f"an answer to {request['prompt']!r}"
        await completer.complete(request["handoff_id"], answer)


async def main() -> None:
    start_http_server(int(os.environ.get("METRICS_PORT", "9466")))  # handshake-obs metrics
    plugin = HandshakePlugin(HandshakeConfig.from_env(targets=("agent-runner",)))
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    # Temporal's tracing first, then handshake-obs: one trace across the handoff. Workflows
    # traced by OpenTelemetryPlugin need a replay-safe global tracer provider.
    trace.set_tracer_provider(create_tracer_provider())
    client = await Client.connect(address, plugins=[OpenTelemetryPlugin(), plugin])
    task_queue = f"agents-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[AskAgent], activities=[ask_agent]):
        answering = asyncio.create_task(agent(plugin, client))
        try:
            answer = await client.execute_workflow(
                AskAgent.run, "what is 6 x 7?", id=f"ask-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )  # fmt: skip
        finally:
            answering.cancel()
    print(answer)


if __name__ == "__main__":
    asyncio.run(main())
