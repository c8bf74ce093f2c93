"""End-to-end handoffs per second, bare Temporal against handshake-obs, on one dev server.

Each workflow runs one activity that hands its task token (or handoff id) to an in-process
"external system" (an asyncio queue) and completes asynchronously; completer tasks take what
was handed over off the queue and complete it; a workflow is done when its result returns.

* ``bare``: plain ``Client`` and ``Worker``, ``activity.raise_complete_async()``,
  ``client.get_async_activity_handle(task_token=...).complete(...)``.
* ``instrumented``: ``Handshake`` with a SQLite ledger, client connected with
  ``interceptors=[handshake.interceptor]``, ``async with handoff(target="agent")`` in the
  activity, ``handshake.completer(client).complete(handoff_id, ...)``.

The variants run interleaved (bare, instrumented, bare, ...), each round on a fresh task
queue and after a short pause, following one unreported warm-up round of each. The result is
the median of the per-round ratios instrumented/bare. CPU time per handoff is reported by part
(event loop, ledger threads, log writer, other threads, dev server) to show where a difference
goes.

    .venv/bin/python -m bench.handshake_throughput [--workflows 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import logging
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

import handshake_obs
from handshake_obs import Handshake, HandshakeConfig
from handshake_obs.dev import start_dev_server

from . import _cpu
from ._common import add_round_options, goal, machine_note, median, ratio, table
from ._workflows import HandoffBenchWorkflow

VARIANTS = ("bare", "instrumented")
#: Activity type run by each variant's workflows.
ACTIVITY = {"bare": "bench_bare_hand_off", "instrumented": "bench_instrumented_hand_off"}
GOAL_RATIO = 0.95
RESULT = "done"


class ExternalSystem:
    """The in-process external system: an inbox the activities drop handoffs into."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | str] = asyncio.Queue()

    @activity.defn(name="bench_bare_hand_off")
    async def bare_hand_off(self, workflow_id: str) -> str:
        """Give the raw task token away and complete asynchronously."""
        self.inbox.put_nowait(activity.info().task_token)
        activity.raise_complete_async()

    @activity.defn(name="bench_instrumented_hand_off")
    async def instrumented_hand_off(self, workflow_id: str) -> str:
        """Record the handoff, give its id away and complete asynchronously."""
        async with handshake_obs.handoff(target="agent") as h:
            self.inbox.put_nowait(h.handoff_id)
        raise RuntimeError("not reached: a clean exit completes asynchronously")


async def _bare_completer(client: Client, inbox: asyncio.Queue[bytes | str]) -> None:
    while True:
        token = await inbox.get()
        assert isinstance(token, bytes)
        await client.get_async_activity_handle(task_token=token).complete(RESULT)


async def _instrumented_completer(
    completer: handshake_obs.Completer, inbox: asyncio.Queue[bytes | str]
) -> None:
    while True:
        handoff_id = await inbox.get()
        assert isinstance(handoff_id, str)
        await completer.complete(handoff_id, RESULT)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One timed round of one variant."""

    variant: str
    number: int
    workflows: int
    seconds: float
    cpu: _cpu.CpuSample

    @property
    def rate(self) -> float:
        """Handoffs per second, end to end."""
        return self.workflows / self.seconds

    def cpu_ms(self, seconds: float) -> float:
        """CPU milliseconds per handoff."""
        return seconds * 1000 / self.workflows


async def run_round(
    variant: str,
    *,
    address: str,
    workflows: int,
    completers: int,
    workdir: Path,
    number: int,
    timeout: float,
    profiler: cProfile.Profile | None = None,
) -> RoundResult:
    """Run ``workflows`` handoffs of ``variant`` on a fresh task queue; time them."""
    external = ExternalSystem()
    task_queue = f"bench-{variant}-{uuid.uuid4().hex[:12]}"
    async with contextlib.AsyncExitStack() as stack:
        handshake: Handshake | None = None
        consume: Callable[[], Coroutine[Any, Any, None]]
        if variant == "instrumented":
            config = HandshakeConfig(
                ledger_url=f"sqlite:///{workdir / f'{task_queue}.db'}", targets=("agent",)
            )
            handshake = await stack.enter_async_context(
                Handshake(config, registry=CollectorRegistry())
            )
            client = await Client.connect(address, interceptors=[handshake.interceptor])
            completer = handshake.completer(client)
            activity_fn: Callable[..., Any] = external.instrumented_hand_off

            def consume() -> Coroutine[Any, Any, None]:
                return _instrumented_completer(completer, external.inbox)

        else:
            client = await Client.connect(address)
            activity_fn = external.bare_hand_off

            def consume() -> Coroutine[Any, Any, None]:
                return _bare_completer(client, external.inbox)

        await stack.enter_async_context(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffBenchWorkflow],
                activities=[activity_fn],
            )
        )
        consumers = [asyncio.create_task(consume()) for _ in range(completers)]
        stack.push_async_callback(_cancel, consumers)

        before = _cpu.sample()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()

        async def run_all() -> list[str]:
            return await asyncio.gather(
                *(
                    client.execute_workflow(
                        HandoffBenchWorkflow.run,
                        ACTIVITY[variant],
                        id=f"{task_queue}-{i}",
                        task_queue=task_queue,
                    )
                    for i in range(workflows)
                )
            )

        all_done = asyncio.create_task(run_all())
        waiting: set[asyncio.Future[Any]] = {all_done, *consumers}
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if profiler is not None:
            profiler.disable()
        elapsed = time.perf_counter() - started
        cpu = _cpu.sample() - before
        if all_done not in done:
            all_done.cancel()
            for task in done:
                task.result()  # a completer died: raise its error
            raise TimeoutError(f"{variant} round {number}: not done within {timeout:.0f} s")
        results = all_done.result()
        if any(r != RESULT for r in results):
            raise AssertionError(f"{variant} round {number}: unexpected workflow results")
        if handshake is not None:
            tallies = await handshake.ledger.outcomes_since(0.0)
            completed = sum(t.count for t in tallies if t.outcome == "completed")
            if completed != workflows:
                raise AssertionError(f"ledger has {completed} completed, expected {workflows}")
    return RoundResult(variant, number, workflows, elapsed, cpu)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def configure_logs(mode: str) -> None:
    """``devnull``: JSON logs rendered in full and written to /dev/null (the cost of logging
    counts, the report stays readable); ``stderr``: the same, shown; ``off``: dropped before
    rendering."""
    if mode == "off":
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        logging.getLogger().setLevel(logging.WARNING)
        return
    stream = open(os.devnull, "w") if mode == "devnull" else sys.stderr  # noqa: SIM115
    handshake_obs.configure_logging(json=True, level=logging.INFO, stream=stream)


def _pairs(results: list[RoundResult]) -> list[dict[str, RoundResult]]:
    by_round: dict[int, dict[str, RoundResult]] = {}
    for r in results:
        by_round.setdefault(r.number, {})[r.variant] = r
    return [by_round[n] for n in sorted(by_round)]


def median_ratio(results: list[RoundResult]) -> float:
    """Median over the rounds of handoffs/s instrumented / bare."""
    return median([ratio(p["instrumented"].rate, p["bare"].rate) for p in _pairs(results)])


def report(results: list[RoundResult]) -> str:
    """The per-round table and the medians."""
    rows: list[list[object]] = []
    for pair in _pairs(results):
        for variant in VARIANTS:
            r = pair[variant]
            rows.append(
                [
                    r.number,
                    variant,
                    r.workflows,
                    r.seconds,
                    r.rate,
                    "" if variant == "bare" else f"{ratio(r.rate, pair['bare'].rate):.3f}",
                    r.cpu_ms(r.cpu.main),
                    r.cpu_ms(r.cpu.ledger),
                    r.cpu_ms(r.cpu.logs),
                    r.cpu_ms(r.cpu.other),
                    r.cpu_ms(r.cpu.process),
                    r.cpu_ms(r.cpu.server),
                ]
            )
    headers = [
        "round",
        "variant",
        "workflows",
        "seconds",
        "handoffs/s",
        "ratio instr/bare",
        "CPU ms/handoff: event loop",
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
            f"median {variant}: {median([r.rate for r in mine]):.1f} handoffs/s, worker process "
            f"{median([r.cpu_ms(r.cpu.process) for r in mine]):.2f} CPU ms/handoff "
            f"(event loop {median([r.cpu_ms(r.cpu.main) for r in mine]):.2f}, "
            f"ledger {median([r.cpu_ms(r.cpu.ledger) for r in mine]):.2f}), "
            f"dev server {median([r.cpu_ms(r.cpu.server) for r in mine]):.2f}"
        )
    worker_cpu = median(
        [
            ratio(
                p["bare"].cpu.process / p["bare"].workflows,
                p["instrumented"].cpu.process / p["instrumented"].workflows,
            )
            for p in _pairs(results)
        ]
    )
    lines.append(
        f"worker CPU per handoff, bare / instrumented (the throughput ratio if the worker "
        f"process were the bottleneck): {worker_cpu:.3f}"
    )
    found = median_ratio(results)
    lines.append(
        f"median ratio instrumented/bare: {found:.3f} "
        f"(goal >= {GOAL_RATIO}: {goal(found >= GOAL_RATIO)})"
    )
    return "\n".join(lines)


def _profiler(clock: str) -> cProfile.Profile:
    """A profiler counting the profiled thread's CPU time, or wall time."""
    return cProfile.Profile(time.thread_time) if clock == "cpu" else cProfile.Profile()


def print_profile(path: Path, limit: int) -> None:
    """The event loop thread's hottest functions of a profiled round."""
    stats = pstats.Stats(str(path))
    stats.sort_stats(pstats.SortKey.TIME).print_stats(limit)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats("handshake_obs", limit)


async def interleaved_rounds(
    one: Callable[[str, int, int], Awaitable[RoundResult]],
    variants: Sequence[str],
    args: argparse.Namespace,
    *,
    width: int,
) -> list[RoundResult]:
    """One unreported warm-up round of each variant, then the variants in turn for each
    timed round, printing as they go."""
    if args.warmup:
        for variant in variants:
            warm = await one(variant, 0, args.warmup)
            print(f"warm-up {variant}: {warm.rate:.1f} handoffs/s (not counted)")
    results: list[RoundResult] = []
    for number in range(1, args.rounds + 1):
        for variant in variants:
            result = await one(variant, number, args.workflows)
            results.append(result)
            print(
                f"round {number} {variant:<{width}} {result.seconds:6.2f} s "
                f"{result.rate:7.1f} handoffs/s",
                flush=True,
            )
    return results


async def main(args: argparse.Namespace) -> int:
    configure_logs(args.logs)
    print(f"handshake throughput: {args.workflows} workflows x {args.rounds} rounds per variant")
    print(f"machine: {machine_note()}")
    env = await start_dev_server()
    try:
        address = env.client.service_client.config.target_host
        with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
            workdir = Path(tmp)

            async def one(variant: str, number: int, workflows: int) -> RoundResult:
                # Let the previous round's leftovers (worker shutdown, garbage) settle first.
                gc.collect()
                await asyncio.sleep(args.pause)
                return await run_round(
                    variant,
                    address=address,
                    workflows=workflows,
                    completers=args.completers,
                    workdir=workdir,
                    number=number,
                    timeout=args.round_timeout,
                )

            results = await interleaved_rounds(one, VARIANTS, args, width=12)
            print()
            print(report(results))
            if args.profile:
                outdir = Path(args.profile)
                for variant in VARIANTS:
                    profiler = _profiler(args.profile_clock)
                    profiled = await run_round(
                        variant,
                        address=address,
                        workflows=args.workflows,
                        completers=args.completers,
                        workdir=workdir,
                        number=args.rounds + 1,
                        timeout=args.round_timeout,
                        profiler=profiler,
                    )
                    path = outdir / f"{variant}.prof"
                    profiler.dump_stats(str(path))
                    print(
                        f"\nprofiled {variant} round (event loop thread only, under cProfile): "
                        f"{profiled.rate:.1f} handoffs/s -> {path}"
                    )
                print_profile(outdir / "instrumented.prof", args.profile_lines)
    finally:
        await env.shutdown()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.handshake_throughput", description=__doc__.split("\n\n")[0]
    )
    add_round_options(
        parser,
        workflows=500,
        rounds=3,
        warmup=100,
        logs_help="handshake-obs logs: rendered to /dev/null (default), shown, or dropped",
    )
    parser.add_argument(
        "--completers", type=int, default=8, help="completer tasks draining the inbox"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="after the timed rounds, profile one more round of each variant into DIR",
    )
    parser.add_argument(
        "--profile-clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what --profile counts: the event loop thread's CPU time (default), or wall time "
        "(which also counts waiting for the GIL while other threads run)",
    )
    parser.add_argument("--profile-lines", type=int, default=25, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    args = parse_args(argv)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    return asyncio.run(main(args))


if __name__ == "__main__":
    code = cli()
    # The Temporal SDK's Rust threads can abort interpreter teardown ("PyGILState_Release:
    # thread state must be current", temporalio/sdk-python#300) after the report is out:
    # everything is shut down and cleaned up by now, so skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
