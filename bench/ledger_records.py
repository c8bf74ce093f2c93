"""Ledger records per second on SQLite, against raw ``sqlite3`` inserts in the same run.

Measured, each on a fresh database file, interleaved round by round:

* ``raw``: single-row autocommit ``INSERT`` with ``sqlite3`` into a table of the same width
  (the columns of the ledger's ``handoffs`` table, read with ``PRAGMA table_info`` from a
  file ``SqliteLedger`` created, with their declared types and no key, constraint or
  index), the ledger's pragmas (WAL, ``synchronous=NORMAL``), on the calling thread. The
  baseline.
* ``raw, ledger schema``: the same inserts into the ledger's own table (its primary key,
  unique token digest and partial indexes), created by ``SqliteLedger.open()`` and closed
  before the clock starts: what the schema alone costs.
* ``raw, ledger schema, 128 per commit``: the same inserts into the ledger's own table, 128
  to a transaction (the most the ledger's writer groups into one commit): what the ledger's
  one insert per record costs once commits are shared, with nothing else it writes (its
  timeline entry, its early-outcome lookup, its pending count) and no thread hop. The
  highest rate group commit could reach with this schema.
* ``a record's writes, 50 per commit``: what a record must write, and nothing else, with
  the least SQL: for each ``--writers`` records (the largest batch that many writers can
  form), in one transaction, one lookup of their early outcomes (``IN``), their rows
  (``executemany``), their ``recorded`` timeline entries (``executemany``) and one
  pending-count upsert, on the calling thread, checkpoints left to the end as the ledger's
  writer leaves them to its checkpointer. No rule, no thread hop, no event loop: the floor
  of any ledger that writes what this one writes with that many writers (the timeline and
  the counts are read by the status page and the gauges, the early-outcome lookup keeps an
  outcome that arrives before its record).
* ``SqliteLedger.record``: sequential, then from ``--writers`` concurrent asyncio tasks.
* ``raw, N threads``: ``--writers`` threads, each with its own connection, inserting into
  the same-width table: the naive concurrent baseline.

The raw inserts write each record's values by column name: its fields (enumerations by
value) and the SHA-256 digest of its token; columns no field fills stay NULL.

Each variant's CPU per record is reported by thread: the calling thread (the event loop,
for the ledger), the ledger's threads, and the others (the raw writer threads).

Records are built before the clock starts (``handshake_obs.testing.pending_record``: random
106-byte token, new handoff id, all fields a real handoff has).

    .venv/bin/python -m bench.ledger_records [--records 5000] [--writers 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import hashlib
import json
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from handshake_obs import HandoffRecord
from handshake_obs.ledger import SqliteLedger
from handshake_obs.ledger._pending_counts import bucket_of
from handshake_obs.ledger.sqlite._checkpointer import WRITER_CHECKPOINT_PAGES
from handshake_obs.testing import pending_record

from . import _cpu
from ._common import machine_note, median, ratio, table

RAW_TABLE = "raw_handoffs"
#: Inserts per transaction of the batched variant: the SQLite writer's largest group.
BATCH = 128
LEDGER_TABLE = "handoffs"

BASELINE = "raw"
VARIANTS = (
    BASELINE,
    "raw, ledger schema",
    "raw, ledger schema, {batch} per commit",
    "a record's writes, {writers} per commit",
    "SqliteLedger.record",
    "SqliteLedger.record, {writers} tasks",
    "raw, {writers} threads",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Columns:
    """The ledger's ``handoffs`` columns, as ``PRAGMA table_info`` reports them."""

    #: (name, declared type) of each column, in table order.
    declared: tuple[tuple[str, str], ...]

    @classmethod
    async def of_ledger(cls, path: Path) -> Columns:
        """Let ``SqliteLedger`` create its schema in a new file at ``path``; read it back."""
        async with SqliteLedger(path):
            pass
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute(f"PRAGMA table_info({LEDGER_TABLE})").fetchall()
        finally:
            conn.close()
        return cls(tuple((str(row[1]), str(row[2])) for row in rows))

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in table order."""
        return tuple(name for name, _ in self.declared)

    def create_raw_table(self) -> str:
        """The same-width table: the same columns and types, no key, constraint or index."""
        body = ", ".join(f"{name} {kind}" for name, kind in self.declared)
        return f"CREATE TABLE {RAW_TABLE} ({body})"

    def insert(self, table_name: str) -> str:
        """A single-row insert of every column into ``table_name``."""
        marks = ", ".join("?" for _ in self.declared)
        return f"INSERT INTO {table_name} ({', '.join(self.names)}) VALUES ({marks})"  # noqa: S608

    def values(self, record: HandoffRecord) -> tuple[Any, ...]:
        """``record``'s values in column order (NULL where no field fills a column)."""
        by_name = {f.name: _stored(getattr(record, f.name)) for f in dataclasses.fields(record)}
        by_name["token_digest"] = hashlib.sha256(record.task_token).digest()
        return tuple(by_name.get(name) for name in self.names)


def _stored(value: Any) -> Any:
    """A field as SQLite takes it: enumerations by value, structured progress as JSON."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def make_records(count: int) -> list[HandoffRecord]:
    """Fresh pending records, as the recorder builds them for real activities."""
    now = time.time()
    return [
        pending_record(
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
        for i in range(count)
    ]


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


def raw_sequential(
    path: Path,
    columns: Columns,
    params: list[tuple[Any, ...]],
    *,
    ledger_schema: bool,
    per_commit: int = 1,
) -> float:
    """Seconds for single-row inserts of ``params`` on this thread, ``per_commit`` to a
    transaction (1: autocommit)."""
    conn = connect(path)
    try:
        if not ledger_schema:
            conn.execute(columns.create_raw_table())
        sql = columns.insert(LEDGER_TABLE if ledger_schema else RAW_TABLE)
        started = time.perf_counter()
        if per_commit == 1:
            for row in params:
                conn.execute(sql, row)
        else:
            for first in range(0, len(params), per_commit):
                conn.execute("BEGIN IMMEDIATE")
                for row in params[first : first + per_commit]:
                    conn.execute(sql, row)
                conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


#: A record's other writes, as the ledger's schema names them (bench-only SQL: the floor).
_EARLY_LOOKUP = "SELECT token_digest FROM early_outcomes WHERE token_digest IN ({marks})"
_TIMELINE_ENTRY = "INSERT INTO handoff_events (handoff_id, at, kind, detail) VALUES (?, ?, ?, ?)"
_COUNT = (
    "INSERT INTO pending_counts (target, bucket, shard, pending) VALUES (?, ?, 0, ?) "
    "ON CONFLICT (target, bucket, shard) DO UPDATE SET pending = pending + excluded.pending"
)


def records_writes(
    path: Path,
    columns: Columns,
    records: list[HandoffRecord],
    params: list[tuple[Any, ...]],
    per_commit: int,
) -> float:
    """Seconds for a record's writes, ``per_commit`` records to a transaction, with the
    least SQL (see the module docstring), on this thread."""
    digest_at = columns.names.index("token_digest")
    entries = [
        (
            r.handoff_id,
            r.started_at,
            "recorded",
            json.dumps({"attempt": r.attempt, "target": r.target, "deadline": r.deadline}),
        )
        for r in records
    ]
    conn = connect(path)
    try:
        insert = columns.insert(LEDGER_TABLE)
        started = time.perf_counter()
        conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")
        for first in range(0, len(params), per_commit):
            rows = params[first : first + per_commit]
            conn.execute("BEGIN IMMEDIATE")
            digests = [row[digest_at] for row in rows]
            lookup = _EARLY_LOOKUP.format(marks=", ".join("?" for _ in digests))
            conn.execute(lookup, digests).fetchall()
            conn.executemany(insert, rows)
            conn.executemany(_TIMELINE_ENTRY, entries[first : first + per_commit])
            batch = records[first : first + per_commit]
            buckets = Counter((r.target, bucket_of(r.started_at)) for r in batch)
            conn.executemany(_COUNT, [(t, b, n) for (t, b), n in sorted(buckets.items())])
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def raw_threads(path: Path, columns: Columns, params: list[tuple[Any, ...]], writers: int) -> float:
    """Seconds for ``writers`` threads, one connection each, sharing the inserts."""
    setup = connect(path)
    setup.execute(columns.create_raw_table())
    setup.close()
    insert = columns.insert(RAW_TABLE)
    ready = threading.Barrier(writers + 1)
    errors: list[sqlite3.Error] = []

    def work(chunk: Sequence[tuple[Any, ...]]) -> None:
        conn = connect(path)
        try:
            ready.wait()
            for row in chunk:
                conn.execute(insert, row)
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


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """One measurement: its seconds, and the CPU seconds of the calling thread (the event
    loop, for the ledger), of the ledger's threads and of the other threads meanwhile."""

    seconds: float
    cpu: _cpu.CpuSample


async def measure(
    variant: str, path: Path, columns: Columns, records: list[HandoffRecord], writers: int
) -> Timing:
    """How long ``variant`` takes to store ``records`` in a fresh database at ``path``, and
    its CPU (the inserts and their connections; the ledger's records, its opening and closing
    left out)."""
    params = [columns.values(r) for r in records]
    table_name = RAW_TABLE
    seconds: float
    before = _cpu.sample()
    after: _cpu.CpuSample | None = None
    if variant == BASELINE:
        seconds = raw_sequential(path, columns, params, ledger_schema=False)
    elif variant.startswith("raw,") and "threads" in variant:
        seconds = raw_threads(path, columns, params, writers)
    elif variant.startswith("a record's writes"):
        table_name = LEDGER_TABLE
        async with SqliteLedger(path):  # creates the ledger's schema
            pass
        before = _cpu.sample()
        seconds = records_writes(path, columns, records, params, writers)
    elif variant.startswith("raw, ledger schema"):
        table_name = LEDGER_TABLE
        async with SqliteLedger(path):  # creates the ledger's schema
            pass
        before = _cpu.sample()
        per_commit = BATCH if variant.endswith("per commit") else 1
        seconds = raw_sequential(path, columns, params, ledger_schema=True, per_commit=per_commit)
    else:
        table_name = LEDGER_TABLE
        ledger = SqliteLedger(path)
        await ledger.open()  # creates the ledger's schema
        try:
            before = _cpu.sample()
            if variant == "SqliteLedger.record":
                seconds = await ledger_sequential(ledger, records)
            else:
                seconds = await ledger_concurrent(ledger, records, writers)
            after = _cpu.sample()  # while the ledger's threads are alive
        finally:
            await ledger.close()
    stored = count_rows(path, table_name)
    if stored != len(records):
        raise AssertionError(f"{variant}: {stored} rows stored, expected {len(records)}")
    return Timing(seconds, (after or _cpu.sample()) - before)


async def main(args: argparse.Namespace) -> int:
    variants = [v.format(writers=args.writers, batch=BATCH) for v in VARIANTS]
    print(
        f"ledger records: {args.records} records x {args.rounds} rounds, "
        f"{args.writers} concurrent writers"
    )
    print(f"machine: {machine_note()}")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[_cpu.CpuSample]] = {v: [] for v in variants}
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        columns = await Columns.of_ledger(Path(tmp) / "schema.db")
        print(f"columns of the ledger's table: {len(columns.names)}")
        for number in range(1, args.rounds + 1):
            for index, variant in enumerate(variants):
                records = make_records(args.records)
                path = Path(tmp) / f"round{number}-{index}.db"
                timing = await measure(variant, path, columns, records, args.writers)
                seconds = timing.seconds
                cpu[variant].append(timing.cpu)
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
    print()

    # Which thread bounds a variant, and what a record may cost it at a given ratio.
    def per_record(samples: list[_cpu.CpuSample], part: str) -> str:
        return f"{median([getattr(c, part) / args.records * 1e6 for c in samples]):.0f}"

    split = [
        [v, per_record(cpu[v], "main"), per_record(cpu[v], "ledger"), per_record(cpu[v], "other")]
        for v in variants
    ]
    headers = ["variant", "CPU µs/record: calling thread", "ledger threads", "other threads"]
    print(table(headers, split))
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
