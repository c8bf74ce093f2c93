"""A real sidecar process over a SQLite ledger that becomes read-only, is deleted, or is
missing; and one handoff completed 50 times at once.

What the caller gets each time, and that nothing is lost: these rows are in
docs/reliability.md ("Faults of the ledger and of Temporal").
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.worker import Worker

from .support.ledger_faults import SqliteFault
from .support.sidecar import PROJECT_ROOT, ExternalReceiver, Sidecar, running_sidecar
from .support.waiting import assert_eventually
from .support.workflows import SidecarCall, SidecarWorkflow


def ledger_path(sidecar: Sidecar) -> Path:
    return Path(sidecar.ledger_url.removeprefix("sqlite:///"))


async def handed_off(
    client: Client, sidecar: Sidecar, receiver: ExternalReceiver, task_queue: str
) -> tuple[Any, str]:
    handle = await client.start_workflow(
        SidecarWorkflow.run,
        SidecarCall(
            activity="handshake.http_handoff",
            task_queue=sidecar.task_queue,
            argument={"target": "billing"},
        ),
        id=f"faults-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    return handle, (await receiver.receive()).body["handoff_id"]


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    """Every sample of /metrics, by name and labels."""
    text = (await http.get("/metrics")).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_read_only_ledger_is_not_ready_and_refuses_completions_before_temporal(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> None:
    client = await Client.connect(temporal_address)
    task_queue = f"wf-{uuid.uuid4()}"
    async with (
        running_sidecar(tmp_path, temporal_address, targets={"billing": receiver.url}) as sidecar,
        Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]),
        sidecar.client() as http,
    ):
        handle, handoff_id = await handed_off(client, sidecar, receiver, task_queue)
        fault = SqliteFault(ledger_path(sidecar))
        await fault.start()
        try:
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503, not_ready.text
            assert not_ready.json()["checks"]["ledger"].startswith("unavailable")
            refused = await http.post(f"/v1/handoffs/{handoff_id}/complete", json={"result": 1})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "ledger_unavailable"
            assert "retry-after" in refused.headers
            # Temporal never heard of it: the activity is still open.
            description = await handle.describe()
            assert len(description.raw_description.pending_activities) == 1
        finally:
            await fault.stop()
        assert (await http.get("/readyz")).status_code == 200
        done = await http.post(f"/v1/handoffs/{handoff_id}/complete", json={"result": 2})
        assert done.status_code == 200, done.text
        assert done.json()["outcome"] == "completed"
        assert done.json()["recording_delayed"] is False
        assert done.json()["handoff"]["outcome"] == "completed"
        assert await handle.result() == {"result": 2}
        assert "ledger not ready" in sidecar.logs()


async def test_a_deleted_or_replaced_ledger_file_makes_readyz_503(
    tmp_path: Path, temporal_address: str
) -> None:
    async with running_sidecar(tmp_path, temporal_address) as sidecar, sidecar.client() as http:
        path = ledger_path(sidecar)
        before = await scrape(http)
        moved = path.with_name("moved.db")
        path.rename(moved)

        deleted = await http.get("/readyz")
        assert deleted.status_code == 503, deleted.text
        assert "was deleted" in deleted.json()["checks"]["ledger"]

        path.write_bytes(moved.read_bytes())  # another file under the same name
        replaced = await http.get("/readyz")
        assert replaced.status_code == 503, replaced.text
        assert "replaced" in replaced.json()["checks"]["ledger"]

        after = await scrape(http)
        errors = "handshake_instrumentation_errors_total"
        assert (
            value(after, errors, component="ledger") - value(before, errors, component="ledger")
            >= 2
        )
        assert sidecar.logs().count("ledger not ready") >= 2


def test_reap_on_a_missing_ledger_fails_clearly_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ledger.db"
    result = subprocess.run(
        [sys.executable, "-m", "handshake_obs", "reap", "--once"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "HANDSHAKE_LEDGER_URL": f"sqlite:///{missing}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no ledger at {missing}" in result.stderr
    assert "reaped" not in result.stdout
    assert not missing.exists()
    assert not missing.parent.exists()


async def test_fifty_concurrent_completes_make_one_temporal_call(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> None:
    client = await Client.connect(temporal_address)
    task_queue = f"wf-{uuid.uuid4()}"
    async with (
        running_sidecar(tmp_path, temporal_address, targets={"billing": receiver.url}) as sidecar,
        Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]),
        sidecar.client() as http,
    ):
        handle, handoff_id = await handed_off(client, sidecar, receiver, task_queue)
        before = await scrape(http)

        answers = await asyncio.gather(
            *(
                http.post(f"/v1/handoffs/{handoff_id}/complete", json={"result": n})
                for n in range(50)
            )
        )

        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [409] * 49, [a.text for a in answers if a.status_code != 409]
        codes = {a.json()["error"]["code"] for a in answers if a.status_code == 409}
        assert codes == {"already_finished"}
        (winner,) = (a for a in answers if a.status_code == 200)
        assert winner.json()["outcome"] == "completed"
        assert await handle.result() == {"result": json.loads(winner.request.content)["result"]}

        async def counted() -> None:
            after = await scrape(http)

            def grew(name: str, **labels: str) -> float:
                return value(after, name, **labels) - value(before, name, **labels)

            rpcs = "handshake_completion_rpc_duration_seconds_count"
            assert grew(rpcs, operation="complete") == 1
            errors = "handshake_completion_errors_total"
            assert grew(errors, target="billing", error_type="already_finished") == 49
            assert grew(errors, target="billing", error_type="already_closed") == 0
            finished = "handshake_handoffs_finished_total"
            assert grew(finished, target="billing", outcome="completed") == 1
            assert grew(finished, target="billing", outcome="already_closed") == 0

        await assert_eventually(counted, timeout=10)


async def test_concurrent_completes_through_two_sidecars_make_one_temporal_call(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> None:
    """Across processes the ledger's marks do what one process's wait does: the call in
    flight is the only one sent, the others get its answer."""
    client = await Client.connect(temporal_address)
    task_queue = f"wf-{uuid.uuid4()}"
    targets = {"billing": receiver.url}
    async with (
        running_sidecar(tmp_path, temporal_address, targets=targets) as one,
        running_sidecar(
            tmp_path, temporal_address, targets=targets, ledger_url=one.ledger_url
        ) as two,
        Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]),
        one.client() as first,
        two.client() as second,
    ):
        handle, handoff_id = await handed_off(client, one, receiver, task_queue)
        before = [await scrape(first), await scrape(second)]

        answers = await asyncio.gather(
            *(
                http.post(f"/v1/handoffs/{handoff_id}/complete", json={"result": n})
                for n, http in enumerate([first, second] * 10)
            )
        )

        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [409] * 19, [a.text for a in answers if a.status_code != 409]
        assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
            "already_finished"
        }
        (winner,) = (a for a in answers if a.status_code == 200)
        assert await handle.result() == {"result": json.loads(winner.request.content)["result"]}
        after = [await scrape(first), await scrape(second)]
        rpcs = "handshake_completion_rpc_duration_seconds_count"
        sent = sum(
            value(a, rpcs, operation="complete") - value(b, rpcs, operation="complete")
            for a, b in zip(after, before, strict=True)
        )
        assert sent == 1
        closed = "handshake_handoffs_finished_total"
        assert all(value(a, closed, target="billing", outcome="already_closed") == 0 for a in after)
