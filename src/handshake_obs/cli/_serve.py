"""``handshake-obs serve``: the sidecar, configured by the settings."""

from __future__ import annotations

import argparse
import asyncio

from prometheus_client import REGISTRY

from ..config import Settings
from ..sidecar import run_sidecar
from ._tracing import exporting_spans


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sidecar until SIGTERM or SIGINT."""
    config = settings.handshake_config()
    sidecar = settings.sidecar_settings()
    connection = settings.temporal_connection()
    with exporting_spans(settings.tracing_config()):
        asyncio.run(run_sidecar(config, sidecar, registry=REGISTRY, connection=connection))
    return 0
