"""What the proxy reads off the wire: task fields, trace context, failure types, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import temporalio.converter
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from temporalio.api.common.v1 import ActivityType, Header, Payload, Payloads, WorkflowExecution
from temporalio.api.failure.v1 import (
    ApplicationFailureInfo,
    CanceledFailureInfo,
    Failure,
    TimeoutFailureInfo,
)
from temporalio.api.workflowservice.v1 import PollActivityTaskQueueResponse

from handshake_obs._vocabulary import TRACER_HEADER
from handshake_obs.proxy._handoffs import WireHandoffs
from handshake_obs.proxy._methods import OBSERVED_METHODS
from handshake_obs.proxy._wire import (
    UNTYPED_FAILURE,
    ActivityTask,
    decode,
    failure_type,
    progress_of,
)

pytestmark = pytest.mark.unit

_CONVERTER = temporalio.converter.PayloadConverter.default
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def payload(value: object) -> Payload:
    return _CONVERTER.to_payloads([value])[0]


def poll_response(**fields: object) -> PollActivityTaskQueueResponse:
    started = Timestamp()
    started.FromDatetime(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    return PollActivityTaskQueueResponse(
        task_token=b"token",
        workflow_namespace="prod",
        workflow_execution=WorkflowExecution(workflow_id="wf", run_id="run"),
        activity_id="7",
        activity_type=ActivityType(name="ApproveOrder"),
        attempt=2,
        started_time=started,
        scheduled_time=started,
        start_to_close_timeout=Duration(seconds=60),
        **fields,  # type: ignore[arg-type]  # protobuf keyword fields
    )


def test_a_poll_response_gives_the_task_identity_and_timeouts() -> None:
    task = ActivityTask.of(poll_response(), "default")
    assert (task.namespace, task.workflow_id, task.run_id, task.activity_id) == (
        "prod",
        "wf",
        "run",
        "7",
    )
    assert (task.activity_type, task.attempt, task.task_token) == ("ApproveOrder", 2, b"token")
    assert task.start_to_close == timedelta(seconds=60)
    assert task.schedule_to_close is None
    assert task.started == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert task.trace_context() is None


def test_the_tracer_header_gives_the_workflows_trace_context() -> None:
    header = Header(fields={TRACER_HEADER: payload({"traceparent": TRACEPARENT, "x": "y"})})
    task = ActivityTask.of(poll_response(header=header), "default")
    assert task.trace_carrier == {"traceparent": TRACEPARENT}
    context = task.trace_context()
    assert context is not None
    span_context = trace.get_current_span(context).get_span_context()
    assert trace.format_trace_id(span_context.trace_id) == TRACEPARENT.split("-")[1]


def test_an_unreadable_tracer_header_is_no_trace_context() -> None:
    header = Header(fields={TRACER_HEADER: Payload(metadata={"encoding": b"binary/encrypted"})})
    assert ActivityTask.of(poll_response(header=header), "default").trace_context() is None


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (Failure(application_failure_info=ApplicationFailureInfo(type="Declined")), "Declined"),
        (Failure(application_failure_info=ApplicationFailureInfo()), UNTYPED_FAILURE),
        (Failure(canceled_failure_info=CanceledFailureInfo()), "canceled"),
        (Failure(timeout_failure_info=TimeoutFailureInfo()), "timeout"),
        (Failure(), UNTYPED_FAILURE),
    ],
)
def test_a_failure_reports_its_application_type_or_its_kind(
    failure: Failure, expected: str
) -> None:
    assert failure_type(failure) == expected


def test_progress_is_the_one_value_or_the_list_and_unreadable_is_none() -> None:
    assert progress_of(Payloads(payloads=[payload({"percent": 40})])) == {"percent": 40}
    assert progress_of(Payloads(payloads=[payload(1), payload("two")])) == [1, "two"]
    assert progress_of(Payloads()) is None
    encrypted = Payload(metadata={"encoding": b"binary/encrypted"}, data=b"\x00")
    assert progress_of(Payloads(payloads=[encrypted])) is None


def test_bytes_that_are_not_the_message_decode_to_none() -> None:
    assert decode(PollActivityTaskQueueResponse, b"\xff\xff\xff") is None
    assert decode(PollActivityTaskQueueResponse, b"") == PollActivityTaskQueueResponse()


def test_the_observed_methods_are_exactly_those_with_an_observer() -> None:
    # A front routing by method (docs/proxy.md) relies on this list being complete.
    handoffs = object.__new__(WireHandoffs)  # the observers' table needs no parts
    assert set(handoffs.observers()) == set(OBSERVED_METHODS)
