"""The completion path's branches, against a real SQLite ledger and a stand-in for Temporal's
RPC: what each answer records, counts, logs and traces, and that every outcome is counted
exactly once."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from temporalio.activity import ActivityCancellationDetails
from temporalio.client import AsyncActivityCancelledError
from temporalio.exceptions import TemporalError
from temporalio.service import RPCStatusCode

from handshake_obs import (
    DEADLINE_EXCEEDED_TYPE,
    ActivityAlreadyClosedError,
    CompletionError,
    CompletionRejectedError,
    HandoffAlreadyFinishedError,
    HandoffRecord,
    HandshakeConfig,
    InvalidTaskTokenError,
    LedgerError,
    Outcome,
    RetryPolicy,
    TargetPolicy,
    TemporalUnavailableError,
    UnknownHandoffError,
)
from handshake_obs._vocabulary import CloseReason, Component, HandoffEventKind
from handshake_obs.completion._call import Subject
from handshake_obs.completion._path import CallResult, CompletionPath
from handshake_obs.completion._rpc import RetryingRpc
from handshake_obs.ledger import SqliteLedger
from handshake_obs.sidecar._handoff_page import timeline_of
from handshake_obs.telemetry import _semconv as sc
from handshake_obs.telemetry._metrics import HandshakeMetrics
from handshake_obs.telemetry._tracing import HandshakeTracing
from handshake_obs.worker._recorder import HandoffRecorder

from ..support.ledger_inspection import side_tables
from ..support.logs import flushed_logs
from .completion_kit import (
    HANG,
    NOT_FOUND,
    T0,
    Clock,
    FakeRpc,
    all_errors,
    all_finished,
    answers,
    finished,
    new_record,
    rpc_error,
    rpcs,
    sample,
)

#: Retries without waiting: the tier stays fast.
FAST_RETRY = RetryPolicy(
    max_attempts=3,
    initial_backoff=timedelta(milliseconds=1),
    max_backoff=timedelta(milliseconds=2),
)
EXTENDS_BY = timedelta(minutes=10)


@pytest.fixture
def config(tmp_path: Path) -> HandshakeConfig:
    return HandshakeConfig(
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        targets=("agent",),
        rpc_timeout=timedelta(milliseconds=200),
        rpc_retry=FAST_RETRY,
        target_policies={"extending": TargetPolicy(heartbeat_extends_by=EXTENDS_BY)},
    )


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    await ledger.open()
    yield ledger
    await ledger.close()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(config: HandshakeConfig, registry: CollectorRegistry) -> HandshakeMetrics:
    return HandshakeMetrics(config, registry=registry)


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(config: HandshakeConfig, exported: InMemorySpanExporter) -> HandshakeTracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return HandshakeTracing(config, tracer_provider=provider)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(
    ledger: SqliteLedger,
    metrics: HandshakeMetrics,
    config: HandshakeConfig,
    tracing: HandshakeTracing,
    clock: Clock,
) -> CompletionPath:
    return CompletionPath(
        ledger=ledger, metrics=metrics, config=config, tracing=tracing, clock=clock
    )


async def recorded(ledger: SqliteLedger, **fields: Any) -> HandoffRecord:
    """A pending handoff, stored."""
    return (await ledger.record(new_record(**fields))).record


def of(record: HandoffRecord) -> Subject:
    """What the completer calls about ``record`` (by id)."""
    return Subject(record, record.task_token)


def plain(record: HandoffRecord) -> Subject:
    """What a plain handle's call about ``record`` is (Temporal answers for it)."""
    return Subject(record, record.task_token, refuse_finished=False)


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """What handshake-obs logged, as JSON objects."""
    text = flushed_logs(stream)
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def events(stream: io.StringIO) -> list[str]:
    return [str(line["event"]) for line in log_lines(stream)]


def only_span(exported: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exported.get_finished_spans()
    return span


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- each operation that goes through -----------------------------------------------------

FINISHING = [
    pytest.param("complete", Outcome.COMPLETED, None, id="complete"),
    pytest.param("fail", Outcome.FAILED, "ApprovalRejected", id="fail"),
    pytest.param("report_cancellation", Outcome.CANCELED, None, id="report_cancellation"),
    pytest.param("reap", Outcome.REAPED, DEADLINE_EXCEEDED_TYPE, id="reap"),
]


async def run_operation(
    path: CompletionPath, operation: str, record: HandoffRecord, rpc: FakeRpc
) -> CallResult:
    if operation == "complete":
        return await path.complete(of(record), rpc)
    if operation == "fail":
        return await path.fail(of(record), rpc, error_type="ApprovalRejected", message="no")
    if operation == "report_cancellation":
        return await path.report_cancellation(of(record), rpc)
    return await path.reap(record, rpc, message="passed its deadline")


@pytest.mark.parametrize(("operation", "outcome", "error_type"), FINISHING)
async def test_an_accepted_call_records_its_outcome_and_counts_it_once(
    path: CompletionPath,
    ledger: SqliteLedger,
    registry: CollectorRegistry,
    exported: InMemorySpanExporter,
    clock: Clock,
    config: HandshakeConfig,
    operation: str,
    outcome: Outcome,
    error_type: str | None,
) -> None:
    record = await recorded(ledger)
    clock.now = T0 + 7
    rpc = FakeRpc()

    result = await run_operation(path, operation, record, rpc)

    assert result.operation.value == operation
    assert result.handoff == record
    assert rpc.timeouts == [config.rpc_timeout]
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.outcome is outcome
    assert stored.finished_at == T0 + 7
    assert stored.error_type == error_type
    assert finished(registry, outcome.value) == 1
    assert all_finished(registry) == 1
    assert all_errors(registry) == {}
    assert rpcs(registry, operation) == 1
    assert (
        sample(
            registry,
            "handshake_completion_latency_seconds_sum",
            target="agent",
            outcome=outcome.value,
        )
        == 7
    )
    span = only_span(exported)
    assert span.name == f"{operation} agent"
    assert attributes(span)[sc.OUTCOME] == outcome.value
    assert attributes(span).get(sc.FAILURE_TYPE) == error_type


async def test_a_heartbeat_keeps_progress_sends_it_and_records_no_outcome(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    record = await recorded(ledger)
    rpc = FakeRpc()

    result = await path.heartbeat(of(record), rpc, progress={"step": 1}, sequence=None)

    assert result.heartbeat is not None
    assert result.heartbeat.accepted
    assert rpc.attempts == 1
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending
    assert stored.progress == {"step": 1}
    assert all_finished(registry) == 0
    assert rpcs(registry, "heartbeat") == 1


# -- what Temporal's refusals record ------------------------------------------------------


async def test_not_found_ends_the_handoff_already_closed_and_counts_it_once(
    path: CompletionPath,
    ledger: SqliteLedger,
    registry: CollectorRegistry,
    exported: InMemorySpanExporter,
) -> None:
    record = await recorded(ledger)
    refusal = rpc_error(NOT_FOUND, "invalid activityID or activity already timed out")
    rpc = answers(refusal)

    with pytest.raises(ActivityAlreadyClosedError) as raised:
        await path.complete(of(record), rpc)

    assert raised.value.__cause__ is refusal
    assert rpc.attempts == 1  # final: not retried
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.outcome is Outcome.ALREADY_CLOSED
    assert stored.error_type == CloseReason.NOT_FOUND
    assert finished(registry, "already_closed") == 1
    assert all_finished(registry) == 1
    assert all_errors(registry) == {("agent", "already_closed"): 1}
    span = only_span(exported)
    assert attributes(span)[sc.ERROR_TYPE] == "already_closed"
    assert attributes(span)[sc.OUTCOME] == "already_closed"


async def test_not_found_for_an_unknown_token_is_kept_and_counted_when_it_is_recorded(
    path: CompletionPath, ledger: SqliteLedger, metrics: HandshakeMetrics, config: HandshakeConfig
) -> None:
    record = new_record()
    with pytest.raises(ActivityAlreadyClosedError):
        await path.complete(Subject(None, record.task_token), answers(rpc_error(NOT_FOUND)))

    result = await ledger.record(record)

    assert result.reconciled is not None
    assert result.reconciled.outcome is Outcome.ALREADY_CLOSED
    assert result.record.error_type == CloseReason.NOT_FOUND


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        pytest.param(
            RPCStatusCode.INVALID_ARGUMENT,
            "Error deserializing task token.",
            InvalidTaskTokenError,
            id="invalid-token",
        ),
        pytest.param(
            RPCStatusCode.FAILED_PRECONDITION,
            "activity was not asked to cancel",
            CompletionRejectedError,
            id="failed-precondition",
        ),
        pytest.param(
            RPCStatusCode.INVALID_ARGUMENT,
            "details too large",
            CompletionRejectedError,
            id="invalid-argument",
        ),
        pytest.param(
            RPCStatusCode.PERMISSION_DENIED, "not allowed", CompletionError, id="anything-else"
        ),
    ],
)
async def test_a_final_refusal_is_counted_by_its_type_and_leaves_the_handoff_pending(
    path: CompletionPath,
    ledger: SqliteLedger,
    registry: CollectorRegistry,
    status: RPCStatusCode,
    message: str,
    error: type[CompletionError],
) -> None:
    record = await recorded(ledger)
    rpc = answers(rpc_error(status, message))

    with pytest.raises(error) as raised:
        await path.report_cancellation(of(record), rpc)

    assert type(raised.value) is error
    assert rpc.attempts == 1
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending
    assert all_finished(registry) == 0
    assert all_errors(registry) == {("agent", error.error_type.value): 1}
    # The in-flight mark is gone: a later NOT_FOUND closes the handoff at once.
    with pytest.raises(ActivityAlreadyClosedError):
        await path.complete(of(record), answers(rpc_error(NOT_FOUND)))
    assert finished(registry, "already_closed") == 1


async def test_an_invalid_token_unknown_to_the_ledger_is_counted_as_other(
    path: CompletionPath, registry: CollectorRegistry
) -> None:
    garbage = b"\x00not-a-task-token"
    rpc = answers(rpc_error(RPCStatusCode.INVALID_ARGUMENT, "Error deserializing task token."))

    with pytest.raises(InvalidTaskTokenError):
        await path.complete(Subject(None, garbage), rpc)

    assert all_errors(registry) == {("other", "invalid_token"): 1}


# -- an unavailable Temporal ----------------------------------------------------------------


async def test_unavailable_is_retried_then_raised_and_the_handoff_stays_pending(
    path: CompletionPath,
    ledger: SqliteLedger,
    registry: CollectorRegistry,
    exported: InMemorySpanExporter,
) -> None:
    record = await recorded(ledger)
    rpc = answers(rpc_error(RPCStatusCode.UNAVAILABLE, "connection refused"))

    with pytest.raises(TemporalUnavailableError):
        await path.complete(of(record), rpc)

    assert rpc.attempts == FAST_RETRY.max_attempts
    assert rpcs(registry, "complete") == FAST_RETRY.max_attempts
    assert all_errors(registry) == {("agent", "unavailable"): 1}
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending
    span = only_span(exported)
    assert [e.name for e in span.events] == [sc.RPC_RETRY_EVENT] * 2 + ["exception"]
    assert attributes(span)[sc.ERROR_TYPE] == "unavailable"
    # The same call succeeds once Temporal is back.
    await path.complete(of(record), FakeRpc())
    assert finished(registry, "completed") == 1


async def test_a_call_temporal_did_not_take_is_on_the_handoffs_timeline(
    path: CompletionPath, ledger: SqliteLedger
) -> None:
    """The handoff page shows each completion-path call with its result: one Temporal
    refused leaves a ``call_failed`` event (the handoff stays pending), then the outcome."""
    record = await recorded(ledger)
    with pytest.raises(TemporalUnavailableError):
        await path.complete(
            of(record), answers(rpc_error(RPCStatusCode.UNAVAILABLE, "connection refused"))
        )
    assert await path.delayed.drain(5.0) == 0
    await path.complete(of(record), FakeRpc())

    events = await ledger.events(record.handoff_id)
    kinds = [e.kind for e in events]
    assert kinds == [
        HandoffEventKind.RECORDED,
        HandoffEventKind.CALL_FAILED,
        HandoffEventKind.FINISHED,
    ]
    assert events[1].detail == {"operation": "complete", "error_type": "unavailable"}
    assert (await side_tables(ledger)).calls_in_flight == frozenset()
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    shown = timeline_of(stored, events)[1]
    assert (shown.title, shown.kind) == ("complete not taken by Temporal", "bad")
    assert shown.detail.startswith("unavailable")


async def test_unavailable_then_accepted_is_one_completion_and_no_error(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    record = await recorded(ledger)
    rpc = answers(rpc_error(RPCStatusCode.DEADLINE_EXCEEDED), None)

    await path.complete(of(record), rpc)

    assert rpc.attempts == 2
    assert finished(registry, "completed") == 1
    assert all_errors(registry) == {}


async def test_the_client_side_guard_ends_an_attempt_that_ignores_its_timeout(
    ledger: SqliteLedger,
    metrics: HandshakeMetrics,
    config: HandshakeConfig,
    tracing: HandshakeTracing,
    registry: CollectorRegistry,
) -> None:
    path = CompletionPath(
        ledger=ledger,
        metrics=metrics,
        config=config,
        tracing=tracing,
        rpc=RetryingRpc(config, metrics, tracing, guard_slack=0.05),
    )
    record = await recorded(ledger)
    rpc = answers(HANG)
    started = time.monotonic()

    with pytest.raises(TemporalUnavailableError) as raised:
        await path.fail(of(record), rpc, error_type="X", message="x")

    assert time.monotonic() - started < 5
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert rpc.attempts == FAST_RETRY.max_attempts
    assert all_errors(registry) == {("agent", "unavailable"): 1}
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending


# -- refused before any RPC -------------------------------------------------------------------


async def test_a_finished_handoff_is_refused_without_an_rpc(
    path: CompletionPath,
    ledger: SqliteLedger,
    registry: CollectorRegistry,
    exported: InMemorySpanExporter,
) -> None:
    record = await recorded(ledger)
    await path.complete(of(record), FakeRpc())
    done = await ledger.get(record.handoff_id)
    assert done is not None
    rpc = FakeRpc()

    with pytest.raises(HandoffAlreadyFinishedError) as raised:
        await path.complete(of(done), rpc)

    assert raised.value.outcome == "completed"
    assert rpc.attempts == 0
    assert rpcs(registry, "complete") == 1
    assert all_finished(registry) == 1
    assert all_errors(registry) == {("agent", "already_finished"): 1}
    refused = exported.get_finished_spans()[-1]
    assert attributes(refused)[sc.ERROR_TYPE] == "already_finished"
    assert sc.OUTCOME not in attributes(refused)


async def test_a_plain_handle_on_a_finished_handoff_asks_temporal_and_records_nothing(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    record = await recorded(ledger)
    await path.complete(of(record), FakeRpc())
    done = await ledger.get(record.handoff_id)
    assert done is not None
    rpc = answers(rpc_error(NOT_FOUND))

    with pytest.raises(ActivityAlreadyClosedError):
        await path.complete(plain(done), rpc)

    assert rpc.attempts == 1
    assert finished(registry, "completed") == 1
    assert all_finished(registry) == 1
    assert all_errors(registry) == {("agent", "already_closed"): 1}


async def test_looking_up_an_unknown_id_is_refused_and_counted_as_other(
    path: CompletionPath, registry: CollectorRegistry
) -> None:
    with pytest.raises(UnknownHandoffError):
        await path.lookup("ho_" + "A" * 24)
    assert all_errors(registry) == {("other", "unknown_handoff"): 1}


async def test_a_lookup_the_ledger_cannot_answer_is_refused_and_counted(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    await ledger.close()
    with pytest.raises(LedgerError):
        await path.lookup("ho_" + "A" * 24)
    assert all_errors(registry) == {("other", "ledger_unavailable"): 1}


async def test_a_plain_handle_goes_through_when_the_ledger_cannot_be_read(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    record = new_record()
    await ledger.close()
    subject = await path.observed(record.task_token)
    rpc = FakeRpc()

    await path.complete(subject, rpc)

    assert rpc.attempts == 1
    assert all_errors(registry) == {}
    assert sample(registry, "handshake_instrumentation_errors_total", component="ledger") == 1


async def test_extending_a_finished_or_unknown_handoff_is_refused_and_counted(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry, clock: Clock
) -> None:
    record = await recorded(ledger, deadline=T0 + 60)
    extended = await path.extend(record.handoff_id, timedelta(hours=1))
    assert extended.deadline == clock.now + 3600
    await path.complete(of(extended), FakeRpc())

    with pytest.raises(HandoffAlreadyFinishedError):
        await path.extend(record.handoff_id, datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(UnknownHandoffError):
        await path.extend(new_record().task_token, timedelta(hours=1))

    assert all_errors(registry) == {
        ("agent", "already_finished"): 1,
        ("other", "unknown_handoff"): 1,
    }


# -- outcomes that overtake their record --------------------------------------------------------


async def test_an_outcome_for_an_unknown_token_is_kept_and_counted_once_when_recorded(
    path: CompletionPath,
    ledger: SqliteLedger,
    metrics: HandshakeMetrics,
    config: HandshakeConfig,
    registry: CollectorRegistry,
    log_stream: io.StringIO,
) -> None:
    record = new_record()
    rpc = FakeRpc()
    result = await path.complete(Subject(None, record.task_token), rpc)

    assert result.handoff is None
    assert rpc.attempts == 1
    assert all_finished(registry) == 0
    assert events(log_stream) == ["outcome kept until its handoff is recorded"]

    recorder = HandoffRecorder(ledger=ledger, metrics=metrics, config=config)
    stored = await recorder.record(record)

    assert stored.outcome is Outcome.COMPLETED
    assert finished(registry, "completed") == 1
    assert all_finished(registry) == 1


# -- heartbeats -------------------------------------------------------------------------------


async def test_heartbeats_out_of_order_are_kept_in_order_and_the_late_one_is_not_sent(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    record = await recorded(ledger)
    sent = FakeRpc()

    third = await path.heartbeat(of(record), sent, progress={"p": 60}, sequence=3)
    late = await path.heartbeat(of(record), sent, progress={"p": 30}, sequence=2)
    unnumbered = await path.heartbeat(of(record), sent, progress={"p": 80}, sequence=None)

    assert third.heartbeat is not None
    assert third.heartbeat.accepted
    assert late.heartbeat is not None
    assert not late.heartbeat.accepted
    assert late.heartbeat.sequence == 3
    assert unnumbered.heartbeat is not None
    assert unnumbered.heartbeat.sequence == 4
    assert sent.attempts == 2  # the late report never reached Temporal
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.progress == {"p": 80}
    assert stored.progress_sequence == 4


async def test_a_heartbeat_extends_the_deadline_when_the_target_policy_says_so(
    path: CompletionPath, ledger: SqliteLedger, clock: Clock
) -> None:
    record = await recorded(ledger, target="extending", deadline=T0 + 30)
    clock.now = T0 + 20

    await path.heartbeat(of(record), FakeRpc(), progress=None, sequence=None)

    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.deadline == T0 + 20 + EXTENDS_BY.total_seconds()
    # A later deadline is never shortened by a heartbeat.
    far = await path.extend(record.handoff_id, timedelta(days=1))
    await path.heartbeat(of(far), FakeRpc(), progress=None, sequence=None)
    again = await ledger.get(record.handoff_id)
    assert again is not None
    assert again.deadline == far.deadline


async def test_a_heartbeat_on_a_target_without_the_policy_leaves_the_deadline(
    path: CompletionPath, ledger: SqliteLedger
) -> None:
    record = await recorded(ledger, deadline=T0 + 30)
    await path.heartbeat(of(record), FakeRpc(), progress=None, sequence=None)
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.deadline == T0 + 30


# -- the ledger failing after the RPC -----------------------------------------------------------


async def test_a_ledger_failure_after_the_rpc_is_counted_and_logged_and_the_call_stands(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry, log_stream: io.StringIO
) -> None:
    record = await recorded(ledger)
    closed = asyncio.Event()

    async def temporal_accepts_then_the_ledger_goes(_: timedelta | None) -> None:
        await ledger.close()
        closed.set()

    result = await path.complete(of(record), temporal_accepts_then_the_ledger_goes)

    assert closed.is_set()
    assert result.handoff == record
    assert (
        sample(registry, "handshake_instrumentation_errors_total", component=Component.LEDGER) == 1
    )
    failures = [line for line in log_lines(log_stream) if line["event"] == "ledger write failed"]
    assert len(failures) == 1
    assert failures[0]["level"] == "error"
    assert failures[0]["handoff_id"] == record.handoff_id
    assert all_finished(registry) == 0  # not in the ledger: not counted
    assert all_errors(registry) == {}


# -- races: one outcome, counted once ---------------------------------------------------------


async def test_a_not_found_racing_the_accepted_call_does_not_close_the_handoff(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    """A duplicate's NOT_FOUND while the winning call is still in flight must not record
    already_closed: the winner records completed, and only that is counted."""
    record = await recorded(ledger)
    duplicate_answered = asyncio.Event()
    winner = asyncio.create_task(path.complete(of(record), answers(duplicate_answered)))
    await asyncio.sleep(0.05)  # the winner's call is in flight

    with pytest.raises(ActivityAlreadyClosedError):
        await path.complete(plain(record), answers(rpc_error(NOT_FOUND)))
    duplicate_answered.set()
    await winner

    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.outcome is Outcome.COMPLETED
    assert finished(registry, "completed") == 1
    assert all_finished(registry) == 1
    assert all_errors(registry) == {("agent", "already_closed"): 1}


async def test_two_accepted_calls_count_one_outcome(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    record = await recorded(ledger)
    await asyncio.gather(
        path.complete(plain(record), FakeRpc()), path.complete(plain(record), FakeRpc())
    )
    assert finished(registry, "completed") == 1
    assert all_finished(registry) == 1


# -- a heartbeat answered "stop", and other SDK errors ----------------------------------------


async def test_a_heartbeat_answered_cancel_requested_says_so_and_leaves_no_mark(
    path: CompletionPath, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    """Temporal delivered the heartbeat and answered that the workflow requested the
    activity's cancellation: the caller is told, nothing is raised, no outcome is recorded,
    and the call's in-flight mark ends (it used to stay, blocking ``already_closed``)."""
    record = await recorded(ledger)
    cancelled = AsyncActivityCancelledError(ActivityCancellationDetails(cancel_requested=True))

    result = await path.heartbeat(of(record), answers(cancelled), progress={"n": 1}, sequence=3)

    assert result.cancel_requested is True
    assert result.heartbeat is not None
    assert result.heartbeat.cancel_requested is True
    assert result.heartbeat.accepted
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending
    assert stored.progress == {"n": 1}
    # The mark ends in the background (a heartbeat never waits on the ledger for it).
    assert await path.delayed.drain(5.0) == 0
    assert (await side_tables(ledger)).calls_in_flight == frozenset()
    assert all_finished(registry) == 0
    plain_beat = await path.heartbeat(of(record), FakeRpc(), progress={"n": 2}, sequence=4)
    assert plain_beat.cancel_requested is False


async def test_any_other_temporalio_error_is_raised_as_a_completion_error(
    path: CompletionPath, ledger: SqliteLedger
) -> None:
    record = await recorded(ledger)
    sdk = TemporalError("something the SDK raised")

    with pytest.raises(CompletionError) as raised:
        await path.complete(of(record), answers(sdk))

    assert raised.value.__cause__ is sdk
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.is_pending
    assert await path.delayed.drain(5.0) == 0  # the mark ends in the background
    assert (await side_tables(ledger)).calls_in_flight == frozenset()
