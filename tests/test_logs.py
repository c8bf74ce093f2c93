"""Logs identify every handoff and never contain a task token."""

from __future__ import annotations

import base64
import io
import json
import logging
import sqlite3
import uuid
from pathlib import Path

import pytest
import structlog
from google.protobuf import text_encoding
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeError

from .conftest import StartWorkflow
from .support.activities import EXTERNAL
from .support.logs import flushed_logs
from .support.sidecar import ExternalReceiver, running_sidecar
from .support.workflows import SidecarCall, SidecarWorkflow

IDENTITY_FIELDS = {"handoff_id", "workflow_id", "activity_id", "target", "token_fingerprint"}


def token_forms(token: bytes) -> list[str]:
    """Every way a token could show up in a text or a JSON log line."""
    b64 = base64.b64encode(token).decode()
    url = base64.urlsafe_b64encode(token).decode()
    plain = [
        token.decode("latin-1"),
        repr(token),
        token.hex(),
        b64,
        b64.rstrip("="),
        url,
        url.rstrip("="),
        text_encoding.CEscape(token, as_utf8=False),  # protobuf text format (octal escapes)
    ]
    # As a JSON line writes each of them (a backslash doubled, control characters \u00XX).
    return plain + [json.dumps(form)[1:-1] for form in plain]


async def test_no_raw_token_in_any_log_line_and_every_handoff_line_identifies_it(
    log_stream: io.StringIO,
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
) -> None:
    completer = handshake.completer(client)
    tokens: list[bytes] = []
    for outcome in ("complete", "fail", "heartbeat", "plain", "duplicate"):
        activity = "hand_off_plain" if outcome == "plain" else "hand_off_explicit"
        handle = await start_workflow(activity, target="agent", heartbeat_timeout_seconds=30)
        delivery = await EXTERNAL.receive(handle.id)
        tokens.append(delivery.task_token)
        if outcome == "plain":
            await client.get_async_activity_handle(task_token=delivery.task_token).complete(1)
        elif outcome == "fail":
            await completer.fail(delivery.task_token, error_type="Nope", message="no")
        else:
            if outcome == "heartbeat":
                await completer.heartbeat(delivery.task_token, {"step": 1})
            await completer.complete(delivery.task_token, 1)
            if outcome == "duplicate":
                with pytest.raises(RPCError):
                    await client.get_async_activity_handle(task_token=delivery.task_token).complete(
                        2
                    )
        await handle.result()
    # What slipped past every field-level redaction: a library's f-string, an exception text.
    foreign = logging.getLogger("some.library")
    for token in tokens:
        foreign.warning(f"saw {token!r} {token.hex()} {base64.b64encode(token).decode()}")
        failure = RuntimeError(f"could not use {token!r}")
        foreign.error("failed", exc_info=(RuntimeError, failure, None))
        structlog.get_logger("t").error("boom", detail=f"text {token!r}", raw=token.hex())
    garbage = b"\x01\x02garbage-token-that-is-not-one"
    with pytest.raises(HandshakeError):
        await completer.complete(garbage, 1)
    tokens.append(garbage)

    text = flushed_logs(log_stream)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) >= 15, text
    for token in tokens:
        for form in token_forms(token):
            assert form not in text
    events = " ".join(str(line.get("event")) for line in lines)
    # temporalio's own DEBUG records were there (and redacted), not filtered out.
    assert "Running activity" in events
    assert "Completing activity with completion" in events
    assert "could not use [redacted]" in text
    handoff_lines = [line for line in lines if str(line.get("event", "")).startswith("handoff ")]
    assert {line["event"] for line in handoff_lines} >= {"handoff recorded", "handoff finished"}
    for line in handoff_lines:
        assert line.keys() >= IDENTITY_FIELDS, line


def test_secret_fields_and_bytes_are_redacted_whatever_the_caller_logs(
    log_stream: io.StringIO,
) -> None:
    structlog.get_logger("t").info("oops", task_token="abc", raw=b"\x00secret", fine="ok")
    line = json.loads(flushed_logs(log_stream).splitlines()[-1])
    assert line["task_token"] == "[redacted]"
    assert line["raw"] == "[redacted]"
    assert line["fine"] == "ok"


async def test_serve_at_debug_logs_no_token_in_any_encoding(
    tmp_path: Path,
    temporal_address: str,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
) -> None:
    """A real ``serve`` at ``--log-level debug``: temporalio's debug lines are written, and no
    form of the handoff's token is in the log file, whatever the encoding."""
    async with running_sidecar(
        tmp_path, temporal_address, targets={"billing": receiver.url},
        extra_env={"HANDSHAKE_LOG_LEVEL": "debug"},
    ) as sidecar:  # fmt: skip
        handle = await plain_client.start_workflow(
            SidecarWorkflow.run,
            SidecarCall(
                activity="handshake.http_handoff",
                task_queue=sidecar.task_queue,
                argument={"target": "billing", "payload": {"n": 1}},
            ),
            id=f"debug-{uuid.uuid4()}",
            task_queue=workflows,
        )
        body = (await receiver.receive()).body
        with sqlite3.connect(sidecar.ledger_url.removeprefix("sqlite:///")) as db:
            (token,) = db.execute(
                "SELECT task_token FROM handoffs WHERE handoff_id = ?", (body["handoff_id"],)
            ).fetchone()
        async with sidecar.client() as http:
            # By token, so it also travels in a request body.
            response = await http.post(
                "/v1/tokens/complete",
                json={"task_token": base64.b64encode(token).decode(), "result": "ok"},
            )
            assert response.status_code == 200, response.text
            assert token.hex() not in response.text
        assert await handle.result() == {"result": "ok"}
    text = sidecar.logs()
    assert "Running activity" in text, text
    assert "Completing activity with completion" in text
    for form in token_forms(bytes(token)):
        assert form not in text, form
