"""``handshake-obs reap``: one scan (``--once``) or a reaper loop, printing what it reaped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from typing import TextIO

from prometheus_client import CollectorRegistry

from .._handshake import Handshake
from .._stop_signals import stop_event
from .._vocabulary import ReapStatus
from ..completion._reaper import ReapResult
from ..config import HandshakeConfig, Settings, TemporalConnection, connect_temporal
from ._table import render_table
from ._time import format_duration
from ._tracing import exporting_spans

_HEADER = ("RESULT", "HANDOFF", "WORKFLOW", "TARGET", "AGE")


def reap_command(args: argparse.Namespace, settings: Settings) -> int:
    """Reap with the settings' configuration (target policies of the config file included)."""
    connection = settings.temporal_connection()
    with exporting_spans(settings.tracing_config()):
        return asyncio.run(reap(settings.handshake_config(), once=args.once, connection=connection))


def format_results(results: Sequence[ReapResult]) -> list[str]:
    """Aligned table rows (header first) for reap results."""
    rows = [
        (
            r.result,
            r.record.handoff_id,
            r.record.workflow_id,
            r.record.target,
            format_duration(r.age_seconds),
        )
        for r in results
    ]
    return render_table(rows, header=_HEADER)


async def reap(
    config: HandshakeConfig,
    *,
    once: bool,
    out: TextIO = sys.stdout,
    connection: TemporalConnection | None = None,
) -> int:
    """Reap once and print a table, or keep reaping and print each scan's results.

    ``connection``: how to reach Temporal (default: plaintext to the config's address).
    """
    if connection is None:
        connection = TemporalConnection(
            address=config.temporal_address, namespace=config.temporal_namespace
        )
    # Reaping expects a ledger: a missing SQLite file is an error, never a new empty ledger.
    async with Handshake(config, registry=CollectorRegistry(), create_ledger=False) as handshake:
        # A refused or unreachable Temporal is a TemporalConnectionError: one line, exit 2.
        client = await connect_temporal(connection, interceptors=[handshake.interceptor])
        reaper = handshake.reaper(client)
        if once:
            results = await reaper.reap_once()
            await reaper.prune_once()
            if results:
                out.write("\n".join(format_results(results)) + "\n")
            out.write(f"{sum(r.result is ReapStatus.REAPED for r in results)} handoff(s) reaped\n")
            out.flush()
            return 1 if any(r.result is ReapStatus.ERROR for r in results) else 0
        stop = stop_event()
        interval = config.reaper_interval.total_seconds()
        while not stop.is_set():
            results = await reaper.reap_once()
            await reaper.prune_once()
            for line in format_results(results)[1:]:
                out.write(line + "\n")
            out.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        return 0
