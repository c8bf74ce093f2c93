"""What the ledger keeps of a handoff, and what its operations report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._vocabulary import HandoffEventKind, Outcome, State


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    """One handoff as the ledger keeps it.

    ``task_token`` is the bearer credential Temporal issued for this attempt: it is stored so
    that a completion by handoff id can be made, and it is excluded from ``repr`` so that it
    cannot reach a log line by accident. Once the handoff has finished the ledger no longer
    keeps it: a finished record read back has an empty ``task_token`` (its fingerprint and,
    in the ledger, its digest stay).
    """

    handoff_id: str
    task_token: bytes
    token_fingerprint: str
    namespace: str
    workflow_id: str
    run_id: str
    activity_id: str
    activity_type: str
    attempt: int
    target: str
    started_at: float
    deadline: float | None
    state: State = State.PENDING
    outcome: Outcome | None = None
    finished_at: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    progress: Any = None
    progress_sequence: int | None = None
    progress_at: float | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    #: Run id of a standalone activity (one started by ``Client.start_activity``, with no
    #: workflow); None for an activity of a workflow.
    activity_run_id: str | None = None
    #: Temporal's own timeouts of this attempt, as the worker saw them (seconds; None: not
    #: set), and the times they count from: what tells when Temporal itself closes it.
    scheduled_at: float | None = None
    attempt_started_at: float | None = None
    schedule_to_close_timeout: float | None = None
    start_to_close_timeout: float | None = None
    heartbeat_timeout: float | None = None

    def __repr__(self) -> str:
        return (
            f"HandoffRecord(handoff_id={self.handoff_id!r}, "
            f"token_fingerprint={self.token_fingerprint!r}, workflow_id={self.workflow_id!r}, "
            f"activity_id={self.activity_id!r}, attempt={self.attempt}, target={self.target!r}, "
            f"state={self.state.value!r}, outcome={self.outcome and self.outcome.value!r})"
        )

    @property
    def is_pending(self) -> bool:
        """Whether the handoff still waits for its outcome."""
        return self.state is State.PENDING

    @property
    def is_standalone(self) -> bool:
        """Whether the activity runs without a workflow (``Client.start_activity``)."""
        return not self.workflow_id and self.activity_run_id is not None

    @property
    def temporal_closes_at(self) -> float | None:
        """When Temporal itself closes this attempt at the latest, whatever happens to the
        handoff: its start-to-close or schedule-to-close timeout, whichever comes first
        (None: neither is known). A heartbeat timeout may close it earlier."""
        ends = []
        if self.start_to_close_timeout and self.attempt_started_at is not None:
            ends.append(self.attempt_started_at + self.start_to_close_timeout)
        if self.schedule_to_close_timeout and self.scheduled_at is not None:
            ends.append(self.scheduled_at + self.schedule_to_close_timeout)
        return min(ends, default=None)


@dataclass(frozen=True, slots=True)
class HandoffEvent:
    """One entry of a handoff's timeline, written by the ledger rule that did it."""

    handoff_id: str
    at: float
    kind: HandoffEventKind
    #: What else there is to say (a heartbeat's sequence and progress, an outcome's reason),
    #: as JSON-compatible values.
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FinishedOutcome:
    """What a call recorded when it finished a handoff (the only call that did)."""

    record: HandoffRecord
    outcome: Outcome
    finished_at: float

    @property
    def latency_seconds(self) -> float:
        """Handoff start to this outcome."""
        return max(0.0, self.finished_at - self.record.started_at)


@dataclass(frozen=True, slots=True)
class PendingSummary:
    """Pending handoffs of one target, as the scrape-time gauges show them."""

    target: str
    pending: int
    oldest_started_at: float | None
    by_age: dict[str, int]


@dataclass(frozen=True, slots=True)
class CallIntent:
    """What a finishing call is about to tell Temporal, written before it does: the outcome
    it records if Temporal accepts (kept with its mark, so that a call whose final write
    failed, or whose process died, is still recorded as what it did)."""

    outcome: Outcome
    error_type: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class CallFailure:
    """A completion-path call Temporal did not take, for the handoff's timeline."""

    operation: str
    error_type: str
    at: float
