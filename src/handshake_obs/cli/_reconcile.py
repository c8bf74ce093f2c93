"""``handshake-obs reconcile``: one pass (``--once``) or a reconciler loop, printing what it
found closed in Temporal."""

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
from ..config import HandshakeConfig, Settings, TemporalConnection, connect_temporal
from ..reconcile import Check, CheckResult
from ._table import render_table
from ._tracing import exporting_spans

_HEADER = ("RESULT", "REASON", "HANDOFF", "WORKFLOW", "TARGET", "DETAIL")


def reconcile_command(args: argparse.Namespace, settings: Settings) -> int:
    """Reconcile with the settings' configuration."""
    connection = settings.temporal_connection()
    with exporting_spans(settings.tracing_config()):
        return asyncio.run(
            reconcile(settings.handshake_config(), once=args.once, connection=connection)
        )


def format_checks(checks: Sequence[Check], *, closed_only: bool = False) -> list[str]:
    """Aligned table rows (header first) for checks."""
    rows = [
        (
            c.result.value,
            c.reason.value if c.reason else "-",
            c.record.handoff_id,
            c.record.workflow_id or f"(standalone {c.record.activity_id})",
            c.record.target,
            c.detail or "-",
        )
        for c in checks
        if not closed_only or c.result is not CheckResult.OPEN
    ]
    return render_table(rows, header=_HEADER)


async def reconcile(
    config: HandshakeConfig,
    *,
    once: bool,
    out: TextIO = sys.stdout,
    connection: TemporalConnection | None = None,
) -> int:
    """One pass and a table, or passes every ``reconcile_interval`` printing what closed.

    Exit status 1 when a check could not reach Temporal or the ledger (``--once``).
    """
    if connection is None:
        connection = TemporalConnection(
            address=config.temporal_address, namespace=config.temporal_namespace
        )
    # Reconciling expects a ledger: a missing SQLite file is an error, never a new empty one.
    async with Handshake(config, registry=CollectorRegistry(), create_ledger=False) as handshake:
        client = await connect_temporal(connection, interceptors=[handshake.interceptor])
        reconciler = handshake.reconciler(client)
        if once:
            checks = await reconciler.reconcile_once()
            if checks:
                out.write("\n".join(format_checks(checks)) + "\n")
            reconciled = sum(c.result is CheckResult.RECONCILED for c in checks)
            out.write(f"{len(checks)} handoff(s) checked, {reconciled} reconciled\n")
            out.flush()
            return 1 if any(c.result is CheckResult.ERROR for c in checks) else 0
        stop = stop_event()
        interval = config.reconcile_interval.total_seconds()
        while not stop.is_set():
            checks = await reconciler.reconcile_once()
            for line in format_checks(checks, closed_only=True)[1:]:
                out.write(line + "\n")
            out.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        return 0
