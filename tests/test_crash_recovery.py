"""A kill -9 of the process holding pending handoffs loses nothing: after a restart the
ledger and the pending gauges are right, and every handoff can still be completed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig

from .support.ledger_inspection import count_outcomes
from .support.workflows import HandoffRequest, HandoffWorkflow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HANDOFFS = 20


async def read_line(process: asyncio.subprocess.Process, timeout: float = 30) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout)
    assert line, "the worker process exited early"
    return line.decode().strip()


async def test_kill_9_with_pending_handoffs_then_restart_loses_nothing(
    temporal_address: str, tmp_path: Path
) -> None:
    ledger_path = tmp_path / "crash.db"
    task_queue = f"crash-{uuid.uuid4()}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.worker_main",
        temporal_address, task_queue, str(ledger_path),
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert await read_line(process) == "READY"
        plain_client = await Client.connect(temporal_address)
        handles = [
            await plain_client.start_workflow(
                HandoffWorkflow.run,
                HandoffRequest(activity="hand_off_explicit", target="agent"),
                id=f"crash-{n}-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            for n in range(HANDOFFS)
        ]
        lines = [json.loads(await read_line(process)) for _ in range(HANDOFFS)]
        delivered = {line["workflow_id"]: line["handoff_id"] for line in lines}
        assert set(delivered) == {h.id for h in handles}
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL

    with sqlite3.connect(ledger_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    registry = CollectorRegistry()
    config = HandshakeConfig(ledger_url=f"sqlite:///{ledger_path}", targets=("agent",))
    async with Handshake(config, registry=registry) as restarted:
        assert (
            registry.get_sample_value("handshake_pending_handoffs", {"target": "agent"}) == HANDOFFS
        )
        counts = {(c.target, c.outcome): c.count for c in await count_outcomes(restarted.ledger)}
        assert counts == {("agent", "pending"): HANDOFFS}
        oldest = registry.get_sample_value(
            "handshake_oldest_pending_handoff_timestamp_seconds", {"target": "agent"}
        )
        records = [await restarted.ledger.get(h) for h in delivered.values()]
        assert oldest == min(r.started_at for r in records if r is not None)

        client = await Client.connect(temporal_address, interceptors=[restarted.interceptor])
        completer = restarted.completer(client)
        async with Worker(client, task_queue=task_queue, workflows=[HandoffWorkflow]):
            for n, handle in enumerate(handles[:15]):
                if n < 10:
                    await completer.complete(delivered[handle.id], n)
                else:
                    await completer.fail(delivered[handle.id], error_type="Gone", message="x")
            results = [await h.result() for h in handles[:15]]
        assert [r.get("result") for r in results[:10]] == list(range(10))
        assert {r.get("error_type") for r in results[10:]} == {"Gone"}

        await restarted.refresh_pending_gauges()
        counts = {(c.target, c.outcome): c.count for c in await count_outcomes(restarted.ledger)}
        assert counts == {
            ("agent", "completed"): 10,
            ("agent", "failed"): 5,
            ("agent", "pending"): 5,
        }
        assert registry.get_sample_value("handshake_pending_handoffs", {"target": "agent"}) == 5
