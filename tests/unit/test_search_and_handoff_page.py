"""The on-call search (one filter for the API, the status page and the CLI) and the handoff
page: served in-process (ASGI) over a real SQLite ledger, with a clock the test sets and a
client that never dials Temporal. The browser-level story is tests/test_oncall_story.py."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from handshake_obs import Handshake, HandshakeConfig, Outcome
from handshake_obs._handoff_filter import FILTER_FIELDS, HandoffFilter, InvalidFilterError
from handshake_obs._records import HandoffRecord
from handshake_obs._vocabulary import State
from handshake_obs.artifacts import RuleSettings, alert_rules
from handshake_obs.config import SidecarSettings
from handshake_obs.sidecar._api import create_app
from handshake_obs.sidecar._runtime import SidecarRuntime

from .completion_kit import T0, new_record

OPERATOR = "operator-secret"
TRACES = "http://tempo.invalid/explore?trace={trace_id}"
NOW = T0 + 7 * 3600
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def handshake(tmp_path: Path) -> AsyncIterator[Handshake]:
    config = HandshakeConfig(
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", targets=("billing", "approval")
    )
    handshake = Handshake(config, registry=CollectorRegistry())
    await handshake.ledger.open()
    yield handshake
    await handshake.ledger.close()


@pytest.fixture
async def http(handshake: Handshake) -> AsyncIterator[httpx.AsyncClient]:
    runtime = SidecarRuntime(
        config=handshake.config,
        settings=SidecarSettings(
            operator_token=OPERATOR,
            temporal_ui_url="http://ui.invalid:8233",
            trace_url_template=TRACES,
            runbook_url="http://wiki.invalid/runbook",
            dashboard_url="http://grafana.invalid/d/handshake-obs",
            prometheus_url="http://prometheus.invalid:9090",
        ),
        handshake=handshake,
        registry=CollectorRegistry(),
        clock=lambda: NOW,
        client=await Client.connect("127.0.0.1:9", lazy=True),
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        yield client


async def store(handshake: Handshake, record: HandoffRecord) -> HandoffRecord:
    return (await handshake.ledger.record(record)).record


async def traffic(handshake: Handshake) -> dict[str, HandoffRecord]:
    """Stuck billing handoffs (7 h and 6.5 h old), a fresh one, an approval, a finished one."""
    made = {
        "stuck": new_record(target="billing", started_at=T0, workflow_id="order-1001"),
        "stuck2": new_record(target="billing", started_at=T0 + 1800, workflow_id="order-1002"),
        "fresh": new_record(target="billing", started_at=NOW - 60, workflow_id="order-2001"),
        "approval": new_record(target="approval", started_at=T0 + 10, workflow_id="Order-3001"),
        "done": new_record(target="billing", started_at=T0 + 20, workflow_id="refund-1"),
    }
    made["stuck"] = dataclasses.replace(made["stuck"], traceparent=TRACEPARENT, deadline=NOW - 5)
    stored = {name: await store(handshake, record) for name, record in made.items()}
    await handshake.ledger.finish(
        stored["done"].handoff_id,
        Outcome.FAILED,
        T0 + 80,
        error_type="CardDeclined",
        error_message="insufficient funds",
    )
    await handshake.ledger.heartbeat(stored["stuck"].handoff_id, {"pct": 40}, 3, T0 + 600)
    return stored


async def test_the_timeline_lists_every_heartbeat_an_ignored_one_and_a_deadline_set(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    record = await store(handshake, new_record(target="billing", started_at=T0))
    for sequence, at in ((1, T0 + 60), (2, T0 + 120), (1, T0 + 180)):
        await handshake.ledger.heartbeat(record.handoff_id, {"step": sequence}, sequence, at)
    await handshake.ledger.extend_deadline(record.handoff_id, NOW + 3600, at=T0 + 240)
    html = (await http.get(f"/handoffs/{record.handoff_id}")).text
    titles = re.findall(r"data-title='([^']+)'", html)
    assert titles == [
        "recorded (attempt 1)",
        "heartbeat #1",
        "heartbeat #2",
        "heartbeat #1 ignored",
        "deadline set",
    ]
    assert "not newer than #2, the progress kept" in html


# -- the filter ---------------------------------------------------------------------------


def test_a_filter_round_trips_through_its_query_parameters() -> None:
    search = HandoffFilter(
        handoff_id="ho_x", workflow_id="order-", target="billing", state=State.PENDING,
        min_age_seconds=21600,
    )  # fmt: skip
    assert HandoffFilter.from_params(search.params()) == search
    assert set(search.params()) == set(FILTER_FIELDS)
    assert HandoffFilter.from_params({"state": "all"}) == HandoffFilter()
    assert HandoffFilter.from_params({"state": "", "target": "  "}) == HandoffFilter()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "stuck"}, "state: 'stuck' is not one of pending, finished, all"),
        ({"min_age_seconds": "6h"}, "min_age_seconds: '6h' is not a number"),
        ({"min_age_seconds": "nan"}, "min_age_seconds: 'nan' is not a number"),
        ({"min_age_seconds": "-1"}, "min_age_seconds: must be between 0"),
        ({"workflow_id": "w" * 300}, "workflow_id: longer than 256 characters"),
    ],
)
def test_a_filter_that_cannot_be_read_says_which_parameter_and_why(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidFilterError, match=re.escape(message)):
        HandoffFilter.from_params(params)


def test_every_alert_links_to_the_status_page_with_filter_parameters_only() -> None:
    for alert in alert_rules(RuleSettings()):
        names = [name for name, _ in alert.status_filter]
        assert set(names) <= set(FILTER_FIELDS), alert.name
        assert names[0] == "state", alert.name


# -- the API ------------------------------------------------------------------------------


async def test_the_inventory_api_searches_by_id_workflow_prefix_target_state_and_age(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    made = await traffic(handshake)

    async def ids(**params: str) -> list[str]:
        answer = await http.get("/v1/handoffs", params=params)
        assert answer.status_code == 200, answer.text
        return [item["handoff_id"] for item in answer.json()["items"]]

    def of(*names: str) -> list[str]:
        return [made[name].handoff_id for name in names]

    assert await ids(handoff_id=made["approval"].handoff_id) == of("approval")
    assert await ids(workflow_id="order-") == of("stuck", "stuck2", "fresh")
    assert await ids(workflow_id="Order-") == of("approval")
    assert await ids(target="billing", state="pending") == of("stuck", "stuck2", "fresh")
    assert await ids(target="billing", state="pending", min_age_seconds="21600") == of(
        "stuck", "stuck2"
    )
    assert await ids(state="finished") == of("done")
    bad = await http.get("/v1/handoffs", params={"state": "stuck"})
    assert bad.status_code == 422
    assert "state" in bad.text


# -- the status page ----------------------------------------------------------------------


async def test_the_status_page_filtered_as_the_stuck_alert_links_lists_the_stuck_oldest_first(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    made = await traffic(handshake)
    page = await http.get(
        "/", params={"state": "pending", "target": "billing", "min_age_seconds": "21600"}
    )
    assert page.status_code == 200
    html = page.text
    results = html[html.index("<table id=search-results>") :]
    results = results[: results.index("</table>")]
    rows = re.findall(r'<a href="/handoffs/(ho_[^"]+)">', results)
    assert rows == [made["stuck"].handoff_id, made["stuck2"].handoff_id]
    assert made["fresh"].handoff_id not in results
    assert "state pending, target billing, at least 21600s old" in html
    assert '<input name=target value="billing"' in html
    assert "2 match." in html
    assert 'href="http://grafana.invalid/d/handshake-obs"' in html
    assert made["stuck"].task_token.hex() not in html


async def test_the_status_page_says_when_nothing_matches_and_when_a_filter_is_wrong(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    await traffic(handshake)
    none = await http.get("/", params={"workflow_id": "no-such-"})
    assert "No handoff matches." in none.text
    wrong = await http.get("/", params={"min_age_seconds": "six hours"})
    assert wrong.status_code == 200
    assert "min_age_seconds: &#x27;six hours&#x27; is not a number" in wrong.text
    assert "Oldest pending handoffs" in wrong.text  # the page still answers its first questions


# -- the handoff page ---------------------------------------------------------------------


async def test_the_handoff_page_tells_a_stuck_handoffs_story_with_its_links(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    made = await traffic(handshake)
    stuck = made["stuck"]
    page = await http.get(f"/handoffs/{stuck.handoff_id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "pending, overdue" in html
    assert f"<code id=fingerprint>{stuck.token_fingerprint}</code>" in html
    assert "<span id=attempt>1</span>" in html
    ui = "http://ui.invalid:8233/namespaces/default/workflows/order-1001/run-1/history"
    assert f'href="{ui}" id="workflow-link"' in html
    trace = TRACES.format(trace_id="0af7651916cd43dd8448eb211c80319c")
    assert f'href="{trace}" id="trace-link"' in html
    assert 'href="http://wiki.invalid/runbook#handshakehandoffsstuck"' in html
    assert 'id="dashboard-link"' in html
    assert '<a href="/?target=billing&amp;state=pending">all pending to billing</a>' in html
    titles = re.findall(r"data-title='([^']+)'", html)
    assert titles == ["recorded (attempt 1)", "heartbeat #3"]
    assert "{&quot;pct&quot;: 40}" in html
    assert "overdue by" in html
    assert "id=fail-form" in html
    assert "id=extend-form" in html
    assert stuck.task_token.hex() not in html


async def test_the_handoff_page_of_a_finished_handoff_shows_its_outcome_and_reason(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    made = await traffic(handshake)
    html = (await http.get(f"/handoffs/{made['done'].handoff_id}")).text
    titles = re.findall(r"data-title='([^']+)'", html)
    assert titles == ["recorded (attempt 1)", "failed"]
    assert "CardDeclined: insufficient funds (after 60s)" in html
    assert "#handshakecompletionfailureratiohigh" in html
    assert "nothing is left to do" in html
    assert "id=fail-form" not in html


async def test_the_handoff_page_of_an_unknown_or_malformed_id_is_a_clear_error(
    http: httpx.AsyncClient,
) -> None:
    unknown = await http.get("/handoffs/ho_" + "A" * 24)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_handoff"
    malformed = await http.get("/handoffs/nope")
    assert malformed.status_code == 400


async def test_the_extend_form_needs_the_operator_token_and_then_moves_the_deadline(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    made = await traffic(handshake)
    fresh = made["fresh"]
    refused = await http.post(
        f"/handoffs/{fresh.handoff_id}/extend",
        data={"operator_token": "wrong", "extend_by_seconds": "3600"},
    )
    assert refused.status_code == 401
    assert "Not done: the bearer token is not valid" in refused.text
    assert (await handshake.ledger.get(fresh.handoff_id)) == fresh
    before = time.time()
    done = await http.post(
        f"/handoffs/{fresh.handoff_id}/extend",
        data={"operator_token": OPERATOR, "extend_by_seconds": "3600"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/handoffs/{fresh.handoff_id}?done=extended"
    moved = await handshake.ledger.get(fresh.handoff_id)
    assert moved is not None
    assert moved.deadline is not None
    assert before + 3600 <= moved.deadline <= time.time() + 3600  # the completer's clock
    again = await http.get(done.headers["location"])
    assert "Extended: the new deadline is below." in again.text
    invalid = await http.post(
        f"/handoffs/{fresh.handoff_id}/extend",
        data={"operator_token": OPERATOR, "extend_by_seconds": "-5"},
    )
    assert invalid.status_code == 422
    assert "Not done:" in invalid.text


async def test_a_body_sent_without_a_json_content_type_is_told_to_send_one(
    handshake: Handshake, http: httpx.AsyncClient
) -> None:
    """What ``curl -d`` alone does (form-encoded): the 422 says what to change."""
    made = await traffic(handshake)
    answer = await http.post(
        f"/v1/operator/handoffs/{made['fresh'].handoff_id}/fail",
        content=b'{"reason": "x"}',
        headers={
            "authorization": f"Bearer {OPERATOR}",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert answer.status_code == 422
    assert "send the header Content-Type: application/json" in answer.json()["error"]["message"]


async def test_docs_is_an_api_reference_that_needs_nothing_from_elsewhere(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "<code>GET /v1/handoffs</code>" in html
    assert "<code>POST /v1/handoffs/{handoff_id}/complete</code>" in html
    assert "<code>workflow_id</code>" in html
    assert "<script" not in html
    assert "cdn" not in html.lower()
    assert not re.search(r'(src|href)="https?://', html)
    assert (await http.get("/redoc")).status_code == 404
