"""Handoffs through a running sidecar for the operator-facing tests (CLI, status page), and the
raw task tokens read back from the sidecar's ledger to prove none of them is ever shown.

A finished handoff's row keeps no token, so each :class:`SentHandoff` reads its token from
the ledger while it is still pending: the tests check those too."""

from __future__ import annotations

import base64
import html
import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle

from .sidecar import ExternalReceiver, Sidecar
from .workflows import SidecarCall, SidecarWorkflow


@dataclass
class SentHandoff:
    """A workflow waiting on an HTTP handoff, and the id the external system was given."""

    handle: WorkflowHandle[Any, Any]
    handoff_id: str
    body: dict[str, Any]
    #: The raw task token, read from the ledger as the handoff was delivered (pending).
    task_token: bytes


async def hand_off(
    client: Client,
    workflow_queue: str,
    sidecar: Sidecar,
    receiver: ExternalReceiver,
    *,
    target: str = "billing",
    deadline_seconds: float | None = None,
    workflow_id: str | None = None,
    start_to_close_seconds: float = 120.0,
) -> SentHandoff:
    """Start a workflow whose ``handshake.http_handoff`` reaches ``receiver``; wait for it."""
    argument: dict[str, Any] = {"target": target, "payload": {"n": 1}}
    if deadline_seconds is not None:
        argument["deadline_seconds"] = deadline_seconds
    handle = await client.start_workflow(
        SidecarWorkflow.run,
        SidecarCall(
            activity="handshake.http_handoff",
            task_queue=sidecar.task_queue,
            argument=argument,
            start_to_close_seconds=start_to_close_seconds,
        ),
        id=workflow_id or f"op-{target}-{uuid.uuid4().hex[:12]}",
        task_queue=workflow_queue,
    )
    delivery = await receiver.receive()
    assert delivery.body["workflow_id"] == handle.id, "deliveries arrived out of order"
    handoff_id = delivery.body["handoff_id"]
    return SentHandoff(handle, handoff_id, delivery.body, _token_of(sidecar, handoff_id))


def _ledger_rows(sidecar: Sidecar, sql: str, *params: str) -> list[tuple[Any, ...]]:
    path = sidecar.ledger_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return list(db.execute(sql, params))


def _token_of(sidecar: Sidecar, handoff_id: str) -> bytes:
    (row,) = _ledger_rows(
        sidecar, "SELECT task_token FROM handoffs WHERE handoff_id = ?", handoff_id
    )
    token = bytes(row[0])
    assert token, "a pending handoff holds no token"
    return token


def ledger_tokens(sidecar: Sidecar) -> list[bytes]:
    """Every raw task token still in the sidecar's SQLite ledger (a finished handoff's row
    must keep none: checked here)."""
    rows = _ledger_rows(sidecar, "SELECT state, task_token FROM handoffs")
    kept = [state for state, token in rows if state == "finished" and token]
    assert not kept, f"{len(kept)} finished handoff(s) kept their raw task token"
    tokens = [bytes(token) for _, token in rows if token]
    assert tokens, "the ledger holds no token: nothing would be checked"
    return tokens


def token_forms(token: bytes) -> list[str]:
    """The ways a raw task token could show up in text or HTML."""
    latin = token.decode("latin-1")
    return [
        repr(token),
        repr(token)[2:-1],
        token.hex(),
        base64.b64encode(token).decode(),
        base64.b64encode(token).decode().rstrip("="),
        base64.urlsafe_b64encode(token).decode().rstrip("="),
        latin,
        html.escape(latin),
        json.dumps(latin)[1:-1],
    ]


def assert_no_token(text: str, tokens: list[bytes]) -> None:
    """No token of ``tokens``, in any form, inside ``text``."""
    for token in tokens:
        for form in token_forms(token):
            assert form not in text, f"a raw task token leaked ({len(form)} characters)"
