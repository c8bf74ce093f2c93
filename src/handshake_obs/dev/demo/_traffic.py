"""Demo traffic: start a workflow that hands work off, again and again."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence

import structlog
from temporalio.client import Client

from ._workflows import DemoTask, DemoWorkflow

_log = structlog.get_logger("handshake_obs.demo")


async def run_demo_traffic(
    client: Client,
    *,
    task_queue: str,
    sidecar_task_queue: str,
    targets: Sequence[str],
    workflows_per_second: float,
    timeout_seconds: float,
    rng: random.Random,
) -> None:
    """Start demo workflows at a steady rate until cancelled."""
    interval = 1.0 / workflows_per_second
    while True:
        target = rng.choice(list(targets))
        try:
            await client.start_workflow(
                DemoWorkflow.run,
                DemoTask(
                    target=target,
                    prompt="summarise",
                    sidecar_task_queue=sidecar_task_queue,
                    timeout_seconds=timeout_seconds,
                ),
                id=f"demo-{target}-{uuid.uuid4().hex[:12]}",
                task_queue=task_queue,
            )
        except Exception as err:  # noqa: BLE001 - the demo keeps going while Temporal restarts
            _log.warning("demo: workflow not started", error=str(err))
        await asyncio.sleep(interval)
