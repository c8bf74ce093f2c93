"""Credentials are kept only as long as needed, and only for the ledger's owner.

Against the real stores: a SQLite file (read with a connection of our own) and PostgreSQL
(a throwaway schema, read with our own connection), and the in-memory ledger. A finished
handoff keeps no raw task token, only its digest, so a late duplicate is still recognised;
the schema migration clears the tokens of rows finished before it; finished rows are pruned
after their retention in bounded batches, while handoffs keep being recorded and finished;
the SQLite directory and files are created owner-only.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handshake_obs import HandoffRecord, Outcome, State
from handshake_obs._tokens import token_digest
from handshake_obs.ledger import Ledger, MemoryLedger, PostgresLedger, SqliteLedger
from handshake_obs.ledger.postgres import _schema as postgres_schema
from handshake_obs.ledger.postgres._statements import table_prefix
from handshake_obs.ledger.sqlite import _schema as sqlite_schema
from handshake_obs.testing import bulk_insert

from .support.ledger_inspection import side_tables
from .support.postgres import POSTGRES_URL, postgres_admin, throwaway_schema
from .test_ledger_contract import T0, Store, backend_store, make_record

_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=["sqlite", _POSTGRES, "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with backend_store(request.param, tmp_path) as fresh:
        yield fresh


@pytest.fixture
async def ledger(store: Store) -> AsyncIterator[Ledger]:
    async with store.new() as opened:
        yield opened


async def stored_tokens(ledger: Ledger) -> dict[str, tuple[bytes, bytes | None]]:
    """Every handoff's stored token column and digest, read past the interface."""
    if isinstance(ledger, MemoryLedger):
        tables = ledger._tables
        digests = {h: d for d, h in tables.ids_by_digest.items()}
        return {h: (r.task_token, digests.get(h)) for h, r in tables.handoffs.items()}
    query = "SELECT handoff_id, task_token, token_digest FROM {s}handoffs"
    if isinstance(ledger, SqliteLedger):
        conn = sqlite3.connect(ledger.path)
        try:
            rows = conn.execute(query.format(s="")).fetchall()
        finally:
            conn.close()
    else:
        assert isinstance(ledger, PostgresLedger)
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as pg:
            cur = await pg.execute(query.format(s=table_prefix(ledger.schema)))
            rows = list(await cur.fetchall())
    return {h: (bytes(t), bytes(d)) for h, t, d in rows}


# -- a finished handoff keeps no token ------------------------------------------------------


async def test_every_way_of_finishing_forgets_the_raw_token_and_keeps_its_digest(
    ledger: Ledger,
) -> None:
    completed, closed, early, superseded, pending = (make_record() for _ in range(5))
    newer = make_record(workflow_id=superseded.workflow_id, attempt=2, started_at=T0 + 1)
    for record in (completed, closed, early, superseded, pending):
        await ledger.record(record)

    done = await ledger.finish(completed.handoff_id, Outcome.COMPLETED, T0 + 2)
    await ledger.finish_closed(closed.handoff_id, T0 + 2)
    await ledger.record_early_outcome(early.task_token, Outcome.FAILED, T0 + 2, error_type="X")
    await ledger.record(newer)  # finishes the older attempt as superseded

    stored = await stored_tokens(ledger)
    for record in (completed, closed, early, superseded):
        token, digest = stored[record.handoff_id]
        assert token == b"", f"{record.handoff_id} still holds its token"
        assert digest == token_digest(record.task_token)
        read = await ledger.get(record.handoff_id)
        assert read is not None
        assert read.state is State.FINISHED
        assert read.task_token == b""
        assert read.token_fingerprint == record.token_fingerprint
    for record in (pending, newer):
        assert stored[record.handoff_id] == (record.task_token, token_digest(record.task_token))
    assert done is not None
    assert done.record.task_token == b""  # what the finishing caller gets holds none either


async def test_a_late_duplicate_of_a_finished_handoff_is_still_recognised(
    ledger: Ledger,
) -> None:
    record = make_record()
    await ledger.record(record)
    await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1)

    found = await ledger.find_by_token(record.task_token)
    late_outcome = await ledger.record_early_outcome(record.task_token, Outcome.FAILED, T0 + 2)
    again = await ledger.record(make_record(task_token=record.task_token))

    assert found is not None
    assert found.handoff_id == record.handoff_id
    assert found.outcome is Outcome.COMPLETED
    assert late_outcome is None
    assert (await side_tables(ledger)).early_outcomes == frozenset()  # not kept as "early"
    assert again.created is False
    assert again.record.handoff_id == record.handoff_id
    stored = await ledger.get(record.handoff_id)
    assert stored is not None
    assert stored.outcome is Outcome.COMPLETED


# -- the migration clears tokens of rows finished before it ---------------------------------


def _token_migration(migrations: tuple[str, ...]) -> int:
    """Index of the migration that forgets finished rows' tokens."""
    (index,) = (n for n, script in enumerate(migrations) if "SET task_token" in script)
    return index


_OLD_ROW = (
    "INSERT INTO {s}handoffs (handoff_id, task_token, token_digest, token_fingerprint, "
    "namespace, workflow_id, run_id, activity_id, activity_type, attempt, target, started_at, "
    "state, outcome, finished_at) VALUES ({p}, {p}, {p}, 'fp', 'default', {p}, 'r', '1', 't', "
    "1, 'agent', {p}, {p}, {p}, {p})"
)


def _old_row_params(record: HandoffRecord, *, is_finished: bool) -> tuple[Any, ...]:
    return (
        record.handoff_id,
        record.task_token,
        token_digest(record.task_token),
        record.workflow_id,
        T0,
        "finished" if is_finished else "pending",
        "completed" if is_finished else None,
        T0 + 1 if is_finished else None,
    )


async def test_opening_an_sqlite_ledger_of_before_clears_tokens_of_finished_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    before = _token_migration(sqlite_schema.MIGRATIONS)
    finished, pending = make_record(), make_record()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for script in sqlite_schema.MIGRATIONS[:before]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {before}")
        for record, is_finished in ((finished, True), (pending, False)):
            conn.execute(
                _OLD_ROW.format(s="", p="?"), _old_row_params(record, is_finished=is_finished)
            )
    finally:
        conn.close()

    async with SqliteLedger(path) as ledger:
        stored = await stored_tokens(ledger)
        late = await ledger.find_by_token(finished.task_token)

    assert stored[finished.handoff_id] == (b"", token_digest(finished.task_token))
    assert stored[pending.handoff_id][0] == pending.task_token
    assert late is not None
    assert late.handoff_id == finished.handoff_id


@pytest.mark.postgres
async def test_opening_a_postgres_ledger_of_before_clears_tokens_of_finished_rows() -> None:
    before = _token_migration(postgres_schema.MIGRATIONS)
    finished, pending = make_record(), make_record()
    admin = await postgres_admin()
    try:
        async with throwaway_schema(admin) as schema:
            s = table_prefix(schema)
            await admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            async with admin.transaction():
                for script in postgres_schema.MIGRATIONS[:before]:
                    for statement in filter(str.strip, script.format(s=s).split(";")):
                        await admin.execute(statement)
                await admin.execute(
                    f"CREATE TABLE {s}{postgres_schema.VERSION_TABLE} (single BOOLEAN PRIMARY "
                    "KEY DEFAULT TRUE CHECK (single), version INTEGER NOT NULL)"
                )
                await admin.execute(
                    f"INSERT INTO {s}{postgres_schema.VERSION_TABLE} (version) VALUES (%s)",  # noqa: S608 - our own throwaway schema
                    (before,),
                )
                for record, is_finished in ((finished, True), (pending, False)):
                    await admin.execute(
                        _OLD_ROW.format(s=s, p="%s"),
                        _old_row_params(record, is_finished=is_finished),
                    )

            async with PostgresLedger(POSTGRES_URL, schema=schema) as ledger:
                stored = await stored_tokens(ledger)
                late = await ledger.find_by_token(finished.task_token)
    finally:
        await admin.close()

    assert stored[finished.handoff_id] == (b"", token_digest(finished.task_token))
    assert stored[pending.handoff_id][0] == pending.task_token
    assert late is not None
    assert late.handoff_id == finished.handoff_id


# -- pruning --------------------------------------------------------------------------------


async def test_pruning_deletes_only_finished_rows_older_than_the_cutoff_oldest_first(
    ledger: Ledger,
) -> None:
    old = [make_record(started_at=T0) for _ in range(5)]
    recent = make_record(started_at=T0)
    old_pending = make_record(started_at=T0 - 10_000)
    for record in (*old, recent, old_pending):
        await ledger.record(record)
    for n, record in enumerate(old):
        await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 10 + n)
    await ledger.finish(recent.handoff_id, Outcome.FAILED, T0 + 500)
    stale_early = make_record()
    await ledger.record_early_outcome(stale_early.task_token, Outcome.COMPLETED, T0 + 5)
    fresh_early = make_record()
    await ledger.record_early_outcome(fresh_early.task_token, Outcome.COMPLETED, T0 + 600)

    first = await ledger.prune_finished(T0 + 100, limit=3)
    remaining_after_first = {r.handoff_id for r in old if await ledger.get(r.handoff_id)}
    second = await ledger.prune_finished(T0 + 100, limit=3)
    third = await ledger.prune_finished(T0 + 100, limit=3)

    assert (first, second, third) == (3, 2, 0)
    assert remaining_after_first == {r.handoff_id for r in old[3:]}  # oldest went first
    for record in old:
        assert await ledger.get(record.handoff_id) is None
        assert await ledger.find_by_token(record.task_token) is None
        assert await ledger.events(record.handoff_id) == []  # the timeline went with it
    assert await ledger.get(recent.handoff_id) is not None
    assert [e.kind.value for e in await ledger.events(recent.handoff_id)] == [
        "recorded",
        "finished",
    ]
    kept_pending = await ledger.get(old_pending.handoff_id)
    assert kept_pending is not None
    assert kept_pending.is_pending
    assert (await side_tables(ledger)).early_outcomes == {token_digest(fresh_early.task_token)}


@pytest.mark.parametrize("backend", ["sqlite", _POSTGRES])
async def test_pruning_in_batches_keeps_handoffs_flowing(backend: str, tmp_path: Path) -> None:
    """A large backlog is pruned batch by batch while records and finishes go on: none of
    them fails or waits behind the whole backlog, and only the old finished rows go."""
    async with backend_store(backend, tmp_path) as fresh, fresh.new() as ledger:
        backlog = [make_record(started_at=T0) for _ in range(2000)]
        await bulk_insert(ledger, backlog)
        for record in backlog:
            await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 1)

        stop = asyncio.Event()
        flowed: list[float] = []

        async def traffic() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                record = make_record(started_at=T0 + 10_000)
                started = loop.time()
                await ledger.record(record)
                await ledger.finish(record.handoff_id, Outcome.COMPLETED, T0 + 10_001)
                flowed.append(loop.time() - started)

        flowing = asyncio.create_task(traffic())
        batches: list[int] = []
        while True:
            pruned = await ledger.prune_finished(T0 + 100, limit=200)
            batches.append(pruned)
            await asyncio.sleep(0)
            if pruned < 200:
                break
        stop.set()
        await flowing

        assert sum(batches) == 2000
        assert max(batches) == 200
        assert len(batches) == 11  # 10 full batches and an empty one
        assert flowed, "no handoff was recorded while pruning ran"
        counts = await stored_tokens(ledger)
        assert len(counts) == len(flowed)  # the traffic's rows, and nothing else, are left


# -- owner-only files -------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_sqlite_ledger_creates_its_directory_and_files_owner_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "ledger" / "handshake.db"
    previous = os.umask(0o022)  # the usual umask, which leaves new files world-readable
    try:
        async with SqliteLedger(path) as ledger:
            await ledger.record(make_record())
            wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
            modes = {p.name: _mode(p) for p in (path.parent, path, wal, shm)}  # all exist
    finally:
        os.umask(previous)

    assert modes == {"ledger": 0o700, "handshake.db": 0o600, wal.name: 0o600, shm.name: 0o600}


async def test_an_existing_directory_keeps_its_mode_and_the_new_file_is_owner_only(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)

    async with SqliteLedger(shared / "handshake.db") as ledger:
        await ledger.record(make_record())

    assert _mode(shared) == 0o755
    assert _mode(shared / "handshake.db") == 0o600
