"""The counters and histograms of the handshake: the metric names are a contract.

Alert rules and dashboards query these names; ``docs/metrics.md`` documents each one. The
gauges computed from the ledger live in :mod:`._pending_gauges`; each handoff counted as
started or finished is noted in :attr:`HandshakeMetrics.pending_changes`, so that those gauges
know when they are behind these counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .._records import FinishedOutcome
from .._vocabulary import (
    OTHER_TARGET,
    RECONCILE_REASONS,
    CloseReason,
    Component,
    ErrorType,
    Metric,
    MetricKind,
    Metrics,
    Operation,
    Outcome,
    ReaperRun,
    ReconcilerRun,
)
from ..config import HandshakeConfig
from ._pending_changes import PendingChanges

#: Handoff start to outcome: 0.1 s to 24 h (async handoffs wait for people and batch jobs).
COMPLETION_LATENCY_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
    3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600,
)  # fmt: skip

#: One Temporal RPC on the completion path: milliseconds normally, the RPC timeout at worst.
RPC_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip

#: Reaped at minus deadline: up to one scan interval normally, more when Temporal is slow or
#: down. Bounds sit just past the usual intervals (1 s, 5 s) so that scan jitter does not
#: push a healthy reaper's p99 into the next bucket.
REAP_LAG_BUCKETS: tuple[float, ...] = (
    0.5, 1, 1.5, 2, 3, 5, 6, 7.5, 10, 15, 30, 60, 120, 300, 900, 3600,
)  # fmt: skip


def _label_names(metric: Metric, kind: MetricKind) -> list[str]:
    if metric.kind != kind:
        raise TypeError(f"{metric.name} is a {metric.kind}, not a {kind}")
    return [label.value for label in metric.labels]


def _counter(metric: Metric, registry: CollectorRegistry) -> Counter:
    return Counter(metric.name, metric.help, _label_names(metric, "counter"), registry=registry)


def _histogram(
    metric: Metric, registry: CollectorRegistry, buckets: tuple[float, ...]
) -> Histogram:
    return Histogram(
        metric.name,
        metric.help,
        _label_names(metric, "histogram"),
        buckets=buckets,
        registry=registry,
    )


def _gauge(metric: Metric, registry: CollectorRegistry) -> Gauge:
    return Gauge(metric.name, metric.help, _label_names(metric, "gauge"), registry=registry)


class HandshakeMetrics:
    """The handshake's counters and histograms, registered in one registry.

    Names, help texts and labels come from :class:`~handshake_obs._vocabulary.Metrics`; the
    label values from its enums.
    """

    def __init__(self, config: HandshakeConfig, *, registry: CollectorRegistry) -> None:
        self._config = config
        #: The handoffs counted as started or finished: what the pending gauges must include.
        self.pending_changes = PendingChanges()
        self.handoffs_started = _counter(Metrics.HANDOFFS_STARTED, registry)
        self.handoffs_finished = _counter(Metrics.HANDOFFS_FINISHED, registry)
        self.completion_latency = _histogram(
            Metrics.COMPLETION_LATENCY, registry, COMPLETION_LATENCY_BUCKETS
        )
        self.completion_errors = _counter(Metrics.COMPLETION_ERRORS, registry)
        self.completion_rpc_duration = _histogram(
            Metrics.COMPLETION_RPC_DURATION, registry, RPC_DURATION_BUCKETS
        )
        self.instrumentation_errors = _counter(Metrics.INSTRUMENTATION_ERRORS, registry)
        self.reaper_runs = _counter(Metrics.REAPER_RUNS, registry)
        self.reaper_last_success = _gauge(Metrics.REAPER_LAST_SUCCESS, registry)
        self.reap_lag = _histogram(Metrics.REAP_LAG, registry, REAP_LAG_BUCKETS)
        self.reconciled = _counter(Metrics.RECONCILED, registry)
        self.reconciler_runs = _counter(Metrics.RECONCILER_RUNS, registry)
        self.reconciler_last_success = _gauge(Metrics.RECONCILER_LAST_SUCCESS, registry)
        self.reconciler_temporal_calls = _counter(Metrics.RECONCILER_TEMPORAL_CALLS, registry)
        self._initialise_series()

    def _initialise_series(self) -> None:
        # Series that exist at zero make rate() and absent-free alerting work from the start.
        for target in sorted({*self._config.known_targets, OTHER_TARGET}):
            self.handoffs_started.labels(target)
            for outcome in Outcome:
                self.handoffs_finished.labels(target, outcome.value)
            for error_type in ErrorType:
                self.completion_errors.labels(target, error_type.value)
        for operation in Operation:
            self.completion_rpc_duration.labels(operation.value)
        for component in Component:
            self.instrumentation_errors.labels(component.value)
        for result in ReaperRun:
            self.reaper_runs.labels(result.value)
        for run in ReconcilerRun:
            self.reconciler_runs.labels(run.value)
        for target in sorted({*self._config.known_targets, OTHER_TARGET}):
            for reason in RECONCILE_REASONS:
                self.reconciled.labels(target, reason.value)

    def target_label(self, target: str | None) -> str:
        """Bounded label value of a target (``other`` when unknown or not configured)."""
        return OTHER_TARGET if target is None else self._config.target_label(target)

    def observe_started(self, target: str) -> None:
        """A handoff was recorded."""
        self.handoffs_started.labels(self.target_label(target)).inc()
        self.pending_changes.note()

    def observe_finished(
        self, finished: FinishedOutcome, *, exemplar: dict[str, str] | None = None
    ) -> None:
        """A handoff reached its outcome (called once per handoff, by whoever finished it).

        ``exemplar`` (``{"trace_id": ..., "span_id": ...}`` of the span that recorded the
        outcome) is attached to the latency observation; the OpenMetrics exposition shows it.
        """
        target = self.target_label(finished.record.target)
        outcome = finished.outcome.value
        self.handoffs_finished.labels(target, outcome).inc()
        self.completion_latency.labels(target, outcome).observe(finished.latency_seconds, exemplar)
        self.pending_changes.note()

    def observe_error(self, target: str | None, error_type: ErrorType) -> None:
        """A completion-path call failed."""
        self.completion_errors.labels(self.target_label(target), error_type.value).inc()

    def observe_rpc(self, operation: Operation, seconds: float) -> None:
        """One Temporal RPC took ``seconds``."""
        self.completion_rpc_duration.labels(operation.value).observe(seconds)

    def observe_reaper_run(self, *, succeeded: bool, at: float) -> None:
        """A reaper scan ended."""
        result = ReaperRun.SUCCESS if succeeded else ReaperRun.ERROR
        self.reaper_runs.labels(result.value).inc()
        if succeeded:
            self.reaper_last_success.set(at)

    def observe_reap_lag(self, seconds: float) -> None:
        """A handoff was reaped ``seconds`` after its deadline."""
        self.reap_lag.observe(max(0.0, seconds))

    def observe_instrumentation_error(self, component: Component) -> None:
        """handshake-obs's own instrumentation failed in ``component``."""
        self.instrumentation_errors.labels(component.value).inc()

    def observe_reconciled(self, target: str, reason: CloseReason) -> None:
        """The reconciler closed a handoff Temporal had closed, for ``reason``."""
        self.reconciled.labels(self.target_label(target), reason.value).inc()

    def observe_reconciler_run(self, *, succeeded: bool, at: float) -> None:
        """A reconciler pass ended."""
        result = ReconcilerRun.SUCCESS if succeeded else ReconcilerRun.ERROR
        self.reconciler_runs.labels(result.value).inc()
        if succeeded:
            self.reconciler_last_success.set(at)

    def observe_reconciler_call(self) -> None:
        """The reconciler made one Temporal call."""
        self.reconciler_temporal_calls.inc()
