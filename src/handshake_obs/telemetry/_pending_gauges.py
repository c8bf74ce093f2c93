"""Gauges over what is pending, computed from the ledger and never from memory.

So they are right after a restart and agree across processes sharing one ledger. A scrape
must never wait on the database (``prometheus_client`` calls ``collect()`` inside the HTTP
request, on the event loop when served by ASGI), so ``collect()`` serves the last snapshot,
and :class:`PendingGaugesRefresher` renews it in the background. The snapshot's own age is
exported, so a stuck refresh is visible rather than silently stale.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric as MetricFamily
from prometheus_client.registry import Collector

from .._periodic import PeriodicTask
from .._records import PendingSummary
from .._vocabulary import OTHER_TARGET, Component, Metric, Metrics
from ..config import HandshakeConfig
from ..ledger import Ledger, age_bucket_labels
from ._metrics import HandshakeMetrics

_log = structlog.get_logger("handshake_obs.pending_gauges")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    summaries: dict[str, PendingSummary]
    taken_at: float
    duration: float


class PendingGaugesCollector(Collector):
    """Serves the latest pending-handoff snapshot as gauges; never touches the ledger."""

    def __init__(self, config: HandshakeConfig) -> None:
        self._config = config
        self._age_labels = age_bucket_labels(config.pending_age_bounds)
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def update(
        self, summaries: Sequence[PendingSummary], *, taken_at: float, duration: float
    ) -> None:
        """Replace the snapshot; targets outside the configured set merge into ``other``."""
        merged: dict[str, PendingSummary] = {}
        for summary in summaries:
            label = self._config.target_label(summary.target)
            previous = merged.get(label)
            merged[label] = summary if previous is None else _merge(previous, summary)
        with self._lock:
            self._snapshot = _Snapshot(merged, taken_at, duration)

    def describe(self) -> Iterable[MetricFamily]:
        # Registering the collector must not compute anything.
        return self._families()

    def collect(self) -> Iterable[MetricFamily]:
        with self._lock:
            snapshot = self._snapshot
        return self._families(snapshot)

    def _families(self, snapshot: _Snapshot | None = None) -> list[MetricFamily]:
        pending = _family(Metrics.PENDING)
        oldest = _family(Metrics.OLDEST_PENDING)
        by_age = _family(Metrics.PENDING_BY_AGE)
        taken = _family(Metrics.PENDING_SNAPSHOT_TIMESTAMP)
        took = _family(Metrics.PENDING_SNAPSHOT_DURATION)
        families: list[MetricFamily] = [pending, oldest, by_age, taken, took]
        if snapshot is None:
            return families
        targets = sorted({*self._config.known_targets, *snapshot.summaries})
        for target in targets:
            summary = snapshot.summaries.get(target)
            pending.add_metric([target], summary.pending if summary else 0)
            if summary is not None and summary.oldest_started_at is not None:
                oldest.add_metric([target], summary.oldest_started_at)
            for age in self._age_labels:
                by_age.add_metric([target, age], summary.by_age.get(age, 0) if summary else 0)
        taken.add_metric([], snapshot.taken_at)
        took.add_metric([], snapshot.duration)
        return families


class PendingGaugesRefresher:
    """Renews a :class:`PendingGaugesCollector` from the ledger every interval."""

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
        self._clock = clock
        self._loop = PeriodicTask(
            self.refresh,
            interval=config.metrics_refresh_interval.total_seconds(),
            name="handshake-pending-gauges",
        )

    async def refresh(self) -> None:
        """Compute one snapshot now; failures are logged and counted, never raised."""
        now = self._clock()
        started = time.perf_counter()
        interval = self._config.metrics_refresh_interval.total_seconds()
        try:
            async with asyncio.timeout(max(interval * 4, 5.0)):
                summaries = await self._ledger.pending_summary(now, self._config.pending_age_bounds)
        except Exception as err:  # noqa: BLE001 - telemetry never breaks the host
            self._metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
            _log.warning("pending gauges refresh failed", error=repr(err))
            return
        self._collector.update(summaries, taken_at=now, duration=time.perf_counter() - started)

    def start(self) -> None:
        """Refresh in the background until :meth:`stop`."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop refreshing."""
        await self._loop.stop()


def _family(metric: Metric) -> GaugeMetricFamily:
    if metric.kind != "gauge":
        raise TypeError(f"{metric.name} is a {metric.kind}, not a gauge")
    return GaugeMetricFamily(
        metric.name, metric.help, labels=[label.value for label in metric.labels]
    )


def _merge(a: PendingSummary, b: PendingSummary) -> PendingSummary:
    oldest = [t for t in (a.oldest_started_at, b.oldest_started_at) if t is not None]
    return PendingSummary(
        target=OTHER_TARGET,
        pending=a.pending + b.pending,
        oldest_started_at=min(oldest) if oldest else None,
        by_age={k: a.by_age.get(k, 0) + b.by_age.get(k, 0) for k in {*a.by_age, *b.by_age}},
    )
