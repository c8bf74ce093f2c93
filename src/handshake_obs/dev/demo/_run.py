"""The demo, in one place: demo workflows that hand work off through a sidecar, the fake
external system that answers them over HTTP, and the traffic that keeps starting them.

``handshake-obs dev`` runs it beside its own dev server and sidecar; ``handshake-obs demo``
runs it alone against an existing Temporal and sidecar (the compose stack's demo service).
The sidecar delivers each handoff to this process's ``/handoffs``: point the sidecar's
targets there (``target_urls``, or ``url`` in its targets file).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import structlog
import uvicorn
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ...sidecar import QuietUvicorn
from ._external_http import DemoExternalSystem, DemoMix
from ._traffic import run_demo_traffic
from ._workflows import DemoWorkflow

_log = structlog.get_logger("handshake_obs.demo")

#: Targets of the demo's handoffs.
DEMO_TARGETS: tuple[str, ...] = ("agent-runner", "java-billing", "human-approval")
#: Task queue of the demo workflows.
DEMO_TASK_QUEUE = "handshake-obs-demo"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How the demo runs and where its external system listens."""

    #: Bearer token of the sidecar's completion endpoints (the external system answers there).
    completion_token: str = field(repr=False)
    #: Task queue of the sidecar's worker (hosting ``handshake.http_handoff``).
    sidecar_task_queue: str
    #: Where the fake external system listens for the sidecar's deliveries.
    listen_host: str = "127.0.0.1"
    listen_port: int = 9470
    targets: Sequence[str] = DEMO_TARGETS
    workflows_per_second: float = 2.0
    #: Start-to-close timeout of a demo activity: bounds how long a lost handoff waits.
    activity_timeout_seconds: float = 60.0
    mix: DemoMix = field(default_factory=DemoMix)
    seed: int | None = None

    @property
    def delivery_url(self) -> str:
        """The URL the sidecar's targets deliver to."""
        wildcard = self.listen_host in ("0.0.0.0", "::")  # noqa: S104 - a comparison
        host = "127.0.0.1" if wildcard else self.listen_host
        return f"http://{host}:{self.listen_port}/handoffs"


async def run_demo(client: Client, options: DemoOptions, *, stop: asyncio.Event) -> None:
    """Run the demo until ``stop`` is set: the external system, the workflow worker, the
    traffic. Everything it started is stopped before it returns."""
    rng = random.Random(options.seed)  # noqa: S311 - demo traffic, not security
    async with httpx.AsyncClient() as http:
        external = DemoExternalSystem(
            completion_token=options.completion_token, mix=options.mix, rng=rng, http=http
        )
        server = QuietUvicorn(
            uvicorn.Config(
                external.app,
                host=options.listen_host,
                port=options.listen_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        serving = await server.start_serving(
            name="demo-external", what="the demo's external system (dev --demo-port)"
        )
        try:
            async with Worker(
                client,
                task_queue=DEMO_TASK_QUEUE,
                workflows=[DemoWorkflow],
                # The demo workflow is deterministic; the package around it (metrics,
                # logging) need not be re-imported into every workflow sandbox.
                workflow_runner=SandboxedWorkflowRunner(
                    restrictions=SandboxRestrictions.default.with_passthrough_modules(
                        "handshake_obs"
                    )
                ),
            ):
                traffic = asyncio.create_task(
                    run_demo_traffic(
                        client,
                        task_queue=DEMO_TASK_QUEUE,
                        sidecar_task_queue=options.sidecar_task_queue,
                        targets=options.targets,
                        workflows_per_second=options.workflows_per_second,
                        timeout_seconds=options.activity_timeout_seconds,
                        rng=rng,
                    ),
                    name="demo-traffic",
                )
                _log.info(
                    "demo running",
                    delivery_url=options.delivery_url,
                    rate=options.workflows_per_second,
                )
                try:
                    await stop.wait()
                finally:
                    traffic.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await traffic
        finally:
            await external.close()
            server.should_exit = True
            await serving
