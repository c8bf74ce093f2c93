"""Kill -9 of the proxy while workers long-poll through it and handoffs are pending.

The proxy keeps nothing in memory: after a restart on the same address the TypeScript
worker and completer reconnect by themselves, the handoffs recorded before the crash finish
through the new process, each is recorded and counted once, and conservation holds.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from handshake_obs.ledger import ledger_from_url

from .support.ledger_inspection import OutcomeCount, count_outcomes
from .support.ports import free_port
from .support.proxy import scrape, start_proxy_process
from .support.typescript import start_completer, start_worker
from .support.waiting import assert_eventually

pytestmark = pytest.mark.timeout(300)


def plan_waiting_for(go: str) -> list[dict[str, Any]]:
    return [{"op": "wait_for", "file": go}, {"op": "complete", "result": go}]


async def test_kill_9_during_long_polls_with_pending_handoffs_loses_nothing(
    temporal_address: str, tmp_path: Path
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'proxy-ledger.db'}"
    port = free_port()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    task_queue = f"ts-crash-{uuid.uuid4()}"
    address = f"127.0.0.1:{port}"

    def proxy(name: str) -> Any:
        process, _, metrics_port = start_proxy_process(
            name=name,
            upstream=temporal_address,
            ledger_url=ledger_url,
            async_activities=["handOff=approval"],
            log_dir=tmp_path,
            port=port,
        )
        return process, metrics_port

    first, _ = proxy("proxy-1")
    worker = start_worker(address, task_queue, outbox, tmp_path)
    completer = start_completer(address, outbox, tmp_path)
    second = None
    client = await Client.connect(temporal_address)
    ledger = ledger_from_url(ledger_url)
    try:
        async with ledger:

            async def start(n: int, plan: list[dict[str, Any]]) -> Any:
                return await client.start_workflow(
                    "handoffWorkflow", {"plan": plan}, id=f"crash-{n}-{uuid.uuid4()}",
                    task_queue=task_queue,
                )  # fmt: skip

            before = [await start(n, plan_waiting_for(f"go-{n}")) for n in range(3)]

            async def three_pending() -> None:
                assert await count_outcomes(ledger) == [OutcomeCount("approval", "pending", 3)]

            await assert_eventually(three_pending, timeout=60, interval=0.2)
            await asyncio.sleep(1.0)  # the workers are in their long polls again
            first.kill()
            second, metrics_port = proxy("proxy-2")

            after = [await start(n, [{"op": "complete", "result": n}]) for n in (3, 4)]
            assert [await asyncio.wait_for(h.result(), 120) for h in after] == [
                {"result": 3},
                {"result": 4},
            ]
            for n in range(3):
                (outbox / f"go-{n}").touch()
            results = [await asyncio.wait_for(h.result(), 120) for h in before]
            assert results == [{"result": f"go-{n}"} for n in range(3)]

            # Each handoff once, each outcome once: 5 started = 5 completed + 0 pending.
            assert await count_outcomes(ledger) == [OutcomeCount("approval", "completed", 5)]
            for handle in [*before, *after]:
                record = await ledger.find_by_activity(None, handle.id, None, "1")
                assert record is not None
                assert record.outcome is not None
                assert record.outcome.value == "completed"
            # The new process counted what it recorded (2) and every outcome it recorded (5).
            exported = scrape(metrics_port)
            assert exported[("handshake_handoffs_started_total", (("target", "approval"),))] == 2
            finished = (("outcome", "completed"), ("target", "approval"))
            assert exported[("handshake_handoffs_finished_total", finished)] == 5
    finally:
        for process in (completer, worker, second, first):
            if process is not None:
                process.stop()
