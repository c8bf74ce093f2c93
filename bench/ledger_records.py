"""Ledger records per second on SQLite, against raw ``sqlite3`` inserts in the same run.

Measured, each on a fresh database file, interleaved round by round:

* ``raw``: single-row autocommit ``INSERT`` with ``sqlite3`` into a table of the same width
  (the ledger's 27 columns, no key, no index), the ledger's pragmas (WAL,
  ``synchronous=NORMAL``), on the calling thread. The baseline.
* ``raw, ledger schema``: the same inserts into the ledger's own table (its primary key,
  unique token digest and partial indexes): what the schema alone costs.
* ``ledger SQL, no thread``: the ledger's own ``record`` transaction (``BEGIN IMMEDIATE``,
  insert, supersede and early-outcome lookups, ``COMMIT``) on the calling thread:
  what the statements cost without the hop to the writer thread.
* ``SqliteLedger.record``: sequential, then from ``--writers`` concurrent asyncio tasks.
* ``raw, N threads``: ``--writers`` threads, each with its own connection, inserting into
  the same-width table: the naive concurrent baseline.

Records are built before the clock starts (fresh ``HandoffRecord``: random 106-byte token,
new handoff id, all fields a real handoff has).

    .venv/bin/python -m bench.ledger_records [--records 5000] [--writers 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from handshake_obs import HandoffRecord, token_fingerprint
from handshake_obs._tokens import new_handoff_id, token_digest
from handshake_obs.ledger import SqliteLedger
from handshake_obs.ledger._rows import HANDOFF_COLUMNS, record_params
from handshake_obs.ledger._rules import programs, run_program
from handshake_obs.ledger.sqlite._executor import execute as execute_step

from ._common import machine_note, median, ratio, table

#: Width and types of the ledger's ``handoffs`` table, without key, constraint or index.
RAW_TABLE = """
CREATE TABLE raw_handoffs (
    handoff_id TEXT, task_token BLOB, token_digest BLOB, token_fingerprint TEXT,
    namespace TEXT, workflow_id TEXT, run_id TEXT, activity_id TEXT, activity_type TEXT,
    attempt INTEGER, target TEXT, started_at REAL, deadline REAL, state TEXT, outcome TEXT,
    finished_at REAL, error_type TEXT, error_message TEXT, progress TEXT,
    progress_sequence INTEGER, progress_at REAL, traceparent TEXT, tracestate TEXT,
    calls_in_flight INTEGER NOT NULL DEFAULT 0, calls_in_flight_until REAL, claimed_by TEXT,
    claim_until REAL
)
"""
_PLACEHOLDERS = ", ".join("?" for _ in HANDOFF_COLUMNS)
_COLUMNS = ", ".join(HANDOFF_COLUMNS)
RAW_INSERT = f"INSERT INTO raw_handoffs ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608
SCHEMA_INSERT = f"INSERT INTO handoffs ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608

BASELINE = "raw"
VARIANTS = (
    BASELINE,
    "raw, ledger schema",
    "ledger SQL, no thread",
    "SqliteLedger.record",
    "SqliteLedger.record, {writers} tasks",
    "raw, {writers} threads",
)


def make_records(count: int) -> list[HandoffRecord]:
    """Fresh pending records, as the recorder builds them for real activities."""
    now = time.time()
    records = []
    for i in range(count):
        token = os.urandom(106)
        records.append(
            HandoffRecord(
                handoff_id=new_handoff_id(),
                task_token=token,
                token_fingerprint=token_fingerprint(token),
                namespace="default",
                workflow_id=f"bench-wf-{i}-{uuid.uuid4().hex[:8]}",
                run_id=str(uuid.uuid4()),
                activity_id="1",
                activity_type="bench_hand_off",
                attempt=1,
                target="agent",
                started_at=now,
                deadline=now + 3600,
                traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
            )
        )
    return records


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the ledger's pragmas."""
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def count_rows(path: Path, table_name: str) -> int:
    """Rows now in ``table_name``."""
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute(f"SELECT COUNT(*) FROM {table_name}").fetchone()  # noqa: S608
    finally:
        conn.close()
    return int(count)


def raw_sequential(path: Path, params: list[tuple[Any, ...]], *, ledger_schema: bool) -> float:
    """Seconds for single-row autocommit inserts of ``params`` on this thread."""
    conn = connect(path)
    try:
        if not ledger_schema:
            conn.execute(RAW_TABLE)
        sql = SCHEMA_INSERT if ledger_schema else RAW_INSERT
        started = time.perf_counter()
        for row in params:
            conn.execute(sql, row)
        return time.perf_counter() - started
    finally:
        conn.close()


def ledger_sql_sequential(path: Path, records: list[HandoffRecord]) -> float:
    """Seconds for the ledger's own record transaction, on this thread (no executor)."""
    conn = connect(path)
    try:
        started = time.perf_counter()
        for record in records:
            conn.execute("BEGIN IMMEDIATE")
            run_program(programs.record(record), lambda step: execute_step(conn, step))
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def raw_threads(path: Path, params: list[tuple[Any, ...]], writers: int) -> float:
    """Seconds for ``writers`` threads, one connection each, sharing the inserts."""
    setup = connect(path)
    setup.execute(RAW_TABLE)
    setup.close()
    ready = threading.Barrier(writers + 1)
    errors: list[sqlite3.Error] = []

    def work(chunk: list[tuple[Any, ...]]) -> None:
        conn = connect(path)
        try:
            ready.wait()
            for row in chunk:
                conn.execute(RAW_INSERT, row)
        except sqlite3.Error as err:  # reported by the caller
            errors.append(err)
        finally:
            conn.close()

    threads = [
        threading.Thread(target=work, args=(params[i::writers],), name=f"raw-writer-{i}")
        for i in range(writers)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


async def ledger_sequential(ledger: SqliteLedger, records: list[HandoffRecord]) -> float:
    """Seconds for ``await ledger.record(r)`` one after the other."""
    started = time.perf_counter()
    for record in records:
        await ledger.record(record)
    return time.perf_counter() - started


async def ledger_concurrent(
    ledger: SqliteLedger, records: list[HandoffRecord], writers: int
) -> float:
    """Seconds for ``writers`` tasks sharing ``ledger.record`` calls."""
    pending: Iterator[HandoffRecord] = iter(records)

    async def writer() -> None:
        for record in pending:
            await ledger.record(record)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return time.perf_counter() - started


async def measure(variant: str, path: Path, records: list[HandoffRecord], writers: int) -> float:
    """Seconds ``variant`` takes to store ``records`` in a fresh database at ``path``."""
    params = [record_params(r, token_digest(r.task_token)) for r in records]
    table_name = "raw_handoffs"
    seconds: float
    if variant == BASELINE:
        seconds = raw_sequential(path, params, ledger_schema=False)
    elif variant.startswith("raw,") and "threads" in variant:
        seconds = raw_threads(path, params, writers)
    else:
        table_name = "handoffs"
        ledger = SqliteLedger(path)
        await ledger.open()  # creates the ledger's schema
        try:
            if variant == "raw, ledger schema":
                seconds = raw_sequential(path, params, ledger_schema=True)
            elif variant == "ledger SQL, no thread":
                seconds = ledger_sql_sequential(path, records)
            elif variant == "SqliteLedger.record":
                seconds = await ledger_sequential(ledger, records)
            else:
                seconds = await ledger_concurrent(ledger, records, writers)
        finally:
            await ledger.close()
    stored = count_rows(path, table_name)
    if stored != len(records):
        raise AssertionError(f"{variant}: {stored} rows stored, expected {len(records)}")
    return seconds


async def main(args: argparse.Namespace) -> int:
    variants = [v.format(writers=args.writers) for v in VARIANTS]
    print(
        f"ledger records: {args.records} records x {args.rounds} rounds, "
        f"{args.writers} concurrent writers"
    )
    print(f"machine: {machine_note()}")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        for number in range(1, args.rounds + 1):
            for index, variant in enumerate(variants):
                records = make_records(args.records)
                path = Path(tmp) / f"round{number}-{index}.db"
                seconds = await measure(variant, path, records, args.writers)
                rate = args.records / seconds
                rates[variant].append(rate)
                # The baseline runs first in every round.
                same_round = ratio(rate, rates[BASELINE][-1])
                rows.append([number, variant, args.records, seconds, rate, f"{same_round:.3f}"])
                print(f"round {number} {variant:<32} {rate:9,.0f} records/s", flush=True)
                _remove_database(path)
    headers = ["round", "variant", "records", "seconds", "records/s", "ratio to raw (same round)"]
    print()
    print(table(headers, rows))
    print()
    summary: list[list[object]] = []
    for variant in variants:
        ratios = [ratio(r, b) for r, b in zip(rates[variant], rates[BASELINE], strict=True)]
        summary.append([variant, median(rates[variant]), f"{median(ratios):.3f}"])
    print(table(["variant", "median records/s", "median ratio to raw"], summary))
    return 0


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger_records", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=5000, help="records per measurement")
    parser.add_argument("--writers", type=int, default=50, help="concurrent writers")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(cli())
