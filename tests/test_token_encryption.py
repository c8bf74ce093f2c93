"""Task tokens encrypted at rest (AES-256-GCM, a key id per row), on the real stores.

The SQLite file (with its WAL) and the PostgreSQL table are read directly: with keys, no
stored byte sequence is the token, while the ledger reads it back and handoffs complete and
are reaped through a real dev server. Keys rotate (the current key writes, old keys read);
a wrong or missing key is a clear error naming the key id, never a key or a token; without
keys the token is stored as given, as before.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import Handshake, LedgerError, Outcome
from handshake_obs._token_keys import TokenKeys, parse_token_keys
from handshake_obs.cli._reap import reap
from handshake_obs.ledger import Ledger, PostgresLedger, SqliteLedger
from handshake_obs.ledger.postgres._statements import table_prefix

from .conftest import StartWorkflow
from .support.activities import EXTERNAL
from .support.postgres import POSTGRES_URL, throwaway_schema
from .support.record_batches import record_from_writers
from .test_ledger_contract import make_record


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


K1, K2, K1_WRONG = new_key(), new_key(), new_key()
#: One key, ``k1``.
ONE = parse_token_keys(f"k1:{K1}", where="test")
#: Rotated: ``k2`` writes, ``k1`` still reads.
ROTATED = parse_token_keys(f"k2:{K2},k1:{K1}", where="test")


@dataclass(frozen=True)
class Store:
    """Ledgers on one store, and a direct look at what it keeps."""

    backend: str
    open_with: Callable[[TokenKeys | None], Ledger]
    #: Every stored (handoff id, task_token column, token_key_id column).
    rows: Callable[[], Any]
    #: Every byte the store holds on disk (SQLite: the file and its WAL), or None.
    raw_bytes: Callable[[], bytes | None]


@asynccontextmanager
async def store_of(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    query = "SELECT handoff_id, task_token, token_key_id FROM {s}handoffs"
    if backend == "sqlite":
        path = tmp_path / "ledger.db"

        async def sqlite_rows() -> list[tuple[str, bytes, str | None]]:
            conn = sqlite3.connect(path)
            try:
                rows = conn.execute(query.format(s="")).fetchall()
            finally:
                conn.close()
            return [(h, bytes(t), k) for h, t, k in rows]

        def sqlite_bytes() -> bytes:
            wal = Path(f"{path}-wal")
            return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")

        yield Store(
            "sqlite", lambda keys: SqliteLedger(path, token_keys=keys), sqlite_rows, sqlite_bytes
        )
        return
    async with throwaway_schema() as schema:

        async def postgres_rows() -> list[tuple[str, bytes, str | None]]:
            async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
                cur = await conn.execute(query.format(s=table_prefix(schema)))
                return [(h, bytes(t), k) for h, t, k in await cur.fetchall()]

        yield Store(
            "postgres",
            lambda keys: PostgresLedger(POSTGRES_URL, schema=schema, token_keys=keys),
            postgres_rows,
            lambda: None,
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_of(request.param, tmp_path) as fresh:
        yield fresh


async def test_stored_tokens_are_ciphertext_and_read_back_as_the_token(store: Store) -> None:
    records = [make_record() for _ in range(3)]
    async with store.open_with(ONE) as ledger:
        for record in records:
            await ledger.record(record)
        read = [await ledger.get(r.handoff_id) for r in records]
        found = await ledger.find_by_token(records[0].task_token)
        rows = {h: (t, k) for h, t, k in await store.rows()}
        raw = await asyncio.to_thread(store.raw_bytes)

    assert [r.task_token for r in read if r is not None] == [r.task_token for r in records]
    assert found is not None
    assert found.handoff_id == records[0].handoff_id
    for record in records:
        stored, key_id = rows[record.handoff_id]
        assert key_id == "k1"
        assert stored != record.task_token
        assert record.task_token not in stored
        assert len(stored) == len(record.task_token) + 12 + 16  # nonce, ciphertext, tag
        if raw is not None:
            assert record.task_token not in raw, "a raw token is in the SQLite file"
    assert len({t for t, _ in rows.values()}) == 3


async def test_records_written_together_are_encrypted_as_one_alone(store: Store) -> None:
    # Concurrent writers: SQLite's group commits and PostgreSQL's record calls batch them.
    records = [make_record() for _ in range(60)]
    async with store.open_with(ONE) as ledger:
        await record_from_writers(ledger, records, writers=20)
        read = [await ledger.get(r.handoff_id) for r in records]
        rows = {h: (t, k) for h, t, k in await store.rows()}

    assert [r.task_token for r in read if r is not None] == [r.task_token for r in records]
    for record in records:
        stored, key_id = rows[record.handoff_id]
        assert key_id == "k1"
        assert record.task_token not in stored
        assert len(stored) == len(record.task_token) + 12 + 16  # nonce, ciphertext, tag


async def test_without_keys_tokens_are_stored_as_given(store: Store) -> None:
    record = make_record()
    async with store.open_with(None) as ledger:
        await ledger.record(record)
        rows = await store.rows()

    assert rows == [(record.handoff_id, record.task_token, None)]


async def test_keys_rotate_old_rows_read_new_rows_written_with_the_current_key(
    store: Store,
) -> None:
    old, new = make_record(), make_record()
    async with store.open_with(ONE) as ledger:
        await ledger.record(old)
    async with store.open_with(ROTATED) as ledger:
        await ledger.record(new)
        read_old = await ledger.get(old.handoff_id)
        key_ids = {h: k for h, _, k in await store.rows()}
        finished = await ledger.finish(old.handoff_id, Outcome.COMPLETED, old.started_at + 1)
        after = {h: (t, k) for h, t, k in await store.rows()}

    assert read_old is not None
    assert read_old.task_token == old.task_token
    assert key_ids == {old.handoff_id: "k1", new.handoff_id: "k2"}
    assert finished is not None
    assert after[old.handoff_id] == (b"", None)  # a finished row needs no key any more


async def test_a_wrong_or_missing_key_is_a_clear_error_naming_only_the_key_id(
    store: Store,
) -> None:
    record = make_record()
    async with store.open_with(ONE) as ledger:
        await ledger.record(record)
    wrong = parse_token_keys(f"k1:{K1_WRONG}", where="test")
    other = parse_token_keys(f"k9:{K2}", where="test")

    messages: list[str] = []
    for keys in (wrong, other, None):
        async with store.open_with(keys) as ledger:
            with pytest.raises(LedgerError) as raised:
                await ledger.get(record.handoff_id)
            messages.append(str(raised.value))

    assert "does not decrypt with key 'k1'" in messages[0]
    assert "key 'k1', which is not configured" in messages[1]
    assert "no token keys are configured" in messages[2]
    for message in messages:
        assert record.handoff_id in message
        for secret in (K1, K1_WRONG, K2):
            assert secret not in message
    async with store.open_with(ONE) as ledger:  # nothing was lost: the right key reads it
        again = await ledger.get(record.handoff_id)
    assert again is not None
    assert again.task_token == record.task_token


async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(tmp_path: Path) -> None:
    first, second = make_record(), make_record()
    async with store_of("sqlite", tmp_path) as sqlite_store:
        async with sqlite_store.open_with(ONE) as ledger:
            await ledger.record(first)
            await ledger.record(second)
        path = tmp_path / "ledger.db"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(
                "UPDATE handoffs SET task_token = "
                "(SELECT task_token FROM handoffs WHERE handoff_id = ?) WHERE handoff_id = ?",
                (first.handoff_id, second.handoff_id),
            )
        finally:
            conn.close()
        async with sqlite_store.open_with(ONE) as ledger:
            with pytest.raises(LedgerError, match="does not decrypt"):
                await ledger.get(second.handoff_id)


# -- through a real dev server ----------------------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"token_keys": ROTATED}])
async def test_encrypted_handoffs_complete_and_are_reaped_through_temporal(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
    ledger_path: Path,
) -> None:
    completed = await start_workflow("hand_off_explicit", target="agent")
    expiring = await start_workflow(
        "hand_off_explicit", target="agent", extra={"deadline_seconds": 0.2}
    )
    done = await EXTERNAL.receive(completed.id)
    lost = await EXTERNAL.receive(expiring.id)
    stored = await asyncio.to_thread(_stored, ledger_path)
    assert stored[done.explicit.handoff_id][1] == "k2"
    assert done.task_token not in stored[done.explicit.handoff_id][0]

    await handshake.completer(client).complete(done.explicit.handoff_id, "ok")
    await asyncio.sleep(0.3)
    results = await handshake.reaper(client).reap_once()

    assert await completed.result() == {"result": "ok"}
    assert [r.result for r in results] == ["reaped"]
    assert (await expiring.result())["error_type"] == "HandoffDeadlineExceeded"
    for handoff_id, outcome in (
        (done.explicit.handoff_id, Outcome.COMPLETED),
        (lost.explicit.handoff_id, Outcome.REAPED),
    ):
        record = await handshake.ledger.get(handoff_id)
        assert record is not None
        assert record.outcome is outcome
    finished_rows = await asyncio.to_thread(_stored, ledger_path)
    assert finished_rows[done.explicit.handoff_id] == (b"", None)
    labels = {"target": "agent", "outcome": "reaped"}
    assert registry.get_sample_value("handshake_handoffs_finished_total", labels) == 1


@pytest.mark.parametrize("config_overrides", [{"token_keys": ROTATED}])
async def test_the_reap_command_reads_encrypted_handoffs_with_the_configured_keys(
    handshake: Handshake, worker: Worker, start_workflow: StartWorkflow, temporal_address: str
) -> None:
    """``handshake-obs reap --once`` opens the ledger with the configured token keys: an
    encrypted handoff past its deadline is reaped, not an unreadable row."""
    expiring = await start_workflow(
        "hand_off_explicit", target="agent", extra={"deadline_seconds": 0.2}
    )
    lost = await EXTERNAL.receive(expiring.id)
    await asyncio.sleep(0.3)
    out = io.StringIO()

    code = await reap(
        handshake.config.with_changes(temporal_address=temporal_address), once=True, out=out
    )

    assert code == 0, out.getvalue()
    assert out.getvalue().endswith("1 handoff(s) reaped\n")
    assert (await expiring.result())["error_type"] == "HandoffDeadlineExceeded"
    record = await handshake.ledger.get(lost.explicit.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.REAPED


def _stored(path: Path) -> dict[str, tuple[bytes, str | None]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT handoff_id, task_token, token_key_id FROM handoffs")
        return {h: (bytes(t), k) for h, t, k in rows.fetchall()}
    finally:
        conn.close()
