"""The reaper: how late it fails expired handoffs, and what one claim scan costs.

Two parts, each against a baseline from the same run:

* ``lag``: one Temporal dev server, a SQLite ledger already holding ``--load`` pending
  handoffs (default 10,000; bulk-inserted with ``handshake_obs.testing.bulk_insert``,
  deadlines an hour to a week away, so they are load and never reaped), and a ``Reaper``
  scanning every ``reaper_interval`` in the background. N real workflows each run an
  activity that records a handoff with ``handoff(target="agent",
  deadline=timedelta(seconds=d))``, d spread evenly over ``--first-deadline`` ..
  ``--first-deadline + --spread``, and never completes it. The reap lag of a handoff is the
  ledger's ``finished_at - deadline``; the lag the workflow's caller sees is when its result
  (a failure) came back, minus the deadline; the reaper's own ``handshake_reap_lag_seconds``
  histogram is read back too, its p99 estimated from the buckets as PromQL's
  ``histogram_quantile`` does. Every handoff must end ``reaped`` and every workflow must
  fail with ``HandoffDeadlineExceeded``.
  Baseline: the same run on a ledger with no other pending handoffs.
* ``scan``: one ``claim_expired(now, limit=1000)`` with ``--pending`` rows pending (default
  1M) and ``--expired`` rows past their deadline (default 1,000), on SQLite and on
  PostgreSQL, median of ``--claims`` runs, the claims given back with ``release_claim`` in
  between. Baseline: the same claim on a ledger holding only the expired rows, interleaved
  with it. A claim statement of the same shape as the ledger's (written here: the ledger's
  SQL is internal) is explained (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN
  (ANALYZE, BUFFERS)`` rolled back) to show which index a claim reads.

    .venv/bin/python -m bench.reaper [--part all|lag|scan] [--runs 1:200,5:100]
        [--load 10000] [--pending 1000000] [--expired 1000]
        [--postgres-url postgresql://127.0.0.1:5432/test]
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
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry
from psycopg import sql
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

import handshake_obs
from handshake_obs import DEADLINE_EXCEEDED_TYPE, Handshake, HandshakeConfig, Outcome, State
from handshake_obs.dev import start_dev_server
from handshake_obs.ledger import HandoffQuery, Ledger, PostgresLedger, SqliteLedger
from handshake_obs.testing import bulk_insert

from ._common import goal, machine_note, median, quantile, ratio, table
from ._workflows import HandoffBenchWorkflow
from .handshake_throughput import configure_logs
from .scrape import CLAIMANT, fill, release_claims, seed_records

ACTIVITY = "bench_unanswered_hand_off"
#: Goal: reap lag p99 <= reaper_interval + this.
LAG_GOAL_SLACK = 1.0
CLAIM_GOAL_MS = 100.0
CLAIM_LIMIT = 1000
LEASE_SECONDS = 60.0
DEADLINE_INDEX = "handoffs_pending_deadline"
COPY_CHUNK = 50_000


# -- part 1: reap lag ---------------------------------------------------------------------


class Unanswered:
    """The external system that never answers: each activity records a handoff and leaves."""

    def __init__(self) -> None:
        #: Deadline (seconds from the handoff) of each workflow's handoff.
        self.deadlines: dict[str, float] = {}

    @activity.defn(name=ACTIVITY)
    async def hand_off(self, workflow_id: str) -> str:
        """Record a handoff with this workflow's deadline; complete asynchronously, never."""
        deadline = timedelta(seconds=self.deadlines[workflow_id])
        async with handshake_obs.handoff(target="agent", deadline=deadline):
            pass
        raise RuntimeError("not reached: a clean exit completes asynchronously")


@dataclass(frozen=True, slots=True)
class LagResult:
    """One reap-lag run: one interval, one amount of pending load."""

    interval: float
    load: int
    handoffs: int
    #: Ledger ``finished_at - deadline`` of each reaped handoff, seconds.
    ledger_lags: tuple[float, ...]
    #: When each workflow's failure reached its caller, minus the deadline, seconds.
    caller_lags: tuple[float, ...]
    #: ``handshake_reap_lag_seconds``: count, sum, and its p99 as ``histogram_quantile`` reads
    #: it from the buckets.
    histogram_count: float
    histogram_sum: float
    histogram_p99: float
    seconds: float

    @property
    def bound(self) -> float:
        """The goal's bound on p99: the scan interval plus one second."""
        return self.interval + LAG_GOAL_SLACK


async def _watch(handle: WorkflowHandle[Any, Any]) -> float:
    """Wait for the workflow to fail with ``HandoffDeadlineExceeded``; when it did."""
    try:
        await handle.result()
    except WorkflowFailureError as err:
        seen = time.time()
        cause = err.cause
        if (
            isinstance(cause, ActivityError)
            and isinstance(cause.cause, ApplicationError)
            and cause.cause.type == DEADLINE_EXCEEDED_TYPE
        ):
            return seen
        raise AssertionError(f"{handle.id} failed with {cause!r}, not the deadline") from err
    raise AssertionError(f"{handle.id} completed: its handoff was never reaped")


async def lag_run(
    address: str,
    *,
    interval: float,
    handoffs: int,
    load: int,
    workdir: Path,
    args: argparse.Namespace,
) -> LagResult:
    """Run ``handoffs`` unanswered handoffs with ``load`` other pending ones and a reaper."""
    path = workdir / f"lag-{interval:g}s-{load}.db"
    # The ledger's own schema, by the ledger, and the load.
    await fill(path, 0, load, set(), time.time(), args.seed)
    config = HandshakeConfig(
        ledger_url=f"sqlite:///{path}",
        targets=("agent",),
        reaper_interval=timedelta(seconds=interval),
    )
    registry = CollectorRegistry()
    task_queue = f"bench-reaper-{uuid.uuid4().hex[:12]}"
    external = Unanswered()
    ids = [f"{task_queue}-{i}" for i in range(handoffs)]
    step = args.spread / max(1, handoffs - 1)
    external.deadlines = {wid: args.first_deadline + i * step for i, wid in enumerate(ids)}
    timeout = args.first_deadline + args.spread + interval + args.run_timeout
    started = time.perf_counter()
    async with Handshake(config, registry=registry) as handshake:
        client = await Client.connect(address, interceptors=[handshake.interceptor])
        reaper = handshake.reaper(client)
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[HandoffBenchWorkflow],
            activities=[external.hand_off],
        ):
            reaper.start()
            try:
                handles = await asyncio.gather(
                    *(
                        client.start_workflow(
                            HandoffBenchWorkflow.run, ACTIVITY, id=wid, task_queue=task_queue
                        )
                        for wid in ids
                    )
                )
                seen = await asyncio.wait_for(
                    asyncio.gather(*(_watch(h) for h in handles)), timeout
                )
            finally:
                await reaper.stop()
        elapsed = time.perf_counter() - started
        seen_at = dict(zip(ids, seen, strict=True))
        finished = await handshake.ledger.list_handoffs(
            HandoffQuery(state=State.FINISHED, limit=handoffs + 1)
        )
        await _check_ledger(handshake.ledger, finished, set(ids), load)
    lags = [r.finished_at - r.deadline for r in finished if r.finished_at and r.deadline]
    caller = [seen_at[r.workflow_id] - r.deadline for r in finished if r.deadline]
    count = registry.get_sample_value("handshake_reap_lag_seconds_count") or 0.0
    return LagResult(
        interval=interval,
        load=load,
        handoffs=handoffs,
        ledger_lags=tuple(lags),
        caller_lags=tuple(caller),
        histogram_count=count,
        histogram_sum=registry.get_sample_value("handshake_reap_lag_seconds_sum") or 0.0,
        histogram_p99=histogram_quantile(registry, 0.99),
        seconds=elapsed,
    )


async def _check_ledger(
    ledger: Ledger, finished: list[handshake_obs.HandoffRecord], ids: set[str], load: int
) -> None:
    if {r.workflow_id for r in finished} != ids or len(finished) != len(ids):
        raise AssertionError(f"{len(finished)} handoffs finished, expected {len(ids)}")
    wrong = [r for r in finished if r.outcome is not Outcome.REAPED]
    if wrong or any(r.error_type != DEADLINE_EXCEEDED_TYPE for r in finished):
        raise AssertionError(f"not reaped: {[(r.handoff_id, r.outcome) for r in wrong][:5]}")
    pending = sum(s.pending for s in await ledger.pending_summary(time.time(), ()))
    if pending != load:
        raise AssertionError(f"{pending} handoffs pending, expected the {load} of the load")


def histogram_quantile(registry: CollectorRegistry, q: float) -> float:
    """``handshake_reap_lag_seconds``'s ``q`` quantile as PromQL's ``histogram_quantile``
    estimates it: linear within the bucket that holds the rank."""
    buckets: list[tuple[float, float]] = []
    for metric in registry.collect():
        if metric.name == "handshake_reap_lag_seconds":
            buckets = sorted(
                (float(s.labels["le"]), s.value)
                for s in metric.samples
                if s.name.endswith("_bucket")
            )
    if not buckets or not buckets[-1][1]:
        return float("nan")
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, cumulative in buckets:
        if cumulative >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / (cumulative - below)
        lower, below = le, cumulative
    return lower


def parse_runs(text: str) -> list[tuple[float, int]]:
    """``1:200,5:100`` -> [(1.0, 200), (5.0, 100)]: reaper interval seconds, handoffs."""
    runs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        interval, _, handoffs = item.partition(":")
        runs.append((float(interval), int(handoffs or 200)))
    return runs


async def run_lag(args: argparse.Namespace) -> list[LagResult]:
    """Every interval of ``--runs``: the baseline (no load), then with the load."""
    results: list[LagResult] = []
    env = await start_dev_server()
    try:
        address = env.client.service_client.config.target_host
        with tempfile.TemporaryDirectory(prefix="bench-reaper-") as tmp:
            for interval, handoffs in parse_runs(args.runs):
                for load in (0, args.load):
                    result = await lag_run(
                        address,
                        interval=interval,
                        handoffs=handoffs,
                        load=load,
                        workdir=Path(tmp),
                        args=args,
                    )
                    results.append(result)
                    print(
                        f"interval {interval:g} s, {load:,} pending, {handoffs} reaped in "
                        f"{result.seconds:.1f} s: lag p50 {median(result.ledger_lags):.3f} s, "
                        f"p99 {quantile(result.ledger_lags, 0.99):.3f} s, "
                        f"max {max(result.ledger_lags):.3f} s",
                        flush=True,
                    )
    finally:
        await env.shutdown()
    return results


def lag_report(results: list[LagResult]) -> str:
    """The reap-lag table and the goal."""
    baseline = {r.interval: r for r in results if r.load == 0}
    rows: list[list[object]] = []
    for r in results:
        p99 = quantile(r.ledger_lags, 0.99)
        base = baseline.get(r.interval)
        rows.append(
            [
                f"{r.interval:g}",
                r.load,
                r.handoffs,
                median(r.ledger_lags),
                p99,
                max(r.ledger_lags),
                "-" if base is None else f"{ratio(p99, quantile(base.ledger_lags, 0.99)):.2f}",
                median(r.caller_lags),
                quantile(r.caller_lags, 0.99),
                int(r.histogram_count),
                r.histogram_sum / r.histogram_count if r.histogram_count else 0.0,
                r.histogram_p99,
                f"{p99:.2f} <= {r.bound:g}: {goal(p99 <= r.bound)}",
            ]
        )
    headers = [
        "interval s",
        "other pending",
        "handoffs",
        "lag p50 s",
        "lag p99 s",
        "lag max s",
        "p99 / no load",
        "caller p50 s",
        "caller p99 s",
        "histogram count",
        "histogram mean s",
        "histogram_quantile(0.99) s",
        "goal p99 <= interval + 1 s",
    ]
    lines = [table(headers, rows), ""]
    for r in results:
        if r.load:
            p99 = quantile(r.ledger_lags, 0.99)
            lines.append(
                f"interval {r.interval:g} s with {r.load:,} other pending: reap lag p99 "
                f"{p99:.2f} s over {r.handoffs} handoffs, all reaped and seen by their "
                f"workflows as {DEADLINE_EXCEEDED_TYPE} (goal <= {r.bound:g} s: "
                f"{goal(p99 <= r.bound)})"
            )
    return "\n".join(lines)


# -- part 2: one claim scan -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Claim times of one backend: the ledger with the pending rows, and the baseline."""

    backend: str
    pending: int
    expired: int
    claim_ms: tuple[float, ...]
    baseline_ms: tuple[float, ...]
    load_seconds: float
    plan: str
    baseline_plan: str
    buffers: str = ""
    baseline_buffers: str = ""

    @property
    def uses_index(self) -> bool:
        """Whether the claim's plan reads the partial index of pending deadlines."""
        return DEADLINE_INDEX in self.plan


#: The claim's shape, as the ledger's ``claim_expired`` runs it (its own statements are
#: internal: keep these alike when the claim changes): the pending rows past their deadline
#: whose claim is free or lapsed, oldest deadline first, up to the limit, claimed in one
#: statement. Parameters: claimant, until, now, now, limit.
SQLITE_CLAIM = (
    "UPDATE handoffs SET claimed_by = ?, claim_until = ? WHERE handoff_id IN ("
    "  SELECT handoff_id FROM handoffs"
    "  WHERE state = 'pending' AND deadline IS NOT NULL AND deadline <= ?"
    "    AND (claim_until IS NULL OR claim_until < ?)"
    "  ORDER BY deadline LIMIT ?"
    ") RETURNING handoff_id"
)
#: The same on PostgreSQL, rows locked as they are picked; ``{h}`` is the table.
#: Parameters: now, now, limit, claimant, until.
POSTGRES_CLAIM = (
    "WITH picked AS MATERIALIZED ("
    "  SELECT handoff_id FROM {h}"
    "   WHERE state = 'pending' AND deadline IS NOT NULL AND deadline <= %s"
    "     AND (claim_until IS NULL OR claim_until < %s)"
    "   ORDER BY deadline LIMIT %s FOR UPDATE SKIP LOCKED"
    ") UPDATE {h} AS h SET claimed_by = %s, claim_until = %s FROM picked "
    "WHERE h.handoff_id = picked.handoff_id RETURNING h.handoff_id"
)


class SqliteStore:
    """A ledger file filled by :func:`bench.scrape.fill`."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ledger = SqliteLedger(path)

    async def create(self, rows: int, expired: int, now: float, seed: int) -> None:
        await fill(self.path, 0, rows, set(range(expired)), now, seed)

    async def explain(self, now: float) -> tuple[str, str]:
        """``EXPLAIN QUERY PLAN`` of :data:`SQLITE_CLAIM`, parameters bound, and no buffers."""
        params = (CLAIMANT, now + LEASE_SECONDS, now, now, CLAIM_LIMIT)
        conn = sqlite3.connect(self.path)
        try:
            plan = conn.execute(f"EXPLAIN QUERY PLAN {SQLITE_CLAIM}", params).fetchall()
        finally:
            conn.close()
        return "; ".join(str(row[3]) for row in plan), ""

    async def drop(self) -> None:
        await self.ledger.close()


class PostgresStore:
    """A ledger schema ``hs_bench_<uuid hex>``, filled with ``COPY`` by ``bulk_insert``."""

    backend = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.schema = f"hs_bench_{uuid.uuid4().hex}"
        self.ledger = PostgresLedger(url, schema=self.schema)
        self.handoffs = sql.Identifier(self.schema, "handoffs")

    async def create(self, rows: int, expired: int, now: float, seed: int) -> None:
        records = seed_records(random.Random(seed), range(rows), set(range(expired)), now)
        async with PostgresLedger(self.url, schema=self.schema) as ledger:  # creates the schema
            await bulk_insert(ledger, records, batch_size=COPY_CHUNK)
        with psycopg.connect(self.url, autocommit=True) as conn:
            # What autovacuum would do soon after a bulk load: statistics, visibility map.
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(self.handoffs))

    async def explain(self, now: float) -> tuple[str, str]:
        """``EXPLAIN (ANALYZE, BUFFERS)`` of :data:`POSTGRES_CLAIM`, rolled back: the index
        lines of the plan, and the buffers of its top node."""
        params = (now, now, CLAIM_LIMIT, CLAIMANT, now + LEASE_SECONDS)
        claim = sql.SQL(POSTGRES_CLAIM).format(h=self.handoffs)
        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(claim), params
            ).fetchall()
            conn.rollback()
        lines = [str(r[0]) for r in rows]
        print(f"  {self.backend} {self.schema}: EXPLAIN (ANALYZE, BUFFERS)")
        for line in lines:
            print(f"    {line}")
        scans = [line.strip().removeprefix("->  ") for line in lines if " on " in line]
        buffers = next((line.strip() for line in lines if "Buffers:" in line), "")
        return "; ".join(s.split("  (")[0] for s in scans), buffers.removeprefix("Buffers: ")

    async def drop(self) -> None:
        await self.ledger.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )


Store = SqliteStore | PostgresStore


async def time_claims(stores: tuple[Store, Store], expected: int, repeat: int) -> list[list[float]]:
    """Claim times (ms) of each store, interleaved store by store, ``repeat`` times."""
    for store in stores:
        await store.ledger.open()
    times: list[list[float]] = [[] for _ in stores]
    for _ in range(repeat):
        for store, mine in zip(stores, times, strict=True):
            started = time.perf_counter()
            rows = await store.ledger.claim_expired(
                time.time(), limit=CLAIM_LIMIT, claimant=CLAIMANT, lease_seconds=LEASE_SECONDS
            )
            mine.append((time.perf_counter() - started) * 1000)
            if len(rows) != expected:
                raise AssertionError(f"{store.backend}: claimed {len(rows)}, expected {expected}")
            await release_claims(store.ledger, rows)
    return times


async def scan_backend(backend: str, workdir: Path, args: argparse.Namespace) -> ScanResult:
    """Fill the baseline and the large ledger of ``backend``; time and explain the claim."""
    stores: tuple[Store, Store]
    if backend == "sqlite":
        stores = (SqliteStore(workdir / "claim-base.db"), SqliteStore(workdir / "claim-big.db"))
    else:
        stores = (PostgresStore(args.postgres_url), PostgresStore(args.postgres_url))
    base, big = stores
    try:
        now = time.time()
        await base.create(args.expired, args.expired, now, args.seed)
        started = time.perf_counter()
        await big.create(args.pending + args.expired, args.expired, now, args.seed)
        load_seconds = time.perf_counter() - started
        print(
            f"{backend}: {args.pending:,} pending + {args.expired:,} expired rows loaded in "
            f"{load_seconds:.1f} s",
            flush=True,
        )
        base_ms, big_ms = await time_claims(stores, min(args.expired, CLAIM_LIMIT), args.claims)
        base_plan, base_buffers = await base.explain(time.time())
        plan, buffers = await big.explain(time.time())
        print(
            f"  claim: {median(big_ms):.1f} ms at {args.pending:,} pending, "
            f"{median(base_ms):.1f} ms with the expired rows only; plan: {plan}",
            flush=True,
        )
    finally:
        for store in stores:
            await store.drop()
    return ScanResult(
        backend=backend,
        pending=args.pending,
        expired=args.expired,
        claim_ms=tuple(big_ms),
        baseline_ms=tuple(base_ms),
        load_seconds=load_seconds,
        plan=plan,
        baseline_plan=base_plan,
        buffers=buffers,
        baseline_buffers=base_buffers,
    )


def scan_report(results: list[ScanResult]) -> str:
    """The claim table, the plans and the goal."""
    rows: list[list[object]] = []
    for r in results:
        rows.extend(
            [
                [
                    r.backend,
                    0,
                    r.expired,
                    median(r.baseline_ms),
                    "1.00",
                    "-",
                    r.baseline_buffers or "-",
                ],
                [
                    r.backend,
                    r.pending,
                    r.expired,
                    median(r.claim_ms),
                    f"{ratio(median(r.claim_ms), median(r.baseline_ms)):.2f}",
                    r.load_seconds,
                    r.buffers or "-",
                ],
            ]
        )
    headers = [
        "backend",
        "pending",
        "expired",
        f"claim {CLAIM_LIMIT:,} ms (median)",
        "/ expired only",
        "load s",
        "buffers (EXPLAIN ANALYZE)",
    ]
    lines = [table(headers, rows), ""]
    for r in results:
        runs = ", ".join(f"{t:.1f}" for t in r.claim_ms)
        base_runs = ", ".join(f"{t:.1f}" for t in r.baseline_ms)
        lines.append(f"{r.backend} runs (ms): {runs}; expired only: {base_runs}")
        lines.append(f"{r.backend} plan at {r.pending:,} pending: {r.plan}")
        lines.append(
            f"{r.backend} claim uses {DEADLINE_INDEX}: {'yes' if r.uses_index else 'NO'}; "
            f"{median(r.claim_ms):.1f} ms (goal <= {CLAIM_GOAL_MS:.0f} ms: "
            f"{goal(median(r.claim_ms) <= CLAIM_GOAL_MS)})"
        )
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    configure_logs(args.logs)
    print(f"reaper benchmark: {args.part}")
    print(f"machine: {machine_note()}")
    lag: list[LagResult] = []
    scans: list[ScanResult] = []
    if args.part in ("all", "lag"):
        print(f"reap lag: runs {args.runs} (interval s: handoffs), {args.load:,} other pending")
        lag = await run_lag(args)
    if args.part in ("all", "scan"):
        with tempfile.TemporaryDirectory(prefix="bench-reaper-scan-") as tmp:
            for backend in args.backends.split(","):
                scans.append(await scan_backend(backend.strip(), Path(tmp), args))
    print()
    if lag:
        print(lag_report(lag))
        print()
    if scans:
        print(scan_report(scans))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.reaper", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--part", choices=("all", "lag", "scan"), default="all")
    parser.add_argument(
        "--runs",
        default="1:200,5:100",
        help="reap-lag runs, comma separated: reaper interval seconds:handoffs",
    )
    parser.add_argument(
        "--load", type=int, default=10_000, help="other pending handoffs in the reap-lag runs"
    )
    parser.add_argument(
        "--first-deadline", type=float, default=2.0, help="earliest handoff deadline, seconds"
    )
    parser.add_argument(
        "--spread", type=float, default=20.0, help="seconds the deadlines are spread over"
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=90.0,
        help="seconds past the last deadline a run may take",
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="ledgers of the scan part")
    parser.add_argument("--pending", type=int, default=1_000_000, help="pending rows of the scan")
    parser.add_argument("--expired", type=int, default=1000, help="expired rows of the scan")
    parser.add_argument("--claims", type=int, default=5, help="claim scans per median")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "HANDSHAKE_OBS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"
        ),
        help="PostgreSQL for the scan (a throwaway schema hs_bench_<uuid hex>, dropped after)",
    )
    parser.add_argument(
        "--logs",
        choices=("devnull", "stderr", "off"),
        default="devnull",
        help="handshake-obs logs: rendered to /dev/null (default), shown, or dropped",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the filled rows")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    code = cli()
    # See bench.handshake_throughput: skip an interpreter teardown the SDK's threads can abort.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
