"""Standalone activities (``Client.start_activity``, no workflow) against a real dev server:
recorded with their activity run id, completed by activity id and run id, reaped, and
reconciled like the activities of a workflow."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import ActivityFailureError, ActivityHandle, Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from handshake_obs import Handshake, Outcome
from handshake_obs.reconcile import CheckResult

from .conftest import temporal_cli
from .support.activities import EXTERNAL, Delivery, hand_off_standalone


async def started(
    client: Client, task_queue: str, *, deadline_seconds: float | None = None
) -> tuple[ActivityHandle[Any], Delivery]:
    activity_id = f"sa-{uuid.uuid4()}"
    handle = await client.start_activity(
        hand_off_standalone,
        deadline_seconds,
        id=activity_id,
        task_queue=task_queue,
        start_to_close_timeout=timedelta(minutes=10),
    )
    return handle, await EXTERNAL.receive(activity_id)


async def test_a_standalone_handoff_is_recorded_and_completed_by_activity_id_and_run_id(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    task_queue: str,
    registry: CollectorRegistry,
) -> None:
    handle, delivery = await started(client, task_queue)
    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.workflow_id == ""
    assert record.activity_id == handle.id
    assert record.activity_run_id == handle.run_id
    assert record.run_id == handle.run_id  # keys its attempts, as a workflow's run does
    assert record.is_standalone
    assert record.start_to_close_timeout == 600.0
    assert await handshake.ledger.find_standalone(None, handle.id, handle.run_id) == record

    by_id = client.get_async_activity_handle(activity_id=handle.id, run_id=handle.run_id)
    await by_id.complete("done by id")
    assert await handle.result() == "done by id"
    finished = await handshake.ledger.get(record.handoff_id)
    assert finished is not None
    assert finished.outcome is Outcome.COMPLETED
    labels = {"target": "agent", "outcome": "completed"}
    assert registry.get_sample_value("handshake_handoffs_finished_total", labels) == 1


async def test_a_standalone_handoff_past_its_deadline_is_reaped(
    handshake: Handshake, client: Client, worker: Worker, task_queue: str
) -> None:
    handle, delivery = await started(client, task_queue, deadline_seconds=0.2)
    await asyncio.sleep(0.4)
    results = await handshake.reaper(client).reap_once()
    assert [r.result for r in results] == ["reaped"]
    with pytest.raises(ActivityFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "HandoffDeadlineExceeded"
    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.REAPED


async def test_a_standalone_handoff_completed_with_the_cli_is_reconciled(
    handshake: Handshake, client: Client, worker: Worker, task_queue: str, temporal_address: str
) -> None:
    handle, delivery = await started(client, task_queue)
    reconciler = handshake.reconciler(client)
    await asyncio.sleep(handshake.config.reconcile_first_check.total_seconds())
    (first,) = await reconciler.reconcile_once()
    assert first.result is CheckResult.OPEN

    completed = await asyncio.create_subprocess_exec(
        temporal_cli(), "activity", "complete",
        "--activity-id", handle.id, "--run-id", handle.run_id or "",
        "--result", '"from the cli"', "--address", temporal_address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(completed.communicate(), 60)
    assert completed.returncode == 0, output.decode()
    assert await handle.result() == "from the cli"

    await handshake.ledger.schedule_check(delivery.explicit.handoff_id, 0.0, "test")
    (check,) = await reconciler.reconcile_once()
    assert check.result is CheckResult.RECONCILED
    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.ALREADY_CLOSED
    assert record.error_type == "completed_elsewhere"
