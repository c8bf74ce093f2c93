"""The status page at ``/`` as an on-call engineer sees it: a real sidecar process with pending
(some overdue), completed and failed handoffs, opened in a real headless Chromium.

Chromium is Debian's ``chromium`` package, driven by Playwright with ``executable_path``
(Playwright's own browser download is never used). Both come from ``scripts/setup``; when
either is missing the test fails and says so. A full-page screenshot is kept in
``artifacts/status-page.png``.
"""

from __future__ import annotations

import asyncio
import importlib
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeConfig

from .support import workers
from .support.activities import EXTERNAL, hand_off_explicit
from .support.operator_traffic import SentHandoff, assert_no_token, hand_off, ledger_tokens
from .support.sidecar import (
    COMPLETION_TOKEN,
    OPERATOR_TOKEN,
    PROJECT_ROOT,
    ExternalReceiver,
    Sidecar,
    running_sidecar,
)
from .support.workflows import HandoffRequest, HandoffWorkflow

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page

TEMPORAL_UI = "http://temporal-ui.invalid:8233"
TRACES = "http://traces.invalid/trace/{trace_id}"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEW_PAGE_SECONDS = 30
SCREENSHOT = PROJECT_ROOT / "artifacts" / "status-page.png"


def chromium_executable() -> str:
    """Debian's chromium; a missing one fails the test (it is part of the project's setup)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        pytest.fail(
            "Debian's chromium is not installed: run scripts/setup "
            "(it installs the chromium package the status page tests drive)"
        )
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium under Playwright."""
    executable = chromium_executable()
    try:
        playwright_api: Any = importlib.import_module("playwright.async_api")
    except ImportError:
        pytest.fail(
            "Playwright for Python is not installed: run scripts/setup "
            "(it installs the dev extra, which includes playwright)"
        )
    async with playwright_api.async_playwright() as playwright:
        launched: Browser = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser: Browser) -> Page:
    """A page whose every action times out within 5 s (Playwright bounds no page creation)."""
    async with asyncio.timeout(NEW_PAGE_SECONDS):
        page: Page = await browser.new_page(viewport={"width": 1360, "height": 900})
    page.set_default_timeout(5000)
    return page


@pytest.fixture
async def sidecar(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> AsyncIterator[Sidecar]:
    """A sidecar whose reaper scans once at start, then not for an hour: overdue handoffs stay
    pending, as they do when a reaper is stuck or a deadline just passed."""
    async with running_sidecar(
        tmp_path,
        temporal_address,
        targets={"billing": receiver.url, "approval": receiver.url},
        extra_env={
            "HANDSHAKE_REAPER_INTERVAL_SECONDS": "3600",
            "HANDSHAKE_TEMPORAL_UI_URL": TEMPORAL_UI,
            "HANDSHAKE_TRACE_URL_TEMPLATE": TRACES,
        },
    ) as running:
        yield running


async def traced_library_handoff(temporal_address: str, sidecar: Sidecar) -> tuple[str, str]:
    """A handoff recorded by a traced worker using the library on the sidecar's ledger (one
    node, one SQLite file): (handoff id, trace id)."""
    config = HandshakeConfig(ledger_url=sidecar.ledger_url, targets=("billing", "approval"))
    provider = TracerProvider()
    try:
        async with Handshake(config, registry=CollectorRegistry(), tracer_provider=provider) as hs:
            client = await Client.connect(temporal_address, interceptors=[hs.interceptor])
            task_queue = f"traced-{uuid.uuid4()}"
            worker = Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=[hand_off_explicit],
            )
            async with workers.running(worker):
                handle = await client.start_workflow(
                    HandoffWorkflow.run,
                    HandoffRequest(activity="hand_off_explicit", target="approval"),
                    id=f"traced-{uuid.uuid4().hex[:12]}",
                    task_queue=task_queue,
                )
                delivered = (await EXTERNAL.receive(handle.id)).explicit
    finally:
        provider.shutdown()
    assert delivered.traceparent, "the traced worker gave the handoff no trace context"
    return delivered.handoff_id, delivered.traceparent.split("-")[1]


async def cell(table: Locator, row_text: str, column: str) -> str:
    """The text of ``column`` (by its header) in the row of ``table`` containing ``row_text``."""
    headers = [h.strip() for h in await table.locator("th").all_inner_texts()]
    assert column in headers, f"no column {column!r} in {headers}"
    row = table.locator("tr", has_text=row_text)
    assert await row.count() == 1, f"{await row.count()} rows contain {row_text!r}"
    return (await row.locator("td").nth(headers.index(column)).inner_text()).strip()


async def card(page: Page, ident: str) -> str:
    return (await page.locator(f"#{ident} b").inner_text()).strip()


def ui_href(sent: SentHandoff, run_id: str) -> str:
    return f"{TEMPORAL_UI}/namespaces/default/workflows/{sent.handle.id}/{run_id}/history"


async def test_status_page_in_chromium_shows_pending_overdue_outcomes_errors_and_no_token(
    browser: Browser,
    sidecar: Sidecar,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
    temporal_address: str,
    tmp_path: Path,
) -> None:
    async def send(target: str, deadline_seconds: float | None = None) -> SentHandoff:
        return await hand_off(
            plain_client, workflows, sidecar, receiver,
            target=target, deadline_seconds=deadline_seconds,
        )  # fmt: skip

    overdue = [await send("billing", deadline_seconds=1) for _ in range(2)]
    waiting = [await send("billing"), await send("approval")]
    completed, declined, stuck = (
        await send("billing"),
        await send("approval"),
        await send("billing"),
    )
    traced_id, trace_id = await traced_library_handoff(temporal_address, sidecar)
    async with sidecar.client(COMPLETION_TOKEN) as http:
        ok = await http.post(f"/v1/handoffs/{completed.handoff_id}/complete", json={"result": 1})
        assert ok.status_code == 200, ok.text
        no = await http.post(
            f"/v1/handoffs/{declined.handoff_id}/fail",
            json={"error_type": "CardDeclined", "message": "insufficient funds"},
        )
        assert no.status_code == 200, no.text
        late = await http.post(f"/v1/handoffs/{completed.handoff_id}/complete", json={})
        assert late.status_code == 409, late.text  # counted as a completion error
    async with sidecar.client(OPERATOR_TOKEN) as http:
        failed = await http.post(
            f"/v1/operator/handoffs/{stuck.handoff_id}/fail", json={"reason": "vendor lost it"}
        )
        assert failed.status_code == 200, failed.text
    async with sidecar.client(None) as http:
        views = {
            s.handoff_id: (await http.get(f"/v1/handoffs/{s.handoff_id}")).json()
            for s in [*overdue, *waiting]
        }
    await asyncio.sleep(1.2)  # the overdue deadlines pass; the reaper does not scan again

    page = await new_page(browser)
    response = await page.goto(sidecar.url + "/")
    assert response is not None
    assert response.status == 200
    html = await page.content()
    await page.screenshot(path=str(tmp_path / "status-page.png"), full_page=True)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    refresh = page.locator('meta[http-equiv="refresh"]')
    assert await refresh.get_attribute("content") == "10"

    by_target = page.locator("#pending-by-target")
    assert await cell(by_target, "billing", "pending") == "3"
    assert await cell(by_target, "approval", "pending") == "2"
    assert await cell(by_target, "billing", "< 1m") == "3"
    assert await cell(by_target, "billing", "> 1d") == "0"
    assert await card(page, "pending-total") == "5"
    assert await card(page, "overdue-count") == "2"
    assert "bad" in (await page.locator("#overdue-count").get_attribute("class") or "")

    oldest = page.locator("#oldest-pending")
    rows = oldest.locator("tr.handoff")
    assert await rows.count() == 5
    shown = [await rows.nth(i).locator("td").first.inner_text() for i in range(5)]
    assert shown[:2] == [s.handoff_id for s in overdue]  # oldest first
    assert set(shown) == {*views, traced_id}
    for sent in [*overdue, *waiting]:
        row = oldest.locator("tr.handoff", has_text=sent.handoff_id)
        link = row.locator("a", has_text=sent.handle.id)
        assert await link.get_attribute("href") == ui_href(sent, views[sent.handoff_id]["run_id"])
        assert await row.get_by_role("link", name="trace", exact=True).count() == 0
        assert (await row.locator("td.age").inner_text()).strip().endswith("s")
        deadline = (await row.locator("td.deadline").inner_text()).strip()
        assert views[sent.handoff_id]["deadline"][:19].replace("T", " ") in deadline
        if sent in overdue:
            assert await row.get_attribute("data-state") == "overdue"
            assert "overdue by " in deadline
        else:
            assert await row.get_attribute("data-state") == "due"
            assert "overdue" not in deadline
            assert "in " in deadline
    traced = oldest.locator("tr.handoff", has_text=traced_id)
    trace_link = traced.get_by_role("link", name="trace", exact=True)
    assert await trace_link.get_attribute("href") == TRACES.format(trace_id=trace_id)

    outcomes = page.locator("#recent-outcomes")
    assert await cell(outcomes, "billing", "completed") == "1"
    assert await cell(outcomes, "billing", "failed") == "1"
    assert await cell(outcomes, "approval", "failed") == "1"
    assert await cell(outcomes, "approval", "completed") == "0"
    assert await cell(outcomes, "billing", "total") == "2"
    failure_types = page.locator("#recent-errors")
    assert await cell(failure_types, "CardDeclined", "target") == "approval"
    assert await cell(failure_types, "HandoffFailedByOperator", "target") == "billing"
    assert await cell(page.locator("#completion-errors"), "already_finished", "calls") == "1"

    reaper = await page.locator("#reaper").inner_text()
    assert "healthy" in reaper
    assert "last scan" in reaper

    every_sent = [*overdue, *waiting, completed, declined, stuck]
    assert_no_token(html, [*ledger_tokens(sidecar), *(s.task_token for s in every_sent)])
    assert len(ledger_tokens(sidecar)) == 5  # the pending ones; the 3 finished keep none
    assert SCREENSHOT.stat().st_size > 10_000
    await page.close()


async def test_status_page_with_no_traffic_says_so_in_each_section(
    browser: Browser, sidecar: Sidecar, tmp_path: Path
) -> None:
    page = await new_page(browser)
    response = await page.goto(sidecar.url + "/")
    assert response is not None
    assert response.status == 200
    await page.screenshot(path=str(tmp_path / "status-page-empty.png"), full_page=True)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT.with_name("status-page-empty.png")), full_page=True)

    assert await card(page, "pending-total") == "0"
    assert await card(page, "oldest-age") == "—"
    assert await card(page, "overdue-count") == "0"
    empty = [text.strip() for text in await page.locator(".empty").all_inner_texts()]
    assert empty == [
        "Nothing is pending.",
        "No pending handoff.",
        "No handoff finished recently.",
        "No handoff failed recently.",
        "No completion error since this process started.",
    ]
    for table in ("pending-by-target", "oldest-pending", "recent-outcomes", "completion-errors"):
        assert await page.locator(f"#{table}").count() == 0
    assert await page.title() == "0 pending · handshake-obs"
    await page.close()
