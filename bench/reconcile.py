"""The reconciler: does it stay within its budget with many pending handoffs, and how long
does it take to notice a handoff completed outside handshake-obs?

One Temporal dev server and one SQLite ledger per run. The ledger holds ``--pending``
handoffs (bulk-inserted with ``handshake_obs.testing``) that all point at one real running
workflow's pending activity, so each of their checks is a real ``DescribeWorkflowExecution``
that finds the attempt open; their ages are spread over the last ``--spread-hours`` and
their next checks spread over their backoff interval, as a reconciler that has been running
leaves them. A ``Reconciler`` runs in the background with a budget of ``--budgets`` calls per
second. One more workflow hands off through ``handoff()``; once the reconciler has checked
it (open), it is completed with its raw token by a plain client (a bypass), and the time
until the ledger shows it ``completed_elsewhere`` is the detection time.

``--cold-pending`` adds a run per budget whose load was never checked (a reconciler
starting on a full ledger): every check is due at once, and the budget alone bounds the rate.

Measured: Temporal calls per second over the run (``handshake_reconciler_temporal_calls``),
the fastest stretch of one to two seconds (sampled every 0.25 s), and the detection time.
Baseline: the same run with no other pending handoff.

    .venv/bin/python -m bench.reconcile [--pending 0,1000,10000] [--budgets 10,50]
        [--seconds 40] [--cold-pending 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

import handshake_obs
from handshake_obs import Handshake, HandshakeConfig
from handshake_obs.dev import start_dev_server
from handshake_obs.reconcile import CheckSchedule
from handshake_obs.testing import bulk_insert, pending_record

from ._common import machine_note, ratio, table
from ._workflows import HandoffBenchWorkflow

ACTIVITY = "bench_reconcile_hand_off"


class Tokens:
    """Where the benchmark's activity leaves each workflow's task token."""

    def __init__(self) -> None:
        self.by_workflow: dict[str, asyncio.Future[tuple[str, bytes]]] = {}

    def waiting(self, workflow_id: str) -> asyncio.Future[tuple[str, bytes]]:
        return self.by_workflow.setdefault(workflow_id, asyncio.get_running_loop().create_future())

    @activity.defn(name=ACTIVITY)
    async def hand_off(self, workflow_id: str) -> str:
        async with handshake_obs.handoff(target="agent") as h:
            self.waiting(workflow_id).set_result((h.handoff_id, h.task_token))
        raise RuntimeError("not reached: a clean exit completes asynchronously")


@dataclass(frozen=True, slots=True)
class Run:
    pending: int
    budget: float
    seconds: float
    calls: float
    #: Calls per second over the fastest stretch of 1-2 s.
    peak_calls_per_second: float
    detection_seconds: float | None
    #: The load was never checked (a reconciler starting on a full ledger).
    cold: bool = False

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds


def calls(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("handshake_reconciler_temporal_calls_total") or 0.0


async def one_run(  # noqa: PLR0915 - one run, start to end, reads best in one piece
    client_address: str,
    workdir: Path,
    *,
    pending: int,
    budget: float,
    seconds: float,
    cold: bool = False,
) -> Run:
    config = HandshakeConfig(
        ledger_url=f"sqlite:///{workdir / f'ledger-{uuid.uuid4().hex}.db'}",
        targets=("agent",),
        reconcile_calls_per_second=budget,
    )
    registry = CollectorRegistry()
    tokens = Tokens()
    async with Handshake(config, registry=registry) as handshake:
        client = await Client.connect(client_address, interceptors=[handshake.interceptor])
        plain = await Client.connect(client_address)
        task_queue = f"bench-{uuid.uuid4().hex}"
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[HandoffBenchWorkflow],
            activities=[tokens.hand_off],
        ):

            async def start() -> tuple[str, str, bytes]:
                workflow_id = f"bench-{uuid.uuid4().hex}"
                await client.start_workflow(
                    HandoffBenchWorkflow.run, ACTIVITY, id=workflow_id, task_queue=task_queue
                )
                handoff_id, token = await tokens.waiting(workflow_id)
                return workflow_id, handoff_id, token

            # The load: copies of one open attempt, each check a real describe call.
            _, anchor_id, _ = await start()
            anchor = await handshake.ledger.get(anchor_id)
            assert anchor is not None
            now = time.time()
            rng = random.Random(7)
            schedule = CheckSchedule(config)
            load = [
                dataclasses.replace(
                    pending_record(
                        target="agent",
                        workflow_id=anchor.workflow_id,
                        run_id=anchor.run_id,
                        activity_id=anchor.activity_id,
                        started_at=now - rng.uniform(60, 24 * 3600),
                    ),
                    attempt=anchor.attempt,
                )
                for _ in range(pending)
            ]
            await bulk_insert(handshake.ledger, load)
            for record in load if not cold else ():
                due = schedule.next_check(record, now)
                await handshake.ledger.schedule_check(
                    record.handoff_id, now + rng.uniform(0, due - now), "bench"
                )
            await handshake.ledger.schedule_check(anchor_id, now + 24 * 3600, "bench")

            reconciler = handshake.reconciler(client)
            interval = config.reconcile_interval.total_seconds()
            _, bypass_id, bypass_token = await start()
            first_check = asyncio.Event()
            stop = asyncio.Event()

            async def passes() -> None:
                # The reconciler's own loop (reconcile_due, then the interval), watching for
                # the bypass handoff's first check and stopping between two passes.
                while not stop.is_set():
                    found = await reconciler.reconcile_once()
                    if any(c.record.handoff_id == bypass_id for c in found):
                        first_check.set()
                    if len(found) < reconciler.batch_size:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), interval)

            began, calls_before = time.monotonic(), calls(registry)
            samples: list[tuple[float, float]] = [(began, calls_before)]
            running = asyncio.create_task(passes())
            detection: float | None = None
            bypassed_at: float | None = None
            while time.monotonic() - began < seconds:
                await asyncio.sleep(0.25)
                samples.append((time.monotonic(), calls(registry)))
                if bypassed_at is None and first_check.is_set():
                    await plain.get_async_activity_handle(task_token=bypass_token).complete("x")
                    bypassed_at = time.monotonic()
                elif bypassed_at is not None and detection is None:
                    bypassed = await handshake.ledger.get(bypass_id)
                    assert bypassed is not None
                    if not bypassed.is_pending:
                        assert bypassed.error_type == "completed_elsewhere", bypassed.error_type
                        detection = time.monotonic() - bypassed_at
                        if pending == 0:
                            break
            stop.set()
            await running
            elapsed = time.monotonic() - began
            total = calls(registry) - calls_before
    # The fastest stretch of one to two seconds: a pace of ``budget`` allows at most
    # ``budget * dt + 1`` calls in it.
    peak = max(
        ((b[1] - a[1]) / (b[0] - a[0]) for a in samples for b in samples if 1 <= b[0] - a[0] <= 2),
        default=0.0,
    )
    return Run(pending, budget, elapsed, total, peak, detection, cold)


async def main(args: argparse.Namespace) -> int:
    env = await start_dev_server()
    address = env.client.service_client.config.target_host
    results: list[Run] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for budget in args.budgets:
                for pending in args.pending:
                    run = await one_run(
                        address, Path(tmp), pending=pending, budget=budget, seconds=args.seconds
                    )
                    results.append(run)
                    print(f"done: {run}", file=sys.stderr)
                if args.cold_pending:
                    run = await one_run(
                        address,
                        Path(tmp),
                        pending=args.cold_pending,
                        budget=budget,
                        seconds=args.seconds,
                        cold=True,
                    )
                    results.append(run)
                    print(f"done: {run}", file=sys.stderr)
    finally:
        await env.shutdown()
    baselines = {r.budget: r for r in results if r.pending == 0 and not r.cold}
    rows = []
    for r in results:
        base = baselines.get(r.budget)
        detect = "not within the run" if r.detection_seconds is None else r.detection_seconds
        rows.append(
            (
                r.budget,
                f"{r.pending:,}" + (" never checked" if r.cold else ""),
                r.calls_per_second,
                r.peak_calls_per_second,
                "yes" if r.peak_calls_per_second <= r.budget + 1 else "NO",
                detect,
                (
                    ratio(r.detection_seconds, base.detection_seconds)
                    if base and base.detection_seconds and r.detection_seconds
                    else "-"
                ),
            )
        )
    print(
        table(
            (
                "budget/s",
                "pending",
                "calls/s",
                "fastest 1-2 s, calls/s",
                "within budget",
                "bypass detected after (s)",
                "vs no load",
            ),
            rows,
        )
    )
    print(f"\n{machine_note()}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pending", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1000, 10000]
    )
    parser.add_argument(
        "--budgets", type=lambda s: [float(x) for x in s.split(",")], default=[10.0]
    )
    parser.add_argument("--seconds", type=float, default=40.0, help="length of a loaded run")
    parser.add_argument(
        "--cold-pending",
        type=int,
        default=10000,
        help="one more run per budget with this many never-checked handoffs (0: none)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
