"""Three reaper processes on one PostgreSQL ledger fail several thousand expired handoffs,
each exactly once, and take over the claims of a reaper killed with SIGKILL mid-batch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from psycopg import sql
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig, Outcome

from .support.activities import ALL_ACTIVITIES
from .support.ledger_inspection import count_outcomes
from .support.postgres import ledger_url, postgres_admin, throwaway_schema
from .support.workflows import HandoffRequest, HandoffWorkflow

pytestmark = pytest.mark.postgres

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HANDOFFS = 3000
REAPER_CONCURRENCY = 8


def reaper_env(url: str, temporal_address: str) -> dict[str, str]:
    return {
        **os.environ,
        "HANDSHAKE_LEDGER_URL": url,
        "HANDSHAKE_TEMPORAL_ADDRESS": temporal_address,
        "HANDSHAKE_REAPER_INTERVAL_SECONDS": "0.2",
        "HANDSHAKE_REAPER_BATCH_SIZE": "100",
        "HANDSHAKE_REAPER_LEASE_SECONDS": "4",
        "HANDSHAKE_RPC_TIMEOUT_SECONDS": "3",
        "HANDSHAKE_REAPER_CONCURRENCY": str(REAPER_CONCURRENCY),
    }


async def start_workflows(
    client: Client, task_queue: str, count: int
) -> list[WorkflowHandle[Any, Any]]:
    gate = asyncio.Semaphore(64)

    async def start(n: int) -> WorkflowHandle[Any, Any]:
        async with gate:
            return await client.start_workflow(
                HandoffWorkflow.run,
                HandoffRequest(
                    activity="hand_off_explicit",
                    target="agent",
                    start_to_close_seconds=600,
                    extra={"deadline_seconds": 1},
                ),
                id=f"replica-{n}-{uuid.uuid4()}",
                task_queue=task_queue,
            )

    return list(await asyncio.gather(*(start(n) for n in range(count))))


async def failures_in_history(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED for e in history.events)


@pytest.mark.timeout(600)  # thousands of real handoffs on 2 shared cores
async def test_three_reapers_fail_every_expired_handoff_once_and_take_over_a_killed_ones_claims(
    temporal_address: str,
) -> None:
    admin = await postgres_admin()
    async with throwaway_schema(admin) as schema:
        url = ledger_url(schema)
        config = HandshakeConfig(ledger_url=url, targets=("agent",))
        task_queue = f"replicas-{uuid.uuid4()}"
        async with Handshake(config, registry=CollectorRegistry()) as handshake:
            client = await Client.connect(temporal_address, interceptors=[handshake.interceptor])
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=ALL_ACTIVITIES,
                max_concurrent_activities=200,
                # Thousands of workflows on two shared cores: a workflow task can wait for the
                # CPU longer than the SDK's 2 s deadlock detector allows, which then interrupts
                # healthy workflow code. What this test checks is the reapers, not that.
                debug_mode=True,
            ):
                handles = await start_workflows(client, task_queue, HANDOFFS)

                async def all_recorded() -> int:
                    counts = await count_outcomes(handshake.ledger)
                    return sum(c.count for c in counts)

                deadline = time.monotonic() + 240
                while await all_recorded() < HANDOFFS:
                    assert time.monotonic() < deadline, "handoffs were not all recorded"
                    await asyncio.sleep(0.5)
                await asyncio.sleep(1.1)  # every deadline has passed now

                reapers = [
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "handshake_obs",
                        "--log-json",
                        "reap",
                        cwd=PROJECT_ROOT,
                        env=reaper_env(url, temporal_address),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    for _ in range(3)
                ]
                victim = reapers[0]
                try:
                    held = await claims_held_by(admin, schema, victim.pid, timeout=60)
                    victim.send_signal(signal.SIGKILL)
                    await asyncio.wait_for(victim.wait(), 10)

                    deadline = time.monotonic() + 180
                    while (pending := await pending_count(handshake)) > 0:
                        assert time.monotonic() < deadline, f"{pending} handoffs never reaped"
                        await asyncio.sleep(0.5)
                finally:
                    for reaper in reapers:
                        if reaper.returncode is None:
                            reaper.send_signal(signal.SIGTERM)
                    for reaper in reapers:
                        await asyncio.wait_for(reaper.wait(), 30)
                assert [r.returncode for r in reapers[1:]] == [0, 0]

                results = await asyncio.gather(*(h.result() for h in handles))
                error_types = Counter(r["error_type"] for r in results)
                assert error_types == {"HandoffDeadlineExceeded": HANDOFFS}
                gate = asyncio.Semaphore(32)

                async def failures(handle: WorkflowHandle[Any, Any]) -> int:
                    async with gate:
                        return await failures_in_history(handle)

                assert set(await asyncio.gather(*(failures(h) for h in handles))) == {1}

        counts = {c.outcome: c.count for c in await ledger_counts(url)}
        # A reap the victim made in Temporal but could not record ends already_closed for the
        # reaper that took the claim over; at most its in-flight calls.
        assert counts.get(Outcome.REAPED.value, 0) + counts.get("already_closed", 0) == HANDOFFS
        assert counts.get("already_closed", 0) <= REAPER_CONCURRENCY
        taken_over = await admin.execute(
            sql.SQL(
                "SELECT count(*) FROM {}.handoffs WHERE handoff_id = ANY(%s) "
                "AND claimed_by NOT LIKE %s AND state = 'finished'"
            ).format(sql.Identifier(schema)),
            (held, f"%:{victim.pid}:%"),
        )
        row = await taken_over.fetchone()
        assert row is not None
        assert row[0] >= 1, "no claim of the killed reaper was taken over"
    await admin.close()


async def pending_count(handshake: Handshake) -> int:
    counts = await count_outcomes(handshake.ledger)
    return sum(c.count for c in counts if c.outcome == "pending")


async def claims_held_by(admin: Any, schema: str, pid: int, *, timeout: float) -> list[str]:
    """Handoff ids a reaper process holds claims on while they are still pending."""
    deadline = time.monotonic() + timeout
    query = sql.SQL(
        "SELECT handoff_id FROM {}.handoffs WHERE claimed_by LIKE %s AND state = 'pending'"
    ).format(sql.Identifier(schema))
    while time.monotonic() < deadline:
        cursor = await admin.execute(query, (f"%:{pid}:%",))
        rows = await cursor.fetchall()
        if rows:
            return [r[0] for r in rows]
        await asyncio.sleep(0.02)
    raise AssertionError(f"reaper {pid} never claimed anything")


async def ledger_counts(url: str) -> list[Any]:
    config = HandshakeConfig(ledger_url=url, reaper_lease=timedelta(seconds=60))
    async with Handshake(config, registry=CollectorRegistry()) as handshake:
        return await count_outcomes(handshake.ledger)
