"""What the proxy reads off the wire: the few messages it decodes, as plain values.

Only these are decoded (with the Temporal SDK's own protos); every other call crosses the
proxy as bytes. Payloads are decoded with the SDK's default converter (JSON, protobuf,
plain bytes); a payload it cannot read (a codec's encrypted payload) is kept as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import temporalio.converter
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflowservice.v1 import PollActivityTaskQueueResponse

from .._vocabulary import TRACER_HEADER

_CONVERTER = temporalio.converter.PayloadConverter.default
_W3C = TraceContextTextMapPropagator()
#: Error type of a failure that names none, as the library reports an untyped
#: ``ApplicationError`` (its class name).
UNTYPED_FAILURE = "ApplicationError"


@dataclass(frozen=True, slots=True)
class ActivityTask:
    """What a poll response says about the activity task it hands out."""

    task_token: bytes = b""
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    activity_id: str = ""
    activity_type: str = ""
    attempt: int = 1
    started: datetime | None = None
    scheduled: datetime | None = None
    start_to_close: timedelta | None = None
    schedule_to_close: timedelta | None = None
    #: The trace context of the ``_tracer-data`` header (empty: none).
    trace_carrier: dict[str, str] | None = None

    @classmethod
    def of(cls, response: PollActivityTaskQueueResponse, namespace: str) -> ActivityTask:
        """The task of a (non-empty) poll response; ``namespace`` is the poll's."""
        return cls(
            task_token=response.task_token,
            namespace=response.workflow_namespace or namespace,
            workflow_id=response.workflow_execution.workflow_id,
            run_id=response.workflow_execution.run_id,
            activity_id=response.activity_id,
            activity_type=response.activity_type.name,
            attempt=response.attempt or 1,
            started=_instant(response, "started_time"),
            scheduled=_instant(response, "scheduled_time"),
            start_to_close=_window(response, "start_to_close_timeout"),
            schedule_to_close=_window(response, "schedule_to_close_timeout"),
            trace_carrier=_trace_carrier(response),
        )

    def trace_context(self) -> otel_context.Context | None:
        """The workflow's trace context this task carries (None: it carries none)."""
        return _W3C.extract(self.trace_carrier) if self.trace_carrier else None


def _instant(message: PollActivityTaskQueueResponse, name: str) -> datetime | None:
    if not message.HasField(name):  # type: ignore[arg-type]  # one of two field names
        return None
    value: Timestamp = getattr(message, name)
    return value.ToDatetime(tzinfo=UTC)


def _window(message: PollActivityTaskQueueResponse, name: str) -> timedelta | None:
    if not message.HasField(name):  # type: ignore[arg-type]  # one of two field names
        return None
    value: Duration = getattr(message, name)
    return value.ToTimedelta() or None


def _trace_carrier(response: PollActivityTaskQueueResponse) -> dict[str, str] | None:
    payload = response.header.fields.get(TRACER_HEADER)
    if payload is None:
        return None
    value = payload_value(payload)
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items() if k in ("traceparent", "tracestate")}


def payload_value(payload: Payload) -> Any:
    """The value of one payload (None: not readable by the default converter)."""
    try:
        return _CONVERTER.from_payloads([payload])[0]
    except Exception:  # noqa: BLE001 - an unreadable payload is kept as None, never an error
        return None


def progress_of(details: Payloads) -> Any:
    """A heartbeat's progress as the library keeps it: the one value, or the list."""
    values = [payload_value(p) for p in details.payloads]
    if len(values) == 1:
        return values[0]
    return values or None


def failure_type(failure: Failure) -> str:
    """The error type a failure reports: its application error type, else what it is."""
    if failure.HasField("application_failure_info"):
        return failure.application_failure_info.type or UNTYPED_FAILURE
    kind = failure.WhichOneof("failure_info")
    return kind.removesuffix("_failure_info") if kind else UNTYPED_FAILURE


def decode(message_type: type[Any], data: bytes) -> Any | None:
    """``data`` as a ``message_type`` (None: not that message; forwarded untouched)."""
    try:
        return message_type.FromString(data)
    except DecodeError:
        return None
