"""Instrumentation never changes what the activity or the caller does, whatever the ledger
does meanwhile: a locked SQLite ledger (another connection holding its write lock for
seconds), a worker shutting down, a cancelled activity's heartbeat.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import AsyncActivityCancelledError, Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig, Outcome, State

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ledger_inspection import side_tables
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another connection holds the database's one write lock until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


def config_of(ledger_path: Path, **fields: Any) -> HandshakeConfig:
    return HandshakeConfig(
        ledger_url=f"sqlite:///{ledger_path}",
        targets=("agent", "default"),  # plain activities hand off to "default"
        rpc_timeout=timedelta(seconds=5),
        **fields,
    )


@pytest.fixture
async def plain_worker(plain_client: Client) -> AsyncIterator[str]:
    """Workflows on a worker of their own (no handshake-obs): an activity worker can stop
    while they go on."""
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(plain_client, task_queue=task_queue, workflows=[HandoffWorkflow]):
        yield task_queue


async def start(
    client: Client, task_queue: str, activity: str, **fields: Any
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        HandoffWorkflow.run,
        HandoffRequest(activity=activity, target="agent", **fields),
        id=f"wf-{uuid.uuid4()}",
        task_queue=task_queue,
    )


async def first_attempt_open(handle: WorkflowHandle[Any, Any]) -> None:
    pending = list((await handle.describe()).raw_description.pending_activities)
    assert len(pending) == 1
    assert pending[0].attempt == 1
    assert not pending[0].HasField("last_failure"), pending[0].last_failure


@pytest.mark.timeout(240)
async def test_a_worker_shutdown_during_a_locked_ledger_write_keeps_every_async_completion(
    ledger_path: Path, temporal_address: str, plain_worker: str
) -> None:
    """The shutdown cancels the activities while the interceptor's post-release record waits
    for the lock: the complete-async signal still wins, every handoff is recorded once the
    lock goes, none fails, none is retried."""
    registry = CollectorRegistry()
    # A bound longer than the shutdown's wait: the cancellation lands inside the write.
    config = config_of(ledger_path, ledger_call_timeout=timedelta(seconds=5))
    count = 8
    async with Handshake(config, registry=registry) as handshake:
        client = await Client.connect(temporal_address, interceptors=[handshake.interceptor])
        worker = Worker(client, task_queue=plain_worker, activities=ALL_ACTIVITIES)
        running = asyncio.create_task(worker.run())
        handles = []
        deliveries = []
        with write_lock(ledger_path):
            held = time.monotonic()
            handles = [
                await start(client, plain_worker, "hand_off_plain", max_attempts=2)
                for _ in range(count)
            ]
            deliveries = [await EXTERNAL.receive(h.id) for h in handles]
            await asyncio.sleep(0.5)  # every activity is inside its post-release record
            await worker.shutdown()
            await running
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - held)))

        async def all_recorded() -> None:
            for delivery in deliveries:
                record = await handshake.ledger.find_by_token(delivery.task_token)
                assert record is not None
                assert record.state is State.PENDING

        await assert_eventually(all_recorded, timeout=30)
        for handle in handles:
            await first_attempt_open(handle)
        for n, delivery in enumerate(deliveries):
            await client.get_async_activity_handle(task_token=delivery.task_token).complete(n)
        assert [await h.result() for h in handles] == [{"result": n} for n in range(count)]
        assert sample(registry, "handshake_handoffs_started_total", target="default") == count
        finished = "handshake_handoffs_finished_total"
        assert sample(registry, finished, target="default", outcome="completed") == count
        assert sample(registry, "handshake_instrumentation_errors_total", component="ledger") == 0


async def test_a_plain_handle_completion_does_not_wait_for_a_locked_ledger(
    ledger_path: Path, temporal_address: str, plain_worker: str
) -> None:
    """Temporal gets the completion within the bound, not after the lock; the outcome is
    recorded as completed once the lock goes."""
    registry = CollectorRegistry()
    config = config_of(ledger_path, ledger_call_timeout=timedelta(seconds=0.5))
    async with Handshake(config, registry=registry) as handshake:
        client = await Client.connect(temporal_address, interceptors=[handshake.interceptor])
        async with Worker(client, task_queue=plain_worker, activities=ALL_ACTIVITIES):
            handle = await start(client, plain_worker, "hand_off_explicit")
            delivery = await EXTERNAL.receive(handle.id)
            with write_lock(ledger_path):
                began = time.monotonic()
                await client.get_async_activity_handle(task_token=delivery.task_token).complete(
                    "quick"
                )
                took = time.monotonic() - began
                assert await handle.result() == {"result": "quick"}
                await asyncio.sleep(4 - took)
            # The ledger waited 10 s for the lock before; now the call is bounded.
            assert took < 3, took

            async def recorded() -> None:
                record = await handshake.ledger.get(delivery.explicit.handoff_id)
                assert record is not None
                assert record.outcome is Outcome.COMPLETED

            await assert_eventually(recorded, timeout=30)
            tables = await side_tables(handshake.ledger)
            assert tables.marks_of(delivery.explicit.handoff_id) == set()
            finished = "handshake_handoffs_finished_total"
            assert sample(registry, finished, target="agent", outcome="completed") == 1


async def test_a_heartbeat_answered_with_cancellation_ends_its_mark(
    ledger_path: Path, temporal_address: str, plain_worker: str
) -> None:
    registry = CollectorRegistry()
    async with Handshake(config_of(ledger_path), registry=registry) as handshake:
        client = await Client.connect(temporal_address, interceptors=[handshake.interceptor])
        async with Worker(client, task_queue=plain_worker, activities=ALL_ACTIVITIES):
            handle = await start(client, plain_worker, "hand_off_explicit")
            delivery = await EXTERNAL.receive(handle.id)
            await handle.cancel()
            activity = client.get_async_activity_handle(task_token=delivery.task_token)

            async def cancelled() -> None:
                try:
                    await activity.heartbeat("still working")
                except AsyncActivityCancelledError:
                    return
                raise AssertionError("cancellation not reported yet")

            await assert_eventually(cancelled, timeout=15, interval=0.2)

            async def mark_ended() -> None:
                # The mark ends in the background: the heartbeat never waits on the ledger.
                tables = await side_tables(handshake.ledger)
                assert tables.marks_of(delivery.explicit.handoff_id) == set()

            await assert_eventually(mark_ended, timeout=5, interval=0.1)
            await activity.report_cancellation()
            record = await handshake.ledger.get(delivery.explicit.handoff_id)
            assert record is not None
            assert record.outcome is Outcome.CANCELED
