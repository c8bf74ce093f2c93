"""The pending gauges agree with the counters at every scrape, not one refresh interval later.

The background refresh is set to an hour throughout, so only the refresh a scrape makes when
its snapshot is behind this process's counters can make these pass: after every outcome
(complete, fail, a plain handle, the reaper), through ``prometheus_client``'s HTTP server (a
scrape thread) and through the sidecar's ``/metrics``; after a restart whose reaper reaped a
backlog; and, when the refresh fails or the event loop does not answer, the last snapshot
served within the bound, saying how far behind it is.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig

from .conftest import StartWorkflow
from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ledger_inspection import count_outcomes
from .support.sidecar import ExternalReceiver, running_sidecar
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow, SidecarCall, SidecarWorkflow

#: Long enough that the background refresh never runs during a test.
HOUR = {"metrics_refresh_interval": timedelta(hours=1)}
OUTCOMES = ("completed", "failed", "canceled", "reaped", "already_closed", "aborted")


@dataclass(frozen=True)
class Scrape:
    """One /metrics answer, by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls(
            {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
        )

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def started(self, target: str) -> float:
        return self.value("handshake_handoffs_started_total", target=target)

    def finished(self, target: str, outcome: str | None = None) -> float:
        return sum(
            self.value("handshake_handoffs_finished_total", target=target, outcome=o)
            for o in OUTCOMES
            if outcome in (None, o)
        )

    def pending(self, target: str) -> float:
        return self.value("handshake_pending_handoffs", target=target)

    @property
    def behind(self) -> float:
        return self.value("handshake_pending_snapshot_changes_behind")

    @property
    def gauge_errors(self) -> float:
        return self.value("handshake_instrumentation_errors_total", component="pending_gauges")

    def assert_conserved(self, target: str, *, recorded: int, finished: int | None) -> None:
        """Every handoff this process recorded is pending or counted, in this one scrape
        (``finished``: how many are counted, None: however many)."""
        assert self.started(target) == recorded
        if finished is not None:
            assert self.finished(target) == finished
        assert self.pending(target) == recorded - self.finished(target), self.describe(target)
        assert self.behind == 0

    def describe(self, target: str) -> str:
        return (
            f"started {self.started(target)}, finished {self.finished(target)}, "
            f"pending {self.pending(target)}, behind {self.behind}"
        )


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
        return str(response.read().decode())


@pytest.fixture
def metrics_url(registry: CollectorRegistry) -> Iterator[str]:
    """The registry served by prometheus_client's own HTTP server, as a worker serves it."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def scrape(url: str) -> Scrape:
    """A scrape from its own thread, with the event loop free (as in a real worker)."""
    return Scrape.parse(await asyncio.to_thread(fetch, url))


@pytest.mark.parametrize("config_overrides", [{**HOUR, "reaper_batch_size": 1}])
async def test_every_scrape_thread_scrape_conserves_as_handoffs_finish_one_by_one(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    metrics_url: str,
) -> None:
    plan = ("complete", "fail", "plain_complete", "reap", "complete", "reap", "fail")
    deliveries = []
    for n, path in enumerate(plan):
        extra = {"deadline_seconds": 0.5} if path == "reap" else {}
        handle = await start_workflow("hand_off_explicit", target="agent", extra=extra)
        deliveries.append((path, handle, await EXTERNAL.receive(handle.id)))
        (await scrape(metrics_url)).assert_conserved("agent", recorded=n + 1, finished=0)
    await asyncio.sleep(0.6)  # the reaped ones are past their deadline
    completer = handshake.completer(client)
    reaper = handshake.reaper(client)
    for n, (path, _, delivery) in enumerate(deliveries):
        handoff_id = delivery.explicit.handoff_id
        if path == "complete":
            await completer.complete(handoff_id, n)
        elif path == "fail":
            await completer.fail(handoff_id, error_type="No", message="no", non_retryable=True)
        elif path == "plain_complete":
            await client.get_async_activity_handle(task_token=delivery.task_token).complete(n)
        else:
            assert [r.result for r in await reaper.reap_once()] == ["reaped"]
        after = await scrape(metrics_url)
        after.assert_conserved("agent", recorded=len(plan), finished=n + 1)
    outcomes = {o: after.finished("agent", o) for o in ("completed", "failed", "reaped")}
    assert outcomes == {"completed": 3, "failed": 2, "reaped": 2}
    await asyncio.wait_for(asyncio.gather(*(handle.result() for _, handle, _ in deliveries)), 30)


async def test_the_first_scrape_after_a_restart_reaped_a_backlog_shows_it_gone_and_counted(
    temporal_address: str, tmp_path: Path
) -> None:
    backlog = 5
    config = HandshakeConfig(
        ledger_url=f"sqlite:///{tmp_path / 'restart.db'}",
        targets=("agent",),
        rpc_timeout=timedelta(seconds=5),
        reaper_interval=timedelta(seconds=0.2),
        metrics_refresh_interval=HOUR["metrics_refresh_interval"],
    )
    task_queue = f"restart-{uuid.uuid4()}"
    async with Handshake(config, registry=CollectorRegistry()) as before:
        client = await Client.connect(temporal_address, interceptors=[before.interceptor])
        async with Worker(
            client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
        ):
            handles = [
                await client.start_workflow(
                    HandoffWorkflow.run,
                    HandoffRequest(
                        activity="hand_off_explicit",
                        target="agent",
                        extra={"deadline_seconds": 0.5},
                    ),
                    id=f"restart-{n}-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
                for n in range(backlog)
            ]
            for handle in handles:
                await EXTERNAL.receive(handle.id)
    await asyncio.sleep(0.6)  # the process is gone and every handoff is past its deadline

    registry = CollectorRegistry()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        async with Handshake(config, registry=registry) as restarted:
            at_start = await scrape(url)
            assert at_start.pending("agent") == backlog
            assert at_start.finished("agent") == 0
            reaper = restarted.reaper(await Client.connect(temporal_address))
            reaper.start()
            try:

                async def all_reaped() -> None:
                    counts = {c.outcome: c.count for c in await count_outcomes(restarted.ledger)}
                    assert counts == {"reaped": backlog}

                await assert_eventually(all_reaped, timeout=30)
            finally:
                await reaper.stop()
            first = await scrape(url)
            assert first.finished("agent", "reaped") == backlog
            assert first.pending("agent") == 0
            assert first.behind == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    "config_overrides", [{**HOUR, "metrics_scrape_refresh_timeout": timedelta(seconds=0.5)}]
)
async def test_a_failed_refresh_serves_the_last_snapshot_within_the_bound_and_says_so(
    handshake: Handshake,
    worker: Worker,
    start_workflow: StartWorkflow,
    metrics_url: str,
) -> None:
    first = await start_workflow("hand_off_explicit", target="agent")
    await EXTERNAL.receive(first.id)
    (await scrape(metrics_url)).assert_conserved("agent", recorded=1, finished=0)
    second = await start_workflow("hand_off_explicit", target="agent")
    await EXTERNAL.receive(second.id)
    await handshake.ledger.close()  # the next refresh cannot read it

    started = time.monotonic()
    served = await scrape(metrics_url)
    assert time.monotonic() - started < 0.5 + 2  # the bound, and room for a loaded machine
    assert served.started("agent") == 2
    assert served.pending("agent") == 1  # the last snapshot
    assert served.behind == 1
    assert served.gauge_errors == 1


@pytest.mark.parametrize(
    "config_overrides", [{**HOUR, "metrics_scrape_refresh_timeout": timedelta(seconds=0.5)}]
)
async def test_a_scrape_thread_waits_no_longer_than_the_bound_for_a_blocked_event_loop(
    handshake: Handshake,
    worker: Worker,
    start_workflow: StartWorkflow,
    metrics_url: str,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent")
    await EXTERNAL.receive(handle.id)

    started = time.monotonic()
    blocked = Scrape.parse(fetch(metrics_url))  # on the loop's thread: the loop cannot answer
    waited = time.monotonic() - started
    assert 0.5 <= waited < 0.5 + 2
    assert blocked.started("agent") == 1
    assert blocked.pending("agent") == 0  # the snapshot taken at start
    assert blocked.behind == 1
    assert blocked.gauge_errors == 1

    (await scrape(metrics_url)).assert_conserved("agent", recorded=1, finished=0)


async def is_reaped(http: httpx.AsyncClient, handoff_id: str) -> None:
    view = (await http.get(f"/v1/handoffs/{handoff_id}")).json()
    assert view["outcome"] == "reaped", view


async def test_every_sidecar_scrape_conserves_as_handoffs_finish_one_by_one(
    tmp_path: Path,
    temporal_address: str,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
) -> None:
    plan = ("complete", "fail", "complete", "reap", "reap")
    async with (
        running_sidecar(
            tmp_path,
            temporal_address,
            targets={"billing": receiver.url},
            extra_env={"HANDSHAKE_METRICS_REFRESH_SECONDS": "3600"},
        ) as sidecar,
        sidecar.client() as http,
    ):

        async def sidecar_scrape() -> Scrape:
            return Scrape.parse((await http.get("/metrics")).text)

        handoffs: list[tuple[str, Any, str]] = []
        for n, path in enumerate(plan):
            argument: dict[str, Any] = {"target": "billing"}
            if path == "reap":
                argument["deadline_seconds"] = 3 * (1 + sum(p == "reap" for p, _, _ in handoffs))
            handle = await plain_client.start_workflow(
                SidecarWorkflow.run,
                SidecarCall(
                    activity="handshake.http_handoff",
                    task_queue=sidecar.task_queue,
                    argument=argument,
                ),
                id=f"scrape-{uuid.uuid4()}",
                task_queue=workflows,
            )
            handoffs.append((path, handle, (await receiver.receive()).body["handoff_id"]))
            (await sidecar_scrape()).assert_conserved("billing", recorded=n + 1, finished=0)

        by_hand = [handoff_id for path, _, handoff_id in handoffs if path != "reap"]
        for n, handoff_id in enumerate(by_hand):
            if n % 2 == 0:
                done = await http.post(f"/v1/handoffs/{handoff_id}/complete", json={"result": 1})
            else:
                done = await http.post(
                    f"/v1/handoffs/{handoff_id}/fail",
                    json={"error_type": "No", "message": "no", "non_retryable": True},
                )
            assert done.status_code == 200, done.text
            (await sidecar_scrape()).assert_conserved("billing", recorded=len(plan), finished=n + 1)
        # The sidecar's reaper finishes the rest on its own, 3 s apart: each is seen reaped in
        # the ledger, then scraped (a scrape racing a reap in progress may be off by that one,
        # which the next scrape settles; this test checks the scrape after each one).
        reaped = [handoff_id for path, _, handoff_id in handoffs if path == "reap"]
        for n, handoff_id in enumerate(reaped, start=len(by_hand) + 1):
            await assert_eventually(partial(is_reaped, http, handoff_id), timeout=30)
            now = await sidecar_scrape()
            now.assert_conserved("billing", recorded=len(plan), finished=n)
        assert {o: now.finished("billing", o) for o in ("completed", "failed", "reaped")} == {
            "completed": 2, "failed": 1, "reaped": 2,
        }  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(h.result() for _, h, _ in handoffs)), 30)
