"""Ledger records per second on PostgreSQL, against raw inserts over as many connections.

Measured in a fresh schema each (dropped after), interleaved round by round:

* ``raw, N connections`` (the baseline): N asyncio tasks, each with its own autocommit
  ``psycopg`` connection, single-row ``INSERT`` of the ledger's own insert parameters into a
  table of the same columns (``CREATE TABLE ... (LIKE handoffs)``: no key, no index).
* ``raw, ledger schema``: the same into the ledger's own table (its keys and indexes).
* ``PostgresLedger.record, N tasks``: N asyncio tasks on one ledger whose pool has N
  connections; each record is the whole record rule (the records waiting at once batched
  into one call of the ledger's record function, see ``ledger/postgres/_record_batches.py``).

Records are built before the clock starts (as in ``bench.ledger_records``), and each
variant's writers first store ``--warmup`` records of their own, untimed: the ledger's pool
has grown to N connections and every connection has prepared its statements when the clock
starts, as the raw writers' connections are open before it (the measure is the steady state,
not a sidecar's first second). Each variant's
CPU per record is reported too, this process's (the client: every writer) and the local
PostgreSQL server's: on a machine where both share the cores, it says which one bounds the
rate.

    .venv/bin/python -m bench.ledger_records_postgres [--records 5000] [--writers 50]
        [--rounds 3] [--warmup 500] [--url postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any

import psycopg

from handshake_obs._records import HandoffRecord
from handshake_obs._tokens import token_digest
from handshake_obs.ledger import PostgresLedger
from handshake_obs.ledger._rows import HANDOFF_COLUMNS, RowCodec

from . import _cpu
from ._common import machine_note, median, ratio, table
from .ledger_records import make_records

DEFAULT_URL = "postgresql://127.0.0.1:5432/test"
VARIANTS = (
    "raw, {writers} connections",
    "raw, ledger schema, {writers} connections",
    "PostgresLedger.record, {writers} tasks",
)


def _insert(schema: str, table_name: str) -> str:
    names = ", ".join(HANDOFF_COLUMNS)
    marks = ", ".join("%s" for _ in HANDOFF_COLUMNS)
    return f'INSERT INTO "{schema}".{table_name} ({names}) VALUES ({marks})'  # noqa: S608 - our names


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """One measurement: its seconds, and the CPU seconds of this process (the client, all 50
    writers) and of the PostgreSQL server meanwhile."""

    seconds: float
    client_cpu: float
    server_cpu: float


async def _timed(work: Awaitable[Any]) -> Timing:
    client, server = time.process_time(), _cpu.postgres_seconds()
    started = time.perf_counter()
    await work
    seconds = time.perf_counter() - started
    return Timing(seconds, time.process_time() - client, _cpu.postgres_seconds() - server)


async def _raw(
    url: str, sql: str, params: Sequence[tuple[Any, ...]], warmup: int, writers: int
) -> Timing:
    connections = [
        await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(writers)
    ]

    async def writer(conn: psycopg.AsyncConnection[Any], rows: Iterator[tuple[Any, ...]]) -> None:
        for row in rows:
            await conn.execute(sql, row)

    try:  # timed while the connections are open: a backend that exited is not counted
        warm = iter(params[:warmup])
        await asyncio.gather(*(writer(c, warm) for c in connections))
        timed = iter(params[warmup:])
        return await _timed(asyncio.gather(*(writer(c, timed) for c in connections)))
    finally:
        for conn in connections:
            await conn.close()


async def _ledger(
    ledger: PostgresLedger, records: Sequence[HandoffRecord], warmup: int, writers: int
) -> Timing:
    async def writer(queue: Iterator[HandoffRecord]) -> None:
        for record in queue:
            await ledger.record(record)

    warm = iter(records[:warmup])
    await asyncio.gather(*(writer(warm) for _ in range(writers)))
    timed = iter(records[warmup:])
    return await _timed(asyncio.gather(*(writer(timed) for _ in range(writers))))


async def measure(
    url: str, variant: str, records: list[HandoffRecord], warmup: int, writers: int
) -> Timing:
    """How long ``variant`` takes to store ``records`` after the first ``warmup`` of them
    (untimed), in a fresh schema, and its CPU."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    codec = RowCodec(None)
    params = [codec.params(r, token_digest(r.task_token)) for r in records]
    ledger = PostgresLedger(url, schema=schema, pool_size=writers)
    await ledger.open()  # creates the schema and the ledger's tables
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'CREATE TABLE "{schema}".raw (LIKE "{schema}".handoffs)')
        if variant.startswith("raw"):
            await ledger.close()  # its pool's connections are not the raw writers'
            table_name = "handoffs" if "ledger schema" in variant else "raw"
            timing = await _raw(url, _insert(schema, table_name), params, warmup, writers)
        else:
            table_name = "handoffs"
            timing = await _ledger(ledger, records, warmup, writers)
    finally:
        await ledger.close()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        count = f'SELECT COUNT(*) FROM "{schema}".{table_name}'  # noqa: S608 - our names
        cur = await conn.execute(count)
        stored = (await cur.fetchone() or (0,))[0]
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if stored != len(records):
        raise AssertionError(f"{variant}: {stored} rows stored, expected {len(records)}")
    return timing


async def main(args: argparse.Namespace) -> int:
    variants = [v.format(writers=args.writers) for v in VARIANTS]
    baseline = variants[0]
    print(
        f"ledger records on PostgreSQL: {args.records} records x {args.rounds} rounds "
        f"(after {args.warmup} untimed)"
    )
    print(f"machine: {machine_note()}")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[Timing]] = {v: [] for v in variants}
    rows: list[list[object]] = []
    for number in range(1, args.rounds + 1):
        order = variants if number % 2 else [baseline, *variants[:0:-1]]
        for variant in order:
            records = make_records(args.warmup + args.records)
            timing = await measure(args.url, variant, records, args.warmup, args.writers)
            cpu[variant].append(timing)
            rates[variant].append(args.records / timing.seconds)
            print(f"round {number} {variant:<40} {rates[variant][-1]:9,.0f} records/s", flush=True)
        for variant in variants:
            same_round = ratio(rates[variant][-1], rates[baseline][-1])
            rows.append([number, variant, rates[variant][-1], f"{same_round:.3f}"])
    print()
    print(table(["round", "variant", "records/s", "ratio to raw (same round)"], rows))
    print()
    summary: list[list[object]] = []
    for variant in variants:
        ratios = [ratio(r, b) for r, b in zip(rates[variant], rates[baseline], strict=True)]
        spread = f"{min(ratios):.3f} .. {max(ratios):.3f}"
        summary.append([variant, median(rates[variant]), f"{median(ratios):.3f}", spread])
    print(table(["variant", "median records/s", "median ratio to raw", "rounds"], summary))
    print()
    # Client and server share the machine's cores: what a record costs each says which
    # bounds the rate, and how much a record may cost at a given ratio.
    per_record = [
        [
            variant,
            f"{median([t.client_cpu / args.records * 1e6 for t in cpu[variant]]):.0f}",
            f"{median([t.server_cpu / args.records * 1e6 for t in cpu[variant]]):.0f}",
        ]
        for variant in variants
    ]
    print(table(["variant", "client CPU µs/record", "server CPU µs/record"], per_record))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger_records_postgres", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=5000, help="records per measurement")
    parser.add_argument("--writers", type=int, default=50, help="concurrent writers")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant")
    parser.add_argument(
        "--warmup", type=int, default=500, help="untimed records first, per measurement"
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="the PostgreSQL database to use")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(cli())
