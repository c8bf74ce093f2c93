"""``handshake-obs reap``: one scan (``--once``) or a reaper loop, printing what it reaped."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from prometheus_client import CollectorRegistry
from temporalio.client import Client

from .._errors import ConfigurationError
from .._handshake import Handshake
from .._vocabulary import ReapStatus
from ..completion._reaper import ReapResult
from ..config import HandshakeConfig

_COLUMNS = ("RESULT", "HANDOFF", "WORKFLOW", "TARGET", "AGE")


def format_results(results: Sequence[ReapResult]) -> list[str]:
    """Aligned table rows (header first) for reap results."""
    rows = [_COLUMNS] + [
        (
            r.result,
            r.record.handoff_id,
            r.record.workflow_id,
            r.record.target,
            _format_age(r.age_seconds),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


async def run_reap(config: HandshakeConfig, *, once: bool, out: TextIO = sys.stdout) -> int:
    """Reap once and print a table, or keep reaping and print each scan's results."""
    async with Handshake(config, registry=CollectorRegistry()) as handshake:
        try:
            client = await Client.connect(
                config.temporal_address,
                namespace=config.temporal_namespace,
                interceptors=[handshake.interceptor],
            )
        except RuntimeError as err:
            raise ConfigurationError(
                f"cannot reach Temporal at {config.temporal_address}: {err}"
            ) from err
        reaper = handshake.reaper(client)
        if once:
            results = await reaper.reap_once()
            if results:
                out.write("\n".join(format_results(results)) + "\n")
            out.write(f"{sum(r.result is ReapStatus.REAPED for r in results)} handoff(s) reaped\n")
            out.flush()
            return 1 if any(r.result is ReapStatus.ERROR for r in results) else 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        interval = config.reaper_interval.total_seconds()
        while not stop.is_set():
            results = await reaper.reap_once()
            for line in format_results(results)[1:]:
                out.write(line + "\n")
            out.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        return 0


def _format_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"
