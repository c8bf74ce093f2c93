"""The pending counts: kept with the rows they count, on every backend.

The pending snapshot reads counts per target and start-time bucket that the rules change in
the transaction of each record and finish (``ledger/_pending_counts.py``). These tests hold
them to a count of the pending rows themselves (``tests/support/ledger_inspection.py``), and
the snapshot to a full scan, after random operations of every kind, rules that fail midway,
restarts, a writer killed mid-stream, and a migration of a ledger that had pending rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from psycopg import sql

from handshake_obs import HandoffRecord, HandshakeConfig, LedgerError, Outcome, State
from handshake_obs._vocabulary import CloseReason
from handshake_obs.ledger import HandoffQuery, Ledger, PostgresLedger, SqliteLedger
from handshake_obs.ledger._pending_counts import (
    BUCKET_SECONDS,
    PendingChange,
    age_cuts,
    bucket_of,
    bucket_start,
    count_deltas,
)
from handshake_obs.ledger.postgres import _schema as postgres_schema
from handshake_obs.ledger.postgres._statements import table_prefix
from handshake_obs.ledger.sqlite import _schema as sqlite_schema
from handshake_obs.telemetry._metrics import HandshakeMetrics
from handshake_obs.telemetry._pending_counts_check import PendingCountsCheck
from handshake_obs.testing import bulk_insert

from .support.ledger_inspection import assert_side_tables_consistent, pending_counts
from .support.postgres import POSTGRES_URL, postgres_admin, throwaway_schema
from .test_ledger_contract import T0, Store, backend_store, make_record

TARGETS = ("agent", "approval", "billing")
#: Age bounds that cut buckets anywhere (and one that falls on a bucket's start).
BOUNDS = (0.0, 1.0, 59.0, 300.0, 301.5, 899.0, 3600.0, 7777.7)
#: Start times of the random handoffs: T0 minus up to this many seconds.
SPREAD = 3 * 3600.0

_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


# -- the bucket arithmetic --------------------------------------------------------------------


def test_bucket_start_is_the_first_time_of_its_bucket_whatever_the_rounding() -> None:
    rng = random.Random(3)
    for bucket in [0, 1, -1, *(rng.randrange(-(10**7), 10**8) for _ in range(2000))]:
        start = bucket_start(bucket)
        assert bucket_of(start) == bucket
        assert bucket_of(math.nextafter(start, -math.inf)) == bucket - 1


def test_an_age_cut_splits_start_times_exactly_at_its_threshold() -> None:
    rng = random.Random(4)
    for _ in range(2000):
        now = T0 + rng.uniform(-1e6, 1e6)
        (cut,) = age_cuts(now, [rng.choice([0.0, 300.0, rng.uniform(0, 1e5)])])
        for started in (cut.threshold, math.nextafter(cut.threshold, math.inf)):
            # At or after the threshold: in the cut bucket (counted up to its end) or after.
            assert bucket_of(started) > cut.bucket or started < cut.bucket_end
        before = math.nextafter(cut.threshold, -math.inf)
        assert bucket_of(before) <= cut.bucket


def test_count_deltas_sum_per_row_in_key_order_and_drop_what_cancels() -> None:
    a = make_record(target="b", started_at=T0)
    b = make_record(target="a", started_at=T0 + BUCKET_SECONDS)
    changes = [PendingChange.recorded(a), PendingChange.recorded(b), PendingChange.finished(a)]
    assert count_deltas(changes, 1) == [("a", bucket_of(T0 + BUCKET_SECONDS), 0, 1)]


# -- random operations ------------------------------------------------------------------------


def full_scan_summary(
    pending: list[HandoffRecord], now: float, bounds: tuple[float, ...]
) -> dict[str, tuple[int, float, list[int]]]:
    """What the snapshot must say, counted from the pending records one by one."""
    by_target: dict[str, list[float]] = {}
    for record in pending:
        by_target.setdefault(record.target, []).append(record.started_at)
    return {
        target: (
            len(starts),
            min(starts),
            [sum(1 for s in starts if s >= now - bound) for bound in bounds],
        )
        for target, starts in by_target.items()
    }


async def assert_counts_and_snapshot_exact(ledger: Ledger, rng: random.Random) -> None:
    """The counts are those of the pending rows; the snapshot equals a full scan."""
    kept, recounted = await pending_counts(ledger)
    assert kept == recounted
    assert await ledger.verify_pending_counts(repair=False) == []
    pending = await ledger.list_handoffs(HandoffQuery(state=State.PENDING, limit=100_000))
    now = rng.choice([T0, T0 + rng.uniform(-SPREAD, 600.0), bucket_start(bucket_of(T0) - 2)])
    summaries = await ledger.pending_summary(now, BOUNDS)
    expected = full_scan_summary(pending, now, BOUNDS)
    assert [s.target for s in summaries] == sorted(expected)
    for summary in summaries:
        total, oldest, cumulative = expected[summary.target]
        assert summary.pending == total
        assert summary.oldest_started_at == oldest
        disjoint = [b - a for a, b in zip([0, *cumulative], [*cumulative, total], strict=True)]
        assert list(summary.by_age.values()) == disjoint


def random_start(rng: random.Random) -> float:
    """A start time in the spread, often exactly on a bucket's start or just before it."""
    started = T0 - rng.uniform(0.0, SPREAD)
    edge = bucket_start(bucket_of(started))
    return rng.choice([started, started, edge, math.nextafter(edge, -math.inf)])


async def random_operation(ledger: Ledger, rng: random.Random, early_tokens: list[bytes]) -> None:
    """One operation of any kind that stores, finishes or deletes handoffs."""
    pending = await ledger.list_handoffs(HandoffQuery(state=State.PENDING, limit=100_000))
    one = rng.choice(pending) if pending else None
    kind = rng.randrange(11)
    at = T0 + rng.uniform(0.0, 60.0)
    if kind <= 2 or one is None:
        await ledger.record(make_record(target=rng.choice(TARGETS), started_at=random_start(rng)))
    elif kind == 3:  # a new attempt supersedes the pending one
        await ledger.record(
            make_record(
                target=rng.choice(TARGETS),
                workflow_id=one.workflow_id,
                run_id=one.run_id,
                activity_id=one.activity_id,
                attempt=one.attempt + 1,
                started_at=random_start(rng),
            )
        )
    elif kind == 4:
        await ledger.finish(one.handoff_id, rng.choice(list(Outcome)), at)
    elif kind == 5:
        await ledger.finish_closed(one.handoff_id, at)
    elif kind == 6:
        await ledger.finish_reconciled(one.handoff_id, at, reason=CloseReason.NOT_FOUND)
    elif kind == 7:  # an early outcome: of a recorded token, or kept for a later record
        if rng.random() < 0.5:
            await ledger.record_early_outcome(one.task_token, Outcome.COMPLETED, at)
        else:
            token = rng.randbytes(106)
            await ledger.record_early_outcome(token, Outcome.FAILED, at)
            early_tokens.append(token)
    elif kind == 8 and early_tokens:
        token = early_tokens.pop()
        await ledger.record(make_record(task_token=token, started_at=random_start(rng)))
    elif kind == 9:
        await ledger.prune_finished(T0 + 3600.0, limit=rng.randint(1, 5))
    else:
        rows = [make_record(target=rng.choice(TARGETS), started_at=random_start(rng))]
        await bulk_insert(ledger, [*rows, make_record(started_at=random_start(rng))])
        # A rule that fails (the handoff id is taken) is rolled back, counts and all.
        taken = dataclasses.replace(
            make_record(started_at=random_start(rng)), handoff_id=rows[0].handoff_id
        )
        with pytest.raises(LedgerError):
            await ledger.record(taken)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("backend", ["sqlite", _POSTGRES, "memory"])
async def test_pending_counts_equal_a_full_count_after_random_operations_and_restarts(
    backend: str, seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    early_tokens: list[bytes] = []
    async with backend_store(backend, tmp_path) as store:
        for _restart in range(3):
            async with store.new() as ledger:
                for step in range(60):
                    await random_operation(ledger, rng, early_tokens)
                    if step % 10 == 9:
                        await assert_counts_and_snapshot_exact(ledger, rng)
                await assert_counts_and_snapshot_exact(ledger, rng)
                await assert_side_tables_consistent(ledger)


# -- drift is found and repaired --------------------------------------------------------------


async def _corrupt_counts(store: Store, ledger: Ledger) -> None:
    """Change the kept counts behind the ledger's back."""
    if isinstance(ledger, SqliteLedger):
        conn = sqlite3.connect(ledger.path)
        try:
            conn.execute("UPDATE pending_counts SET pending = pending + 7")
            conn.execute("INSERT INTO pending_counts VALUES ('ghost', 1, 0, 3)")
            conn.commit()
        finally:
            conn.close()
    elif isinstance(ledger, PostgresLedger):
        admin = await postgres_admin()
        try:
            s = table_prefix(store.schema)
            await admin.execute(f"UPDATE {s}pending_counts SET pending = pending + 7")  # noqa: S608 - a throwaway schema
            await admin.execute(f"INSERT INTO {s}pending_counts VALUES ('ghost', 1, 0, 3)")  # noqa: S608 - a throwaway schema
        finally:
            await admin.close()
    else:
        counts = ledger._tables.pending_counts  # type: ignore[attr-defined]
        for key in list(counts):
            counts[key] += 7
        counts[("ghost", 1)] = 3


async def test_a_running_handshake_checks_now_and_then_and_repairs_drift(tmp_path: Path) -> None:
    """The check a Handshake runs: not at start-up, then every interval; drift found is
    repaired and counted as an instrumentation error of the pending gauges."""
    async with backend_store("sqlite", tmp_path) as store, store.new() as ledger:
        for n in range(5):
            await ledger.record(make_record(target=TARGETS[n % 3], started_at=T0 - 97.0 * n))
        await _corrupt_counts(store, ledger)
        registry = CollectorRegistry()
        metrics = HandshakeMetrics(HandshakeConfig(), registry=registry)
        check = PendingCountsCheck(ledger, metrics, interval=0.2)
        check.start()
        try:
            await asyncio.sleep(0.05)
            assert await ledger.verify_pending_counts(repair=False) != []  # not at start-up
            deadline = asyncio.get_running_loop().time() + 10
            while await ledger.verify_pending_counts(repair=False):
                assert asyncio.get_running_loop().time() < deadline, "drift never repaired"
                await asyncio.sleep(0.05)
        finally:
            await check.stop()
        errors = registry.get_sample_value(
            "handshake_instrumentation_errors_total", {"component": "pending_gauges"}
        )
        assert errors == 1
        kept, recounted = await pending_counts(ledger)
        assert kept == recounted


@pytest.mark.parametrize("backend", ["sqlite", _POSTGRES, "memory"])
async def test_verify_finds_counts_that_drifted_and_rebuilds_them(
    backend: str, tmp_path: Path
) -> None:
    async with backend_store(backend, tmp_path) as store, store.new() as ledger:
        for n in range(20):
            await ledger.record(make_record(target=TARGETS[n % 3], started_at=T0 - 97.0 * n))
        assert await ledger.verify_pending_counts() == []
        await _corrupt_counts(store, ledger)

        found = await ledger.verify_pending_counts(repair=False)
        assert ("ghost", 1, 3, 0) in [(m.target, m.bucket, m.counted, m.recounted) for m in found]
        assert all(m.counted == m.recounted + 7 for m in found if m.target != "ghost")
        assert await ledger.verify_pending_counts() == found  # reported, then repaired

        assert await ledger.verify_pending_counts() == []
        kept, recounted = await pending_counts(ledger)
        assert kept == recounted


# -- a writer killed mid-stream ---------------------------------------------------------------

_WRITER = """
import asyncio, random, sys
from handshake_obs.ledger import ledger_from_url
from handshake_obs.testing import pending_record
from handshake_obs import Outcome

async def main(url):
    rng = random.Random(5)
    async with ledger_from_url(url) as ledger:
        n = 0
        while True:
            kept = await ledger.record(pending_record(target=rng.choice(["a", "b"]),
                                                       started_at=1.8e9 - rng.uniform(0, 9000)))
            if n % 3 == 0:
                await ledger.finish(kept.record.handoff_id, Outcome.COMPLETED, 1.8e9)
            n += 1
            if n == 50:
                print("writing", flush=True)

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("backend", ["sqlite", _POSTGRES])
async def test_pending_counts_survive_a_writer_killed_mid_stream(
    backend: str, tmp_path: Path
) -> None:
    async with backend_store(backend, tmp_path) as store:
        async with store.new() as ledger:  # the schema, before the writer starts
            await ledger.record(make_record())
            url = (
                f"sqlite:///{ledger.path}"
                if isinstance(ledger, SqliteLedger)
                else f"{POSTGRES_URL}?schema={store.schema}"
            )
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WRITER, url, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert writer.stdout is not None
            assert await asyncio.wait_for(writer.stdout.readline(), 60) == b"writing\n"
            await asyncio.sleep(random.uniform(0.2, 0.6))
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            await writer.wait()

        async with store.new() as ledger:
            kept, recounted = await pending_counts(ledger)
            assert sum(recounted.values()) > 30
            assert kept == recounted
            assert await ledger.verify_pending_counts() == []


# -- the migration builds the counts of the pending rows already there ------------------------

_OLD_ROW = (
    "INSERT INTO {s}handoffs (handoff_id, task_token, token_digest, token_fingerprint, "
    "namespace, workflow_id, run_id, activity_id, activity_type, attempt, target, started_at, "
    "state) VALUES ({p}, {p}, {p}, 'fp', 'default', {p}, 'r', '1', 'hand_off', 1, {p}, {p}, {p})"
)


def _old_rows(rng: random.Random) -> list[tuple[object, ...]]:
    return [
        (
            f"ho_old_{n}",
            b"t",
            rng.randbytes(32),
            f"wf-{n}",
            rng.choice(TARGETS),
            random_start(rng),
            "finished" if n % 4 == 0 else "pending",
        )
        for n in range(300)
    ]


def _counts_migration(migrations: tuple[str, ...]) -> int:
    """Index of the migration that builds the pending counts."""
    (index,) = (n for n, script in enumerate(migrations) if "pending_counts (" in script)
    return index


async def test_migrating_an_sqlite_ledger_counts_its_pending_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    before = _counts_migration(sqlite_schema.MIGRATIONS)
    rows = _old_rows(random.Random(6))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for script in sqlite_schema.MIGRATIONS[:before]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {before}")
        conn.executemany(_OLD_ROW.format(s="", p="?"), rows)
    finally:
        conn.close()

    async with SqliteLedger(path) as ledger:
        kept, recounted = await pending_counts(ledger)
        assert sum(recounted.values()) == sum(1 for r in rows if r[-1] == "pending")
        assert kept == recounted
        await assert_counts_and_snapshot_exact(ledger, random.Random(7))


@pytest.mark.postgres
async def test_migrating_a_postgres_ledger_counts_its_pending_rows() -> None:
    before = _counts_migration(postgres_schema.MIGRATIONS)
    rows = _old_rows(random.Random(8))
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
                async with admin.cursor() as cur:
                    await cur.executemany(_OLD_ROW.format(s=s, p="%s"), rows)

            async with PostgresLedger(POSTGRES_URL, schema=schema) as ledger:
                kept, recounted = await pending_counts(ledger)
                assert sum(recounted.values()) == sum(1 for r in rows if r[-1] == "pending")
                assert kept == recounted
                await assert_counts_and_snapshot_exact(ledger, random.Random(9))
    finally:
        await admin.close()
