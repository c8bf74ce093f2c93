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
    cannot reach a log line by accident.
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
