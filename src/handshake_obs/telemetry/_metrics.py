"""The counters and histograms of the handshake: the metric names are a contract.

Alert rules and dashboards query these names; ``docs/metrics.md`` documents each one. The
gauges computed from the ledger live in :mod:`._pending_gauges`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .._records import FinishedOutcome
from .._vocabulary import OTHER_TARGET, ErrorType, Operation, Outcome
from ..config import HandshakeConfig

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

#: Results of a reaper scan.
REAPER_RESULTS: tuple[str, ...] = ("success", "error")

#: Parts of handshake-obs whose own failures are counted (the handshake goes on regardless).
INSTRUMENTATION_COMPONENTS: tuple[str, ...] = ("ledger", "pending_gauges")


class HandshakeMetrics:
    """The handshake's counters and histograms, registered in one registry."""

    def __init__(self, config: HandshakeConfig, *, registry: CollectorRegistry) -> None:
        self._config = config
        self.handoffs_started = Counter(
            "handshake_handoffs_started",
            "Handoffs recorded: activities that gave their task token away and completed "
            "asynchronously.",
            ["target"],
            registry=registry,
        )
        self.handoffs_finished = Counter(
            "handshake_handoffs_finished",
            "Handoffs that reached their one outcome.",
            ["target", "outcome"],
            registry=registry,
        )
        self.completion_latency = Histogram(
            "handshake_completion_latency_seconds",
            "Handoff start to its outcome, end to end.",
            ["target", "outcome"],
            buckets=COMPLETION_LATENCY_BUCKETS,
            registry=registry,
        )
        self.completion_errors = Counter(
            "handshake_completion_errors",
            "Calls on the completion path that did not do what they were asked, by error type.",
            ["target", "error_type"],
            registry=registry,
        )
        self.completion_rpc_duration = Histogram(
            "handshake_completion_rpc_duration_seconds",
            "One Temporal RPC of the completion path (each retry observed on its own).",
            ["operation"],
            buckets=RPC_DURATION_BUCKETS,
            registry=registry,
        )
        self.instrumentation_errors = Counter(
            "handshake_instrumentation_errors",
            "Failures inside handshake-obs's own instrumentation (the handshake went on).",
            ["component"],
            registry=registry,
        )
        self.reaper_runs = Counter(
            "handshake_reaper_runs",
            "Reaper scans, by result (error: the ledger or Temporal could not be reached).",
            ["result"],
            registry=registry,
        )
        self.reaper_last_success = Gauge(
            "handshake_reaper_last_success_timestamp_seconds",
            "When a reaper scan last succeeded (0 before the first).",
            registry=registry,
        )
        self.reap_lag = Histogram(
            "handshake_reap_lag_seconds",
            "How long after its deadline a handoff was reaped.",
            buckets=REAP_LAG_BUCKETS,
            registry=registry,
        )
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
        for component in INSTRUMENTATION_COMPONENTS:
            self.instrumentation_errors.labels(component)
        for result in REAPER_RESULTS:
            self.reaper_runs.labels(result)

    def target_label(self, target: str | None) -> str:
        """Bounded label value of a target (``other`` when unknown or not configured)."""
        return OTHER_TARGET if target is None else self._config.target_label(target)

    def observe_started(self, target: str) -> None:
        """A handoff was recorded."""
        self.handoffs_started.labels(self.target_label(target)).inc()

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

    def observe_error(self, target: str | None, error_type: ErrorType) -> None:
        """A completion-path call failed."""
        self.completion_errors.labels(self.target_label(target), error_type.value).inc()

    def observe_rpc(self, operation: Operation, seconds: float) -> None:
        """One Temporal RPC took ``seconds``."""
        self.completion_rpc_duration.labels(operation.value).observe(seconds)

    def observe_reaper_run(self, *, succeeded: bool, at: float) -> None:
        """A reaper scan ended."""
        self.reaper_runs.labels("success" if succeeded else "error").inc()
        if succeeded:
            self.reaper_last_success.set(at)

    def observe_reap_lag(self, seconds: float) -> None:
        """A handoff was reaped ``seconds`` after its deadline."""
        self.reap_lag.observe(max(0.0, seconds))

    def observe_instrumentation_error(self, component: str) -> None:
        """handshake-obs's own instrumentation failed in ``component``."""
        self.instrumentation_errors.labels(component).inc()
