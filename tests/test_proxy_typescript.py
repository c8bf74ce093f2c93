"""A real TypeScript SDK worker and an external Node completer, both through the proxy.

The TypeScript activity writes its task token to an outbox and throws ``CompleteAsyncError``;
another Node process completes it with ``@temporalio/client``. Neither has any handshake-obs
code: the proxy (its own process) records everything from the wire. The same workload run
by a Python worker with the library must export the same metrics and leave the same
outcomes in its ledger.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import Handshake
from handshake_obs._tokens import token_fingerprint
from handshake_obs.ledger import Ledger, ledger_from_url

from .support.activities import EXTERNAL
from .support.handoff_plans import PLANS, follow_plan, hand_off_to_plan
from .support.ledger_inspection import count_outcomes
from .support.processes import ManagedProcess
from .support.proxy import Series, scrape, series, start_proxy_process
from .support.typescript import start_completer, start_worker
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow

pytestmark = pytest.mark.timeout(300)

#: Series compared between the two runs, by metric name (counts must be equal).
COMPARED = (
    "handshake_handoffs_started_total",
    "handshake_handoffs_finished_total",
    "handshake_completion_latency_seconds_count",
    "handshake_handoffs_pending",
)


def shape(found: Series) -> set[tuple[str, tuple[str, ...]]]:
    """Metric names and label names, values aside."""
    return {(name, tuple(k for k, _ in labels)) for name, labels in found}


def compared(found: Series) -> Series:
    return {key: value for key, value in found.items() if key[0] in COMPARED}


@dataclass
class TypeScriptRig:
    proxy: ManagedProcess
    port: int
    metrics_port: int
    ledger_url: str
    outbox: Path
    task_queue: str
    client: Client

    async def start(self, plan: str, **fields: Any) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            "handoffWorkflow",
            {"plan": PLANS[plan], **fields},
            id=f"ts-{plan}-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )


@pytest.fixture
def ts_rig(
    temporal_address: str, tmp_path: Path, temporal_env: Any
) -> Iterator[tuple[str, str, Path, ManagedProcess, int, int]]:
    ledger_url = f"sqlite:///{tmp_path / 'proxy-ledger.db'}"
    proxy, port, metrics_port = start_proxy_process(
        name="proxy",
        upstream=temporal_address,
        ledger_url=ledger_url,
        async_activities=["handOff=approval"],
        log_dir=tmp_path,
        env={"HANDSHAKE_METRICS_REFRESH_SECONDS": "0.2"},
    )
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    task_queue = f"ts-{uuid.uuid4()}"
    address = f"127.0.0.1:{port}"
    worker = start_worker(address, task_queue, outbox, tmp_path)
    completer = start_completer(address, outbox, tmp_path)
    try:
        yield ledger_url, task_queue, outbox, proxy, port, metrics_port
    finally:
        for process in (completer, worker, proxy):
            process.stop()


async def run_typescript_workload(rig: TypeScriptRig) -> dict[str, Any]:
    handles = {plan: await rig.start(plan, heartbeat_timeout_seconds=30) for plan in PLANS}
    cancelled = handles["cancel"]
    await assert_eventually(lambda: _letter_for(rig.outbox, cancelled.id), timeout=60, interval=0.2)
    await cancelled.cancel()
    return {plan: await asyncio.wait_for(h.result(), 90) for plan, h in handles.items()}


async def _letter_for(outbox: Path, workflow_id: str) -> None:
    names = await asyncio.to_thread(lambda: [p.name for p in outbox.iterdir()])
    assert any(name.startswith(workflow_id) for name in names)


async def run_python_workload(client: Client, task_queue: str) -> dict[str, Any]:
    handles: dict[str, WorkflowHandle[Any, Any]] = {}
    for plan in PLANS:
        handles[plan] = await client.start_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity="handOff", heartbeat_timeout_seconds=30),
            id=f"py-{plan}-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    followers = []
    for plan, handle in handles.items():
        delivery = await EXTERNAL.receive(handle.id)
        followers.append(asyncio.create_task(follow_plan(client, delivery.task_token, PLANS[plan])))
    await handles["cancel"].cancel()
    await asyncio.gather(*followers)
    return {plan: await h.result() for plan, h in handles.items()}


async def ledger_outcomes(ledger: Ledger) -> Counter[tuple[str, str | None]]:
    page = await ledger.outcomes_since(0)
    return Counter({(t.outcome, t.error_type): t.count for t in page})


async def test_typescript_through_the_proxy_matches_python_with_the_library(
    ts_rig: tuple[str, str, Path, ManagedProcess, int, int],
    temporal_address: str,
    client: Client,
    handshake: Handshake,
    registry: CollectorRegistry,
    task_queue: str,
) -> None:
    """Same workload (complete, fail with a type, progress then complete, cancelled
    mid-handoff): same metric names, labels and counts, same ledger outcomes."""
    ledger_url, ts_queue, outbox, proxy, port, metrics_port = ts_rig
    rig = TypeScriptRig(
        proxy,
        port,
        metrics_port,
        ledger_url,
        outbox,
        ts_queue,
        await Client.connect(temporal_address),
    )
    ts_results = await run_typescript_workload(rig)
    assert ts_results["complete"] == {"result": "done"}
    assert ts_results["fail"]["error_type"] == "PaymentDeclined"
    assert ts_results["progress"] == {"result": "after progress"}

    async with Worker(
        client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=[hand_off_to_plan]
    ):
        py_results = await run_python_workload(client, task_queue)
    assert py_results["fail"]["error_type"] == ts_results["fail"]["error_type"]
    assert py_results["progress"] == ts_results["progress"]

    proxy_ledger = ledger_from_url(ledger_url)
    async with proxy_ledger:
        ts_outcomes = await ledger_outcomes(proxy_ledger)
        ts_counts = await count_outcomes(proxy_ledger)
        progress = [
            r.progress
            for r in await proxy_ledger.list_handoffs(
                __import__("handshake_obs.ledger", fromlist=["HandoffQuery"]).HandoffQuery(limit=10)
            )
            if r.progress is not None
        ]
    py_outcomes = await ledger_outcomes(handshake.ledger)
    assert (
        ts_outcomes
        == py_outcomes
        == Counter(
            {("completed", None): 2, ("failed", "PaymentDeclined"): 1, ("canceled", None): 1}
        )
    )
    assert ts_counts == await count_outcomes(handshake.ledger)
    assert {"percent": 40} in progress

    await handshake.refresh_pending_gauges()
    library = series(generate_latest(registry).decode())

    async def same_metrics() -> None:
        from_proxy = scrape(metrics_port)
        assert shape(from_proxy) == shape(library)
        assert compared(from_proxy) == compared(library)

    await assert_eventually(same_metrics, timeout=20)

    # Token hygiene as in the library: the proxy's log names each handoff by fingerprint only.
    log = proxy.log_path.read_text()
    for letter_path in outbox.glob("*.json"):
        letter = json.loads(letter_path.read_text())
        token = base64.b64decode(letter["task_token"])
        assert letter["task_token"] not in log
        assert token.hex() not in log
        assert token_fingerprint(token) in log
