"""``handshake-obs demo``: demo traffic against an existing Temporal and sidecar.

The compose stack's demo service: demo workflows hand work off through the sidecar's
``handshake.http_handoff`` activity (the sidecar's task queue, setting ``task_queue``), and
the fake external system listening at ``--listen`` answers through the sidecar's completion
gateway with the completion token (setting ``completion_token``). Point the sidecar's targets
at ``http://<this host>:<port>/handoffs``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import structlog
from temporalio.contrib.opentelemetry import TracingInterceptor

from .._errors import ConfigurationError, TemporalConnectionError
from .._stop_signals import stop_event
from ..config import Settings, TemporalConnection, connect_temporal
from ..dev.demo import DemoOptions, run_demo
from ._tracing import exporting_spans

_log = structlog.get_logger("handshake_obs.demo")

#: Wait between two attempts to reach Temporal (compose starts everything at once).
_CONNECT_RETRY_SECONDS = 2.0


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo until SIGTERM or SIGINT."""
    sidecar = settings.sidecar_settings()
    if not sidecar.completion_token:
        raise ConfigurationError(
            "the demo answers through the sidecar's gateway: set the sidecar's completion "
            "token (HANDSHAKE_COMPLETION_TOKEN)"
        )
    host, _, port = args.listen.rpartition(":")
    options = DemoOptions(
        completion_token=sidecar.completion_token,
        sidecar_task_queue=sidecar.task_queue,
        listen_host=host.strip("[]"),
        listen_port=int(port),
        workflows_per_second=args.rate,
        activity_timeout_seconds=args.activity_timeout_seconds,
        seed=args.seed,
    )
    connection = settings.temporal_connection()
    with exporting_spans(settings.tracing_config()):
        asyncio.run(_run(connection, options))
    return 0


async def _run(connection: TemporalConnection, options: DemoOptions) -> None:
    stop = stop_event()
    client = None
    while client is None and not stop.is_set():
        try:
            client = await connect_temporal(connection, interceptors=[TracingInterceptor()])
        except TemporalConnectionError as err:
            if not err.retryable:
                raise
            _log.warning(
                "temporal unavailable, retrying", address=connection.address, error=str(err)
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CONNECT_RETRY_SECONDS):
                    await stop.wait()
    if client is not None:
        await run_demo(client, options, stop=stop)
