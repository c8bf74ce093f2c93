"""Renewing the pending snapshot from the ledger: in the background, and before a scrape.

The background refresh every ``metrics_refresh_interval`` catches what other processes
sharing the ledger did. What this process did must not wait for it: its counters move at
once, so a scrape whose snapshot is behind them (:class:`~._pending_changes.PendingChanges`)
first refreshes it, within ``metrics_scrape_refresh_timeout``. One refresh runs at a time, so
a slower, older query never replaces a newer snapshot, and scrapes that arrive together share
the one that brings the snapshot up to all of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from .._periodic import PeriodicTask
from .._vocabulary import Component
from ..config import HandshakeConfig
from ..ledger import Ledger
from ._metrics import HandshakeMetrics
from ._pending_gauges import PendingGaugesCollector

_log = structlog.get_logger("handshake_obs.pending_gauges")


class PendingGaugesRefresher:
    """Renews a :class:`PendingGaugesCollector` from the ledger every interval, and on
    demand when a scrape finds it behind this process's counters."""

    def __init__(
        self,
        collector: PendingGaugesCollector,
        ledger: Ledger,
        config: HandshakeConfig,
        *,
        metrics: HandshakeMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._collector = collector
        self._ledger = ledger
        self._config = config
        self._metrics = metrics
        self._changes = metrics.pending_changes
        self._clock = clock
        self._one_at_a_time = asyncio.Lock()
        self._running = False
        self._loop = PeriodicTask(
            self.refresh,
            interval=config.metrics_refresh_interval.total_seconds(),
            name="handshake-pending-gauges",
        )

    @property
    def stale(self) -> bool:
        """Whether this process counted a change the snapshot may not include."""
        return self._collector.covers < self._changes.count

    async def refresh(self) -> None:
        """Compute one snapshot now; failures are logged and counted, never raised."""
        async with self._one_at_a_time:
            await self._compute()

    async def refresh_if_stale(self, timeout: float) -> bool:
        """Bring the snapshot up to every change this process counted before the call,
        waiting at most ``timeout`` seconds; never raises.

        True when the snapshot includes them; False when the refresh failed, timed out or the
        refresher is not running (the last snapshot stays, and says how far behind it is).
        """
        wanted = self._changes.count
        if self._collector.covers >= wanted:
            return True
        if not self._running:
            return False
        try:
            async with asyncio.timeout(timeout):
                async with self._one_at_a_time:
                    # A refresh that ran while this one waited may have covered it already;
                    # a stop while it waited closes the ledger.
                    if self._collector.covers >= wanted:
                        return True
                    return self._running and await self._compute()
        except TimeoutError:
            self._metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
            _log.warning("pending gauges not refreshed for a scrape", within_seconds=timeout)
            return False

    async def _compute(self) -> bool:
        # Counted before the query: every change noted so far is committed, so it is included.
        covers = self._changes.count
        now = self._clock()
        started = time.perf_counter()
        interval = self._config.metrics_refresh_interval.total_seconds()
        try:
            async with asyncio.timeout(max(interval * 4, 5.0)):
                summaries = await self._ledger.pending_summary(now, self._config.pending_age_bounds)
        except Exception as err:  # noqa: BLE001 - telemetry never breaks the host
            self._metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
            _log.warning("pending gauges refresh failed", error=repr(err))
            return False
        self._collector.update(
            summaries, taken_at=now, duration=time.perf_counter() - started, covers=covers
        )
        return True

    def start(self) -> None:
        """Refresh in the background, and for scrapes, until :meth:`stop`."""
        self._running = True
        self._loop.start()

    async def stop(self) -> None:
        """Stop refreshing; returns once no refresh is running (a scrape's is bounded)."""
        self._running = False
        await self._loop.stop()
        async with self._one_at_a_time:
            pass
