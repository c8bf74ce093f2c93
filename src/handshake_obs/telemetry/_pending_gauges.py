"""Gauges over what is pending, computed from the ledger and never from memory.

So they are right after a restart and agree across processes sharing one ledger.
``collect()`` serves the last snapshot (``prometheus_client`` calls it inside the HTTP
request, on the event loop when served by ASGI, where nothing may wait on the database);
:class:`~._pending_refresher.PendingGaugesRefresher` renews it in the background and, when
this process has counted a handoff the snapshot may not include, before a scrape: the async
handler awaits it first, and a scrape thread has it done on the event loop
(:mod:`._scrape_thread_refresh`). The snapshot's age and how many of this process's changes
it may miss are exported, so a stuck or failed refresh is visible rather than silently stale.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric as MetricFamily
from prometheus_client.registry import Collector

from .._records import PendingSummary
from .._vocabulary import OTHER_TARGET, Metric, Metrics
from ..config import HandshakeConfig
from ..ledger import age_bucket_labels
from ._pending_changes import PendingChanges

#: No snapshot yet: behind any count of changes, even none.
_NO_SNAPSHOT = -1


@dataclass(frozen=True, slots=True)
class _Snapshot:
    summaries: dict[str, PendingSummary]
    taken_at: float
    duration: float
    #: The count of this process's changes reached when the ledger query began.
    covers: int


class PendingGaugesCollector(Collector):
    """Serves the latest pending-handoff snapshot as gauges; never touches the ledger."""

    def __init__(self, config: HandshakeConfig, changes: PendingChanges) -> None:
        self._config = config
        self._changes = changes
        self._age_labels = age_bucket_labels(config.pending_age_bounds)
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def update(
        self,
        summaries: Sequence[PendingSummary],
        *,
        taken_at: float,
        duration: float,
        covers: int,
    ) -> None:
        """Replace the snapshot, which includes the first ``covers`` of this process's
        changes; targets outside the configured set merge into ``other``."""
        merged: dict[str, PendingSummary] = {}
        for summary in summaries:
            label = self._config.target_label(summary.target)
            previous = merged.get(label)
            merged[label] = summary if previous is None else _merge(previous, summary)
        with self._lock:
            self._snapshot = _Snapshot(merged, taken_at, duration, covers)

    @property
    def covers(self) -> int:
        """How many of this process's changes the snapshot includes (-1: no snapshot)."""
        with self._lock:
            return _NO_SNAPSHOT if self._snapshot is None else self._snapshot.covers

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
        behind = _family(Metrics.PENDING_SNAPSHOT_CHANGES_BEHIND)
        families: list[MetricFamily] = [pending, oldest, by_age, taken, took, behind]
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
        behind.add_metric([], max(0, self._changes.count - snapshot.covers))
        return families


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
