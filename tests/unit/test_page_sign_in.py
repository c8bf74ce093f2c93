"""With an inventory token, a browser (which cannot send a bearer header) signs in to the
pages with a form and a cookie; the cookie opens the pages and nothing else. Served
in-process (ASGI) over a real SQLite ledger; the browser-level story is
tests/test_oncall_story.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from handshake_obs import Handshake, HandshakeConfig
from handshake_obs.config import SidecarSettings
from handshake_obs.sidecar._api import create_app
from handshake_obs.sidecar._page_session import COOKIE_NAME
from handshake_obs.sidecar._runtime import SidecarRuntime

from .completion_kit import new_record

INVENTORY = "inventory-secret-0123456789"
OPERATOR = "operator-secret-0123456789"
ALERT_LINK = "/?state=pending&target=billing&min_age_seconds=3600"


@pytest.fixture
async def handshake(tmp_path: Path) -> AsyncIterator[Handshake]:
    config = HandshakeConfig(ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", targets=("billing",))
    handshake = Handshake(config, registry=CollectorRegistry())
    await handshake.ledger.open()
    yield handshake
    await handshake.ledger.close()


async def browser_for(
    handshake: Handshake, settings: SidecarSettings
) -> AsyncIterator[httpx.AsyncClient]:
    runtime = SidecarRuntime(
        config=handshake.config,
        settings=settings,
        handshake=handshake,
        registry=CollectorRegistry(),
        client=await Client.connect("127.0.0.1:9", lazy=True),
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        yield client


@pytest.fixture
async def browser(handshake: Handshake) -> AsyncIterator[httpx.AsyncClient]:
    settings = SidecarSettings(inventory_token=INVENTORY, operator_token=OPERATOR)
    async for client in browser_for(handshake, settings):
        yield client


async def test_an_alert_link_without_a_session_gets_the_sign_in_form_and_returns_after_it(
    browser: httpx.AsyncClient,
) -> None:
    refused = await browser.get(ALERT_LINK)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/html")
    assert "id=sign-in-form" in refused.text
    assert f"value='{ALERT_LINK.replace('&', '&amp;')}'" in refused.text  # where to go back to

    wrong = await browser.post("/signin", data={"token": "guess", "next": ALERT_LINK})
    assert wrong.status_code == 401
    assert "not the inventory token of this sidecar" in wrong.text
    assert COOKIE_NAME not in browser.cookies

    signed = await browser.post("/signin", data={"token": INVENTORY, "next": ALERT_LINK})
    assert signed.status_code == 303
    assert signed.headers["location"] == ALERT_LINK
    cookie = signed.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"):
        assert attribute in cookie, cookie
    assert INVENTORY not in cookie  # a digest of the token, never the token

    page = await browser.get(ALERT_LINK)
    assert page.status_code == 200
    assert 'name=target value="billing"' in page.text  # the filtered page it asked for


async def test_the_session_opens_the_pages_and_never_the_api(
    handshake: Handshake, browser: httpx.AsyncClient
) -> None:
    record = (await handshake.ledger.record(new_record(target="billing"))).record
    await browser.post("/signin", data={"token": INVENTORY, "next": "/"})
    assert (await browser.get(f"/handoffs/{record.handoff_id}")).status_code == 200
    for path in ("/v1/handoffs", f"/v1/handoffs/{record.handoff_id}"):
        api = await browser.get(path)
        assert api.status_code == 401, path
        assert api.json()["error"]["code"] == "unauthenticated"
    # The operator form still needs the operator token, whatever the session.
    form = await browser.post(f"/handoffs/{record.handoff_id}/fail", data={"reason": "x"})
    assert form.status_code == 401
    assert (await handshake.ledger.get(record.handoff_id)) == record


async def test_a_forged_or_stale_cookie_opens_nothing(
    handshake: Handshake, browser: httpx.AsyncClient
) -> None:
    for value in ("0" * 64, INVENTORY, "", '"unbalanced'):
        browser.cookies.set(COOKIE_NAME, value)
        assert (await browser.get("/")).status_code == 401, value
    # Rotating the inventory token signs every browser out.
    signed = await browser.post("/signin", data={"token": INVENTORY, "next": "/"})
    old_cookie = signed.cookies[COOKIE_NAME]
    rotated = SidecarSettings(inventory_token="rotated-0123456789", operator_token=OPERATOR)
    async for other in browser_for(handshake, rotated):
        other.cookies.set(COOKIE_NAME, old_cookie)
        assert (await other.get("/")).status_code == 401


async def test_a_sign_in_body_that_is_not_utf8_is_refused_as_a_wrong_token(
    browser: httpx.AsyncClient,
) -> None:
    odd = await browser.post(
        "/signin",
        content=b"token=\xff\xfe&next=/",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert odd.status_code == 401
    assert "id=sign-in-form" in odd.text


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
async def test_sign_in_never_sends_the_browser_to_another_site(
    browser: httpx.AsyncClient, next_path: str
) -> None:
    signed = await browser.post("/signin", data={"token": INVENTORY, "next": next_path})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/"


async def test_without_an_inventory_token_the_pages_are_open_and_sign_in_just_returns(
    handshake: Handshake,
) -> None:
    async for browser in browser_for(handshake, SidecarSettings(operator_token=OPERATOR)):
        assert (await browser.get(ALERT_LINK)).status_code == 200
        back = await browser.post("/signin", data={"token": "", "next": ALERT_LINK})
        assert back.status_code == 303
        assert back.headers["location"] == ALERT_LINK
        assert "set-cookie" not in back.headers
