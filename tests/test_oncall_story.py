"""On call in three steps, in a real Chromium: a firing ``HandshakeHandoffsStuck`` alert's
``status_url`` opens the status page filtered to the stuck handoffs; one click opens the
oldest one's page; its links lead to its workflow and its trace. Then the operator types a
workflow id prefix into the search, opens what it finds and fails it through the page's form.

Everything is real: a sidecar process and a traced library worker on one SQLite ledger, the
Temporal dev server, Debian's Prometheus evaluating the shipped rules (rendered with
thresholds of seconds and ``status_url`` pointing at this sidecar), and Debian's Chromium
under Playwright. The Temporal UI and the trace UI are outside the system under test: two
stand-in web servers on 127.0.0.1 record which page was asked for, and the test checks that
the workflow and the trace asked for are the handoff's own (the workflow by asking Temporal).
Screenshots of each step go to ``artifacts/oncall-*.png``.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig
from handshake_obs.artifacts import RuleSettings, render

from .support.activities import EXTERNAL, hand_off_explicit
from .support.operator_traffic import assert_no_token, hand_off, ledger_tokens
from .support.processes import http_json
from .support.prometheus import ScrapeJob, prometheus_config, running_prometheus
from .support.sidecar import (
    COMPLETION_TOKEN,
    OPERATOR_TOKEN,
    PROJECT_ROOT,
    ExternalReceiver,
    running_sidecar,
)
from .support.workflows import HandoffRequest, HandoffWorkflow
from .test_status_page import browser  # noqa: F401  (the Chromium fixture)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

    from .support.sidecar import Sidecar

ARTIFACTS = PROJECT_ROOT / "artifacts"
STUCK_AFTER = "3s"
#: The pages need it, as in production: the browser signs in once, from the alert's link.
INVENTORY_TOKEN = "test-inventory-token-0123456789"


class _StandIn(BaseHTTPRequestHandler):
    """A web UI outside the system under test: answers every page, remembers the paths."""

    seen: list[str]

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # the browser's own request, not a followed link
            self.send_error(404)
            return
        self.seen.append(self.path)
        body = f"<!doctype html><title>stand-in</title><p id=path>{self.path}</p>".encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def stand_in_ui() -> Iterator[tuple[str, list[str]]]:
    """(base URL, paths asked for) of a stand-in web UI on a free loopback port."""
    seen: list[str] = []
    handler = type("Handler", (_StandIn,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def temporal_ui() -> Iterator[tuple[str, list[str]]]:
    with stand_in_ui() as ui:
        yield ui


@pytest.fixture
def trace_ui() -> Iterator[tuple[str, list[str]]]:
    with stand_in_ui() as ui:
        yield ui


@pytest.fixture
async def sidecar(
    tmp_path: Path,
    temporal_address: str,
    receiver: ExternalReceiver,
    temporal_ui: tuple[str, list[str]],
    trace_ui: tuple[str, list[str]],
) -> AsyncIterator[Sidecar]:
    """A sidecar whose reaper does not scan again for an hour: stuck handoffs stay stuck;
    its pages need the inventory token."""
    async with running_sidecar(
        tmp_path,
        temporal_address,
        targets={"billing": receiver.url, "approval": receiver.url},
        extra_env={
            "HANDSHAKE_REAPER_INTERVAL_SECONDS": "3600",
            "HANDSHAKE_INVENTORY_TOKEN": INVENTORY_TOKEN,
            "HANDSHAKE_TEMPORAL_UI_URL": temporal_ui[0],
            "HANDSHAKE_TRACE_URL_TEMPLATE": trace_ui[0] + "/trace/{trace_id}",
            "HANDSHAKE_DASHBOARD_URL": "http://grafana.invalid/d/handshake-obs",
        },
    ) as running:
        yield running


async def traced_handoff(temporal_address: str, sidecar: Sidecar) -> tuple[str, str, str]:
    """A handoff to ``approval`` recorded by a traced library worker on the sidecar's ledger:
    (handoff id, workflow id, trace id)."""
    config = HandshakeConfig(ledger_url=sidecar.ledger_url, targets=("billing", "approval"))
    provider = TracerProvider()
    try:
        async with Handshake(config, registry=CollectorRegistry(), tracer_provider=provider) as hs:
            client = await Client.connect(temporal_address, interceptors=[hs.interceptor])
            task_queue = f"oncall-{uuid.uuid4()}"
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=[hand_off_explicit],
            ):
                handle = await client.start_workflow(
                    HandoffWorkflow.run,
                    HandoffRequest(activity="hand_off_explicit", target="approval"),
                    id=f"oncall-{uuid.uuid4().hex[:12]}",
                    task_queue=task_queue,
                )
                delivered = (await EXTERNAL.receive(handle.id)).explicit
    finally:
        provider.shutdown()
    assert delivered.traceparent, "the traced worker gave the handoff no trace context"
    return delivered.handoff_id, handle.id, delivered.traceparent.split("-")[1]


async def firing_status_url(prometheus_url: str, target: str) -> str:
    """The ``status_url`` annotation of the firing stuck alert of ``target``."""
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        answer = await asyncio.to_thread(http_json, f"{prometheus_url}/api/v1/alerts")
        for alert in answer["data"]["alerts"]:
            labels = alert["labels"]
            if (
                labels["alertname"] == "HandshakeHandoffsStuck"
                and labels.get("target") == target
                and alert["state"] == "firing"
            ):
                return str(alert["annotations"]["status_url"])
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"HandshakeHandoffsStuck never fired for {target}: {answer}")
        await asyncio.sleep(0.5)


async def test_from_a_firing_stuck_alert_to_the_oldest_handoffs_workflow_and_trace(
    browser: Browser,  # noqa: F811
    sidecar: Sidecar,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
    temporal_address: str,
    temporal_ui: tuple[str, list[str]],
    trace_ui: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    oldest_id, oldest_workflow, trace_id = await traced_handoff(temporal_address, sidecar)
    second = await hand_off(
        plain_client, workflows, sidecar, receiver, target="approval",
        workflow_id=f"refund-{uuid.uuid4().hex[:12]}",
    )  # fmt: skip
    elsewhere = await hand_off(plain_client, workflows, sidecar, receiver, target="billing")
    answered = await hand_off(plain_client, workflows, sidecar, receiver, target="billing")
    async with sidecar.client(COMPLETION_TOKEN) as http:
        done = await http.post(f"/v1/handoffs/{answered.handoff_id}/complete", json={})
        assert done.status_code == 200, done.text
        for sequence, percent in ((1, 10), (2, 55)):
            beat = await http.post(
                f"/v1/handoffs/{oldest_id}/heartbeat",
                json={"progress": {"percent": percent}, "sequence": sequence},
            )
            assert beat.status_code == 200, beat.text

    rules = tmp_path / "rules.yml"
    rules.write_text(
        render(
            RuleSettings(
                stuck_warning_age=STUCK_AFTER, stuck_for="0s", status_url=sidecar.url + "/"
            )
        )
    )
    host_port = sidecar.url.removeprefix("http://")
    config = prometheus_config([ScrapeJob("handshake-obs", [host_port])], rule_files=[rules])
    with running_prometheus(tmp_path / "prometheus", config) as prometheus:
        status_url = await firing_status_url(prometheus.url, "approval")
    assert status_url == f"{sidecar.url}/?state=pending&target=approval&min_age_seconds=3"

    page: Page = await browser.new_page(viewport={"width": 1360, "height": 900})
    page.set_default_timeout(10_000)
    ARTIFACTS.mkdir(exist_ok=True)

    # Step 1: the alert's link opens the page filtered to the stuck handoffs, oldest first
    # (the first time through the sign-in form, which returns to the link).
    response = await page.goto(status_url)
    assert response is not None
    assert response.status == 401
    await page.screenshot(path=str(ARTIFACTS / "oncall-0-sign-in.png"))
    await page.locator("#sign-in-form input[name=token]").fill(INVENTORY_TOKEN)
    await page.locator("#sign-in-form").get_by_role("button").click()
    await page.wait_for_url(status_url)
    await page.screenshot(path=str(ARTIFACTS / "oncall-1-alert-link.png"), full_page=True)
    results = page.locator("#search-results tr.handoff")
    assert await results.count() == 2
    listed = [(await results.nth(i).locator("td").first.inner_text()).strip() for i in range(2)]
    assert listed == [oldest_id, second.handoff_id]
    assert elsewhere.handoff_id not in await page.content()
    assert await page.locator("input[name=target]").input_value() == "approval"
    assert await page.locator("select[name=state]").input_value() == "pending"
    # The pictures: pending by target now, and the one completed handoff's latency.
    chart = page.locator("#pending-chart")
    await chart.screenshot(path=str(ARTIFACTS / "oncall-pending-chart.png"))
    assert await chart.locator("polyline[data-target=approval]").get_attribute("data-last") == "2"
    assert await chart.locator("polyline[data-target=billing]").get_attribute("data-last") == "1"
    latency = page.locator("#latency-chart")
    await latency.screenshot(path=str(ARTIFACTS / "oncall-latency-chart.png"))
    counts = [int(c or 0) for c in await latency.locator("rect.bar").evaluate_all(
        "bars => bars.map(b => b.dataset.count)"
    )]  # fmt: skip
    assert sum(counts) == 1
    assert counts[0] == 1  # it took under a second

    # Step 2: one click on the oldest opens its story.
    await results.first.get_by_role("link", name=oldest_id).click()
    await page.wait_for_url(f"{sidecar.url}/handoffs/{oldest_id}")
    await page.screenshot(path=str(ARTIFACTS / "oncall-2-handoff-page.png"), full_page=True)
    assert (await page.locator("h1 code").inner_text()).strip() == oldest_id
    assert (await page.locator("#state").inner_text()).strip().startswith("pending")
    titles = [t.strip() for t in await page.locator("#timeline li b").all_inner_texts()]
    assert titles[0] == "recorded (attempt 1)"
    assert titles[1:3] == ["heartbeat #1", "heartbeat #2"]  # each heartbeat, in order
    timeline = await page.locator("#timeline").inner_text()
    assert '{"percent": 10}' in timeline
    assert '{"percent": 55}' in timeline
    deadlines = await page.locator("#deadlines").inner_text()
    assert "start-to-close" in deadlines, deadlines  # Temporal's own timeout, asked live
    assert await page.locator("#dashboard-link").get_attribute("href") == (
        "http://grafana.invalid/d/handshake-obs"
    )
    runbook = await page.locator("#runbook-link").get_attribute("href")
    assert runbook is not None
    assert runbook.endswith("runbook.md#handshakehandoffsstuck")
    html = await page.content()

    # Step 3: its links lead to its workflow and to its trace.
    await page.locator("#workflow-link").click()
    await page.wait_for_url(f"{temporal_ui[0]}/**")
    await page.screenshot(path=str(ARTIFACTS / "oncall-3-workflow-link.png"))
    namespace, workflow_id, run_id = _workflow_of(temporal_ui[1][-1])
    assert (namespace, workflow_id) == ("default", oldest_workflow)
    described = await plain_client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    assert described.status is WorkflowExecutionStatus.RUNNING
    await page.go_back()
    await page.locator("#trace-link").click()
    await page.wait_for_url(f"{trace_ui[0]}/**")
    assert trace_ui[1] == [f"/trace/{trace_id}"]

    # Then: search by typing a workflow id prefix, open what it finds, fail it by the form.
    await page.goto(f"{sidecar.url}/")
    await page.locator("input[name=workflow_id]").fill("refund-")
    await page.locator("input[name=workflow_id]").press("Enter")
    await page.wait_for_url(f"{sidecar.url}/?**workflow_id=refund-**")
    found = page.locator("#search-results tr.handoff")
    assert await found.count() == 1
    await found.first.get_by_role("link", name=second.handoff_id).click()
    await page.wait_for_url(f"{sidecar.url}/handoffs/{second.handoff_id}")
    fail_form = page.locator("#fail-form")
    await fail_form.locator("input[name=operator_token]").fill("not-the-operator-token")
    await fail_form.locator("input[name=reason]").fill("vendor lost it")
    await fail_form.get_by_role("button").click()
    await page.wait_for_load_state()
    assert (await page.locator("#state").inner_text()).strip().startswith("pending")
    assert "Not done" in await page.content()  # a wrong token changes nothing
    fail_form = page.locator("#fail-form")
    await fail_form.locator("input[name=operator_token]").fill(OPERATOR_TOKEN)
    await fail_form.locator("input[name=reason]").fill("vendor lost it")
    await fail_form.get_by_role("button").click()
    await page.wait_for_url(f"{sidecar.url}/handoffs/{second.handoff_id}?done=failed")
    await page.screenshot(path=str(ARTIFACTS / "oncall-4-failed-by-form.png"), full_page=True)
    assert (await page.locator("#state").inner_text()).strip() == "failed"
    assert await page.locator("#actions").count() == 1
    assert await page.locator("#fail-form").count() == 0  # nothing left to do on it
    result = await second.handle.result()
    assert result["error_type"] == "HandoffFailedByOperator"
    assert result["message"] == "vendor lost it"

    assert_no_token(html, ledger_tokens(sidecar))
    for step in ("1-alert-link", "2-handoff-page", "3-workflow-link", "4-failed-by-form"):
        assert (ARTIFACTS / f"oncall-{step}.png").stat().st_size > 5_000
    await page.close()


def _workflow_of(path: str) -> tuple[str, str, str]:
    """(namespace, workflow id, run id) of a Temporal UI workflow path."""
    parts = path.strip("/").split("/")
    assert parts[0] == "namespaces", path
    assert parts[2] == "workflows", path
    assert parts[5] == "history", path
    return parts[1], parts[3], parts[4]
