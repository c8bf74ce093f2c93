"""``handshake-obs proxy``: one process, one event loop, a gRPC server in front of Temporal.

Everything a handoff needs lives in the ledger, none in the proxy: proxies are
interchangeable, several share one PostgreSQL ledger, and a proxy killed mid-poll loses
nothing that Temporal does not hand out again (a task it released is in the ledger; one it
had not released times out in Temporal and is retried, superseding its recorded attempt).
SIGTERM or SIGINT: stop accepting calls, let calls in flight finish (long polls included,
up to the grace period), stop the gauges, close the ledger.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import grpc
import structlog
from prometheus_client import CollectorRegistry

from .._errors import ConfigurationError
from .._handshake import Handshake
from .._stop_signals import stop_event
from ..config import HandshakeConfig, ProxySettings, RetryPolicy, TemporalConnection
from ..ledger import Ledger
from ._forwarder import Forwarder
from ._handoffs import WireHandoffs, WireParts
from ._methods import streaming_methods
from ._upstream import channel_options, upstream_channel, upstream_metadata

_log = structlog.get_logger("handshake_obs.proxy")

#: How long calls in flight get to finish on shutdown (a long poll lasts about a minute:
#: the worker re-polls through another proxy, or this one once it is back).
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(slots=True)
class RunningProxy:
    """A started proxy: where it listens, and how to stop it."""

    port: int
    server: grpc.aio.Server
    handshake: Handshake
    channel: grpc.aio.Channel

    @property
    def ledger(self) -> Ledger:
        """The ledger the proxy records in."""
        return self.handshake.ledger

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop serving (calls in flight get ``grace`` seconds), then close everything."""
        await self.server.stop(grace)
        await self.channel.close()
        await self.handshake.stop()


@contextlib.asynccontextmanager
async def running_proxy(
    config: HandshakeConfig,
    settings: ProxySettings,
    connection: TemporalConnection,
    *,
    registry: CollectorRegistry,
    ledger: Ledger | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[RunningProxy]:
    """Start a proxy, yield it, stop it."""
    proxy = await start_proxy(
        config, settings, connection, registry=registry, ledger=ledger, clock=clock
    )
    try:
        yield proxy
    finally:
        await proxy.stop()


async def start_proxy(
    config: HandshakeConfig,
    settings: ProxySettings,
    connection: TemporalConnection,
    *,
    registry: CollectorRegistry,
    ledger: Ledger | None = None,
    clock: Callable[[], float] = time.time,
) -> RunningProxy:
    """Open the ledger, build the parts a handoff uses, and start serving."""
    # One attempt: the call is the caller's, and its SDK retries it as without the proxy.
    handshake = Handshake(
        replace(config, rpc_retry=RetryPolicy(max_attempts=1)),
        registry=registry,
        ledger=ledger,
        clock=clock,
    )
    await handshake.start()
    parts = WireParts(
        ledger=handshake.ledger,
        metrics=handshake._metrics,
        config=config,
        settings=settings,
        tracing=handshake._tracing,
        recorder=handshake._recorder,
        completion=handshake._completion,
        clock=clock,
    )
    channel = upstream_channel(connection, max_message_bytes=settings.max_message_bytes)
    forwarder = Forwarder(
        channel,
        metadata=upstream_metadata(connection),
        observers=WireHandoffs(parts).observers(),
        streaming=streaming_methods(),
    )
    server = grpc.aio.server(options=channel_options(settings.max_message_bytes))
    server.add_generic_rpc_handlers((forwarder,))
    try:
        port = server.add_insecure_port(settings.listen_address)
    except RuntimeError:
        port = 0
    if port == 0:
        await channel.close()
        await handshake.stop()
        raise ConfigurationError(
            f"the proxy cannot listen on {settings.listen_address} (proxy_listen_address): "
            "the address is in use or not this machine's"
        )
    await server.start()
    _log.info(
        "proxy started",
        listen_address=settings.listen_address,
        upstream=connection.describe(),
        async_activities=[rule.activity_type for rule in settings.async_activities],
    )
    return RunningProxy(port, server, handshake, channel)


async def run_proxy(
    config: HandshakeConfig,
    settings: ProxySettings,
    connection: TemporalConnection,
    *,
    registry: CollectorRegistry,
) -> None:
    """Serve until SIGTERM or SIGINT, with ``/metrics`` on the settings' metrics address
    from the moment the gRPC server accepts calls (what waits for ``/metrics`` may dial)."""
    from prometheus_client import start_http_server  # noqa: PLC0415

    host, _, port = settings.metrics_address.rpartition(":")
    stop = stop_event()
    async with running_proxy(config, settings, connection, registry=registry):
        metrics_server, _thread = start_http_server(
            int(port), addr=host.strip("[]"), registry=registry
        )
        try:
            await stop.wait()
            _log.info("proxy stopping")
        finally:
            metrics_server.shutdown()
