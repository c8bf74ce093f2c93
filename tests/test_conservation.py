"""Conservation: for every target, started = sum of outcomes + pending, in the ledger and in
/metrics, after several hundred concurrent handoffs with mixed outcomes."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import ActivityAlreadyClosedError, Handshake

from .conftest import StartWorkflow
from .support.activities import EXTERNAL
from .support.ledger_inspection import count_outcomes
from .support.waiting import assert_eventually

HANDOFFS = 320
#: What the external system does with handoff n: PLAN[n % len(PLAN)].
PLAN = (
    "complete", "complete", "fail", "heartbeat_complete", "plain_complete",
    "cancel", "timeout", "abort", "pending", "complete",
)  # fmt: skip
TARGETS = ("agent", "approval", "mystery-target")  # the last is not configured: "other"
FINISHED_OUTCOMES = ("completed", "failed", "canceled", "reaped", "already_closed", "aborted")
LABELS = {"agent": "agent", "approval": "approval", "mystery-target": "other", "default": "default"}


def target_of(n: int) -> str:
    """Where handoff n is recorded (plain activities get the default target)."""
    return "default" if PLAN[n % len(PLAN)] == "plain_complete" else TARGETS[n % len(TARGETS)]


@pytest.fixture
def metrics_url(registry: CollectorRegistry) -> Iterator[str]:
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def cancel_requested(handle: WorkflowHandle[Any, Any]) -> None:
    description = await handle.describe()
    (activity,) = description.raw_description.pending_activities
    assert activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED


async def act(n: int, handshake: Handshake, client: Client, start_workflow: StartWorkflow) -> str:
    plan = PLAN[n % len(PLAN)]
    target = TARGETS[n % len(TARGETS)]
    handle = await start_workflow(
        "hand_off_plain" if plan == "plain_complete" else "hand_off_explicit",
        target=target,
        start_to_close_seconds=2 if plan == "timeout" else 120,
        heartbeat_timeout_seconds=60,
        extra={"raise_before_release": plan == "abort"},
    )
    if plan == "abort":
        await handle.result()
        return plan
    delivery = await EXTERNAL.receive(handle.id, timeout=60)
    completer = handshake.completer(client)
    ref = delivery.handoff.handoff_id if delivery.handoff else delivery.task_token
    if plan in ("complete", "heartbeat_complete"):
        if plan == "heartbeat_complete":
            await completer.heartbeat(ref, {"n": n})
        await completer.complete(ref, n)
    elif plan == "fail":
        await completer.fail(ref, error_type="Rejected", message="no", non_retryable=True)
    elif plan == "plain_complete":
        await client.get_async_activity_handle(task_token=delivery.task_token).complete(n)
    elif plan == "cancel":
        await handle.cancel()
        await assert_eventually(lambda: cancel_requested(handle))
        await completer.report_cancellation(ref)
    elif plan == "timeout":
        await handle.result()  # Temporal times the activity out first
        with pytest.raises(ActivityAlreadyClosedError):
            await completer.complete(ref, n)
    if plan != "pending":
        await handle.result()
    return plan


async def test_started_equals_outcomes_plus_pending_per_target_in_ledger_and_metrics(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    metrics_url: str,
) -> None:
    done = await asyncio.gather(
        *(act(n, handshake, client, start_workflow) for n in range(HANDOFFS))
    )
    assert Counter(done) == Counter(PLAN[n % len(PLAN)] for n in range(HANDOFFS))
    await handshake.refresh_pending_gauges()

    ledger = {(c.target, c.outcome): c.count for c in await count_outcomes(handshake.ledger)}
    metrics = scrape(metrics_url)
    expected_outcomes = {
        "complete": "completed", "heartbeat_complete": "completed",
        "plain_complete": "completed", "fail": "failed", "cancel": "canceled",
        "timeout": "already_closed", "abort": "aborted", "pending": "pending",
    }  # fmt: skip
    for target, label in LABELS.items():
        planned = Counter(
            expected_outcomes[PLAN[n % len(PLAN)]]
            for n in range(HANDOFFS)
            if target_of(n) == target
        )
        in_ledger = Counter({o: c for (t, o), c in ledger.items() if t == target})
        assert in_ledger == planned, target

        started = metrics[("handshake_handoffs_started_total", (("target", label),))]
        finished = {
            outcome: metrics.get(
                ("handshake_handoffs_finished_total", (("outcome", outcome), ("target", label))), 0
            )
            for outcome in (
                "completed",
                "failed",
                "canceled",
                "reaped",
                "already_closed",
                "aborted",
            )
        }
        pending = metrics[("handshake_pending_handoffs", (("target", label),))]
        assert started == sum(planned.values())
        assert started == sum(finished.values()) + pending
        assert pending == planned["pending"]
        for outcome, count in finished.items():
            assert count == planned[outcome], (target, outcome)
