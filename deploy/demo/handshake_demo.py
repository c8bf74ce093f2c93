"""Demo traffic for the compose stack: a worker instrumented by handshake-obs against an
existing Temporal server, workflows that hand work off, and a fake external system.

The external system answers through the public :class:`handshake_obs.Completer` by handoff
id: most handoffs complete, some fail with a typed error, a few are lost on purpose (the
sidecar's reaper fails them at their deadline). Settings come from the ``HANDSHAKE_*``
variables (ledger, Temporal address, targets) and these:

==============================  ==========  =================================================
variable                        default     meaning
==============================  ==========  =================================================
``DEMO_METRICS_ADDRESS``        0.0.0.0:9464  handshake metrics of this worker (``/metrics``)
``DEMO_SDK_METRICS_ADDRESS``    0.0.0.0:9465  the Temporal SDK's metrics
``DEMO_RATE``                   2           workflows started per second
``DEMO_ACTIVITY_TIMEOUT``       60          start-to-close timeout of a handoff, seconds
``DEMO_MAX_DELAY``              8           slowest answer of the external system, seconds
``DEMO_FAIL_RATIO``             0.15        share of handoffs failed with a typed error
``DEMO_LOSE_RATIO``             0.05        share of tokens lost (never answered)
``OTEL_EXPORTER_OTLP_ENDPOINT`` unset       when set, spans go there (OTLP/gRPC)
==============================  ==========  =================================================

Run: ``python deploy/demo/handshake_demo.py`` (SIGTERM or SIGINT stops it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, start_http_server
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

import handshake_obs
from handshake_obs import Completer, Handshake, HandshakeConfig, HandshakeError

_log = structlog.get_logger("handshake_demo")

TASK_QUEUE = "handshake-obs-compose-demo"
DEFAULT_TARGETS = ("agent-runner", "java-billing", "human-approval")
ERROR_TYPES = ("AgentRefused", "ValidationFailed", "QuotaExceeded")


@dataclass(frozen=True)
class DemoSettings:
    """The ``DEMO_*`` variables."""

    #: All interfaces: a container's ports, which compose publishes.
    metrics_address: str = "0.0.0.0:9464"
    sdk_metrics_address: str = "0.0.0.0:9465"
    rate: float = 2.0
    activity_timeout: float = 60.0
    max_delay: float = 8.0
    fail_ratio: float = 0.15
    lose_ratio: float = 0.05

    @classmethod
    def from_env(cls) -> DemoSettings:
        env = os.environ
        defaults = cls()
        return cls(
            metrics_address=env.get("DEMO_METRICS_ADDRESS", defaults.metrics_address),
            sdk_metrics_address=env.get("DEMO_SDK_METRICS_ADDRESS", defaults.sdk_metrics_address),
            rate=float(env.get("DEMO_RATE", defaults.rate)),
            activity_timeout=float(env.get("DEMO_ACTIVITY_TIMEOUT", defaults.activity_timeout)),
            max_delay=float(env.get("DEMO_MAX_DELAY", defaults.max_delay)),
            fail_ratio=float(env.get("DEMO_FAIL_RATIO", defaults.fail_ratio)),
            lose_ratio=float(env.get("DEMO_LOSE_RATIO", defaults.lose_ratio)),
        )


@dataclass
class Task:
    """One unit of work handed to the external system."""

    target: str
    timeout_seconds: float


@workflow.defn(sandboxed=False)  # defined beside the worker; deterministic without the sandbox
class HandOffWorkflow:
    """Hands one task off and reports how it ended."""

    @workflow.run
    async def run(self, task: Task) -> dict[str, Any]:
        try:
            result = await workflow.execute_activity(
                "demo_hand_off",
                task,
                start_to_close_timeout=timedelta(seconds=task.timeout_seconds),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            return {"status": "failed", "error_type": kind}
        return {"status": "completed", "result": result}


class ExternalSystem:
    """Takes handoff ids and answers them later through the completer (or loses them)."""

    def __init__(self, settings: DemoSettings, rng: random.Random) -> None:
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self._settings = settings
        self._rng = rng
        self._tasks: set[asyncio.Task[None]] = set()

    @activity.defn(name="demo_hand_off")
    async def hand_off(self, task: Task) -> Any:
        """Record the handoff, give its id away, complete asynchronously."""
        async with handshake_obs.handoff(target=task.target) as handoff:
            self.inbox.put_nowait(handoff.handoff_id)
        raise AssertionError("unreachable: handoff() completes the activity asynchronously")

    async def serve(self, completer: Completer) -> None:
        try:
            while True:
                handoff_id = await self.inbox.get()
                task = asyncio.create_task(self._answer(completer, handoff_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _answer(self, completer: Completer, handoff_id: str) -> None:
        roll = self._rng.random()
        if roll < self._settings.lose_ratio:
            _log.info("losing a token on purpose", handoff_id=handoff_id)
            return
        await asyncio.sleep(self._rng.uniform(0.2, self._settings.max_delay))
        try:
            if roll < self._settings.lose_ratio + self._settings.fail_ratio:
                await completer.fail(
                    handoff_id,
                    error_type=self._rng.choice(ERROR_TYPES),
                    message="the demo external system said no",
                    non_retryable=True,
                )
            else:
                await completer.complete(handoff_id, {"answer": self._rng.randint(1, 100)})
        except HandshakeError as err:
            _log.warning("answer not delivered", handoff_id=handoff_id, error=str(err))


async def start_workflows(
    client: Client, targets: tuple[str, ...], settings: DemoSettings, rng: random.Random
) -> None:
    """Start one workflow every ``1 / rate`` seconds until cancelled."""
    while True:
        target = rng.choice(targets)
        try:
            await client.start_workflow(
                HandOffWorkflow.run,
                Task(target=target, timeout_seconds=settings.activity_timeout),
                id=f"demo-{target}-{uuid.uuid4().hex[:12]}",
                task_queue=TASK_QUEUE,
            )
        except Exception as err:  # noqa: BLE001 - the demo keeps going while Temporal restarts
            _log.warning("workflow not started", error=str(err))
        await asyncio.sleep(1.0 / settings.rate)


def configure_tracing() -> None:
    """Send spans over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the collector)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    from opentelemetry import trace  # noqa: PLC0415 - only when tracing is asked for
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def main() -> None:
    handshake_obs.configure_logging()
    configure_tracing()
    settings = DemoSettings.from_env()
    config = HandshakeConfig.from_env()
    targets = tuple(config.targets) or DEFAULT_TARGETS
    if not config.targets:
        config = HandshakeConfig.from_env(targets=targets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    registry = CollectorRegistry()
    host, port = _host_port(settings.metrics_address)
    server, thread = start_http_server(port, addr=host, registry=registry)
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.sdk_metrics_address)
        )
    )
    rng = random.Random()  # noqa: S311 - demo traffic, not security
    external = ExternalSystem(settings, rng)
    try:
        async with Handshake(config, registry=registry) as handshake:
            client = await _connect(config, handshake, runtime, stop)
            if client is None:
                return
            async with Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=[HandOffWorkflow],
                activities=[external.hand_off],
            ):
                background = [
                    asyncio.create_task(external.serve(handshake.completer(client))),
                    asyncio.create_task(start_workflows(client, targets, settings, rng)),
                ]
                _log.info(
                    "demo traffic running", temporal=config.temporal_address, rate=settings.rate
                )
                await stop.wait()
                for task in background:
                    task.cancel()
                for task in background:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def _connect(
    config: HandshakeConfig, handshake: Handshake, runtime: Runtime, stop: asyncio.Event
) -> Client | None:
    """Connect to Temporal, waiting for it to come up (compose starts everything at once)."""
    while not stop.is_set():
        try:
            return await Client.connect(
                config.temporal_address,
                namespace=config.temporal_namespace,
                interceptors=[handshake.interceptor],
                runtime=runtime,
            )
        except RuntimeError as err:
            _log.warning("temporal unavailable, retrying", error=str(err))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
    return None


if __name__ == "__main__":
    asyncio.run(main())
