"""Temporal down: the completion is retried with backoff, then reported, and the handoff stays
pending; once Temporal is back the same completion succeeds and nothing is lost."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig, RetryPolicy, TemporalUnavailableError
from handshake_obs.dev import start_dev_server

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ports import free_port
from .support.waiting import within
from .support.workflows import HandoffRequest, HandoffWorkflow

#: A bound on each step: a hang names its step (the whole test has five minutes).
STEP_SECONDS = 90


async def start_server(port: int, db: Path) -> WorkflowEnvironment:
    return await start_dev_server(port=port, database=db)


@pytest.mark.timeout(300)  # two dev-server starts and a shutdown, on shared cores
async def test_completion_while_temporal_is_down_is_retried_reported_and_kept_pending(
    tmp_path: Path,
) -> None:
    port, db = free_port(), tmp_path / "temporal.db"
    registry = CollectorRegistry()
    config = HandshakeConfig(
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        targets=("agent",),
        rpc_timeout=timedelta(seconds=1),
        rpc_retry=RetryPolicy(max_attempts=3, initial_backoff=timedelta(milliseconds=100)),
    )
    task_queue = f"down-{uuid.uuid4()}"
    async with Handshake(config, registry=registry) as handshake:
        async with within(STEP_SECONDS, "starting the dev server"):
            server = await start_server(port, db)
        async with within(STEP_SECONDS, "handing off while Temporal is up"):
            client = await Client.connect(f"127.0.0.1:{port}", interceptors=[handshake.interceptor])
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=ALL_ACTIVITIES,
            ):
                handle = await client.start_workflow(
                    HandoffWorkflow.run,
                    HandoffRequest(activity="hand_off_explicit", target="agent"),
                    id=f"down-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
                delivery = await EXTERNAL.receive(handle.id)
        assert delivery.handoff is not None
        handoff_id = delivery.handoff.handoff_id
        async with within(STEP_SECONDS, "stopping the dev server"):
            await server.shutdown()

        completer = handshake.completer(client)
        started = time.monotonic()
        async with within(STEP_SECONDS, "completing while Temporal is down"):
            with pytest.raises(TemporalUnavailableError):
                await completer.complete(handoff_id, "while down")
        assert time.monotonic() - started < 60
        assert (
            registry.get_sample_value(
                "handshake_completion_rpc_duration_seconds_count", {"operation": "complete"}
            )
            == 3
        )
        assert (
            registry.get_sample_value(
                "handshake_completion_errors_total",
                {"target": "agent", "error_type": "unavailable"},
            )
            == 1
        )
        record = await handshake.ledger.get(handoff_id)
        assert record is not None
        assert record.is_pending

        async with within(STEP_SECONDS, "restarting the dev server"):
            server = await start_server(port, db)
        try:
            async with (
                within(STEP_SECONDS, "completing once Temporal is back"),
                Worker(client, task_queue=task_queue, workflows=[HandoffWorkflow]),
            ):
                await completer.complete(handoff_id, "after restart")
                assert await handle.result() == {"result": "after restart"}
        finally:
            await server.shutdown()
        record = await handshake.ledger.get(handoff_id)
        assert record is not None
        assert record.outcome is not None
        assert record.outcome.value == "completed"
