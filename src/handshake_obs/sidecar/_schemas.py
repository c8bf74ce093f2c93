"""Request and response bodies of the HTTP API (the OpenAPI spec is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Error types a caller may report: a short identifier, as Temporal shows it to workflows.
ERROR_TYPE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompleteBody(_Strict):
    """Complete the activity with this result (any JSON value)."""

    result: Any = None


class FailBody(_Strict):
    """Fail the activity with a typed error the workflow can handle."""

    error_type: str = Field(pattern=ERROR_TYPE_PATTERN, examples=["PaymentDeclined"])
    message: str = Field(min_length=1, max_length=4096)
    details: list[Any] = Field(default_factory=list, max_length=32)
    non_retryable: bool = False


class HeartbeatBody(_Strict):
    """Report progress; with ``sequence``, an older report than the one kept is ignored."""

    progress: Any = None
    sequence: int | None = Field(default=None, ge=0, le=2**62)


class CancelBody(_Strict):
    """Report that the activity accepted its cancellation (the workflow requested it: a
    heartbeat answered ``cancel_requested``), with optional details (any JSON values)."""

    details: list[Any] = Field(default_factory=list, max_length=32)


class ExtendBody(_Strict):
    """Move the deadline: to ``deadline`` (with a timezone), or ``extend_by_seconds`` from now."""

    deadline: datetime | None = None
    extend_by_seconds: float | None = Field(default=None, gt=0, le=366 * 86400)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.deadline is None) == (self.extend_by_seconds is None):
            raise ValueError("give exactly one of deadline and extend_by_seconds")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise ValueError("deadline needs a timezone (e.g. 2026-11-23T12:00:00Z)")
        return self


class OperatorFailBody(_Strict):
    """Fail a stuck handoff now, saying why."""

    reason: str = Field(min_length=1, max_length=1024)
    non_retryable: bool = True


#: Standard or URL-safe base64, padding optional.
BASE64_PATTERN = r"^[A-Za-z0-9+/_\-]+={0,2}$"


class _WithToken(_Strict):
    task_token: str = Field(
        min_length=4,
        max_length=8192,
        pattern=BASE64_PATTERN,
        description="The activity's task token, base64.",
    )


class TokenCompleteBody(_WithToken, CompleteBody):
    """Complete by raw task token."""


class TokenFailBody(_WithToken, FailBody):
    """Fail by raw task token."""


class TokenHeartbeatBody(_WithToken, HeartbeatBody):
    """Heartbeat by raw task token."""


class TokenCancelBody(_WithToken, CancelBody):
    """Report the cancellation by raw task token."""


class TokenExtendBody(_WithToken, ExtendBody):
    """Extend by raw task token."""


class Links(BaseModel):
    """Where to look further."""

    temporal_ui: str
    trace: str | None


class HandoffView(BaseModel):
    """One handoff as the API shows it: never with its task token."""

    handoff_id: str
    token_fingerprint: str
    namespace: str
    workflow_id: str
    run_id: str
    activity_id: str
    activity_type: str
    attempt: int
    target: str
    state: str
    outcome: str | None
    started_at: datetime
    deadline: datetime | None
    finished_at: datetime | None
    age_seconds: float
    error_type: str | None
    error_message: str | None
    #: Why an ``already_closed`` handoff closed: ``already_closed`` (a call got NOT_FOUND),
    #: ``superseded``, or what the reconciler saw in Temporal (``completed_elsewhere``,
    #: ``failed_elsewhere``, ``canceled_elsewhere``, ``activity_timed_out``,
    #: ``workflow_closed``). None for any other outcome, and while pending.
    close_reason: str | None = Field(default=None, examples=["completed_elsewhere"])
    #: When Temporal's own start-to-close or schedule-to-close timeout closes the attempt
    #: (None: not known); ``extend`` refuses a deadline past it.
    temporal_closes_at: datetime | None = None
    #: Run id of a standalone activity (no workflow); None for a workflow's activity.
    activity_run_id: str | None = None
    progress: Any = None
    progress_sequence: int | None
    traceparent: str | None
    links: Links


class HeartbeatView(BaseModel):
    """How a progress report was kept."""

    accepted: bool
    sequence: int


class CallView(BaseModel):
    """The result of a completion-path call."""

    operation: str
    handoff: HandoffView | None
    heartbeat: HeartbeatView | None = None
    #: For complete / fail / cancel: the outcome Temporal accepted, whether or not the
    #: ledger has it yet.
    outcome: str | None = None
    #: True when Temporal accepted the call but the ledger could not take its outcome yet:
    #: ``handoff`` still shows it pending; the outcome is recorded in the background once
    #: the ledger is writable (never as ``already_closed``). Nothing to retry.
    recording_delayed: bool = False
    #: Heartbeats: Temporal answered that the activity should stop (the workflow requested
    #: its cancellation, or the activity was paused or reset). Stop the work and report it
    #: with ``POST /v1/handoffs/{id}/cancel``. Always false for other operations.
    cancel_requested: bool = Field(
        default=False,
        description=(
            "Heartbeats: the activity's cancellation was requested (or it was paused or "
            "reset). Stop the work and report it with POST /v1/handoffs/{id}/cancel."
        ),
    )


class HandoffPage(BaseModel):
    """One page of the inventory."""

    items: list[HandoffView]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str
    message: str
    #: Only for ``internal_error``: the id of the log line that says what happened.
    correlation_id: str | None = None


class ErrorBody(BaseModel):
    """Every error the API answers with."""

    error: ErrorDetail


class Health(BaseModel):
    """Liveness or readiness, with what was checked."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)
