"""The vocabulary of handshake-obs: every word the ledger, metrics, logs, spans, API, alert
rules and dashboards share, defined here and only here.

Every label value handshake-obs exports comes from one of the fixed sets below (or from the
configured targets), which keeps the metrics' cardinality bounded. ``alerts/rules.py`` and
``dashboards/build.py`` build their queries from these names, so a renamed metric or outcome
cannot leave a dead query behind.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

# -- the life of a handoff ------------------------------------------------------------------


class State(enum.StrEnum):
    """Where a handoff is in its life."""

    PENDING = "pending"
    FINISHED = "finished"


class Outcome(enum.StrEnum):
    """How a handoff ended: exactly one per handoff."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    REAPED = "reaped"
    ALREADY_CLOSED = "already_closed"
    ABORTED = "aborted"


#: Outcomes that mean the work did not get done (alerts call their share the failure ratio).
UNSUCCESSFUL_OUTCOMES: Final = frozenset(
    {Outcome.FAILED, Outcome.REAPED, Outcome.ALREADY_CLOSED, Outcome.ABORTED}
)


class HandoffEventKind(enum.StrEnum):
    """What a handoff's timeline records (the ledger writes each in the rule that did it)."""

    RECORDED = "recorded"
    HEARTBEAT = "heartbeat"
    #: A progress report older than the one kept (its sequence not above): not kept.
    HEARTBEAT_IGNORED = "heartbeat_ignored"
    DEADLINE_SET = "deadline_set"
    #: A completion-path call Temporal did not take (unavailable, rejected, ...): the
    #: handoff stays pending.
    CALL_FAILED = "call_failed"
    FINISHED = "finished"


class CloseReason(enum.StrEnum):
    """Why a handoff ended ``already_closed``: what showed that Temporal had closed it.

    Kept as the handoff's ``error_type`` in the ledger, so an operator can tell a retried
    attempt from a call that found the activity gone.
    """

    #: A newer attempt of the same activity was recorded: Temporal closed this one.
    SUPERSEDED = "superseded"
    #: A completion-path call got NOT_FOUND from Temporal.
    NOT_FOUND = "already_closed"
    #: The reconciler found the attempt completed outside handshake-obs (the ``temporal``
    #: CLI, another SDK's client, a plain client with the raw token).
    COMPLETED_ELSEWHERE = "completed_elsewhere"
    #: The reconciler found the attempt failed outside handshake-obs.
    FAILED_ELSEWHERE = "failed_elsewhere"
    #: The reconciler found the attempt's cancellation reported outside handshake-obs.
    CANCELED_ELSEWHERE = "canceled_elsewhere"
    #: Temporal's own timeout of the attempt (start-to-close, schedule-to-close, heartbeat)
    #: closed it.
    ACTIVITY_TIMED_OUT = "activity_timed_out"
    #: The workflow closed (terminated, canceled, completed, failed, timed out, continued as
    #: new, or is gone) while the attempt was open; its status is the handoff's message.
    WORKFLOW_CLOSED = "workflow_closed"


#: Close reasons the reconciler records (label ``reason`` of the reconciled counter).
RECONCILE_REASONS: Final = (
    CloseReason.COMPLETED_ELSEWHERE,
    CloseReason.FAILED_ELSEWHERE,
    CloseReason.CANCELED_ELSEWHERE,
    CloseReason.ACTIVITY_TIMED_OUT,
    CloseReason.WORKFLOW_CLOSED,
    CloseReason.SUPERSEDED,
    CloseReason.NOT_FOUND,
)


class WorkflowCloseStatus(enum.StrEnum):
    """How a workflow ended, as a ``workflow_closed`` handoff's message names it."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    CONTINUED_AS_NEW = "continued_as_new"
    #: Temporal no longer knows the workflow (deleted, or past its retention).
    NOT_FOUND = "not_found"


class Operation(enum.StrEnum):
    """A call on the completion path, as labelled on the RPC duration histogram."""

    COMPLETE = "complete"
    FAIL = "fail"
    HEARTBEAT = "heartbeat"
    REPORT_CANCELLATION = "report_cancellation"
    #: The reaper failing a handoff past its deadline.
    REAP = "reap"


#: The outcome a successful call of each operation records (a heartbeat records none).
OUTCOME_OF_OPERATION: Final[dict[Operation, Outcome]] = {
    Operation.COMPLETE: Outcome.COMPLETED,
    Operation.FAIL: Outcome.FAILED,
    Operation.REPORT_CANCELLATION: Outcome.CANCELED,
    Operation.REAP: Outcome.REAPED,
}


class ErrorType(enum.StrEnum):
    """Why a call on the completion path did not do what it was asked.

    Each :class:`~handshake_obs.HandshakeError` subclass carries one of these
    (``error.error_type``); the metric ``handshake_completion_errors_total`` counts them.
    """

    ALREADY_CLOSED = "already_closed"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a label value, not a secret
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    UNKNOWN_HANDOFF = "unknown_handoff"
    ALREADY_FINISHED = "already_finished"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    DEADLINE_IN_PAST = "deadline_in_past"
    #: A deadline asked for past the moment Temporal itself closes the activity attempt.
    DEADLINE_PAST_TEMPORAL_TIMEOUT = "deadline_past_temporal_timeout"
    OTHER = "other"


class ReapStatus(enum.StrEnum):
    """What happened to one expired handoff in a reaper scan."""

    REAPED = "reaped"
    #: Temporal had closed the activity already (completed elsewhere, timed out, retried).
    ALREADY_CLOSED = "already_closed"
    #: Another caller recorded the outcome first.
    ALREADY_FINISHED = "already_finished"
    #: Temporal or the ledger could not be reached: left for the next scan.
    ERROR = "error"


class ReaperRun(enum.StrEnum):
    """Result of one reaper scan (label ``result``)."""

    SUCCESS = "success"
    ERROR = "error"


class ReconcilerRun(enum.StrEnum):
    """Result of one reconciler pass (label ``result``)."""

    SUCCESS = "success"
    ERROR = "error"


class Component(enum.StrEnum):
    """Parts of handshake-obs whose own failures are counted (label ``component``)."""

    LEDGER = "ledger"
    PENDING_GAUGES = "pending_gauges"


#: ``ApplicationError`` type a workflow sees for a handoff the reaper failed at its deadline.
DEADLINE_EXCEEDED_TYPE: Final = "HandoffDeadlineExceeded"
#: ``ApplicationError`` type a workflow sees for a handoff an operator failed by hand.
OPERATOR_FAILURE_TYPE: Final = "HandoffFailedByOperator"
#: ``ApplicationError`` type of an attempt the proxy failed because its handoff could not be
#: recorded (the ledger was unavailable): retryable, so Temporal tries it again.
NOT_RECORDED_TYPE: Final = "HandoffNotRecorded"
#: Header key of the trace context that the SDKs' OpenTelemetry interceptors put on an
#: activity task (Python ``TracingInterceptor``, TypeScript interceptors-opentelemetry).
TRACER_HEADER: Final = "_tracer-data"

#: Label value of any target that is not configured: keeps cardinality bounded.
OTHER_TARGET: Final = "other"

# -- metrics ----------------------------------------------------------------------------------

MetricKind = Literal["counter", "gauge", "histogram"]


class Label(enum.StrEnum):
    """Label names of handshake-obs's metrics."""

    TARGET = "target"
    OUTCOME = "outcome"
    ERROR_TYPE = "error_type"
    OPERATION = "operation"
    COMPONENT = "component"
    RESULT = "result"
    AGE = "age"
    REASON = "reason"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family: its name (as registered), kind, labels and help text."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[Label, ...] = ()

    @property
    def series(self) -> str:
        """The name queries use: counters are exposed with ``_total``."""
        return f"{self.name}_total" if self.kind == "counter" else self.name

    @property
    def bucket(self) -> str:
        """A histogram's ``_bucket`` series."""
        return self._histogram_part("bucket")

    @property
    def count(self) -> str:
        """A histogram's ``_count`` series."""
        return self._histogram_part("count")

    @property
    def sum(self) -> str:
        """A histogram's ``_sum`` series."""
        return self._histogram_part("sum")

    def _histogram_part(self, part: str) -> str:
        if self.kind != "histogram":
            raise TypeError(f"{self.name} is a {self.kind}, not a histogram")
        return f"{self.name}_{part}"


class Metrics:
    """Every metric handshake-obs exports (``docs/metrics.md`` documents each)."""

    HANDOFFS_STARTED: Final = Metric(
        "handshake_handoffs_started",
        "counter",
        "Handoffs recorded: activities that gave their task token away and completed "
        "asynchronously.",
        (Label.TARGET,),
    )
    HANDOFFS_FINISHED: Final = Metric(
        "handshake_handoffs_finished",
        "counter",
        "Handoffs that reached their one outcome.",
        (Label.TARGET, Label.OUTCOME),
    )
    COMPLETION_LATENCY: Final = Metric(
        "handshake_completion_latency_seconds",
        "histogram",
        "Handoff start to its outcome, end to end.",
        (Label.TARGET, Label.OUTCOME),
    )
    COMPLETION_ERRORS: Final = Metric(
        "handshake_completion_errors",
        "counter",
        "Calls on the completion path that did not do what they were asked, by error type.",
        (Label.TARGET, Label.ERROR_TYPE),
    )
    COMPLETION_RPC_DURATION: Final = Metric(
        "handshake_completion_rpc_duration_seconds",
        "histogram",
        "One Temporal RPC of the completion path (each retry observed on its own).",
        (Label.OPERATION,),
    )
    INSTRUMENTATION_ERRORS: Final = Metric(
        "handshake_instrumentation_errors",
        "counter",
        "Failures inside handshake-obs's own instrumentation (the handshake went on).",
        (Label.COMPONENT,),
    )
    REAPER_RUNS: Final = Metric(
        "handshake_reaper_runs",
        "counter",
        "Reaper scans, by result (error: the ledger or Temporal could not be reached).",
        (Label.RESULT,),
    )
    REAPER_LAST_SUCCESS: Final = Metric(
        "handshake_reaper_last_success_timestamp_seconds",
        "gauge",
        "When a reaper scan last succeeded (0 before the first).",
    )
    REAP_LAG: Final = Metric(
        "handshake_reap_lag_seconds",
        "histogram",
        "How long after its deadline a handoff was reaped.",
    )
    RECONCILED: Final = Metric(
        "handshake_reconciled",
        "counter",
        "Pending handoffs the reconciler found closed in Temporal, by close reason.",
        (Label.TARGET, Label.REASON),
    )
    RECONCILER_RUNS: Final = Metric(
        "handshake_reconciler_runs",
        "counter",
        "Reconciler passes, by result (error: the ledger or Temporal could not be reached).",
        (Label.RESULT,),
    )
    RECONCILER_LAST_SUCCESS: Final = Metric(
        "handshake_reconciler_last_success_timestamp_seconds",
        "gauge",
        "When a reconciler pass last succeeded (0 before the first).",
    )
    RECONCILER_TEMPORAL_CALLS: Final = Metric(
        "handshake_reconciler_temporal_calls",
        "counter",
        "Temporal calls the reconciler made (its budget bounds their rate).",
    )
    PENDING: Final = Metric(
        "handshake_pending_handoffs",
        "gauge",
        "Handoffs waiting for their outcome, from the ledger.",
        (Label.TARGET,),
    )
    OLDEST_PENDING: Final = Metric(
        "handshake_oldest_pending_handoff_timestamp_seconds",
        "gauge",
        "Start time of the oldest pending handoff (absent when none is pending); "
        "alert on time() minus this.",
        (Label.TARGET,),
    )
    PENDING_BY_AGE: Final = Metric(
        "handshake_pending_handoffs_by_age",
        "gauge",
        "Pending handoffs by age range (disjoint ranges; they add up to the pending count).",
        (Label.TARGET, Label.AGE),
    )
    PENDING_SNAPSHOT_TIMESTAMP: Final = Metric(
        "handshake_pending_snapshot_timestamp_seconds",
        "gauge",
        "When the pending-handoff gauges were last computed from the ledger.",
    )
    PENDING_SNAPSHOT_DURATION: Final = Metric(
        "handshake_pending_snapshot_duration_seconds",
        "gauge",
        "How long the last ledger summary query took.",
    )
    PENDING_SNAPSHOT_CHANGES_BEHIND: Final = Metric(
        "handshake_pending_snapshot_changes_behind",
        "gauge",
        "Handoffs this process counted as started or finished that the pending gauges may "
        "not include (0: they agree with its counters).",
    )

    @classmethod
    def all(cls) -> tuple[Metric, ...]:
        """Every metric, in the order above."""
        return tuple(v for v in vars(cls).values() if isinstance(v, Metric))


# -- where the project's documents are published --------------------------------------------

#: Where ``docs/runbook.md`` is published: alerts and the handoff page link to its sections
#: (``#<alert name in lower case>``) unless a setting names another copy.
PUBLISHED_RUNBOOK_URL: Final = (
    "https://github.com/handshake-obs/handshake-obs/blob/main/docs/runbook.md"
)
