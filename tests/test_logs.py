"""Logs identify every handoff and never contain a task token."""

from __future__ import annotations

import base64
import io
import json

import pytest
import structlog
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from handshake_obs import Handshake, HandshakeError

from .conftest import StartWorkflow
from .support.activities import EXTERNAL
from .support.logs import flushed_logs

IDENTITY_FIELDS = {"handoff_id", "workflow_id", "activity_id", "target", "token_fingerprint"}


def token_forms(token: bytes) -> list[str]:
    """The ways a token could show up in text."""
    return [
        repr(token),
        token.hex(),
        base64.b64encode(token).decode(),
        base64.urlsafe_b64encode(token).decode(),
        token.decode("latin-1"),
        json.dumps(token.decode("latin-1"))[1:-1],
    ]


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
