"""``handshake-obs proxy`` with real workers and completers: handoffs recorded from the wire.

A Python worker and plain clients (no handshake-obs in them) dial the proxy; the proxy runs
in this process against the real dev server, with its own ledger and registry, so the
test reads exactly what the proxy recorded and exported.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import AsyncActivityCancelledError, Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig
from handshake_obs.config import AsyncActivity, ProxySettings, TargetPolicy, TemporalConnection
from handshake_obs.ledger import Ledger, ledger_from_url
from handshake_obs.proxy import RunningProxy, running_proxy

from .conftest import temporal_cli
from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ports import free_port
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow


@dataclass
class ProxyRig:
    """A proxy in front of the dev server, its ledger and registry, a worker behind it."""

    proxy: RunningProxy
    ledger: Ledger
    registry: CollectorRegistry
    client: Client
    task_queue: str
    address: str

    async def start(self, activity: str, **fields: Any) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity=activity, **fields),
            id=f"wf-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def proxy_for_tests(
    temporal_address: str, config: HandshakeConfig
) -> AsyncIterator[tuple[RunningProxy, Ledger, CollectorRegistry]]:
    """The proxy of these tests (``hand_off_plain`` hands off to ``approval``), in this
    process, with its own ledger and registry."""
    settings = ProxySettings(
        listen_address=f"127.0.0.1:{free_port()}",
        async_activities=(AsyncActivity("hand_off_plain", target="approval"),),
    )
    ledger = ledger_from_url(config.ledger_url)
    registry = CollectorRegistry()
    async with running_proxy(
        config,
        settings,
        TemporalConnection(address=temporal_address),
        registry=registry,
        ledger=ledger,
    ) as proxy:
        yield proxy, ledger, registry


@pytest.fixture
async def rig(temporal_address: str, config: HandshakeConfig) -> AsyncIterator[ProxyRig]:
    async with proxy_for_tests(temporal_address, config) as (proxy, ledger, registry):
        address = f"127.0.0.1:{proxy.port}"
        client = await Client.connect(address)  # no handshake-obs: only the proxy observes
        task_queue = f"proxy-{uuid.uuid4()}"
        async with Worker(
            client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
        ):
            yield ProxyRig(proxy, ledger, registry, client, task_queue, address)


async def test_a_poll_response_is_recorded_before_release_and_completed_by_token(
    rig: ProxyRig,
) -> None:
    """The async activity's handoff is in the ledger when the activity runs (before the
    worker got the token); the completion through the proxy finishes it once. (The worker
    starts the activity eagerly: the task comes back in ``RespondWorkflowTaskCompleted``.)"""
    handle = await rig.start("hand_off_plain", payload="p")
    delivery = await EXTERNAL.receive(handle.id)
    record = await rig.ledger.find_by_token(delivery.task_token)
    assert record is not None
    assert record.is_pending
    assert (record.workflow_id, record.activity_type, record.target) == (
        handle.id,
        "hand_off_plain",
        "approval",
    )
    assert record.deadline is not None  # derived from the start-to-close timeout
    assert rig.sample("handshake_handoffs_started_total", target="approval") == 1

    await rig.client.get_async_activity_handle(task_token=delivery.task_token).complete("done")
    assert await handle.result() == {"result": "done"}
    finished = await rig.ledger.get(record.handoff_id)
    assert finished is not None
    assert finished.outcome is not None
    assert finished.outcome.value == "completed"
    assert (
        rig.sample("handshake_handoffs_finished_total", target="approval", outcome="completed") == 1
    )
    # A second completion: Temporal says NOT_FOUND, the caller gets it, nothing more counted.
    with pytest.raises(RPCError) as raised:
        await rig.client.get_async_activity_handle(task_token=delivery.task_token).complete("x")
    assert raised.value.status == RPCStatusCode.NOT_FOUND
    assert (
        rig.sample("handshake_handoffs_finished_total", target="approval", outcome="completed") == 1
    )


async def test_an_ordinary_activity_through_the_proxy_is_not_recorded(rig: ProxyRig) -> None:
    """A synchronous activity's poll and completion are forwarded untouched."""
    handle = await rig.start("plain_result", payload=7)
    assert await handle.result() == {"result": {"echo": 7}}
    assert await rig.ledger.find_by_activity(None, handle.id, None, "1") is None
    assert rig.sample("handshake_handoffs_started_total", target="approval") == 0
    assert rig.sample("handshake_handoffs_started_total", target="default") == 0


async def test_failure_heartbeat_and_cancellation_from_the_wire(rig: ProxyRig) -> None:
    """A failure keeps its application error type, a heartbeat its progress, a reported
    cancellation ends the handoff canceled."""
    failing = await rig.start("hand_off_plain")
    beating = await rig.start("hand_off_plain", heartbeat_timeout_seconds=30)
    cancelled = await rig.start("hand_off_plain")
    tokens = {
        h.id: (await EXTERNAL.receive(h.id)).task_token for h in (failing, beating, cancelled)
    }

    fail_handle = rig.client.get_async_activity_handle(task_token=tokens[failing.id])
    await fail_handle.fail(ApplicationError("card declined", type="PaymentDeclined"))
    assert (await failing.result())["error_type"] == "PaymentDeclined"
    record = await rig.ledger.find_by_token(tokens[failing.id])
    assert record is not None
    assert record.outcome is not None
    assert (record.outcome.value, record.error_type) == ("failed", "PaymentDeclined")

    beat_handle = rig.client.get_async_activity_handle(task_token=tokens[beating.id])
    await beat_handle.heartbeat({"percent": 40})
    record = await rig.ledger.find_by_token(tokens[beating.id])
    assert record is not None
    assert record.progress == {"percent": 40}
    assert record.is_pending
    await beat_handle.complete("ok")

    await cancelled.cancel()

    async def cancel_requested() -> None:
        try:
            await rig.client.get_async_activity_handle(task_token=tokens[cancelled.id]).heartbeat()
        except AsyncActivityCancelledError:
            return
        raise AssertionError("cancellation not requested yet")

    await assert_eventually(cancel_requested, timeout=20)
    await rig.client.get_async_activity_handle(
        task_token=tokens[cancelled.id]
    ).report_cancellation()
    record = await rig.ledger.find_by_token(tokens[cancelled.id])
    assert record is not None
    assert record.outcome is not None
    assert record.outcome.value == "canceled"
    assert rig.sample("handshake_handoffs_finished_total", target="approval", outcome="failed") == 1
    assert (
        rig.sample("handshake_handoffs_finished_total", target="approval", outcome="canceled") == 1
    )


async def test_the_temporal_cli_completes_a_proxied_handoff_by_id(rig: ProxyRig) -> None:
    """The Go ``temporal`` CLI, dialing the proxy, completes by workflow and activity id."""
    handle = await rig.start("hand_off_plain")
    delivery = await EXTERNAL.receive(handle.id)
    record = await rig.ledger.find_by_token(delivery.task_token)
    assert record is not None
    completed = await asyncio.to_thread(
        subprocess.run,
        [
            temporal_cli(),
            "activity",
            "complete",
            "--address",
            rig.address,
            "--workflow-id",
            handle.id,
            "--activity-id",
            record.activity_id,
            "--result",
            '"by id"',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert await handle.result() == {"result": "by id"}
    finished = await rig.ledger.get(record.handoff_id)
    assert finished is not None
    assert finished.outcome is not None
    assert finished.outcome.value == "completed"


async def test_errors_come_back_with_their_code_details_and_trailers(rig: ProxyRig) -> None:
    """An upstream error crosses the proxy with its status code, message and typed details."""
    with pytest.raises(RPCError) as raised:
        await rig.client.get_workflow_handle(f"missing-{uuid.uuid4()}").describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND
    details = raised.value.grpc_status.details
    assert details
    assert details[0].type_url.endswith("temporal.api.errordetails.v1.NotFoundFailure")


@pytest.mark.parametrize(
    "config_overrides",
    [{"target_policies": {"approval": TargetPolicy(deadline=timedelta(seconds=1))}}],
)
async def test_the_reaper_fails_a_proxied_handoff_past_its_deadline(
    rig: ProxyRig, handshake: Handshake, temporal_address: str
) -> None:
    """A handoff recorded from the wire is reaped like any other: the workflow gets the
    typed ``HandoffDeadlineExceeded``, the ledger says ``reaped``."""
    handle = await rig.start("hand_off_plain")
    delivery = await EXTERNAL.receive(handle.id)
    record = await rig.ledger.find_by_token(delivery.task_token)
    assert record is not None
    assert record.deadline is not None
    assert record.deadline <= record.started_at + 1.0
    await asyncio.sleep(max(0.0, record.deadline - time.time()) + 0.1)
    reaper = handshake.reaper(await Client.connect(temporal_address))
    results = await reaper.reap_once()
    assert [r.result.value for r in results] == ["reaped"]
    assert (await handle.result())["error_type"] == "HandoffDeadlineExceeded"
    reaped = await rig.ledger.get(record.handoff_id)
    assert reaped is not None
    assert reaped.outcome is not None
    assert reaped.outcome.value == "reaped"


async def test_heartbeat_and_failure_by_workflow_and_activity_id(rig: ProxyRig) -> None:
    """The ``ById`` calls find the handoff by workflow and activity id: progress kept, the
    failure's type recorded."""
    handle = await rig.start("hand_off_plain")
    delivery = await EXTERNAL.receive(handle.id)
    record = await rig.ledger.find_by_token(delivery.task_token)
    assert record is not None
    by_id = rig.client.get_async_activity_handle(
        workflow_id=handle.id, run_id=None, activity_id=record.activity_id
    )
    await by_id.heartbeat({"step": 2})
    kept = await rig.ledger.get(record.handoff_id)
    assert kept is not None
    assert kept.progress == {"step": 2}
    await by_id.fail(ApplicationError("no stock", type="OutOfStock"))
    assert (await handle.result())["error_type"] == "OutOfStock"
    failed = await rig.ledger.get(record.handoff_id)
    assert failed is not None
    assert failed.outcome is not None
    assert (failed.outcome.value, failed.error_type) == ("failed", "OutOfStock")
    assert rig.sample("handshake_handoffs_finished_total", target="approval", outcome="failed") == 1


async def test_the_library_behind_the_proxy_on_one_ledger_counts_each_handoff_once(
    rig: ProxyRig, handshake: Handshake, registry: CollectorRegistry
) -> None:
    """A worker already instrumented by the library, moved behind the proxy (same ledger, its
    activity type configured as asynchronous too): one record, one outcome, counted once
    across the two."""
    instrumented = await Client.connect(rig.address, interceptors=[handshake.interceptor])
    task_queue = f"both-{uuid.uuid4()}"
    async with Worker(
        instrumented, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
    ):
        handle = await instrumented.start_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity="hand_off_plain"),
            id=f"both-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        delivery = await EXTERNAL.receive(handle.id)
        await instrumented.get_async_activity_handle(task_token=delivery.task_token).complete("x")
        assert await handle.result() == {"result": "x"}
    counted = {"target": "approval"}

    def total(name: str, **labels: str) -> float:
        return sum(
            r.get_sample_value(name, {**counted, **labels}) or 0.0 for r in (rig.registry, registry)
        )

    assert total("handshake_handoffs_started_total") == 1
    assert total("handshake_handoffs_finished_total", outcome="completed") == 1
    # The library found the token recorded already (by the proxy, under its target).
    assert registry.get_sample_value("handshake_handoffs_started_total", {"target": "default"}) in (
        None,
        0.0,
    )
    record = await rig.ledger.find_by_token(delivery.task_token)
    assert record is not None
    assert record.outcome is not None
    assert record.outcome.value == "completed"


async def test_a_task_from_a_poll_is_recorded_before_release_without_eager_execution(
    rig: ProxyRig,
) -> None:
    """With eager activity execution off, the task comes from ``PollActivityTaskQueue``
    (not back in ``RespondWorkflowTaskCompleted``): recorded before the worker gets it."""
    task_queue = f"polled-{uuid.uuid4()}"
    async with Worker(
        rig.client,
        task_queue=task_queue,
        workflows=[HandoffWorkflow],
        activities=ALL_ACTIVITIES,
        disable_eager_activity_execution=True,
    ):
        handle = await rig.client.start_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity="hand_off_plain"),
            id=f"polled-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        delivery = await EXTERNAL.receive(handle.id)
        record = await rig.ledger.find_by_token(delivery.task_token)
        assert record is not None
        assert record.is_pending
        await rig.client.get_async_activity_handle(task_token=delivery.task_token).complete("p")
        assert await handle.result() == {"result": "p"}
