"""``handshake-obs serve``: the sidecar process.

Runs the reaper on its interval and serves ``/metrics`` (handshake metrics and the pending
gauges computed from the ledger) until SIGTERM or SIGINT, then stops the reaper after its
scan in progress and closes the ledger. Temporal being down at start-up is waited out, not
fatal: the sidecar keeps serving metrics and connects when Temporal answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from prometheus_client import CollectorRegistry, start_http_server
from temporalio.client import Client

from ._config import HandshakeConfig
from ._handshake import Handshake

_log = structlog.get_logger("handshake_obs.serve")

#: Wait between two attempts to reach Temporal at start-up.
_CONNECT_RETRY_SECONDS = 2.0


async def connect_when_available(
    config: HandshakeConfig, handshake: Handshake, stop: asyncio.Event
) -> Client | None:
    """Connect to Temporal, retrying until it answers or ``stop`` is set (then None)."""
    while not stop.is_set():
        try:
            return await Client.connect(
                config.temporal_address,
                namespace=config.temporal_namespace,
                interceptors=[handshake.interceptor],
            )
        except RuntimeError as err:  # the SDK reports connection failures as RuntimeError
            _log.warning(
                "temporal unavailable, retrying", address=config.temporal_address, error=str(err)
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _CONNECT_RETRY_SECONDS)
    return None


async def run_serve(config: HandshakeConfig, *, registry: CollectorRegistry) -> None:
    """Run the sidecar until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host, port = config.listen_host_port
    async with Handshake(config, registry=registry) as handshake:
        server, thread = start_http_server(port, addr=host, registry=registry)
        _log.info("serving", metrics=f"http://{config.listen_address}/metrics")
        try:
            client = await connect_when_available(config, handshake, stop)
            if client is not None:
                reaper = handshake.reaper(client)
                reaper.start()
                _log.info(
                    "reaper started",
                    identity=reaper.identity,
                    interval_seconds=config.reaper_interval.total_seconds(),
                )
                await stop.wait()
                _log.info("stopping")
                await reaper.stop()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    _log.info("stopped")
