"""A scrape served from another thread refreshes a stale pending snapshot on the event loop,
before anything is collected.

``prometheus_client.start_http_server`` (a worker's or the proxy's ``/metrics``) collects in
its own thread. The ledger belongs to the Handshake's event loop, so the refresh runs there
(``asyncio.run_coroutine_threadsafe``) and the thread waits for it, at most the scrape
refresh timeout and a little scheduling grace: a blocked or busy loop costs a scrape that
long, never more. A collect on the loop's own thread cannot wait for the loop; it serves the
last snapshot (an async ``/metrics`` handler awaits the refresh before it renders).

It is a collector that exports nothing, registered ahead of every other one of the
Handshake: the registry collects in the order of registration, so the counters of the same
scrape (a refresh error included) are read after the refresh, not before it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import structlog
from prometheus_client.metrics_core import Metric as MetricFamily
from prometheus_client.registry import Collector

from .._vocabulary import Component
from ._metrics import HandshakeMetrics
from ._pending_refresher import PendingGaugesRefresher

_log = structlog.get_logger("handshake_obs.pending_gauges")

#: How much longer than the refresh's own bound the thread waits for the loop to answer.
LOOP_GRACE_SECONDS: Final = 0.1


@dataclass(frozen=True, slots=True)
class _Running:
    refresher: PendingGaugesRefresher
    metrics: HandshakeMetrics
    timeout: float
    loop: asyncio.AbstractEventLoop
    loop_thread: int


class ScrapeThreadRefresh(Collector):
    """Refreshes a stale pending snapshot at the start of a scrape from another thread."""

    def __init__(self) -> None:
        self._running: _Running | None = None

    def start(
        self, refresher: PendingGaugesRefresher, *, metrics: HandshakeMetrics, timeout: float
    ) -> None:
        """From now on, refresh through ``refresher`` on the running event loop (the caller's)."""
        self._running = _Running(
            refresher, metrics, timeout, asyncio.get_running_loop(), threading.get_ident()
        )

    def stop(self) -> None:
        """Serve the last snapshot from now on (the ledger is about to close)."""
        self._running = None

    def describe(self) -> Iterable[MetricFamily]:
        return []

    def collect(self) -> Iterable[MetricFamily]:
        if (running := self._running) is not None:
            try:
                _refresh_if_stale(running)
            except Exception as err:  # noqa: BLE001 - a scrape is served whatever happened
                running.metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
                _log.warning("pending gauges not refreshed for a scrape", error=repr(err))
        return []


def _refresh_if_stale(running: _Running) -> None:
    if threading.get_ident() == running.loop_thread or not running.refresher.stale:
        return
    if running.loop.is_closed():
        return
    refreshing = running.refresher.refresh_if_stale(running.timeout)
    try:
        answer = asyncio.run_coroutine_threadsafe(refreshing, running.loop)
    except RuntimeError:  # the loop closed since the check above
        refreshing.close()
        return
    within = running.timeout + LOOP_GRACE_SECONDS
    try:
        answer.result(within)
    except (TimeoutError, concurrent.futures.CancelledError):
        # The loop did not run the refresh in time (blocked, busy, or shutting down).
        answer.cancel()
        running.metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
        _log.warning(
            "pending gauges not refreshed for a scrape: the event loop did not answer",
            within_seconds=within,
        )
