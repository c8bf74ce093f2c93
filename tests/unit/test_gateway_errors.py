"""The HTTP gateway answers each handshake-obs error from one table, and counts every
completion call it refuses where it refuses it: served in-process (ASGI), with a real SQLite
ledger and a client that never dials Temporal."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from handshake_obs import (
    ActivityAlreadyClosedError,
    CompletionError,
    CompletionRejectedError,
    DeadlineInPastError,
    DeadlinePastTemporalTimeoutError,
    ErrorType,
    HandoffAlreadyFinishedError,
    Handshake,
    HandshakeConfig,
    HandshakeError,
    InvalidTaskTokenError,
    LedgerError,
    Outcome,
    TemporalUnavailableError,
    UnknownHandoffError,
)
from handshake_obs.config import SidecarSettings
from handshake_obs.sidecar._api import create_app
from handshake_obs.sidecar._http_errors import HTTP_ANSWERS, install_error_handlers
from handshake_obs.sidecar._runtime import SidecarRuntime

from .completion_kit import T0, all_errors, new_record

TOKEN = "completion-secret"
UNKNOWN_ID = "ho_" + "A" * 24
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def handshake(tmp_path: Path, registry: CollectorRegistry) -> AsyncIterator[Handshake]:
    config = HandshakeConfig(ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", targets=("agent",))
    handshake = Handshake(config, registry=registry)
    await handshake.ledger.open()  # the ledger only: no background refresh
    yield handshake
    await handshake.ledger.close()


def runtime_of(
    handshake: Handshake, registry: CollectorRegistry, client: Client | None
) -> SidecarRuntime:
    return SidecarRuntime(
        config=handshake.config,
        settings=SidecarSettings(completion_token=TOKEN, operator_token=TOKEN),
        handshake=handshake,
        registry=registry,
        client=client,
    )


def gateway(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sidecar")


@pytest.fixture
async def never_dialed() -> Client:
    """A client that connects on its first RPC: none of these calls gets that far."""
    return await Client.connect("127.0.0.1:9", lazy=True)


async def test_a_call_before_temporal_is_connected_is_a_counted_503(
    handshake: Handshake, registry: CollectorRegistry
) -> None:
    async with gateway(create_app(runtime_of(handshake, registry, None))) as http:
        answer = await http.post(f"/v1/handoffs/{UNKNOWN_ID}/complete", json={}, headers=AUTH)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "temporal_unavailable"
    assert int(answer.headers["retry-after"]) > 0
    assert all_errors(registry) == {("other", "unavailable"): 1}


async def test_an_unknown_handoff_id_is_a_counted_404(
    handshake: Handshake, registry: CollectorRegistry, never_dialed: Client
) -> None:
    token = base64.b64encode(new_record().task_token).decode()
    async with gateway(create_app(runtime_of(handshake, registry, never_dialed))) as http:
        by_id = await http.post(
            f"/v1/handoffs/{UNKNOWN_ID}/fail",
            json={"error_type": "X", "message": "x"},
            headers=AUTH,
        )
        extend = await http.post(
            "/v1/tokens/extend", json={"task_token": token, "extend_by_seconds": 5}, headers=AUTH
        )
        # Reading the inventory is not a completion call: its 404 is not counted.
        read = await http.get(f"/v1/handoffs/{UNKNOWN_ID}")
    for answer in (by_id, extend, read):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "unknown_handoff"
    assert all_errors(registry) == {("other", "unknown_handoff"): 2}


async def test_a_finished_handoff_is_a_counted_409(
    handshake: Handshake, registry: CollectorRegistry, never_dialed: Client
) -> None:
    record = (await handshake.ledger.record(new_record())).record
    await handshake.ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1)
    async with gateway(create_app(runtime_of(handshake, registry, never_dialed))) as http:
        again = await http.post(f"/v1/handoffs/{record.handoff_id}/complete", json={}, headers=AUTH)
        extend = await http.post(
            f"/v1/handoffs/{record.handoff_id}/extend", json={"extend_by_seconds": 5}, headers=AUTH
        )
    for answer in (again, extend):
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "already_finished"
    assert all_errors(registry) == {("agent", "already_finished"): 2}


async def test_a_ledger_that_cannot_be_read_is_a_counted_503(
    handshake: Handshake, registry: CollectorRegistry, never_dialed: Client
) -> None:
    await handshake.ledger.close()
    async with gateway(create_app(runtime_of(handshake, registry, never_dialed))) as http:
        answer = await http.post(f"/v1/handoffs/{UNKNOWN_ID}/complete", json={}, headers=AUTH)
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "ledger_unavailable"
    assert error["message"].startswith("the ledger is unavailable: ")
    assert int(answer.headers["retry-after"]) > 0
    assert all_errors(registry) == {("other", "ledger_unavailable"): 1}


#: The answer to each error, as the API promises it (docs/http-api.md).
PROMISED: list[tuple[HandshakeError, int, str]] = [
    (UnknownHandoffError(UNKNOWN_ID), 404, "unknown_handoff"),
    (HandoffAlreadyFinishedError("ho_x", "completed"), 409, "already_finished"),
    (
        DeadlinePastTemporalTimeoutError("ho_x", 1_800_000_100.0, 1_800_000_000.0),
        422,
        "deadline_past_temporal_timeout",
    ),
    (ActivityAlreadyClosedError("closed"), 409, "already_closed"),
    (CompletionRejectedError("refused"), 409, "rejected"),
    (InvalidTaskTokenError("not a token"), 400, "invalid_token"),
    (TemporalUnavailableError("down"), 503, "temporal_unavailable"),
    (LedgerError("gone"), 503, "ledger_unavailable"),
    (DeadlineInPastError("ho_x", 3.0), 422, "deadline_in_past"),
    (CompletionError("odd"), 502, "temporal_error"),
]


def test_the_promised_answers_cover_every_error_type() -> None:
    assert {error.error_type for error, _, _ in PROMISED} == set(ErrorType)


@pytest.mark.parametrize(
    ("error", "status", "code"), PROMISED, ids=[e.error_type.value for e, _, _ in PROMISED]
)
async def test_each_error_type_gets_its_status_and_code(
    error: HandshakeError, status: int, code: str
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise")
    async def raising() -> None:
        raise error

    async with gateway(app) as http:
        answer = await http.get("/raise")
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert str(error) in answer.json()["error"]["message"]
    assert ("retry-after" in answer.headers) is (status == 503)
    assert HTTP_ANSWERS[error.error_type].code == code
