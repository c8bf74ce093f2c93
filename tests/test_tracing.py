"""One trace across the handoff: spans, context in the ledger, exemplars, log correlation.

In-process tests use an ``InMemorySpanExporter``; the cross-process tests run a real OTLP/gRPC
receiver, a worker process and a completer process, each exporting over OTLP.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from handshake_obs import (
    ConfigurationError,
    HandoffAlreadyFinishedError,
    HandoffRecord,
    Handshake,
    HandshakeConfig,
    HandshakeError,
    Outcome,
    TracingConfig,
    configure_tracing,
    shutdown_tracing,
)
from handshake_obs._records import FinishedOutcome
from handshake_obs.telemetry import _semconv as sc
from handshake_obs.telemetry._metrics import HandshakeMetrics
from handshake_obs.telemetry._tracing import trace_exemplar

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.logs import flushed_logs
from .support.otlp_receiver import OtlpReceiver, ReceivedSpan
from .support.span_checks import (
    assert_token_absent,
    one,
    parent_id,
    span_id,
    span_values,
    trace_id,
)
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = "HandoffWorkflow"


# -- in-process: InMemorySpanExporter -----------------------------------------------------


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exported: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exported))
    yield tracer_provider
    tracer_provider.shutdown()


@pytest.fixture
async def traced(
    config: HandshakeConfig, registry: CollectorRegistry, provider: TracerProvider
) -> AsyncIterator[Handshake]:
    async with Handshake(config, registry=registry, tracer_provider=provider) as hs:
        yield hs


@pytest.fixture
async def traced_client(
    temporal_address: str, traced: Handshake, provider: TracerProvider
) -> Client:
    """Temporal's tracing first (outermost), then handshake-obs, as the docs say."""
    tracing = TracingInterceptor(provider.get_tracer("tests"))
    return await Client.connect(temporal_address, interceptors=[tracing, traced.interceptor])


@pytest.fixture
async def traced_worker(traced_client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        traced_client,
        task_queue=task_queue,
        workflows=[HandoffWorkflow],
        activities=ALL_ACTIVITIES,
    ) as w:
        yield w


async def start(
    client: Client, task_queue: str, activity: str, **fields: Any
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        HandoffWorkflow.run,
        HandoffRequest(activity=activity, **fields),
        id=f"wf-{uuid.uuid4()}",
        task_queue=task_queue,
    )


def spans_of(exported: InMemorySpanExporter, workflow_id: str) -> list[ReadableSpan]:
    """The finished spans of the trace that started ``workflow_id``."""
    starts = [
        s
        for s in exported.get_finished_spans()
        if s.name == f"StartWorkflow:{WORKFLOW}"
        and (s.attributes or {}).get(sc.WORKFLOW_ID) == workflow_id
    ]
    assert len(starts) == 1
    wanted = trace_id(starts[0])
    return [s for s in exported.get_finished_spans() if trace_id(s) == wanted]


def traceparent_of(span: ReadableSpan) -> str:
    """The W3C ``traceparent`` of a finished span."""
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


async def test_handoff_span_is_a_child_of_run_activity_and_its_context_goes_to_ledger_and_body(
    traced: Handshake,
    traced_client: Client,
    traced_worker: Worker,
    task_queue: str,
    exported: InMemorySpanExporter,
) -> None:
    handle = await start(traced_client, task_queue, "hand_off_explicit", target="agent")
    h = (await EXTERNAL.receive(handle.id)).explicit
    completer = traced.completer(traced_client)
    await completer.heartbeat(h.handoff_id, {"step": 1})
    await completer.complete(h.handoff_id, 42)
    assert await handle.result() == {"result": 42}

    async def continued() -> list[ReadableSpan]:
        spans = spans_of(exported, handle.id)
        one(spans, f"CompleteWorkflow:{WORKFLOW}")
        return spans

    spans = await assert_eventually(continued)
    run_activity = one(spans, "RunActivity:hand_off_explicit")
    handoff = one(spans, "handoff agent")
    assert parent_id(handoff) == span_id(run_activity)
    assert handoff.kind is SpanKind.PRODUCER
    assert handoff.status.status_code is StatusCode.UNSET
    record = await traced.ledger.get(h.handoff_id)
    assert record is not None
    assert h.traceparent == record.traceparent == traceparent_of(handoff)
    attributes = dict(handoff.attributes or {})
    assert attributes[sc.HANDOFF_ID] == h.handoff_id
    assert attributes[sc.WORKFLOW_ID] == handle.id
    assert attributes[sc.RUN_ID] == record.run_id
    assert attributes[sc.ACTIVITY_ID] == record.activity_id
    assert attributes[sc.ACTIVITY_TYPE] == "hand_off_explicit"
    assert attributes[sc.ATTEMPT] == 1
    assert attributes[sc.TARGET] == "agent"
    assert attributes[sc.TOKEN_FINGERPRINT] == h.token_fingerprint
    assert isinstance(attributes[sc.DEADLINE], str)

    # RunActivity ended in milliseconds without an error; it says it completed async.
    assert run_activity.status.status_code is not StatusCode.ERROR
    assert (run_activity.attributes or {})[sc.COMPLETED_ASYNC] is True
    assert (run_activity.attributes or {})[sc.HANDOFF_ID] == h.handoff_id
    assert [e.name for e in run_activity.events] == [sc.COMPLETED_ASYNC_EVENT]

    heartbeat = one(spans, "heartbeat agent")
    complete = one(spans, "complete agent")
    for span in (heartbeat, complete):
        assert parent_id(span) == span_id(handoff)
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert (span.attributes or {})[sc.HANDOFF_ID] == h.handoff_id
        pending = (span.attributes or {})[sc.PENDING_DURATION]
        assert isinstance(pending, float)
        assert 0 < pending < 30
    assert (heartbeat.attributes or {})[sc.HEARTBEAT_ACCEPTED] is True
    assert sc.OUTCOME not in (heartbeat.attributes or {})
    assert (complete.attributes or {})[sc.OPERATION] == "complete"
    assert (complete.attributes or {})[sc.OUTCOME] == "completed"
    # The workflow's continuation, after the completion, is in the same trace.
    complete_workflow = one(spans, f"CompleteWorkflow:{WORKFLOW}")
    assert complete_workflow.start_time is not None
    assert complete.start_time is not None
    assert complete_workflow.start_time >= complete.start_time


async def test_interceptor_only_handoff_gets_its_span_and_plain_handle_completion_joins_it(
    traced: Handshake,
    traced_client: Client,
    traced_worker: Worker,
    task_queue: str,
    exported: InMemorySpanExporter,
) -> None:
    handle = await start(traced_client, task_queue, "hand_off_plain")
    delivery = await EXTERNAL.receive(handle.id)

    async def recorded() -> Any:
        record = await traced.ledger.find_by_token(delivery.task_token)
        assert record is not None
        return record

    record = await assert_eventually(recorded)
    await traced_client.get_async_activity_handle(task_token=delivery.task_token).complete(7)
    assert await handle.result() == {"result": 7}

    spans = spans_of(exported, handle.id)
    run_activity = one(spans, "RunActivity:hand_off_plain")
    handoff = one(spans, "handoff default")
    assert parent_id(handoff) == span_id(run_activity)
    assert record.traceparent == traceparent_of(handoff)
    assert (run_activity.attributes or {})[sc.COMPLETED_ASYNC] is True
    assert run_activity.status.status_code is not StatusCode.ERROR
    complete = one(spans, "complete default")
    assert parent_id(complete) == span_id(handoff)
    assert (complete.attributes or {})[sc.OUTCOME] == "completed"


async def cancel_requested(handle: WorkflowHandle[Any, Any]) -> None:
    description = await handle.describe()
    (pending,) = description.raw_description.pending_activities
    assert pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED


async def test_fail_cancel_reap_and_refused_calls_are_spans_under_the_handoff(
    traced: Handshake,
    traced_client: Client,
    traced_worker: Worker,
    task_queue: str,
    exported: InMemorySpanExporter,
) -> None:
    completer = traced.completer(traced_client)
    fail = await start(traced_client, task_queue, "hand_off_explicit", target="agent")
    cancel = await start(
        traced_client, task_queue, "hand_off_explicit", target="approval",
        heartbeat_timeout_seconds=60,
    )  # fmt: skip
    reap = await start(
        traced_client, task_queue, "hand_off_explicit", target="agent",
        extra={"deadline_seconds": 0.2},
    )  # fmt: skip
    fail_h = (await EXTERNAL.receive(fail.id)).explicit
    cancel_h = (await EXTERNAL.receive(cancel.id)).explicit
    await EXTERNAL.receive(reap.id)

    await completer.fail(fail_h.task_token, error_type="Nope", message="no")
    with pytest.raises(HandoffAlreadyFinishedError):
        await completer.complete(fail_h.handoff_id, 1)
    with pytest.raises(RPCError):  # a plain handle: Temporal answers NOT_FOUND
        await traced_client.get_async_activity_handle(task_token=fail_h.task_token).complete(1)
    await cancel.cancel()
    await assert_eventually(lambda: cancel_requested(cancel))
    await completer.report_cancellation(cancel_h.handoff_id)
    await asyncio.sleep(0.3)
    assert [r.result for r in await traced.reaper(traced_client).reap_once()] == ["reaped"]
    assert (await fail.result())["error_type"] == "Nope"
    assert (await reap.result())["error_type"] == "HandoffDeadlineExceeded"

    spans = spans_of(exported, fail.id)
    handoff = one(spans, "handoff agent")
    failed = [s for s in spans if s.name == "fail agent"]
    refused = [s for s in spans if s.name == "complete agent"]
    assert len(failed) == 1
    assert len(refused) == 2
    assert parent_id(failed[0]) == span_id(handoff)
    assert (failed[0].attributes or {})[sc.OUTCOME] == "failed"
    assert (failed[0].attributes or {})[sc.FAILURE_TYPE] == "Nope"
    assert failed[0].status.status_code is StatusCode.UNSET
    for span in refused:
        assert parent_id(span) == span_id(handoff)
        assert span.status.status_code is StatusCode.ERROR
        assert sc.OUTCOME not in (span.attributes or {})
        assert [e.name for e in span.events] == ["exception"]
    assert sorted(str((s.attributes or {})[sc.ERROR_TYPE]) for s in refused) == [
        "already_closed",
        "already_finished",
    ]

    spans = spans_of(exported, cancel.id)
    canceled = one(spans, "report_cancellation approval")
    assert parent_id(canceled) == span_id(one(spans, "handoff approval"))
    assert (canceled.attributes or {})[sc.OUTCOME] == "canceled"

    spans = spans_of(exported, reap.id)
    reaped = one(spans, "reap agent")
    assert parent_id(reaped) == span_id(one(spans, "handoff agent"))
    assert (reaped.attributes or {})[sc.OUTCOME] == "reaped"
    assert (reaped.attributes or {})[sc.FAILURE_TYPE] == "HandoffDeadlineExceeded"
    assert trace_id(reaped) == trace_id(one(spans, f"StartWorkflow:{WORKFLOW}"))


async def test_caller_in_another_trace_is_linked_and_caller_continuing_the_handoff_is_parent(
    traced: Handshake,
    traced_client: Client,
    traced_worker: Worker,
    task_queue: str,
    exported: InMemorySpanExporter,
    provider: TracerProvider,
) -> None:
    tracer = provider.get_tracer("external-system")
    completer = traced.completer(traced_client)
    first = await start(traced_client, task_queue, "hand_off_explicit", target="agent")
    second = await start(traced_client, task_queue, "hand_off_explicit", target="agent")
    first_h = (await EXTERNAL.receive(first.id)).explicit
    second_h = (await EXTERNAL.receive(second.id)).explicit

    with tracer.start_as_current_span("unrelated request") as unrelated:
        await completer.complete(first_h.handoff_id, 1)
    assert second_h.traceparent is not None
    continued = TraceContextTextMapPropagator().extract({"traceparent": second_h.traceparent})
    with tracer.start_as_current_span("external work", context=continued) as work:
        await completer.complete(second_h.handoff_id, 2)
    await first.result()
    await second.result()

    complete = one(spans_of(exported, first.id), "complete agent")
    handoff = one(spans_of(exported, first.id), "handoff agent")
    assert parent_id(complete) == span_id(handoff)
    (link,) = complete.links
    assert link.context.span_id == unrelated.get_span_context().span_id
    assert (link.attributes or {})[sc.LINK_ROLE] == sc.LINK_ROLE_CALLER

    complete = one(spans_of(exported, second.id), "complete agent")
    assert parent_id(complete) == work.get_span_context().span_id
    assert not complete.links


async def test_log_lines_inside_handoff_and_completion_carry_their_trace_and_span_ids(
    log_stream: io.StringIO,
    traced: Handshake,
    traced_client: Client,
    traced_worker: Worker,
    task_queue: str,
    exported: InMemorySpanExporter,
) -> None:
    handle = await start(traced_client, task_queue, "hand_off_explicit", target="agent")
    h = (await EXTERNAL.receive(handle.id)).explicit
    await traced.completer(traced_client).complete(h.handoff_id, 1)
    await handle.result()
    structlog.get_logger("t").info("outside any span")

    spans = spans_of(exported, handle.id)
    lines = [json.loads(line) for line in flushed_logs(log_stream).splitlines()]
    by_event = {line["event"]: line for line in lines if line.get("handoff_id") == h.handoff_id}
    for event, span_name in [
        ("handoff recorded", "handoff agent"),
        ("handoff finished", "complete agent"),
    ]:
        span = one(spans, span_name)
        assert by_event[event]["trace_id"] == f"{trace_id(span):032x}"
        assert by_event[event]["span_id"] == f"{span_id(span):016x}"
    outside = next(line for line in lines if line["event"] == "outside any span")
    assert "trace_id" not in outside
    assert "span_id" not in outside


async def test_no_raw_token_in_any_span_attribute_event_or_link(
    traced: Handshake,
    traced_client: Client,
    traced_worker: Worker,
    task_queue: str,
    exported: InMemorySpanExporter,
) -> None:
    completer = traced.completer(traced_client)
    tokens: list[bytes] = []
    for plan in ("token", "plain", "fail"):
        activity = "hand_off_plain" if plan == "plain" else "hand_off_explicit"
        handle = await start(traced_client, task_queue, activity, target="agent")
        delivery = await EXTERNAL.receive(handle.id)
        tokens.append(delivery.task_token)
        if plan == "plain":
            await traced_client.get_async_activity_handle(task_token=delivery.task_token).complete(
                1
            )
        elif plan == "fail":
            await completer.heartbeat(delivery.task_token, {"step": 1})
            await completer.fail(delivery.task_token, error_type="Nope", message="no")
        else:
            await completer.complete(delivery.task_token, 1)
        await handle.result()
    garbage = b"\x01\x02garbage-token-that-is-not-one"
    with pytest.raises(HandshakeError):
        await completer.complete(garbage, 1)
    tokens.append(garbage)

    spans = exported.get_finished_spans()
    assert len(spans) >= 15
    assert_token_absent([v for s in spans for v in span_values(s)], tokens)
    invalid = one(spans, "complete")
    assert (invalid.attributes or {})[sc.ERROR_TYPE] == "invalid_token"


def test_openmetrics_exemplar_names_the_span_that_recorded_the_outcome(
    registry: CollectorRegistry, config: HandshakeConfig, provider: TracerProvider
) -> None:
    """Unit level: an outcome observed inside a sampled span carries its trace id; outside
    any span, none."""
    metrics = HandshakeMetrics(config, registry=registry)
    record = HandoffRecord(
        handoff_id="ho_x", task_token=b"t", token_fingerprint="f", namespace="default",
        workflow_id="w", run_id="r", activity_id="1", activity_type="a", attempt=1,
        target="agent", started_at=time.time() - 3, deadline=None,
    )  # fmt: skip
    assert trace_exemplar() is None
    with provider.get_tracer("t").start_as_current_span("complete agent") as span:
        metrics.observe_finished(
            FinishedOutcome(record, Outcome.COMPLETED, record.started_at + 3),
            exemplar=trace_exemplar(),
        )
    exemplars = _exemplars(generate_latest(registry).decode())  # type: ignore[no-untyped-call]
    assert exemplars == {f"{span.get_span_context().trace_id:032x}"}


def _exemplars(openmetrics: str) -> set[str]:
    """Trace ids of the completion-latency exemplars in an OpenMetrics exposition."""
    found: set[str] = set()
    for family in text_string_to_metric_families(openmetrics):  # type: ignore[no-untyped-call]
        if family.name != "handshake_completion_latency_seconds":
            continue
        for sample in family.samples:
            if sample.exemplar is not None:
                found.add(sample.exemplar.labels["trace_id"])
    return found


# -- configuration of the export ------------------------------------------------------------


def test_without_an_endpoint_configure_tracing_installs_nothing() -> None:
    before = trace.get_tracer_provider()
    assert configure_tracing(TracingConfig.from_env({})) is None
    assert configure_tracing(TracingConfig.from_env({"OTEL_SERVICE_NAME": "x"})) is None
    assert (
        configure_tracing(
            TracingConfig.from_env(
                {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}
            )
        )
        is None
    )
    assert trace.get_tracer_provider() is before


@pytest.mark.parametrize(
    ("env", "protocol", "endpoint"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, "grpc", "http://c:4317"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "http/protobuf",
            "http://c:4318/v1/traces",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/traces",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            "http/protobuf",
            "http://t:9/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"},
            "grpc",
            None,
        ),
    ],
)  # fmt: skip
def test_standard_otel_variables_choose_protocol_and_endpoint(
    env: dict[str, str], protocol: str, endpoint: str | None
) -> None:
    config = TracingConfig.from_env(env)
    assert config.protocol == protocol
    assert config.exporter_endpoint == endpoint


def test_unknown_protocol_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="http/json"):
        TracingConfig.from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_arguments_override_the_environment_and_service_name_defaults() -> None:
    config = TracingConfig.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, endpoint="http://mine:4317"
    )
    assert config.exporter_endpoint == "http://mine:4317"
    provider = configure_tracing(config, set_global=False)
    assert provider is not None
    try:
        expected = os.environ.get("OTEL_SERVICE_NAME", "handshake-obs")
        assert provider.resource.attributes["service.name"] == expected
    finally:
        provider.shutdown()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_collector_down_handoffs_still_complete_in_bounded_time_and_nothing_raises(
    protocol: str,
    temporal_address: str,
    config: HandshakeConfig,
    task_queue: str,
) -> None:
    provider = configure_tracing(
        TracingConfig(
            endpoint=f"http://127.0.0.1:{closed_port()}", protocol=protocol, export_timeout=1.0
        ),
        set_global=False,
    )
    assert provider is not None
    handoffs = 20
    registry = CollectorRegistry()
    async with Handshake(config, registry=registry, tracer_provider=provider) as hs:
        tracing = TracingInterceptor(provider.get_tracer("tests"))
        client = await Client.connect(temporal_address, interceptors=[tracing, hs.interceptor])
        completer = hs.completer(client)
        async with Worker(
            client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
        ):
            started = time.monotonic()

            async def one_handoff(n: int) -> Any:
                handle = await start(client, task_queue, "hand_off_explicit", target="agent")
                h = (await EXTERNAL.receive(handle.id)).explicit
                await completer.complete(h.handoff_id, n)
                return await handle.result()

            results = await asyncio.gather(*(one_handoff(n) for n in range(handoffs)))
            elapsed = time.monotonic() - started
    assert [r["result"] for r in results] == list(range(handoffs))
    assert registry.get_sample_value(
        "handshake_handoffs_finished_total", {"target": "agent", "outcome": "completed"}
    ) == float(handoffs)
    # Bare, 20 handoffs take well under a second here; the dead collector must not add the
    # exporter's timeouts or retries to them.
    assert elapsed < 10, elapsed
    shutdown_started = time.monotonic()
    assert await asyncio.to_thread(shutdown_tracing, provider, timeout=5)
    assert time.monotonic() - shutdown_started < 5


def test_shutdown_tracing_gives_up_on_a_dead_collector_after_its_timeout() -> None:
    """``provider.shutdown()`` alone would wait for the exporter's retries (up to 30 s)."""
    provider = configure_tracing(
        TracingConfig(endpoint=f"http://127.0.0.1:{closed_port()}"), set_global=False
    )
    assert provider is not None
    for n in range(10):
        provider.get_tracer("t").start_span(f"s{n}").end()
    started = time.monotonic()
    assert not shutdown_tracing(provider, timeout=0.5)
    assert time.monotonic() - started < 2


# -- across processes: a real OTLP receiver, a worker process, a completer process -----------


@dataclass
class Stack:
    """The receiver, a traced starter client, and the worker and completer processes."""

    receiver: OtlpReceiver
    client: Client
    provider: TracerProvider
    task_queue: str
    worker: asyncio.subprocess.Process
    completer: asyncio.subprocess.Process
    logs: Path

    async def handoff(self, workflow_id: str, timeout: float = 30) -> dict[str, Any]:
        """The next handoff the worker reports; it must be ``workflow_id``'s."""
        line = json.loads(await read_line(self.worker, self.logs / "worker.log", timeout))
        assert line["workflow_id"] == workflow_id
        return dict(line)

    async def command(self, **command: Any) -> dict[str, Any]:
        assert self.completer.stdin is not None
        self.completer.stdin.write((json.dumps(command) + "\n").encode())
        await self.completer.stdin.drain()
        answer = json.loads(await read_line(self.completer, self.logs / "completer.log", 30))
        assert answer["ok"], answer
        return dict(answer)

    async def start(self, **fields: Any) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity="hand_off_traced", target="agent", **fields),
            id=f"traced-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )

    async def story(self, workflow_id: str, closing_span: str) -> list[ReceivedSpan]:
        """The trace that started ``workflow_id``, once its continuation has arrived."""

        async def arrived() -> list[ReceivedSpan]:
            (start,) = [
                s
                for s in self.receiver.spans
                if s.name == f"StartWorkflow:{WORKFLOW}"
                and s.attributes.get(sc.WORKFLOW_ID) == workflow_id
            ]
            spans = self.receiver.trace(start.trace_id)
            names = {s.name for s in spans}
            assert {closing_span, f"CompleteWorkflow:{WORKFLOW}"} <= names, names
            return spans

        return await assert_eventually(arrived, timeout=20)


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def read_line(process: asyncio.subprocess.Process, log: Path, timeout: float) -> str:
    """The next line ``process`` prints (fails with the end of its log if none comes)."""
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
    except TimeoutError:
        pytest.fail(f"no answer within {timeout} s; its log:\n{tail(log)}")
    assert line, f"the process exited early; its log:\n{tail(log)}"
    return line.decode().strip()


@pytest.fixture(scope="module")
async def stack(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("tracing")
    address = temporal_env.client.service_client.config.target_host
    task_queue = f"traced-{uuid.uuid4()}"
    ledger = str(workdir / "ledger.db")
    with OtlpReceiver() as receiver:

        def env(service: str) -> dict[str, str]:
            return {
                **os.environ,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_SERVICE_NAME": service,
                "OTEL_BSP_SCHEDULE_DELAY": "50",
            }

        async def spawn(module: str, *args: str) -> asyncio.subprocess.Process:
            with (workdir / f"{module.split('_')[1]}.log").open("wb") as log:
                return await asyncio.create_subprocess_exec(
                    sys.executable, "-m", f"tests.support.{module}", *args,
                    cwd=PROJECT_ROOT, env=env(module.split("_")[1]),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                )  # fmt: skip

        worker = await spawn("traced_worker_main", address, task_queue, ledger)
        completer = await spawn("traced_completer_main", address, ledger)
        provider = TracerProvider(resource=Resource.create({"service.name": "starter"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(receiver.endpoint)))
        try:
            assert await read_line(worker, workdir / "worker.log", 60) == "READY"
            assert await read_line(completer, workdir / "completer.log", 60) == "READY"
            client = await Client.connect(
                address, interceptors=[TracingInterceptor(provider.get_tracer("starter"))]
            )
            yield Stack(receiver, client, provider, task_queue, worker, completer, workdir)
        finally:
            assert completer.stdin is not None
            completer.stdin.close()
            worker.terminate()
            for process in (worker, completer):
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            provider.shutdown()


def by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def assert_handoff_story(
    spans: list[ReceivedSpan], handoff_line: dict[str, Any], closing_span: str
) -> tuple[ReceivedSpan, ReceivedSpan]:
    """One trace: StartWorkflow (starter) -> RunWorkflow, StartActivity -> RunActivity ->
    handoff (worker) -> the closing span (completer); CompleteWorkflow after it (worker)."""
    start = by_name(spans, f"StartWorkflow:{WORKFLOW}")
    run_workflow = by_name(spans, f"RunWorkflow:{WORKFLOW}")
    start_activity = by_name(spans, "StartActivity:hand_off_traced")
    run_activity = by_name(spans, "RunActivity:hand_off_traced")
    handoff = by_name(spans, "handoff agent")
    closing = by_name(spans, closing_span)
    continuation = by_name(spans, f"CompleteWorkflow:{WORKFLOW}")
    assert len({s.trace_id for s in spans}) == 1
    assert start.parent_span_id is None
    assert start.service == "starter"
    assert run_workflow.parent_span_id == start.span_id
    assert start_activity.parent_span_id == start.span_id
    assert run_activity.parent_span_id == start_activity.span_id
    assert handoff.parent_span_id == run_activity.span_id
    assert closing.parent_span_id == handoff.span_id
    assert continuation.parent_span_id == start.span_id
    assert {run_workflow.service, run_activity.service, handoff.service} == {"worker"}
    assert closing.service == "completer"
    assert continuation.start_ns >= closing.start_ns
    # The ledger's traceparent, given to the external system, is the handoff span's.
    assert handoff_line["traceparent"].startswith(f"00-{handoff.trace_id}-{handoff.span_id}-")
    assert handoff.attributes[sc.HANDOFF_ID] == handoff_line["handoff_id"]
    assert closing.attributes[sc.HANDOFF_ID] == handoff_line["handoff_id"]
    assert run_activity.attributes[sc.COMPLETED_ASYNC] is True
    assert not run_activity.is_error
    assert not closing.is_error
    return handoff, closing


def assert_no_token_exported(receiver: OtlpReceiver, token: bytes) -> None:
    """Not in any decoded name, status, attribute, event or link, nor in the raw bytes of any
    export request the receiver got."""
    raw = receiver.raw_requests
    assert raw
    assert not any(token in request for request in raw)
    values = [
        [s.name, s.status_message, s.attributes, [[e.name, e.attributes] for e in s.events],
         [link.attributes for link in s.links]]
        for s in receiver.spans
    ]  # fmt: skip
    assert_token_absent(values, [token])


async def test_one_trace_covers_workflow_activity_handoff_completion_and_continuation(
    stack: Stack,
) -> None:
    handle = await stack.start()
    line = await stack.handoff(handle.id)
    await stack.command(op="heartbeat", handoff_id=line["handoff_id"], progress={"step": 1})
    await stack.command(op="complete", handoff_id=line["handoff_id"], result="done")
    assert await handle.result() == {"result": "done"}

    spans = await stack.story(handle.id, "complete agent")
    handoff, complete = assert_handoff_story(spans, line, "complete agent")
    assert complete.attributes[sc.OUTCOME] == "completed"
    assert complete.attributes[sc.PENDING_DURATION] > 0
    heartbeat = by_name(spans, "heartbeat agent")
    assert heartbeat.parent_span_id == handoff.span_id
    assert heartbeat.service == "completer"
    assert_no_token_exported(stack.receiver, bytes.fromhex(line["task_token"]))


async def test_a_failure_by_raw_token_is_in_the_same_trace(stack: Stack) -> None:
    handle = await stack.start()
    line = await stack.handoff(handle.id)
    await stack.command(op="fail", token=line["task_token"], error_type="Nope", message="no")
    assert (await handle.result())["error_type"] == "Nope"

    spans = await stack.story(handle.id, "fail agent")
    _, failed = assert_handoff_story(spans, line, "fail agent")
    assert failed.attributes[sc.OUTCOME] == "failed"
    assert failed.attributes[sc.FAILURE_TYPE] == "Nope"
    assert_no_token_exported(stack.receiver, bytes.fromhex(line["task_token"]))


async def test_a_reaped_handoff_is_in_the_same_trace(stack: Stack) -> None:
    handle = await stack.start(extra={"deadline_seconds": 0.2})
    line = await stack.handoff(handle.id)
    await asyncio.sleep(0.3)
    answer = await stack.command(op="reap")
    assert [line["handoff_id"], "reaped"] in answer["reaped"]
    assert (await handle.result())["error_type"] == "HandoffDeadlineExceeded"

    spans = await stack.story(handle.id, "reap agent")
    _, reaped = assert_handoff_story(spans, line, "reap agent")
    assert reaped.attributes[sc.OUTCOME] == "reaped"
    assert reaped.attributes[sc.FAILURE_TYPE] == "HandoffDeadlineExceeded"
    assert_no_token_exported(stack.receiver, bytes.fromhex(line["task_token"]))


async def test_openmetrics_exemplars_name_traces_the_receiver_has(stack: Stack) -> None:
    handle = await stack.start()
    line = await stack.handoff(handle.id)
    await stack.command(op="complete", handoff_id=line["handoff_id"], result=1)
    await handle.result()
    spans = await stack.story(handle.id, "complete agent")

    exemplars = _exemplars((await stack.command(op="metrics"))["openmetrics"])
    received = {s.trace_id for s in stack.receiver.spans}
    assert exemplars
    assert exemplars <= received
    # The latest completion's bucket names this very trace.
    assert spans[0].trace_id in exemplars
