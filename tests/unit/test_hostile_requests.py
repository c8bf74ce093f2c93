"""Bad input and hostile clients get the documented JSON errors, never a plain 500: deep or
odd JSON, non-object bodies, an unexpected exception (500 with a correlation id that is in
the log), a past deadline to ``extend``, and authentication before any body is read. Served
in-process (ASGI) with a real SQLite ledger and a client that never dials Temporal."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from handshake_obs import DeadlineInPastError, Handshake, HandshakeConfig, flush_logs
from handshake_obs.config import SidecarSettings
from handshake_obs.sidecar._api import create_app
from handshake_obs.sidecar._runtime import SidecarRuntime

from ..support.logs import logging_to_stream
from .completion_kit import all_errors, new_record

TOKEN = "completion-secret"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def handshake(tmp_path: Path, registry: CollectorRegistry) -> AsyncIterator[Handshake]:
    config = HandshakeConfig(ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", targets=("agent",))
    handshake = Handshake(config, registry=registry)
    await handshake.ledger.open()
    yield handshake
    await handshake.ledger.close()


@pytest.fixture
async def never_dialed() -> Client:
    return await Client.connect("127.0.0.1:9", lazy=True)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    with logging_to_stream(logging.INFO) as stream:
        yield stream


def runtime(handshake: Handshake, registry: CollectorRegistry, client: Client) -> SidecarRuntime:
    settings = SidecarSettings(completion_token=TOKEN, operator_token=TOKEN, inventory_token=TOKEN)
    return SidecarRuntime(handshake.config, settings, handshake, registry, client=client)


def gateway(runtime: SidecarRuntime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(runtime))
    return httpx.AsyncClient(transport=transport, base_url="http://sidecar", headers=AUTH)


ODD_BODIES: list[tuple[str, bytes, int, str]] = [
    ("depth 10,000", b"[" * 10_000 + b"]" * 10_000, 400, "json_too_deep"),
    ("deep in a result", b'{"result": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001, 400,
     "json_too_deep"),
    ("NaN", b'{"result": NaN}', 400, "number_out_of_range"),
    ("Infinity", b'{"result": [1, -Infinity]}', 400, "number_out_of_range"),
    ("float overflow", b'{"result": 1e400}', 400, "number_out_of_range"),
    ("5,000 digits", b'{"result": ' + b"9" * 5_000 + b"}", 400, "number_out_of_range"),
    ("not UTF-8", b'{"result": "\xff\xfe"}', 400, "malformed_json"),
    ("truncated", b'{"result": [1, 2', 400, "malformed_json"),
    ("array", b"[1, 2]", 422, "body_not_an_object"),
    ("string", b'"paid"', 422, "body_not_an_object"),
    ("number", b"7", 422, "body_not_an_object"),
    ("null", b"null", 422, "body_not_an_object"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code"), [b[1:] for b in ODD_BODIES], ids=[b[0] for b in ODD_BODIES]
)
async def test_odd_json_gets_its_documented_code_and_the_handoff_is_untouched(
    handshake: Handshake, registry: CollectorRegistry, never_dialed: Client,
    body: bytes, status: int, code: str,
) -> None:  # fmt: skip
    record = (await handshake.ledger.record(new_record())).record
    async with gateway(runtime(handshake, registry, never_dialed)) as http:
        answer = await http.post(
            f"/v1/handoffs/{record.handoff_id}/complete",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == code
    still = await handshake.ledger.get(record.handoff_id)
    assert still is not None
    assert still.state == "pending"


async def test_an_unexpected_exception_is_a_json_500_with_a_correlation_id_in_the_log(
    handshake: Handshake, registry: CollectorRegistry, never_dialed: Client,
    log_lines: io.StringIO,
) -> None:  # fmt: skip
    def broken_clock() -> float:
        raise ZeroDivisionError("a clock that fails")

    faulty = runtime(handshake, registry, never_dialed)
    faulty.clock = broken_clock
    async with gateway(faulty) as http:
        answer = await http.get("/v1/handoffs")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == "internal_error"
    correlation_id = error["correlation_id"]
    assert answer.headers["x-correlation-id"] == correlation_id
    assert "ZeroDivisionError" not in answer.text  # internals stay in the log
    flush_logs()
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    logged = [line for line in lines if line.get("correlation_id") == correlation_id]
    assert len(logged) == 1, lines
    assert "ZeroDivisionError: a clock that fails" in logged[0]["exception"]


async def test_extend_refuses_a_deadline_in_the_past_over_http_and_in_the_library(
    handshake: Handshake, registry: CollectorRegistry, never_dialed: Client
) -> None:
    record = (await handshake.ledger.record(new_record())).record
    past = datetime.now(UTC) - timedelta(minutes=5)
    async with gateway(runtime(handshake, registry, never_dialed)) as http:
        answer = await http.post(
            f"/v1/handoffs/{record.handoff_id}/extend", json={"deadline": past.isoformat()}
        )
        operator = await http.post(
            f"/v1/operator/handoffs/{record.handoff_id}/extend",
            json={"deadline": past.isoformat()},
        )
    for refused in (answer, operator):
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "deadline_in_past"
    completer = handshake.completer(never_dialed)
    with pytest.raises(DeadlineInPastError, match="must be in the future"):
        await completer.extend(record.handoff_id, past)
    with pytest.raises(DeadlineInPastError):
        await completer.extend(record.handoff_id, timedelta(seconds=-1))
    unchanged = await handshake.ledger.get(record.handoff_id)
    assert unchanged is not None
    assert unchanged.deadline == record.deadline
    assert all_errors(registry) == {("agent", "deadline_in_past"): 4}


async def test_a_request_without_its_token_is_refused_before_the_body_is_read(
    handshake: Handshake, registry: CollectorRegistry, never_dialed: Client
) -> None:
    """The body never arrives: the 401 comes anyway, at once."""
    app = create_app(runtime(handshake, registry, never_dialed))
    sent: list[MutableMapping[str, Any]] = []
    body_read = asyncio.Event()

    async def receive() -> dict[str, Any]:
        body_read.set()
        await asyncio.Event().wait()  # a stalled upload
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    for authorization in (b"", b"Bearer wrong"):
        sent.clear()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/tokens/complete",
            "raw_path": b"/v1/tokens/complete", "query_string": b"", "root_path": "",
            "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]
            + ([(b"authorization", authorization)] if authorization else []),
            "client": ("127.0.0.1", 1), "server": ("sidecar", 80),
        }  # fmt: skip
        await asyncio.wait_for(app(scope, receive, send), 5)
        assert sent[0]["status"] == 401
        assert json.loads(sent[1]["body"])["error"]["code"] == "unauthenticated"
    assert not body_read.is_set()
