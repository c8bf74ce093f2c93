"""What keeping the pending counts costs concurrent PostgreSQL writers, by shard count.

Every record upserts the count row of its target, start-time bucket and shard, and holds
that row until it commits: writers of one target in one bucket queue on it. This measures
``PostgresLedger.record`` from ``--writers`` concurrent tasks (a pool of as many
connections), all of one target and one bucket (the worst case), each variant in a fresh
schema, interleaved round by round:

* ``no counts``: the count step skipped (the baseline: the ledger as it was without them);
* ``N shards``: the counts spread over N rows per bucket (the ledger uses
  ``POSTGRES_SHARDS``).

The shard count and the skipped step are set on the executor module for the measurement
only, and the ledger's record batches are turned off: each record runs the rule's program,
one transaction per record, whose count step is what varies (a batch counts its records in
the record function, whose shard count is the ledger's own).

    .venv/bin/python -m bench.pending_count_shards [--records 3000] [--writers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

import psycopg

from handshake_obs.ledger import PostgresLedger
from handshake_obs.ledger._pending_counts import POSTGRES_SHARDS
from handshake_obs.ledger.postgres import _executor
from handshake_obs.ledger.postgres._statements import quote_identifier
from handshake_obs.testing import pending_record

from ._common import machine_note, median, ratio, table
from .postgres_snapshot import DEFAULT_URL
from .scrape import load

#: Shard counts measured besides the baseline (0: no counts kept).
VARIANTS = (0, 1, 4, 16)
_COUNT_PENDING = _executor.count_pending


async def _skip_counts(*_: Any) -> None:
    return None


async def records_per_second(url: str, shards: int, records: int, writers: int) -> float:
    """Records per second of ``writers`` concurrent writers in a fresh schema."""
    schema = f"bench_shards_{uuid.uuid4().hex[:12]}"
    _executor.count_pending = _skip_counts if shards == 0 else _COUNT_PENDING  # type: ignore[assignment]
    _executor.POSTGRES_SHARDS = max(shards, 1)  # type: ignore[attr-defined]
    now = time.time()
    queue = iter([pending_record(target="agent", started_at=now) for _ in range(records)])
    try:
        async with PostgresLedger(url, schema=schema, pool_size=writers) as ledger:
            assert isinstance(ledger, PostgresLedger)
            ledger._record_batches = None

            async def writer() -> None:
                for record in queue:
                    await ledger.record(record)

            started = time.perf_counter()
            await asyncio.gather(*(writer() for _ in range(writers)))
            took = time.perf_counter() - started
    finally:
        _executor.count_pending = _COUNT_PENDING
        _executor.POSTGRES_SHARDS = POSTGRES_SHARDS  # type: ignore[attr-defined]
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(schema)} CASCADE")
    return records / took


async def main(args: argparse.Namespace) -> int:
    print(f"pending_count_shards: {args.records} records, {args.writers} writers")
    print(f"machine: {machine_note()}; load {load()}")
    rates: dict[int, list[float]] = {v: [] for v in VARIANTS}
    for round_number in range(args.rounds):
        for shards in VARIANTS:
            rate = await records_per_second(args.url, shards, args.records, args.writers)
            rates[shards].append(rate)
            print(f"round {round_number + 1}: {shards} shards {rate:.0f} records/s", flush=True)
    print(f"load at the end: {load()}")
    baseline = median(rates[0])
    rows = [
        [
            "no counts" if shards == 0 else f"{shards} shards",
            median(rates[shards]),
            f"{min(rates[shards]):.0f}-{max(rates[shards]):.0f}",
            f"{ratio(median(rates[shards]), baseline):.2f}",
        ]
        for shards in VARIANTS
    ]
    print()
    print(table(["variant", "records/s (median)", "rounds", "/ no counts"], rows))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.pending_count_shards", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL to measure on")
    parser.add_argument("--records", type=int, default=3000, help="records per measurement")
    parser.add_argument("--writers", type=int, default=50, help="concurrent writers")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(cli())
