"""Outcomes the handoff recorder learns from the ledger (a superseded attempt, an early
outcome applied at recording, an aborted handoff) are counted once and logged like the
completion path's, by the one outcome reporter."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from handshake_obs import HandshakeConfig, Outcome
from handshake_obs.ledger import SqliteLedger
from handshake_obs.telemetry._metrics import HandshakeMetrics
from handshake_obs.worker._recorder import HandoffRecorder

from ..support.logs import flushed_logs
from .completion_kit import T0, Clock, all_finished, finished, new_record, sample

#: What every line about a handoff says about it.
IDENTITY = {"handoff_id", "workflow_id", "run_id", "activity_id", "attempt", "target"}


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
def recorder(ledger: SqliteLedger, registry: CollectorRegistry) -> HandoffRecorder:
    config = HandshakeConfig(targets=("agent",))
    metrics = HandshakeMetrics(config, registry=registry)
    return HandoffRecorder(ledger=ledger, metrics=metrics, config=config, clock=Clock(T0 + 5))


def outcome_lines(stream: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in flushed_logs(stream).splitlines() if line[:1] == "{"]
    return [line for line in lines if line["event"] == event]


async def test_a_superseded_attempt_is_counted_already_closed_once_and_logged(
    recorder: HandoffRecorder, registry: CollectorRegistry, log_stream: io.StringIO
) -> None:
    first = await recorder.record(new_record(workflow_id="wf-1", attempt=1))
    await recorder.record(new_record(workflow_id="wf-1", attempt=2, started_at=T0 + 5))

    assert sample(registry, "handshake_handoffs_started_total", target="agent") == 2
    assert finished(registry, "already_closed") == 1
    assert all_finished(registry) == 1
    (line,) = outcome_lines(log_stream, "handoff superseded by a new attempt")
    assert line.keys() >= IDENTITY
    assert line["handoff_id"] == first.handoff_id
    assert line["new_attempt"] == 2
    assert line["outcome"] == "already_closed"
    assert line["latency_seconds"] == 5


async def test_an_aborted_handoff_is_counted_once_however_often_it_is_aborted(
    recorder: HandoffRecorder, registry: CollectorRegistry, log_stream: io.StringIO
) -> None:
    record = await recorder.record(new_record())

    await recorder.abort(record, RuntimeError("the body raised"))
    await recorder.abort(record, RuntimeError("and again"))

    assert finished(registry, "aborted") == 1
    assert all_finished(registry) == 1
    (line,) = outcome_lines(log_stream, "handoff aborted")
    assert line.keys() >= IDENTITY
    assert line["error_type"] == "RuntimeError"
    assert line["outcome"] == "aborted"


async def test_an_abort_the_ledger_cannot_record_is_counted_as_an_instrumentation_error(
    recorder: HandoffRecorder, ledger: SqliteLedger, registry: CollectorRegistry
) -> None:
    record = await recorder.record(new_record())
    await ledger.close()

    await recorder.abort(record, RuntimeError("the body raised"))

    assert all_finished(registry) == 0
    assert sample(registry, "handshake_instrumentation_errors_total", component="ledger") == 1


async def test_an_early_outcome_is_counted_when_its_handoff_is_recorded_and_logged(
    recorder: HandoffRecorder,
    ledger: SqliteLedger,
    registry: CollectorRegistry,
    log_stream: io.StringIO,
) -> None:
    record = new_record()
    assert await ledger.record_early_outcome(record.task_token, Outcome.CANCELED, T0 + 1) is None

    stored = await recorder.record(record)

    assert stored.outcome is Outcome.CANCELED
    assert finished(registry, "canceled") == 1
    assert all_finished(registry) == 1
    (line,) = outcome_lines(log_stream, "handoff reconciled with an outcome that arrived first")
    assert line.keys() >= IDENTITY
    assert line["outcome"] == "canceled"
