"""kill -9 of the sidecar with pending and expired handoffs, then a restart: everything
expired is reaped, nothing is failed twice, conservation holds, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ledger_inspection import count_outcomes
from .support.ports import free_port
from .support.workflows import HandoffRequest, HandoffWorkflow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPIRED, LIVE = 30, 20


async def start_sidecar(
    ledger_url: str, temporal_address: str, port: int
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "HANDSHAKE_LEDGER_URL": ledger_url,
        "HANDSHAKE_TEMPORAL_ADDRESS": temporal_address,
        "HANDSHAKE_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "HANDSHAKE_TARGETS": "agent",
        "HANDSHAKE_REAPER_INTERVAL_SECONDS": "0.5",
        "HANDSHAKE_REAPER_BATCH_SIZE": "5",
        "HANDSHAKE_REAPER_CONCURRENCY": "1",
        "HANDSHAKE_REAPER_LEASE_SECONDS": "3",
        "HANDSHAKE_RPC_TIMEOUT_SECONDS": "2",
        "HANDSHAKE_METRICS_REFRESH_SECONDS": "0.5",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handshake_obs", "--log-json", "serve",
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - 127.0.0.1 only
        return str(response.read().decode())


async def outcome_counts(handshake: Handshake) -> Counter[str]:
    return Counter({c.outcome: c.count for c in await count_outcomes(handshake.ledger)})


async def wait_for(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def activity_failures(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED for e in history.events)


async def test_sidecar_killed_mid_reaping_then_restarted_reaps_everything_once(
    temporal_address: str, tmp_path: Path
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'sidecar.db'}"
    config = HandshakeConfig(ledger_url=ledger_url, targets=("agent",))
    task_queue = f"sidecar-{uuid.uuid4()}"
    async with Handshake(config, registry=CollectorRegistry()) as handshake:
        client = await Client.connect(temporal_address, interceptors=[handshake.interceptor])
        async with Worker(
            client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
        ):
            handles = [
                await client.start_workflow(
                    HandoffWorkflow.run,
                    HandoffRequest(
                        activity="hand_off_explicit",
                        target="agent",
                        start_to_close_seconds=600,
                        extra={"deadline_seconds": 0.5 if n < EXPIRED else 500},
                    ),
                    id=f"sidecar-{n}-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
                for n in range(EXPIRED + LIVE)
            ]
            for handle in handles:
                await EXTERNAL.receive(handle.id)
            await asyncio.sleep(0.6)

            first = await start_sidecar(ledger_url, temporal_address, free_port())

            async def some_reaped() -> bool:
                return (await outcome_counts(handshake))["reaped"] >= 5

            try:
                await wait_for(some_reaped, timeout=60)
            finally:
                first.send_signal(signal.SIGKILL)
                await first.wait()
            at_kill = await outcome_counts(handshake)
            assert at_kill["pending"] > LIVE, "the sidecar was not killed mid-reaping"

            port = free_port()
            second = await start_sidecar(ledger_url, temporal_address, port)
            try:

                async def all_expired_finished() -> bool:
                    return (await outcome_counts(handshake))["pending"] == LIVE

                await wait_for(all_expired_finished, timeout=60)
                results = [await h.result() for h in handles[:EXPIRED]]
                assert {r["error_type"] for r in results} == {"HandoffDeadlineExceeded"}
                assert {await activity_failures(h) for h in handles[:EXPIRED]} == {1}

                async def gauges_right() -> bool:
                    try:
                        text = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
                    except OSError:
                        return False
                    return f'handshake_pending_handoffs{{target="agent"}} {float(LIVE)}' in text

                await wait_for(gauges_right, timeout=30)
            finally:
                second.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(second.wait(), 30) == 0

        counts = await outcome_counts(handshake)
        assert counts["pending"] == LIVE
        # The reap in flight at the kill may have reached Temporal unrecorded: it ends
        # already_closed when the restarted sidecar tries again.
        assert counts["reaped"] + counts["already_closed"] == EXPIRED
        assert counts["already_closed"] <= 1
        assert sum(counts.values()) == EXPIRED + LIVE
