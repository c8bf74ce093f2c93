"""``handshake-obs serve`` prunes finished handoffs past their retention in the background,
and a finished row keeps no token in the meantime (a real sidecar process, its SQLite file
read directly, a real dev server)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from .support.operator_traffic import hand_off
from .support.sidecar import ExternalReceiver, Sidecar, running_sidecar
from .support.waiting import assert_eventually


@pytest.fixture
async def sidecar(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> AsyncIterator[Sidecar]:
    async with running_sidecar(
        tmp_path,
        temporal_address,
        targets={"billing": receiver.url},
        ledger_url=f"sqlite:///{tmp_path / 'state' / 'ledger.db'}",
        extra_env={
            "HANDSHAKE_LEDGER_RETENTION_SECONDS": "2",
            "HANDSHAKE_LEDGER_PRUNE_BATCH_SIZE": "1",
        },
    ) as running:
        yield running


def stored(sidecar: Sidecar) -> dict[str, tuple[str, bytes]]:
    path = sidecar.ledger_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT handoff_id, state, task_token FROM handoffs").fetchall()
    return {h: (s, bytes(t)) for h, s, t in rows}


async def test_serve_forgets_tokens_at_once_and_prunes_finished_rows_after_retention(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    done = [await hand_off(plain_client, workflows, sidecar, receiver) for _ in range(3)]
    waiting = await hand_off(
        plain_client, workflows, sidecar, receiver, workflow_id=f"keep-{uuid.uuid4()}"
    )
    async with sidecar.client() as http:
        for sent in done:
            answer = await http.post(f"/v1/handoffs/{sent.handoff_id}/complete", json={})
            assert answer.status_code == 200, answer.text
    just_finished = stored(sidecar)

    for sent in done:
        assert just_finished[sent.handoff_id] == ("finished", b"")
    assert just_finished[waiting.handoff_id] == ("pending", waiting.task_token)

    async def pruned() -> None:
        assert set(stored(sidecar)) == {waiting.handoff_id}

    await assert_eventually(pruned, timeout=30)
    async with sidecar.client() as http:
        late = await http.post(f"/v1/handoffs/{done[0].handoff_id}/complete", json={})
        beat = await http.post(f"/v1/handoffs/{waiting.handoff_id}/heartbeat", json={})
    assert late.status_code == 404  # gone after its retention: an unknown handoff
    assert beat.status_code == 200, beat.text
    assert '"finished handoffs pruned"' in sidecar.logs()
    ledger_dir = Path(sidecar.ledger_url.removeprefix("sqlite:///")).parent
    assert ledger_dir.stat().st_mode & 0o777 == 0o700
