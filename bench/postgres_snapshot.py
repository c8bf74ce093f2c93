"""The pending snapshot and the inventory's first page over a large PostgreSQL ledger.

A throwaway schema (dropped at the end) grows stage by stage (default 1k, 100k, 1M pending
rows) through ``handshake_obs.testing.bulk_insert`` (``COPY``), with the rows of
``bench.scrape`` (targets ``agent``, ``approval``, ``billing``, ``legacy``; start times over
the last 48 h). After each fill the table is vacuumed and analysed, as autovacuum soon
would (without it, the index-only scans of the snapshot visit the table for every entry of
the rows just loaded). At every stage, and on the empty ledger first:

* ``pending_summary`` with the default age bounds, median of ``--repeat``;
* the full scan it replaced (``bench/_full_scan.py``), median of ``--repeat``, checked equal
  to ``pending_summary``;
* ``list_handoffs``: the first page of 50, any state and pending only, median of ``--repeat``;
* ``verify_pending_counts``: the rare full recount, once.

Baselines from the same run: the full scan of the same stage, and the empty ledger.

    .venv/bin/python -m bench.postgres_snapshot [--url postgresql://...] [--sizes ...]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from handshake_obs import HandshakeConfig, State
from handshake_obs.ledger import HandoffQuery, PostgresLedger
from handshake_obs.testing import bulk_insert

from ._common import goal, machine_note, median, ratio, table
from ._full_scan import full_scan_params, full_scan_sql, snapshots_of, summaries
from .scrape import (
    CHUNK,
    GOAL_SIZE,
    PAGE_GOAL_MS,
    SNAPSHOT_GOAL_MS,
    load,
    seed_records,
    spread,
)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True, slots=True)
class Stage:
    """Medians (milliseconds) at one ledger size."""

    pending: int
    summary_ms: float
    #: Fastest and slowest ``pending_summary``.
    summary_range: tuple[float, float]
    full_scan_ms: float
    first_page_ms: float
    pending_page_ms: float
    verify_ms: float


async def timed(repeat: int, action: Callable[[], Awaitable[Any]]) -> list[float]:
    """Milliseconds of ``action`` in each of ``repeat`` runs, after one unmeasured run."""
    await action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(
    ledger: PostgresLedger, conn: psycopg.AsyncConnection[Any], pending: int, repeat: int
) -> Stage:
    """Every measurement at one size."""
    bounds = HandshakeConfig().pending_age_bounds
    schema = sql.Identifier(ledger.schema or "").as_string(conn)
    scan = full_scan_sql("%s", len(bounds), table=f"{schema}.handoffs")

    async def full_scan(now: float) -> list[Any]:
        cur = await conn.execute(scan, full_scan_params(now, bounds))
        return summaries(await cur.fetchall(), bounds)

    # One moment for both, and nothing written meanwhile: the same rows.
    then = time.time()
    expected = await full_scan(then)
    got = snapshots_of(await ledger.pending_summary(then, bounds))
    if got != expected:
        raise AssertionError(f"pending_summary {got} differs from the full scan {expected}")
    summary = await timed(repeat, lambda: ledger.pending_summary(time.time(), bounds))
    full_scan_ms = median(await timed(repeat, lambda: full_scan(time.time())))
    first_page = HandoffQuery(limit=51)
    first_page_ms = median(await timed(repeat, lambda: ledger.list_handoffs(first_page)))
    pending_query = HandoffQuery(state=State.PENDING, limit=51)
    pending_page_ms = median(await timed(repeat, lambda: ledger.list_handoffs(pending_query)))
    started = time.perf_counter()
    if await ledger.verify_pending_counts(repair=False):
        raise AssertionError("the pending counts differ from a recount")
    verify_ms = (time.perf_counter() - started) * 1000
    return Stage(
        pending,
        median(summary),
        (min(summary), max(summary)),
        full_scan_ms,
        first_page_ms,
        pending_page_ms,
        verify_ms,
    )


async def main(args: argparse.Namespace) -> int:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    schema = f"bench_snapshot_{uuid.uuid4().hex[:12]}"
    print(f"postgres_snapshot: sizes {sizes} in schema {schema}")
    print(f"machine: {machine_note()}; load {load()}")
    stages: list[Stage] = []
    now = time.time()
    async with await psycopg.AsyncConnection.connect(args.url, autocommit=True) as conn:
        try:
            ledger = PostgresLedger(args.url, schema=schema)
            async with ledger:
                stages.append(await measure(ledger, conn, 0, args.repeat))
                filled = 0
                for size in sizes:
                    started = time.perf_counter()
                    rng = random.Random(args.seed + filled)
                    rows = seed_records(rng, range(filled, size), set(), now)
                    await bulk_insert(ledger, rows, batch_size=CHUNK)
                    await conn.execute(
                        sql.SQL("VACUUM ANALYZE {}.handoffs").format(sql.Identifier(schema))
                    )
                    took = time.perf_counter() - started
                    print(f"filled to {size:,} pending rows in {took:.0f} s", flush=True)
                    filled = size
                    stages.append(await measure(ledger, conn, size, args.repeat))
                    s = stages[-1]
                    print(
                        f"  summary {s.summary_ms:.1f} ms, full scan {s.full_scan_ms:.0f} ms, "
                        f"first page {s.first_page_ms:.1f} ms",
                        flush=True,
                    )
        finally:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
    print(f"load at the end: {load()}")
    print()
    print(report(stages))
    return 0


def report(stages: list[Stage]) -> str:
    """The results table, ratios and goals."""
    empty = stages[0]
    rows = [
        [
            s.pending,
            s.summary_ms,
            spread(s.summary_range),
            f"{ratio(s.summary_ms, empty.summary_ms):.2f}",
            s.full_scan_ms,
            f"{ratio(s.summary_ms, s.full_scan_ms):.3f}",
            s.first_page_ms,
            s.pending_page_ms,
            s.verify_ms,
        ]
        for s in stages
    ]
    headers = [
        "pending",
        "pending_summary ms",
        "range",
        "/ empty",
        "full scan ms",
        "summary / full scan",
        "first page ms",
        "pending page ms",
        "verify ms",
    ]
    lines = [table(headers, rows), ""]
    largest = stages[-1]
    if largest.pending >= GOAL_SIZE:
        worst_page = max(largest.first_page_ms, largest.pending_page_ms)
        lines.append(
            f"at {largest.pending:,}: snapshot {largest.summary_ms:.1f} ms (goal <= "
            f"{SNAPSHOT_GOAL_MS:.0f} ms: {goal(largest.summary_ms <= SNAPSHOT_GOAL_MS)}), "
            f"first page {worst_page:.1f} ms (goal <= {PAGE_GOAL_MS:.0f} ms: "
            f"{goal(worst_page <= PAGE_GOAL_MS)})"
        )
    else:
        lines.append(f"no stage reached {GOAL_SIZE:,} pending rows: goals not evaluated")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.postgres_snapshot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL to measure on")
    parser.add_argument("--sizes", default="1000,100000,1000000", help="pending rows at each stage")
    parser.add_argument("--repeat", type=int, default=5, help="runs per median")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the filled rows")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(cli())
