"""``handshake-obs proxy``: the gRPC proxy, configured by the settings."""

from __future__ import annotations

import argparse
import asyncio

from prometheus_client import REGISTRY

from ..config import Settings
from ..proxy import run_proxy
from ._tracing import exporting_spans


def proxy_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the proxy until SIGTERM or SIGINT."""
    config = settings.handshake_config()
    proxy = settings.proxy_settings()
    connection = settings.temporal_connection()
    with exporting_spans(settings.tracing_config()):
        asyncio.run(run_proxy(config, proxy, connection, registry=REGISTRY))
    return 0
