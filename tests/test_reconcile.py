"""The reconciler against a real Temporal dev server: handoffs Temporal closed without
handshake-obs are closed in the ledger with the reason seen, within a minute, long before
their deadlines, with the default budget; /metrics conserves throughout."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import Handshake, Outcome
from handshake_obs.reconcile import CheckResult

from .conftest import StartWorkflow, temporal_cli
from .support.activities import EXTERNAL, Delivery

#: Every bypass is closed in the ledger within this long.
WITHIN_SECONDS = 60.0

TARGETS = ("agent", "approval", "other", "default")


def total(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def assert_conserved(handshake: Handshake, registry: CollectorRegistry) -> None:
    """started = finished + pending, on /metrics, for every target."""
    await handshake.refresh_pending_gauges()
    for target in TARGETS:
        started = total(registry, "handshake_handoffs_started_total", target=target)
        done = total(registry, "handshake_handoffs_finished_total", target=target)
        pending = total(registry, "handshake_pending_handoffs", target=target)
        assert started == done + pending, (target, started, done, pending)


async def started_handoff(
    start_workflow: StartWorkflow, **fields: Any
) -> tuple[WorkflowHandle[Any, Any], Delivery]:
    fields = {"target": "agent", "start_to_close_seconds": 600.0, **fields}
    handle = await start_workflow("hand_off_explicit", **fields)
    return handle, await EXTERNAL.receive(handle.id)


async def test_handoffs_closed_outside_handshake_obs_are_reconciled_with_their_reason(
    handshake: Handshake,
    client: Client,
    plain_client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
    temporal_address: str,
) -> None:
    reconciler = handshake.reconciler(client)
    assert reconciler.budget.rate == 10  # the default budget
    cli, raw, canceled, terminated = await asyncio.gather(
        started_handoff(start_workflow),
        started_handoff(start_workflow),
        started_handoff(start_workflow, try_cancel=True),
        started_handoff(start_workflow),
    )
    timed_out = await started_handoff(start_workflow, start_to_close_seconds=4.0)
    all_handoffs = [cli, raw, canceled, terminated, timed_out]
    ids = {
        name: d.explicit.handoff_id
        for name, (_, d) in zip(
            ("cli", "raw", "canceled", "terminated", "timed_out"), all_handoffs, strict=True
        )
    }
    await assert_conserved(handshake, registry)

    # The first checks find the attempts open in Temporal: nothing is closed (but the one
    # whose 4 s start-to-close timeout passes meanwhile).
    waiting = set(ids.values()) - {ids["timed_out"]}
    opened: set[str] = set()
    closed_after: dict[str, float] = {}
    began = time.monotonic()
    while opened != waiting and time.monotonic() - began < WITHIN_SECONDS:
        for check in await reconciler.reconcile_once():
            if check.record.handoff_id == ids["timed_out"] and check.result is not CheckResult.OPEN:
                closed_after[ids["timed_out"]] = time.monotonic() - began
                continue
            assert check.result is CheckResult.OPEN, check
            opened.add(check.record.handoff_id)
        await assert_conserved(handshake, registry)
        await asyncio.sleep(1)
    assert waiting <= opened

    # Then each is closed without handshake-obs.
    cli_record = await handshake.ledger.get(ids["cli"])
    assert cli_record is not None
    completed = await asyncio.create_subprocess_exec(
        temporal_cli(), "activity", "complete",
        "--workflow-id", cli_record.workflow_id,
        "--activity-id", cli_record.activity_id,
        "--result", json.dumps("from the cli"),
        "--address", temporal_address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(completed.communicate(), 60)
    assert completed.returncode == 0, output.decode()
    await plain_client.get_async_activity_handle(task_token=raw[1].task_token).complete("raw")
    await canceled[0].cancel()
    await terminated[0].terminate("operator")
    bypassed_at = time.monotonic()
    assert await cli[0].result() == {"result": "from the cli"}
    assert await raw[0].result() == {"result": "raw"}

    expected = {
        ids["cli"]: ("completed_elsewhere", None),
        ids["raw"]: ("completed_elsewhere", None),
        ids["canceled"]: ("workflow_closed", "canceled"),
        ids["terminated"]: ("workflow_closed", "terminated"),
        ids["timed_out"]: ("activity_timed_out", None),
    }
    while len(closed_after) < len(expected) and time.monotonic() - bypassed_at < WITHIN_SECONDS:
        for check in await reconciler.reconcile_once():
            if check.result is CheckResult.RECONCILED:
                closed_after[check.record.handoff_id] = time.monotonic() - bypassed_at
        await assert_conserved(handshake, registry)
        await asyncio.sleep(2)  # the default reconcile interval
    assert set(closed_after) == set(expected), closed_after
    assert max(closed_after.values()) < WITHIN_SECONDS

    for handoff_id, (reason, detail) in expected.items():
        record = await handshake.ledger.get(handoff_id)
        assert record is not None
        assert record.outcome is Outcome.ALREADY_CLOSED
        assert record.error_type == reason, (handoff_id, record.error_type)
        if detail is not None:
            assert record.error_message == detail
        assert record.deadline is not None
        assert record.finished_at is not None
        if handoff_id != ids["timed_out"]:  # its deadline comes before Temporal's timeout
            assert record.finished_at < record.deadline - 400
    assert total(registry, "handshake_reconciled_total", reason="completed_elsewhere") == 2
    assert total(registry, "handshake_reconciled_total", reason="workflow_closed") == 2
    assert total(registry, "handshake_reconciled_total", reason="activity_timed_out") == 1
    assert total(registry, "handshake_reconciler_runs_total", result="success") >= 2
    assert total(registry, "handshake_reconciler_last_success_timestamp_seconds") > 0
    # Nothing more to check: every handoff is finished.
    assert await reconciler.reconcile_once() == []
    await assert_conserved(handshake, registry)
