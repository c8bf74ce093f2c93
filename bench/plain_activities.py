"""Ordinary activities per second, bare Temporal against handshake-obs's interceptor, on one
dev server.

Each workflow runs one ordinary activity that returns at once (no async completion), so
handshake-obs must leave it alone: no ledger record, no metric, no log line, and no overhead
beyond noise.

* ``bare``: plain ``Client`` and ``Worker``.
* ``instrumented``: ``Handshake`` with a SQLite ledger in a temporary directory (background
  gauge refresher running), client connected with ``interceptors=[handshake.interceptor]``,
  the worker built on that client, so the interceptor wraps every activity.

Both variants run the very same activity and workflow. The variants run interleaved, each
round on a fresh task queue after a short pause, following one unreported warm-up round of
each; which variant goes first alternates from round to round (bare, instrumented |
instrumented, bare | bare, instrumented ...), so that drift (the in-memory dev server grows by
every round's workflows) and whatever running second costs fall on both. The result is the
median of the per-round ratios instrumented / bare, shown beside the noise band: the ratios
between consecutive rounds of the same variant, which differ only by when they ran. CPU time
per activity is reported by part (event loop, ledger threads, log writer, other threads, dev
server). A last part times the interceptor's ``execute_activity`` in isolation against a
pass-through interceptor. The run ends by checking that no instrumented round left a handoff
in its ledger, a non-zero ``handshake_handoffs_started_total`` or a handshake-obs log record.

    .venv/bin/python -m bench.plain_activities [--workflows 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Worker,
)

from handshake_obs import Handshake, HandshakeConfig
from handshake_obs.dev import start_dev_server

from . import _cpu
from ._common import add_round_options, machine_note, median, ratio, table
from ._plain_workflows import PlainActivityBenchWorkflow
from .handshake_throughput import configure_logs

VARIANTS = ("bare", "instrumented")
ACTIVITY_NAME = "bench_plain_activity"
RESULT = "done"
STARTED_METRIC = "handshake_handoffs_started"


def round_order(number: int) -> tuple[str, ...]:
    """The variants in the order round ``number`` runs them (odd rounds: bare first)."""
    return VARIANTS if number % 2 else VARIANTS[::-1]


@activity.defn(name=ACTIVITY_NAME)
async def plain_activity(workflow_id: str) -> str:
    """An ordinary activity: returns at once."""
    return RESULT


class RecordCounter(logging.Handler):
    """Counts the log records of handshake-obs's loggers (at the configured level)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What handshake-obs kept of a run that should have left nothing."""

    #: Rows in the ledger, all targets and outcomes.
    handoffs: int
    #: ``handshake_handoffs_started_total`` by target.
    started: dict[str, float]
    #: handshake-obs log records emitted during the run.
    log_records: int

    def problems(self) -> list[str]:
        """Empty when nothing was left."""
        found = []
        if self.handoffs:
            found.append(f"{self.handoffs} handoffs in the ledger")
        if not self.started:
            found.append(f"no {STARTED_METRIC}_total series")
        found.extend(
            f"{STARTED_METRIC}_total{{target={t!r}}} = {v:g}" for t, v in self.started.items() if v
        )
        if self.log_records:
            found.append(f"{self.log_records} handshake-obs log records")
        return found


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One timed round of one variant."""

    variant: str
    number: int
    workflows: int
    seconds: float
    cpu: _cpu.CpuSample
    #: None for ``bare`` (no handshake-obs at all).
    leftovers: Leftovers | None = field(default=None)

    @property
    def rate(self) -> float:
        """Workflows (each one activity) per second, end to end."""
        return self.workflows / self.seconds

    def cpu_ms(self, seconds: float) -> float:
        """CPU milliseconds per activity."""
        return seconds * 1000 / self.workflows


def started_by_target(registry: CollectorRegistry) -> dict[str, float]:
    """``handshake_handoffs_started_total`` of every target series in ``registry``."""
    return {
        sample.labels["target"]: sample.value
        for family in registry.collect()
        if family.name == STARTED_METRIC
        for sample in family.samples
        if sample.name == f"{STARTED_METRIC}_total"
    }


async def leftovers(handshake: Handshake, registry: CollectorRegistry, logs: int) -> Leftovers:
    """What ``handshake`` holds now (call before it stops)."""
    ledger = handshake.ledger
    pending = sum(s.pending for s in await ledger.pending_summary(time.time(), ()))
    finished = sum(t.count for t in await ledger.outcomes_since(0.0))
    return Leftovers(
        handoffs=pending + finished,
        started=started_by_target(registry),
        log_records=logs,
    )


def instrumented_config(path: Path) -> HandshakeConfig:
    """A handshake-obs configuration with a SQLite ledger at ``path``."""
    return HandshakeConfig(ledger_url=f"sqlite:///{path}", targets=("agent",))


async def run_round(
    variant: str,
    *,
    address: str,
    workflows: int,
    workdir: Path,
    number: int,
    timeout: float,
    logs: RecordCounter,
) -> RoundResult:
    """Run ``workflows`` workflows of ``variant`` on a fresh task queue; time them."""
    task_queue = f"bench-plain-{variant}-{uuid.uuid4().hex[:12]}"
    found: Leftovers | None = None
    logs.count = 0
    async with contextlib.AsyncExitStack() as stack:
        handshake: Handshake | None = None
        registry = CollectorRegistry()
        if variant == "instrumented":
            handshake = await stack.enter_async_context(
                Handshake(instrumented_config(workdir / f"{task_queue}.db"), registry=registry)
            )
            client = await Client.connect(address, interceptors=[handshake.interceptor])
        else:
            client = await Client.connect(address)
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[PlainActivityBenchWorkflow],
                activities=[plain_activity],
            )
        )
        before = _cpu.sample()
        started = time.perf_counter()
        all_done = asyncio.gather(
            *(
                client.execute_workflow(
                    PlainActivityBenchWorkflow.run,
                    ACTIVITY_NAME,
                    id=f"{task_queue}-{i}",
                    task_queue=task_queue,
                )
                for i in range(workflows)
            )
        )
        try:
            results: list[str] = await asyncio.wait_for(all_done, timeout)
        finally:
            elapsed = time.perf_counter() - started
            cpu = _cpu.sample() - before
        if any(r != RESULT for r in results):
            raise AssertionError(f"{variant} round {number}: unexpected workflow results")
        if handshake is not None:
            found = await leftovers(handshake, registry, logs.count)
    return RoundResult(variant, number, workflows, elapsed, cpu, found)


# -- the interceptor in isolation ----------------------------------------------------------


class _ReturnAtOnce(ActivityInboundInterceptor):
    """The end of an activity interceptor chain: the activity returns at once."""

    def __init__(self) -> None:
        """No ``next``: nothing comes after this one."""

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        """Nothing to set up."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        return RESULT


@dataclass(frozen=True, slots=True)
class MicroResult:
    """Nanoseconds per ``execute_activity`` call, median over repeats."""

    calls: int
    no_interceptor: float
    pass_through: float
    handshake: float
    leftovers: Leftovers


async def _ns_per_call(
    execute: Callable[[ExecuteActivityInput], Awaitable[Any]],
    input: ExecuteActivityInput,
    calls: int,
) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        await execute(input)
    return (time.perf_counter_ns() - started) / calls


async def micro(workdir: Path, calls: int, repeats: int, logs: RecordCounter) -> MicroResult:
    """Time one ``execute_activity`` through: nothing, a pass-through interceptor (the
    SDK's base class), handshake-obs's interceptor. Interleaved, median of ``repeats``."""
    logs.count = 0
    registry = CollectorRegistry()
    hs = Handshake(instrumented_config(workdir / "micro.db"), registry=registry)
    # Only the ledger is opened (for the leftovers check), not the pending gauge refresher:
    # it plays no part in execute_activity, and on Python 3.11 ``Handshake.stop()`` can hang
    # when it cancels a refresh whose ledger read has just finished (``asyncio.wait_for``
    # returns the result and drops the cancellation; the refresher loops on).
    await hs.ledger.open()
    try:
        end = _ReturnAtOnce()
        chains: dict[str, ActivityInboundInterceptor] = {
            "no_interceptor": end,
            "pass_through": ActivityInboundInterceptor(end),
            "handshake": hs.interceptor.intercept_activity(end),
        }
        input = ExecuteActivityInput(fn=plain_activity, args=["micro"], executor=None, headers={})
        times: dict[str, list[float]] = {name: [] for name in chains}
        for chain in chains.values():  # warm-up
            await _ns_per_call(chain.execute_activity, input, calls // 10)
        for _ in range(repeats):
            for name, chain in chains.items():
                gc.collect()
                times[name].append(await _ns_per_call(chain.execute_activity, input, calls))
        found = await leftovers(hs, registry, logs.count)
    finally:
        await hs.ledger.close()
    return MicroResult(
        calls=calls,
        no_interceptor=median(times["no_interceptor"]),
        pass_through=median(times["pass_through"]),
        handshake=median(times["handshake"]),
        leftovers=found,
    )


# -- report ---------------------------------------------------------------------------------


def _by_round(results: list[RoundResult]) -> list[dict[str, RoundResult]]:
    by_round: dict[int, dict[str, RoundResult]] = {}
    for r in results:
        by_round.setdefault(r.number, {})[r.variant] = r
    return [by_round[n] for n in sorted(by_round)]


def _consecutive(values: Sequence[float]) -> list[float]:
    """Each value over the one before it."""
    return [ratio(b, a) for a, b in itertools.pairwise(values)]


def _span(values: Sequence[float]) -> str:
    return f"{min(values):.3f} .. {max(values):.3f}" if values else "-"


def _distance(values: Sequence[float]) -> float:
    """Median distance of ratios from 1 (0.10: a typical ratio is 10 % off even)."""
    return median([abs(v - 1) for v in values]) if values else float("nan")


def report(results: list[RoundResult], micro_result: MicroResult | None) -> str:
    """The per-round table, the noise band, the CPU split and the isolated timing."""
    pairs = _by_round(results)
    previous: dict[str, RoundResult] = {}
    rows: list[list[object]] = []
    for pair in pairs:
        for variant in round_order(pair["bare"].number):
            r = pair[variant]
            before = previous.get(variant)
            rows.append(
                [
                    r.number,
                    variant,
                    r.seconds,
                    r.rate,
                    "" if variant == "bare" else f"{ratio(r.rate, pair['bare'].rate):.3f}",
                    "" if before is None else f"{ratio(r.rate, before.rate):.3f}",
                    r.cpu_ms(r.cpu.main),
                    r.cpu_ms(r.cpu.ledger),
                    r.cpu_ms(r.cpu.logs),
                    r.cpu_ms(r.cpu.other),
                    r.cpu_ms(r.cpu.process),
                    r.cpu_ms(r.cpu.server),
                ]
            )
            previous[variant] = r
    headers = [
        "round",
        "variant",
        "seconds",
        "activities/s",
        "ratio instr/bare",
        "ratio to previous round",
        "CPU ms/activity: event loop",
        "ledger threads",
        "log writer",
        "other threads",
        "worker process",
        "dev server",
    ]
    lines = [table(headers, rows), ""]
    for variant in VARIANTS:
        mine = [r for r in results if r.variant == variant]
        lines.append(
            f"median {variant}: {median([r.rate for r in mine]):.1f} activities/s, worker "
            f"process {median([r.cpu_ms(r.cpu.process) for r in mine]):.2f} CPU ms/activity "
            f"(event loop {median([r.cpu_ms(r.cpu.main) for r in mine]):.2f}, "
            f"ledger {median([r.cpu_ms(r.cpu.ledger) for r in mine]):.3f}), "
            f"dev server {median([r.cpu_ms(r.cpu.server) for r in mine]):.2f}"
        )
    instr_bare = [ratio(p["instrumented"].rate, p["bare"].rate) for p in pairs]
    bare_bare = _consecutive([p["bare"].rate for p in pairs])
    instr_instr = _consecutive([p["instrumented"].rate for p in pairs])
    same_variant = bare_bare + instr_instr
    lines += [
        "",
        "throughput ratios:",
        f"  instrumented / bare, same round:       {_span(instr_bare)}, "
        f"median distance from 1 {_distance(instr_bare):.3f}",
        f"  bare / bare, consecutive rounds:       {_span(bare_bare)}, "
        f"median distance from 1 {_distance(bare_bare):.3f}",
        f"  instr / instr, consecutive rounds:     {_span(instr_instr)}, "
        f"median distance from 1 {_distance(instr_instr):.3f}",
    ]
    found = median(instr_bare)
    if same_variant:
        # Which of two rounds of one variant comes first is arbitrary: the band is symmetric.
        widest = max(max(r, 1 / r) for r in same_variant)
        inside = 1 / widest <= found <= widest
        verdict = (
            f"{'inside' if inside else 'OUTSIDE'} the same-variant noise band "
            f"{1 / widest:.3f} .. {widest:.3f}"
        )
    else:
        verdict = "no noise band with one round"
    lines.append(f"median ratio instrumented/bare: {found:.3f} ({verdict})")
    for first in VARIANTS:
        by_order = [
            ratio(p["instrumented"].rate, p["bare"].rate)
            for p in pairs
            if round_order(p["bare"].number)[0] == first
        ]
        if by_order:
            lines.append(
                f"  rounds with {first} first: instrumented/bare "
                f"{', '.join(f'{v:.3f}' for v in by_order)}; median {median(by_order):.3f}"
            )
    second_first = [
        ratio(p[round_order(n)[1]].rate, p[round_order(n)[0]].rate)
        for p in pairs
        for n in [p["bare"].number]
    ]
    lines.append(
        f"  second / first variant of the same round, either variant: median "
        f"{median(second_first):.3f}"
    )

    bare_cpu = [p["bare"].cpu_ms(p["bare"].cpu.process) for p in pairs]
    instr_cpu = [p["instrumented"].cpu_ms(p["instrumented"].cpu.process) for p in pairs]
    cpu_diff = [i - b for i, b in zip(instr_cpu, bare_cpu, strict=True)]
    cpu_steps = [b - a for values in (bare_cpu, instr_cpu) for a, b in itertools.pairwise(values)]
    lines += [
        "",
        "worker process CPU per activity (ms):",
        f"  instrumented - bare, same round:       "
        f"{', '.join(f'{d:+.2f}' for d in cpu_diff)}; median {median(cpu_diff):+.2f}",
        f"  same variant, round - previous round:  "
        f"{', '.join(f'{d:+.2f}' for d in cpu_steps) or '-'}"
        + (f"; median size {median([abs(d) for d in cpu_steps]):.2f}" if cpu_steps else ""),
        f"  median ratio instrumented/bare:        "
        f"{median([ratio(i, b) for i, b in zip(instr_cpu, bare_cpu, strict=True)]):.3f}",
    ]
    if micro_result is not None:
        m = micro_result
        lines += [
            "",
            f"execute_activity in isolation (median of interleaved repeats of {m.calls:,} calls):",
            f"  no interceptor:                 {m.no_interceptor / 1000:.3f} µs/call",
            f"  pass-through interceptor:       {m.pass_through / 1000:.3f} µs/call",
            f"  handshake-obs interceptor:      {m.handshake / 1000:.3f} µs/call "
            f"(+{(m.handshake - m.pass_through) / 1000:.3f} µs over pass-through, "
            f"+{(m.handshake - m.no_interceptor) / 1000:.3f} µs over none)",
            f"  as a share of the bare worker CPU per activity: "
            f"{(m.handshake - m.no_interceptor) / 1e6 / median(bare_cpu):.5%}",
        ]
    return "\n".join(lines)


def check(results: list[RoundResult], micro_result: MicroResult | None) -> list[str]:
    """Every instrumented round (warm-up included) and the isolated timing left nothing."""
    problems: list[str] = []
    for r in results:
        if r.leftovers is not None:
            label = f"{r.variant} round {r.number or 'warm-up'}"
            problems.extend(f"{label}: {p}" for p in r.leftovers.problems())
    if micro_result is not None:
        problems.extend(f"isolated timing: {p}" for p in micro_result.leftovers.problems())
    return problems


async def main(args: argparse.Namespace) -> int:
    configure_logs(args.logs)
    logs = RecordCounter()
    logging.getLogger("handshake_obs").addHandler(logs)
    print(f"ordinary activities: {args.workflows} workflows x {args.rounds} rounds per variant")
    print(f"machine: {machine_note()}")
    env = await start_dev_server()
    try:
        address = env.client.service_client.config.target_host
        with tempfile.TemporaryDirectory(prefix="bench-plain-") as tmp:
            workdir = Path(tmp)

            async def one(variant: str, number: int, workflows: int) -> RoundResult:
                # Let the previous round's leftovers (worker shutdown, garbage) settle first.
                gc.collect()
                await asyncio.sleep(args.pause)
                return await run_round(
                    variant,
                    address=address,
                    workflows=workflows,
                    workdir=workdir,
                    number=number,
                    timeout=args.round_timeout,
                    logs=logs,
                )

            checked: list[RoundResult] = []
            if args.warmup:
                for variant in VARIANTS:
                    warm = await one(variant, 0, args.warmup)
                    checked.append(warm)
                    print(f"warm-up {variant}: {warm.rate:.1f} activities/s (not counted)")
            results: list[RoundResult] = []
            for number in range(1, args.rounds + 1):
                for variant in round_order(number):
                    result = await one(variant, number, args.workflows)
                    results.append(result)
                    print(
                        f"round {number} {variant:<12} {result.seconds:6.2f} s "
                        f"{result.rate:7.1f} activities/s",
                        flush=True,
                    )
            if args.micro_calls:
                print("timing the interceptor in isolation", flush=True)
            micro_result = (
                await micro(workdir, args.micro_calls, args.micro_repeats, logs)
                if args.micro_calls
                else None
            )
            print()
            print(report(results, micro_result), flush=True)
            problems = check([*checked, *results], micro_result)
            instrumented = [r for r in [*checked, *results] if r.leftovers is not None]
            targets = sorted({t for r in instrumented if r.leftovers for t in r.leftovers.started})
            print()
            if problems:
                print("handshake-obs left something behind:")
                print("\n".join(f"  {p}" for p in problems), flush=True)
                raise AssertionError(f"{len(problems)} leftovers (see above)")
            print(
                f"checked {len(instrumented)} instrumented rounds (warm-up included)"
                f"{' and the isolated timing' if micro_result else ''}: 0 handoffs in the "
                f"ledger, {STARTED_METRIC}_total 0 for every target ({', '.join(targets)}), "
                f"0 handshake-obs log records",
                flush=True,
            )
    finally:
        await env.shutdown()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.plain_activities", description=__doc__.split("\n\n")[0]
    )
    add_round_options(
        parser,
        workflows=500,
        rounds=5,
        warmup=100,
    )
    parser.add_argument(
        "--micro-calls",
        type=int,
        default=100_000,
        help="calls per repeat of the isolated interceptor timing (0: skip it)",
    )
    parser.add_argument(
        "--micro-repeats", type=int, default=5, help="repeats of the isolated timing"
    )
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    code = cli()
    # The Temporal SDK's Rust threads can abort interpreter teardown (temporalio/sdk-python#300)
    # after the report is out: everything is shut down by now, so skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
