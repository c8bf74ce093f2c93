"""Scrape, snapshot refresh and reaper claim times over a large SQLite ledger.

The ledger's own schema is created by ``SqliteLedger.open()``; pending rows are then added
in bulk with ``handshake_obs.testing.bulk_insert`` (targets ``agent``, ``approval``,
``billing`` and an unconfigured ``legacy``; start times spread over the last 48 h; deadlines
spread over the next week, 5 % without one), growing the same file stage by stage (default
1k, 100k, 1M rows). ``--expired`` rows (default 1,000), all among the first stage's rows,
are past their deadline.

At every stage, with a fresh ``Handshake`` on that file:

* scrape: ``generate_latest(registry)`` after one snapshot refresh, median of 100, and the same
  over HTTP from ``prometheus_client.start_http_server`` on 127.0.0.1 (an OS-chosen free port),
  its median and p99;
* refresh: ``PendingGaugesRefresher.refresh()`` and ``ledger.pending_summary``, median of 5;
* claim: ``claim_expired(limit=1000)``, median of 5, the claims given back with
  ``release_claim`` in between so the same rows are claimable again;
* check claim: the reconciler's ``claim_due_checks(limit=100)`` (every row is due: none was
  checked yet, all started more than its first-check delay ago), median of 5, given back the
  same way;
* full scan: the snapshot as one scan of the pending rows (``bench/_full_scan.py``, what the
  ledger ran before it kept pending counts), median of 5, checked equal to
  ``pending_summary``;
* pages: the sidecar's inventory first page (any state, and pending only) and its status
  page, in process (``bench/_sidecar_pages.py``), median of 5.

Baselines from the same run: the scrape and refresh of an empty ledger, the full scan of the
same stage for ``pending_summary``, and both claims at the first stage (where the expired
rows are all there is, or nearly).

    .venv/bin/python -m bench.scrape [--sizes 1000,100000,1000000] [--expired 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from handshake_obs import HandoffRecord, Handshake, HandshakeConfig
from handshake_obs.ledger import Ledger, SqliteLedger
from handshake_obs.testing import bulk_insert, pending_record

from ._common import goal, machine_note, median, quantile, ratio, table
from ._full_scan import Snapshot, full_scan_params, full_scan_sql, snapshots_of, summaries
from ._sidecar_pages import time_pages

CONFIGURED_TARGETS = ("agent", "approval", "billing")
#: Target of each filled row, by weight; ``legacy`` is not configured (exported as ``other``).
TARGET_WEIGHTS = {"agent": 60, "approval": 25, "billing": 10, "legacy": 5}
SPREAD_STARTED = 48 * 3600.0
SPREAD_DEADLINE = (3600.0, 7 * 24 * 3600.0)
NO_DEADLINE_SHARE = 0.05
CLAIMANT = "bench-reaper"
#: Due checks the reconciler's claim takes, and its first-check delay (the default's).
CHECK_CLAIM = 100
CHECK_DELAY_SECONDS = HandshakeConfig().reconcile_first_check.total_seconds()
SCRAPE_GOAL_MS = 50.0
CLAIM_GOAL_MS = 100.0
SNAPSHOT_GOAL_MS = 50.0
PAGE_GOAL_MS = 50.0
GOAL_SIZE = 1_000_000

#: Records of :func:`seed_records` per draw of their targets, and per bulk-insert batch.
CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class StageResult:
    """Medians (milliseconds) at one ledger size."""

    pending: int
    expired: int
    scrape_ms: float
    http_ms: float
    http_p99_ms: float
    body_bytes: int
    refresh_ms: float
    summary_ms: float
    #: Fastest and slowest ``pending_summary`` of the stage.
    summary_range: tuple[float, float]
    full_scan_ms: float
    claim_ms: float | None
    claimed: int
    check_claim_ms: float | None
    inventory_ms: float
    pending_page_ms: float
    status_ms: float
    status_range: tuple[float, float]


async def fill(path: Path, start: int, stop: int, expired: set[int], now: float, seed: int) -> None:
    """Add pending rows ``start`` to ``stop`` (row numbers) in bulk, through the ledger."""
    rng = random.Random(seed + start)
    async with SqliteLedger(path) as ledger:
        await bulk_insert(
            ledger, seed_records(rng, range(start, stop), expired, now), batch_size=CHUNK
        )


def seed_records(
    rng: random.Random, numbers: range, expired: set[int], now: float
) -> Iterator[HandoffRecord]:
    """Pending records number ``numbers``: targets by :data:`TARGET_WEIGHTS`, started over
    the last 48 h, deadlines over the next week (5 % none), past for the ``expired`` ones."""
    targets = list(TARGET_WEIGHTS)
    weights = list(TARGET_WEIGHTS.values())
    for first in range(numbers.start, numbers.stop, CHUNK):
        chunk = range(first, min(first + CHUNK, numbers.stop))
        chosen = rng.choices(targets, weights, k=len(chunk))
        for number, target in zip(chunk, chosen, strict=True):
            token = rng.randbytes(106)
            started = now - rng.uniform(0.0, SPREAD_STARTED)
            deadline: float | None
            if number in expired:
                deadline = rng.uniform(started, now - 1.0)
            elif rng.random() < NO_DEADLINE_SHARE:
                deadline = None
            else:
                deadline = now + rng.uniform(*SPREAD_DEADLINE)
            yield pending_record(
                task_token=token,
                workflow_id=f"bench-wf-{number}",
                run_id=f"bench-run-{number}",
                activity_type="bench_hand_off",
                target=target,
                started_at=started,
                deadline=deadline,
                traceparent=f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01",
            )


def time_scrapes(registry: CollectorRegistry, repeat: int) -> tuple[float, int]:
    """Median milliseconds of ``generate_latest(registry)``, and the body's size."""
    body = generate_latest(registry)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        body = generate_latest(registry)
        times.append((time.perf_counter() - started) * 1000)
    return median(times), len(body)


def time_http_scrapes(registry: CollectorRegistry, repeat: int) -> tuple[float, float]:
    """Median and p99 milliseconds of GET /metrics from ``start_http_server`` on 127.0.0.1."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        _get(url)  # first connection and handler set-up are not part of a scrape
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            _get(url)
            times.append((time.perf_counter() - started) * 1000)
        return median(times), quantile(times, 0.99)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
        body: bytes = response.read()
    return body


async def release_claims(ledger: Ledger, claimed: Iterable[HandoffRecord]) -> None:
    """Give the benchmark's claims back, so the same rows are claimable again."""
    for record in claimed:
        await ledger.release_claim(record.handoff_id, CLAIMANT)


async def measure_stage(
    path: Path, pending: int, expired: int, args: argparse.Namespace
) -> StageResult:
    """All measurements at one ledger size, with a fresh Handshake on the file."""
    config = HandshakeConfig(ledger_url=f"sqlite:///{path}", targets=CONFIGURED_TARGETS)
    registry = CollectorRegistry()
    ledger = SqliteLedger(path)
    handshake = Handshake(config, registry=registry, ledger=ledger)
    # Open and refresh once, without the background refresher: nothing else runs while the
    # scrape is timed.
    await ledger.open()
    try:
        await handshake.refresh_pending_gauges()
        exported = sum(
            registry.get_sample_value("handshake_pending_handoffs", {"target": t}) or 0.0
            for t in (*CONFIGURED_TARGETS, "default", "other")
        )
        if int(exported) != pending:
            raise AssertionError(f"snapshot shows {exported} pending, expected {pending}")
        scrape_ms, body_bytes = time_scrapes(registry, args.scrapes)
        http_ms, http_p99_ms = time_http_scrapes(registry, args.scrapes)

        refresh_times = []
        summary_times = []
        for _ in range(args.refreshes):
            started = time.perf_counter()
            await handshake.refresh_pending_gauges()
            refresh_times.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await ledger.pending_summary(time.time(), config.pending_age_bounds)
            summary_times.append((time.perf_counter() - started) * 1000)

        full_scan_ms = time_full_scan(path, config.pending_age_bounds, args.refreshes)
        # One moment for both, and nothing written meanwhile: the same rows.
        then = time.time()
        expected = await asyncio.to_thread(full_scan, path, then, config.pending_age_bounds)
        got = snapshots_of(await ledger.pending_summary(then, config.pending_age_bounds))
        if got != expected:
            raise AssertionError(f"pending_summary {got} differs from the full scan {expected}")
        pages = await time_pages(handshake, args.refreshes)

        claim_times = []
        claimed = 0
        if pending:
            for _ in range(args.claims):
                started = time.perf_counter()
                rows = await ledger.claim_expired(
                    time.time(), limit=1000, claimant=CLAIMANT, lease_seconds=60.0
                )
                claim_times.append((time.perf_counter() - started) * 1000)
                claimed = len(rows)
                if claimed != min(expired, 1000):
                    raise AssertionError(f"claimed {claimed}, expected {min(expired, 1000)}")
                await release_claims(ledger, rows)
        check_claim_times = []
        if pending:
            for _ in range(args.claims):
                now = time.time()
                started = time.perf_counter()
                rows = await ledger.claim_due_checks(
                    now,
                    first_check_before=now - CHECK_DELAY_SECONDS,
                    limit=CHECK_CLAIM,
                    claimant=CLAIMANT,
                    lease_seconds=60.0,
                )
                check_claim_times.append((time.perf_counter() - started) * 1000)
                if len(rows) != min(pending, CHECK_CLAIM):
                    raise AssertionError(f"claimed {len(rows)} due checks of {pending}")
                await release_claims(ledger, rows)
    finally:
        await ledger.close()
    return StageResult(
        pending=pending,
        expired=expired,
        scrape_ms=scrape_ms,
        http_ms=http_ms,
        http_p99_ms=http_p99_ms,
        body_bytes=body_bytes,
        refresh_ms=median(refresh_times),
        summary_ms=median(summary_times),
        summary_range=(min(summary_times), max(summary_times)),
        full_scan_ms=full_scan_ms,
        claim_ms=median(claim_times) if claim_times else None,
        claimed=claimed,
        check_claim_ms=median(check_claim_times) if check_claim_times else None,
        inventory_ms=pages.inventory_ms,
        pending_page_ms=pages.pending_page_ms,
        status_ms=pages.status_ms,
        status_range=pages.status_range,
    )


def full_scan(path: Path, now: float, age_bounds: tuple[float, ...]) -> list[Snapshot]:
    """The snapshot as a full scan of the file's pending rows (the baseline)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            full_scan_sql("?", len(age_bounds)), full_scan_params(now, age_bounds)
        ).fetchall()
    finally:
        conn.close()
    return summaries(rows, age_bounds)


def time_full_scan(path: Path, age_bounds: tuple[float, ...], repeat: int) -> float:
    """Median milliseconds of the full scan."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        full_scan(path, time.time(), age_bounds)
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


async def main(args: argparse.Namespace) -> int:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if not sizes or args.expired > sizes[0]:
        raise SystemExit("--expired must not exceed the first size")
    print(f"scrape: ledger sizes {sizes}, {args.expired} expired")
    print(f"machine: {machine_note()}; load {load()}")
    rng = random.Random(args.seed)
    expired = set(rng.sample(range(sizes[0]), args.expired))
    now = time.time()
    results: list[StageResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-scrape-") as tmp:
        path = Path(tmp) / "ledger.db"
        schema = SqliteLedger(path)
        await schema.open()  # the ledger's own schema, by the ledger
        await schema.close()
        results.append(await measure_stage(path, 0, 0, args))
        print(f"empty ledger: scrape {results[-1].scrape_ms:.2f} ms", flush=True)
        filled = 0
        for size in sizes:
            started = time.perf_counter()
            await fill(path, filled, size, expired, now, args.seed)
            filled = size
            took = time.perf_counter() - started
            db_mb = path.stat().st_size / 1e6
            print(f"filled to {size:,} pending rows in {took:.1f} s ({db_mb:,.0f} MB)", flush=True)
            results.append(await measure_stage(path, size, args.expired, args))
            r = results[-1]
            print(
                f"  scrape {r.scrape_ms:.2f} ms, http {r.http_ms:.2f} ms, "
                f"refresh {r.refresh_ms:.1f} ms, claim {r.claim_ms or 0:.1f} ms",
                flush=True,
            )
    print(f"load at the end: {load()}")
    print()
    print(report(results))
    return 0


def spread(fastest_slowest: tuple[float, float]) -> str:
    """A range of milliseconds, as the report shows it."""
    fastest, slowest = fastest_slowest
    return f"{fastest:.1f}-{slowest:.1f}"


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(results: list[StageResult]) -> str:
    """The results table, ratios and goals."""
    empty = results[0]
    first_claim = next(r.claim_ms for r in results if r.claim_ms is not None)
    first_check = next(r.check_claim_ms for r in results if r.check_claim_ms is not None)
    rows: list[list[object]] = []
    for r in results:
        rows.append(
            [
                r.pending,
                r.expired,
                r.scrape_ms,
                f"{ratio(r.scrape_ms, empty.scrape_ms):.2f}",
                r.http_ms,
                f"{ratio(r.http_ms, empty.http_ms):.2f}",
                r.http_p99_ms,
                r.body_bytes,
                r.refresh_ms,
                r.summary_ms,
                spread(r.summary_range),
                r.full_scan_ms,
                f"{ratio(r.summary_ms, r.full_scan_ms):.3f}",
                f"{ratio(r.refresh_ms, empty.refresh_ms):.1f}",
                "-" if r.claim_ms is None else r.claim_ms,
                "-" if r.claim_ms is None else f"{ratio(r.claim_ms, first_claim):.2f}",
                "-" if r.check_claim_ms is None else r.check_claim_ms,
                "-" if r.check_claim_ms is None else f"{ratio(r.check_claim_ms, first_check):.2f}",
                r.inventory_ms,
                r.pending_page_ms,
                r.status_ms,
                spread(r.status_range),
                f"{ratio(r.status_ms, empty.status_ms):.2f}",
            ]
        )
    headers = [
        "pending",
        "expired",
        "scrape ms",
        "scrape / empty",
        "HTTP scrape ms",
        "HTTP / empty",
        "HTTP scrape p99 ms",
        "body bytes",
        "refresh ms",
        "pending_summary ms",
        "summary range",
        "full scan ms",
        "summary / full scan",
        "refresh / empty",
        "claim 1k ms",
        "claim / first stage",
        "check claim 100 ms",
        "check claim / first stage",
        "inventory page ms",
        "pending page ms",
        "status page ms",
        "status range",
        "status / empty",
    ]
    lines = [table(headers, rows), ""]
    at_goal = [r for r in results if r.pending >= GOAL_SIZE]
    if at_goal:
        r = at_goal[-1]
        worst_scrape = max(r.scrape_ms, r.http_ms, r.http_p99_ms)
        lines.append(
            f"scrape at {r.pending:,}: {r.scrape_ms:.2f} ms in process, {r.http_ms:.2f} ms "
            f"over HTTP, p99 {r.http_p99_ms:.2f} ms "
            f"(goal <= {SCRAPE_GOAL_MS:.0f} ms: {goal(worst_scrape <= SCRAPE_GOAL_MS)})"
        )
        claim = r.claim_ms or 0.0
        lines.append(
            f"claim of {r.claimed:,} expired among {r.pending:,}: {claim:.1f} ms "
            f"(goal <= {CLAIM_GOAL_MS:.0f} ms: {goal(claim <= CLAIM_GOAL_MS)})"
        )
        lines.append(
            f"pending snapshot at {r.pending:,}: {r.summary_ms:.1f} ms, the full scan "
            f"{r.full_scan_ms:.0f} ms (goal <= {SNAPSHOT_GOAL_MS:.0f} ms: "
            f"{goal(r.summary_ms <= SNAPSHOT_GOAL_MS)})"
        )
        worst_page = max(r.inventory_ms, r.pending_page_ms, r.status_ms)
        lines.append(
            f"inventory first page {r.inventory_ms:.1f} ms (pending only "
            f"{r.pending_page_ms:.1f} ms), status page {r.status_ms:.1f} ms "
            f"(goal <= {PAGE_GOAL_MS:.0f} ms: {goal(worst_page <= PAGE_GOAL_MS)})"
        )
    else:
        lines.append(f"no stage reached {GOAL_SIZE:,} pending rows: goals not evaluated")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scrape", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="1000,100000,1000000", help="pending rows at each stage")
    parser.add_argument("--expired", type=int, default=1000, help="rows past their deadline")
    parser.add_argument("--scrapes", type=int, default=100, help="scrapes per median and p99")
    parser.add_argument("--refreshes", type=int, default=5, help="refreshes per median")
    parser.add_argument("--claims", type=int, default=5, help="claim scans per median")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the filled rows")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(cli())
