"""``handshake-obs serve``: one process, one event loop, the whole sidecar.

Runs the HTTP API (uvicorn), a Temporal worker on the sidecar's own task queue hosting the
handoff activities, the reaper and the pending gauges. Temporal being down at start-up is
waited out: the API answers (503 for what needs Temporal, ``/readyz`` not ready) and the
worker and reaper start once Temporal answers; a connection Temporal refuses (a certificate,
the API key) stops the sidecar with a message that says why. SIGTERM or SIGINT: stop polling, let
in-flight activities finish (up to the grace period), stop the reaper after its scan, stop
serving HTTP, close the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Generator
from datetime import timedelta

import httpx
import structlog
import uvicorn
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from .._errors import ConfigurationError, LedgerError, TemporalConnectionError
from .._handshake import Handshake
from .._periodic import PeriodicTask
from .._stop_signals import stop_event
from ..config import HandshakeConfig, SidecarSettings, TemporalConnection, connect_temporal
from ._activities import SidecarActivities
from ._api import create_app
from ._exposure import check_exposure
from ._history import SAMPLE_SECONDS
from ._http_protocol import protocol_with_header_timeout
from ._request_guard import keep_alive_timeout
from ._runtime import SidecarRuntime

_log = structlog.get_logger("handshake_obs.serve")

#: How long in-flight activities get to finish on shutdown.
SHUTDOWN_GRACE = timedelta(seconds=10)


#: Wait between two attempts to reach Temporal at start-up.
_CONNECT_RETRY_SECONDS = 2.0
#: How often a starting server is asked whether it listens yet (start-up takes milliseconds).
_STARTUP_POLL_SECONDS = 0.01


async def connect_when_available(
    connection: TemporalConnection,
    handshake: Handshake,
    stop: asyncio.Event,
    *,
    runtime: Runtime | None = None,
) -> Client | None:
    """Connect to Temporal, retrying until it answers or ``stop`` is set (then None).

    Raises :class:`TemporalConnectionError` when Temporal refuses the connection itself
    (certificate, key, API key): waiting would not change that.
    """
    while not stop.is_set():
        try:
            return await connect_temporal(
                connection,
                # Temporal's tracing first, so RunActivity is current when a handoff begins.
                interceptors=[TracingInterceptor(), handshake.interceptor],
                runtime=runtime,
            )
        except TemporalConnectionError as err:
            if not err.retryable:
                _log.error("temporal refused the connection", error=str(err))
                raise
            _log.warning(
                "temporal unavailable, retrying", address=connection.address, error=str(err)
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _CONNECT_RETRY_SECONDS)
    return None


class QuietUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the sidecar owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def start_serving(self, *, name: str, what: str) -> asyncio.Task[None]:
        """Serve in a task named ``name``, returned once listening. Raise
        :class:`ConfigurationError` naming ``what`` listens there if it cannot listen (a
        port in use, an address not on this host): uvicorn would log it and exit the
        process from inside its task, which tears the event loop down under everything
        else still running."""
        serving = asyncio.create_task(self._serve_or_refuse(what), name=name)
        while not self.started:
            if serving.done():
                serving.result()  # raises why it could not listen
                raise ConfigurationError(f"{what} stopped before it listened")
            await asyncio.sleep(_STARTUP_POLL_SECONDS)
        return serving

    async def _serve_or_refuse(self, what: str) -> None:
        try:
            await self.serve()
        except SystemExit as exit_:  # uvicorn's startup: it logged the OSError and exited
            reason = exit_.__context__
            why = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
            where = f"{self.config.host}:{self.config.port}"
            raise ConfigurationError(f"{what} cannot listen on {where}: {why}") from None


async def run_sidecar(
    config: HandshakeConfig,
    settings: SidecarSettings,
    *,
    registry: CollectorRegistry,
    stop: asyncio.Event | None = None,
    temporal_runtime: Runtime | None = None,
    connection: TemporalConnection | None = None,
) -> None:
    """Run until ``stop`` is set (by default: until SIGTERM/SIGINT).

    ``temporal_runtime`` is the SDK runtime to connect with (e.g. one that serves the SDK's
    own metrics); default: the SDK's default runtime. ``connection`` is how to reach
    Temporal (``Settings.temporal_connection()``); default: plaintext to the config's
    ``temporal_address`` and ``temporal_namespace``.
    """
    check_exposure(config, settings)  # before anything is bound or opened
    stop = stop or stop_event()
    if connection is None:
        connection = TemporalConnection(
            address=config.temporal_address, namespace=config.temporal_namespace
        )
    host, port = config.listen_host_port
    async with Handshake(config, registry=registry) as handshake, httpx.AsyncClient() as http:
        runtime = SidecarRuntime(config, settings, handshake, registry)
        server = QuietUvicorn(
            uvicorn.Config(
                create_app(runtime),
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
                # Past it, a new request gets 503 at once; the guard closes stalled uploads.
                limit_concurrency=settings.max_connections,
                # Headers that never complete are cut off too (uvicorn has no such timeout).
                http=protocol_with_header_timeout(settings.body_timeout.total_seconds()),
                # An idle connection (one refused early included) is closed after this long.
                timeout_keep_alive=keep_alive_timeout(settings),
            )
        )
        serving = await server.start_serving(name="handshake-http", what="the sidecar")
        _log.info("serving", url=f"http://{config.listen_address}", task_queue=settings.task_queue)
        sampler = PeriodicTask(
            functools.partial(_sample_pending, runtime),
            interval=SAMPLE_SECONDS,
            name="handshake-pending-history",
        )
        sampler.start()
        try:
            runtime.client = await connect_when_available(
                connection, handshake, stop, runtime=temporal_runtime
            )
            if runtime.client is not None:
                await _work(runtime, runtime.client, SidecarActivities(runtime, http), stop)
            else:
                await stop.wait()
        finally:
            _log.info("stopping")
            await sampler.stop()
            server.should_exit = True
            await serving
    _log.info("stopped")


async def _work(
    runtime: SidecarRuntime, client: Client, activities: SidecarActivities, stop: asyncio.Event
) -> None:
    reaper = runtime.handshake.reaper(client)
    reconciler = runtime.handshake.reconciler(client) if runtime.config.reconcile_enabled else None
    async with Worker(
        client,
        task_queue=runtime.settings.task_queue,
        activities=activities.all(),
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    ):
        reaper.start()
        if reconciler is not None:
            reconciler.start()
        _log.info(
            "worker and reaper started",
            reaper=reaper.identity,
            reconciler=reconciler and reconciler.identity,
        )
        try:
            await stop.wait()
        finally:
            await reaper.stop()
            if reconciler is not None:
                await reconciler.stop()


async def _sample_pending(runtime: SidecarRuntime) -> None:
    """One sample of the status page's pending picture; a ledger that does not answer
    leaves a gap in the picture, nothing else."""
    now = runtime.clock()
    try:
        summaries = await runtime.handshake.ledger.pending_summary(
            now, runtime.config.pending_age_bounds
        )
    except LedgerError as problem:
        _log.warning("pending sample skipped", error=str(problem))
        return
    runtime.history.add(now, summaries)
