"""The reconciler against a real Temporal dev server: handoffs Temporal closed without
handshake-obs are closed in the ledger with the reason seen, within a minute, long before
their deadlines, with the default budget; /metrics conserves throughout."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import DeadlinePastTemporalTimeoutError, Handshake, HandshakeConfig, Outcome
from handshake_obs._vocabulary import CloseReason
from handshake_obs.reconcile import Check, CheckResult
from handshake_obs.testing import bulk_insert, pending_record

from .conftest import StartWorkflow, temporal_cli
from .support.activities import ALL_ACTIVITIES, EXTERNAL, Delivery
from .support.operator_traffic import hand_off
from .support.postgres import ledger_url as postgres_ledger_url
from .support.postgres import throwaway_schema
from .support.sidecar import ExternalReceiver, running_sidecar
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow

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


@asynccontextmanager
async def handshake_on(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The ledger URL of a fresh store of ``backend`` (sqlite or postgres)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'ledger-{uuid.uuid4().hex}.db'}"
        return
    async with throwaway_schema() as schema:
        yield postgres_ledger_url(schema)


def replica_config(ledger_url: str, **fields: Any) -> HandshakeConfig:
    return HandshakeConfig(
        ledger_url=ledger_url,
        targets=("agent", "approval"),
        rpc_timeout=timedelta(seconds=5),
        **fields,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_reconcile_racing_a_real_completion_records_exactly_one_outcome(
    backend: str, tmp_path: Path, temporal_address: str
) -> None:
    races = 12
    async with handshake_on(backend, tmp_path) as url:
        config = replica_config(
            url,
            reconcile_first_check=timedelta(milliseconds=1),
            reconcile_max_check_interval=timedelta(milliseconds=1),
            reconcile_calls_per_second=1000.0,
        )
        registry = CollectorRegistry()
        async with Handshake(config, registry=registry) as handshake:
            client = await Client.connect(temporal_address, interceptors=[handshake.interceptor])
            task_queue = f"tq-{uuid.uuid4()}"
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=ALL_ACTIVITIES,
            ):
                handles = [
                    await client.start_workflow(
                        HandoffWorkflow.run,
                        HandoffRequest(activity="hand_off_explicit", target="agent"),
                        id=f"wf-{uuid.uuid4()}",
                        task_queue=task_queue,
                    )
                    for _ in range(races)
                ]
                deliveries = [await EXTERNAL.receive(h.id) for h in handles]
                completer = handshake.completer(client)
                reconcilers = [handshake.reconciler(client) for _ in range(2)]
                completing = asyncio.gather(
                    *(completer.complete(d.explicit.handoff_id, "answer") for d in deliveries)
                )
                checks: list[Check] = []
                while not completing.done():
                    for found in await asyncio.gather(*(r.reconcile_once() for r in reconcilers)):
                        checks.extend(found)
                await completing
                for _ in range(3):  # and after: the finished handoffs are never closed again
                    for r in reconcilers:
                        checks.extend(await r.reconcile_once())
                for handle in handles:
                    assert await handle.result() == {"result": "answer"}
            for delivery in deliveries:
                record = await handshake.ledger.get(delivery.explicit.handoff_id)
                assert record is not None
                assert record.outcome is Outcome.COMPLETED
            assert not [c for c in checks if c.result is CheckResult.RECONCILED]
            assert total(registry, "handshake_handoffs_finished_total") == races
            assert (
                total(registry, "handshake_handoffs_finished_total", outcome="completed") == races
            )
            assert total(registry, "handshake_reconciled_total") == 0
            await assert_conserved(handshake, registry)


async def test_two_replicas_on_postgres_never_check_one_handoff_at_the_same_time(
    temporal_address: str, log_stream: io.StringIO
) -> None:
    waiting = 16
    async with throwaway_schema() as schema:
        config = replica_config(
            postgres_ledger_url(schema),
            reconcile_first_check=timedelta(milliseconds=100),
            reconcile_max_check_interval=timedelta(milliseconds=300),
            reconcile_calls_per_second=200.0,
            reconcile_interval=timedelta(milliseconds=100),
        )
        async with (
            Handshake(config, registry=CollectorRegistry()) as first,
            Handshake(config, registry=CollectorRegistry()) as second,
        ):
            client = await Client.connect(temporal_address, interceptors=[first.interceptor])
            task_queue = f"tq-{uuid.uuid4()}"
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=ALL_ACTIVITIES,
            ):
                handles = [
                    await client.start_workflow(
                        HandoffWorkflow.run,
                        HandoffRequest(activity="hand_off_explicit", target="agent"),
                        id=f"wf-{uuid.uuid4()}",
                        task_queue=task_queue,
                    )
                    for _ in range(waiting)
                ]
                for h in handles:
                    await EXTERNAL.receive(h.id)
                replicas = [
                    first.reconciler(client, identity="replica-a"),
                    second.reconciler(client, identity="replica-b"),
                ]
                for r in replicas:
                    r.start()
                await asyncio.sleep(8)
                for r in replicas:
                    await r.stop()
                for h in handles:
                    await h.terminate("test over")

    checks: dict[str, list[tuple[float, float, str]]] = {}
    for line in log_stream.getvalue().splitlines():
        entry = json.loads(line)
        if entry.get("event") == "handoff checked":
            checks.setdefault(entry["handoff_id"], []).append(
                (entry["began"], entry["ended"], entry["checker"])
            )
    assert len(checks) == waiting
    checkers = {checker for spans in checks.values() for _, _, checker in spans}
    assert checkers == {"replica-a", "replica-b"}
    for spans in checks.values():
        assert len(spans) >= 3  # checked again and again while open
        spans.sort()
        for (_, ended, _), (began, _, _) in itertools.pairwise(spans):
            assert ended <= began, spans


async def test_reconcile_once_closes_what_temporal_closed_and_prints_a_table(
    handshake: Handshake,
    client: Client,
    plain_client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    temporal_address: str,
) -> None:
    handle, delivery = await started_handoff(start_workflow)
    waiting, _ = await started_handoff(start_workflow)
    await plain_client.get_async_activity_handle(task_token=delivery.task_token).complete("x")
    assert await handle.result() == {"result": "x"}
    env = {
        **os.environ,
        "HANDSHAKE_LEDGER_URL": handshake.config.ledger_url,
        "HANDSHAKE_TEMPORAL_ADDRESS": temporal_address,
        "HANDSHAKE_RECONCILE_FIRST_CHECK_SECONDS": "0.001",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handshake_obs", "--log-json", "reconcile", "--once",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].split() == ["RESULT", "REASON", "HANDOFF", "WORKFLOW", "TARGET", "DETAIL"]
    rows = {line.split()[2]: line.split() for line in lines[1:-1]}
    assert rows[delivery.explicit.handoff_id][:2] == ["reconciled", "completed_elsewhere"]
    assert rows[delivery.explicit.handoff_id][3] == handle.id
    assert lines[-1] == "2 handoff(s) checked, 1 reconciled"
    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.error_type == "completed_elsewhere"
    await waiting.terminate("test over")


async def test_extend_refuses_a_deadline_past_temporals_own_timeout_and_says_so(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle, delivery = await started_handoff(start_workflow, start_to_close_seconds=120.0)
    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.start_to_close_timeout == 120.0
    closes = record.temporal_closes_at
    assert closes is not None
    assert abs(closes - (record.started_at + 120.0)) < 5
    completer = handshake.completer(client)

    with pytest.raises(DeadlinePastTemporalTimeoutError, match="Temporal's own timeout") as err:
        await completer.extend(delivery.explicit.handoff_id, timedelta(minutes=10))
    assert err.value.temporal_closes_at == closes
    unchanged = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert unchanged is not None
    assert unchanged.deadline == record.deadline
    errors = total(
        registry, "handshake_completion_errors_total", error_type="deadline_past_temporal_timeout"
    )
    assert errors == 1

    moved = await completer.extend(
        delivery.explicit.handoff_id, datetime.fromtimestamp(closes, UTC)
    )
    assert moved.deadline == closes
    await handle.terminate("test over")


async def test_serve_runs_the_reconciler(
    tmp_path: Path,
    temporal_address: str,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
) -> None:
    async with running_sidecar(
        tmp_path, temporal_address, targets={"billing": receiver.url}
    ) as sidecar:
        sent = await hand_off(
            plain_client, workflows, sidecar, receiver, start_to_close_seconds=600.0
        )
        async with sidecar.client(None) as http:
            view = (await http.get(f"/v1/handoffs/{sent.handoff_id}")).json()
        completed = await asyncio.create_subprocess_exec(
            temporal_cli(), "activity", "complete",
            "--workflow-id", view["workflow_id"], "--activity-id", view["activity_id"],
            "--result", '"by hand"', "--address", temporal_address,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(completed.communicate(), 60)
        assert completed.returncode == 0, output.decode()
        assert await sent.handle.result() == {"result": "by hand"}
        bypassed_at = time.monotonic()

        async def closed() -> dict[str, Any]:
            async with sidecar.client(None) as http:
                now: dict[str, Any] = (await http.get(f"/v1/handoffs/{sent.handoff_id}")).json()
            assert now["state"] == "finished", now
            return now

        final = await assert_eventually(closed, timeout=WITHIN_SECONDS, interval=0.5)
        assert time.monotonic() - bypassed_at < WITHIN_SECONDS
        assert final["outcome"] == "already_closed"
        assert final["close_reason"] == "completed_elsewhere"
        async with sidecar.client(None) as http:
            text = (await http.get("/metrics")).text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        key = (
            "handshake_reconciled_total",
            (("reason", "completed_elsewhere"), ("target", "billing")),
        )
        assert samples[key] == 1
        assert samples[("handshake_reconciler_last_success_timestamp_seconds", ())] > 0


async def test_a_backlog_is_worked_off_back_to_back_and_timeouts_need_no_call(
    handshake: Handshake, client: Client, registry: CollectorRegistry
) -> None:
    now = time.time()
    timed_out = [
        dataclasses.replace(
            pending_record(target="agent", started_at=now - 100),
            attempt_started_at=now - 100,
            start_to_close_timeout=10.0,
        )
        for _ in range(45)
    ]
    await bulk_insert(handshake.ledger, timed_out)
    reconciler = handshake.reconciler(client)
    assert reconciler.batch_size == 20  # what 10 calls/s check in a 2 s interval

    checks = await reconciler.reconcile_due()

    assert len(checks) == 45
    assert {c.result for c in checks} == {CheckResult.RECONCILED}
    assert {c.reason for c in checks} == {CloseReason.ACTIVITY_TIMED_OUT}
    assert not any(c.asked for c in checks)
    assert total(registry, "handshake_reconciler_temporal_calls_total") == 0
    assert total(registry, "handshake_reconciled_total", reason="activity_timed_out") == 45
    # Seeded rows were never counted as started; each finished once, nothing is pending.
    assert total(registry, "handshake_handoffs_finished_total", outcome="already_closed") == 45
    await handshake.refresh_pending_gauges()
    assert total(registry, "handshake_pending_handoffs") == 0
