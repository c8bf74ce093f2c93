"""The explicit handoff: ``async with handoff(target=...) as h:`` inside an activity.

The record is stored before the body runs, so the token (or the handoff id that stands for
it) only leaves the process once the ledger has it. A clean exit completes the activity
asynchronously; an exception marks the handoff aborted and propagates, so the attempt fails
as it would have without handshake-obs.

The body runs inside the handoff's span (a child of the activity's span): what it does to hand
over is traced under it, and ``Handoff.traceparent`` is that span's context, for the external
system to continue the trace.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType

from temporalio import activity

from .._errors import NotInActivityError
from .._records import HandoffRecord
from ..telemetry._tracing import HandoffSpan
from ._complete_async import is_complete_async
from ._recorder import HandoffRecorder


@dataclass(slots=True)
class ActivityScope:
    """What the worker interceptor knows about the activity it is running."""

    recorder: HandoffRecorder
    #: The handoff recorded explicitly during this activity, if any.
    recorded: HandoffRecord | None = field(default=None)


#: Set by the worker interceptor for the duration of each activity.
current_scope: contextvars.ContextVar[ActivityScope] = contextvars.ContextVar(
    "handshake_obs_activity_scope"
)


@dataclass(frozen=True, slots=True)
class Handoff:
    """What the body of ``async with handoff(...)`` gives to the external system."""

    #: Unguessable id the external system can complete with instead of the token.
    handoff_id: str
    #: The attempt's task token, for systems that complete through Temporal directly.
    #: A bearer credential: never log it.
    task_token: bytes = field(repr=False)
    #: Short non-secret name of the token, safe to log.
    token_fingerprint: str
    target: str
    #: Epoch seconds the handoff is due at (None: unbounded).
    deadline: float | None
    #: W3C trace context of the handoff span, to propagate to the external system (None when
    #: not tracing): its spans, and the completion's, join the handoff's trace.
    traceparent: str | None
    tracestate: str | None

    @classmethod
    def of(cls, record: HandoffRecord) -> Handoff:
        """The public view of a stored record."""
        return cls(
            handoff_id=record.handoff_id,
            task_token=record.task_token,
            token_fingerprint=record.token_fingerprint,
            target=record.target,
            deadline=record.deadline,
            traceparent=record.traceparent,
            tracestate=record.tracestate,
        )


class handoff:  # noqa: N801 - used like a function: ``async with handoff(...)``
    """Record a handoff, give the body what to hand over, then complete asynchronously.

    ``deadline`` is an aware datetime or a duration from now; without one, the deadline is
    derived from the activity's start-to-close / schedule-to-close timeouts minus a margin.
    """

    def __init__(
        self, *, target: str | None = None, deadline: datetime | timedelta | None = None
    ) -> None:
        self._target = target
        self._deadline = deadline
        self._scope: ActivityScope | None = None
        self._record: HandoffRecord | None = None
        self._span: HandoffSpan | None = None

    async def __aenter__(self) -> Handoff:
        scope = current_scope.get(None)
        if scope is None:
            raise NotInActivityError(
                "handoff() needs an activity run by a worker with the handshake-obs "
                "interceptor (Handshake.interceptor)"
            )
        if scope.recorded is not None:
            raise NotInActivityError("this activity already recorded a handoff")
        recorder = scope.recorder
        record, span = recorder.begin(activity.info(), target=self._target, deadline=self._deadline)
        span.activate()
        try:
            self._record = await recorder.record(record)
        except BaseException as err:
            span.end(err)
            raise
        self._span = span
        self._scope = scope
        scope.recorded = self._record
        return Handoff.of(self._record)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        span, self._span = self._span, None
        if exc is None or is_complete_async(exc):
            if span is not None and self._record is not None:
                span.completed_async(self._record)
                span.end()
            if exc is None:
                activity.raise_complete_async()
            return False
        try:
            if self._scope and self._record:
                await self._scope.recorder.abort(self._record, exc)
        finally:
            if span is not None:
                span.end(exc)
        return False
