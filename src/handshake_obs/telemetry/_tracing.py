"""Spans of the handshake: one helper that opens them, in whatever process the call runs.

::

    RunActivity:<type>              (temporalio TracingInterceptor, worker)
    └── handoff <target>            PRODUCER; its context goes into the ledger
        ├── complete <target>       CLIENT, in the completer's process, hours later
        ├── heartbeat <target>      ... one per completion-path call
        └── reap <target>           in the reaper's process

A completion-path span is a *child* of the handoff span whose context the ledger kept (see
``docs/tracing.md`` for why a parent and not a link); the caller's own span, when it belongs
to another trace, is linked. Nothing here ever raises into the handshake: the OpenTelemetry
API is no-op safe, and export happens off the event loop in the SDK's batch processor.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from .._errors import HandshakeError
from .._records import FinishedOutcome, HandoffRecord
from .._token_scrubbing import scrub_tokens
from .._tokens import token_fingerprint
from .._vocabulary import Operation
from ..config import HandshakeConfig
from . import _semconv as sc

#: Instrumentation scope of every handshake-obs span.
TRACER_NAME = "handshake_obs"

#: W3C Trace Context only: the ledger's ``traceparent``/``tracestate`` columns hold exactly
#: that, whatever propagators the application configured globally.
_W3C = TraceContextTextMapPropagator()


def trace_carrier(span: Span) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of ``span``; empty when it has no valid context."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def handoff_span_context(record: HandoffRecord) -> trace.SpanContext | None:
    """The handoff span's context kept in the ledger (None: not traced, or unreadable)."""
    if not record.traceparent:
        return None
    carrier = {"traceparent": record.traceparent}
    if record.tracestate:
        carrier["tracestate"] = record.tracestate
    span_context = trace.get_current_span(_W3C.extract(carrier)).get_span_context()
    return span_context if span_context.is_valid else None


def trace_exemplar() -> dict[str, str] | None:
    """An exemplar naming the current span, if it is sampled (else None: no trace to see)."""
    span_context = trace.get_current_span().get_span_context()
    if not (span_context.is_valid and span_context.trace_flags.sampled):
        return None
    return {
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
    }


def handoff_attributes(record: HandoffRecord) -> dict[str, AttributeValue]:
    """What identifies a handoff on every span about it (never the token)."""
    attributes: dict[str, AttributeValue] = {
        sc.HANDOFF_ID: record.handoff_id,
        sc.WORKFLOW_ID: record.workflow_id,
        sc.RUN_ID: record.run_id,
        sc.ACTIVITY_ID: record.activity_id,
        sc.ACTIVITY_TYPE: record.activity_type,
        sc.ATTEMPT: record.attempt,
        sc.TARGET: record.target,
        sc.TOKEN_FINGERPRINT: record.token_fingerprint,
    }
    if record.deadline is not None:
        attributes[sc.DEADLINE] = datetime.fromtimestamp(record.deadline, UTC).isoformat()
    return attributes


class HandoffSpan:
    """The span of one handoff, and the span that was current when it began."""

    def __init__(self, span: Span, activity_span: Span) -> None:
        self.span = span
        self._activity_span = activity_span
        self._token: object | None = None

    def carrier(self) -> dict[str, str]:
        """What goes into the record's ``traceparent``/``tracestate``."""
        return trace_carrier(self.span)

    def describe(self, record: HandoffRecord) -> None:
        """Attach the recorded handoff's identity."""
        self.span.set_attributes(handoff_attributes(record))

    def activate(self) -> None:
        """Make the handoff span current (until :meth:`end`): what the body does to hand
        over (an HTTP call, a message) is traced as its child, and its logs carry its ids."""
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def completed_async(self, record: HandoffRecord) -> None:
        """Mark the activity's span: it did not succeed in milliseconds, it handed off.

        ``TracingInterceptor`` leaves ``RunActivity`` with an unset status when the activity
        raises complete-async (a ``BaseException``); this says what happened instead.
        """
        if self._activity_span.is_recording():
            self._activity_span.set_attributes(
                {sc.COMPLETED_ASYNC: True, sc.HANDOFF_ID: record.handoff_id}
            )
            self._activity_span.add_event(
                sc.COMPLETED_ASYNC_EVENT,
                {sc.HANDOFF_ID: record.handoff_id, sc.TARGET: record.target},
            )

    def end(self, error: BaseException | None = None) -> None:
        """End the handoff span (an error: the handoff was aborted or not recorded)."""
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]  # attach's own token
            self._token = None
        if error is not None and isinstance(error, Exception):
            _mark_error(self.span, error)
        self.span.end()


class HandshakeTracing:
    """Opens handshake-obs's spans on one tracer; shared by the recorder and the completion
    path of a process."""

    def __init__(
        self,
        config: HandshakeConfig,
        *,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._config = config
        # None: the global provider, resolved lazily (configure_tracing() may install it
        # after this object is built).
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)

    def _name(self, operation: str, target: str | None) -> str:
        return sc.span_name(
            operation, None if target is None else self._config.target_label(target)
        )

    # -- the handoff ----------------------------------------------------------------------

    def start_handoff(self, target: str) -> HandoffSpan:
        """Start the handoff span as a child of the current span (``RunActivity``)."""
        activity_span = trace.get_current_span()
        span = self._tracer.start_span(
            self._name(sc.HANDOFF_SPAN, target),
            kind=SpanKind.PRODUCER,
            attributes={sc.TARGET: target},
        )
        return HandoffSpan(span, activity_span)

    # -- the completion path --------------------------------------------------------------

    @contextmanager
    def completion_span(
        self,
        operation: Operation,
        record: HandoffRecord | None,
        *,
        task_token: bytes | None,
        failure_type: str | None,
        now: float,
    ) -> Iterator[Span]:
        """A current span around one completion-path call, placed in the handoff's trace.

        Errors of the call set the span's status and ``error.type``, and propagate.
        """
        parent, links = self._placement(record)
        attributes: dict[str, AttributeValue] = {sc.OPERATION: operation.value}
        if record is not None:
            attributes.update(handoff_attributes(record))
            attributes[sc.PENDING_DURATION] = max(0.0, now - record.started_at)
        elif task_token is not None:
            attributes[sc.TOKEN_FINGERPRINT] = token_fingerprint(task_token)
        if failure_type is not None:
            attributes[sc.FAILURE_TYPE] = failure_type
        with self._tracer.start_as_current_span(
            self._name(operation.value, record.target if record else None),
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as err:
                _mark_error(span, err)
                raise

    def _placement(
        self, record: HandoffRecord | None
    ) -> tuple[otel_context.Context | None, list[Link]]:
        """Parent and links of a completion span.

        The handoff's context is the parent, so the handoff's whole story is one trace; a
        caller already inside that trace (an external system that continued it from the
        ``traceparent`` it was given) keeps its own span as the parent; a caller in another
        trace is linked.
        """
        handoff_context = None if record is None else handoff_span_context(record)
        if handoff_context is None:
            return None, []
        current = trace.get_current_span().get_span_context()
        if current.is_valid and current.trace_id == handoff_context.trace_id:
            return None, []
        links = [Link(current, {sc.LINK_ROLE: sc.LINK_ROLE_CALLER})] if current.is_valid else []
        parent = trace.set_span_in_context(trace.NonRecordingSpan(handoff_context))
        return parent, links

    @staticmethod
    def finished(span: Span, finished: FinishedOutcome | None) -> None:
        """This call recorded the handoff's outcome."""
        if finished is not None:
            span.set_attribute(sc.OUTCOME, finished.outcome.value)

    @staticmethod
    def heartbeat(span: Span, *, accepted: bool) -> None:
        """How the ledger kept this heartbeat's progress (False: out of order, ignored)."""
        span.set_attribute(sc.HEARTBEAT_ACCEPTED, accepted)

    @staticmethod
    def retrying(attempt: int, delay: float) -> None:
        """The current call's RPC attempt ``attempt`` failed as unavailable; retried."""
        trace.get_current_span().add_event(
            sc.RPC_RETRY_EVENT, {sc.RETRY_ATTEMPT: attempt, sc.RETRY_DELAY: delay}
        )


def _mark_error(span: Span, error: Exception) -> None:
    """Record ``error`` on ``span``: ``error.type`` is our vocabulary's error type for our own
    errors (``error.error_type``), the class name for anything else."""
    # The texts are scrubbed of any known token: a foreign exception may quote one.
    stacktrace = "".join(traceback.format_exception(error))
    span.record_exception(
        error,
        attributes={
            "exception.message": scrub_tokens(str(error)),
            "exception.stacktrace": scrub_tokens(stacktrace),
        },
    )
    error_type = (
        error.error_type.value if isinstance(error, HandshakeError) else type(error).__name__
    )
    span.set_attribute(sc.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, scrub_tokens(f"{type(error).__name__}: {error}")))
