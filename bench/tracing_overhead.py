"""Handoffs per second with spans exported to a dead collector, against no exporter.

Every variant runs the same instrumented handshake as ``bench.handshake_throughput`` (SQLite
ledger, ``handoff()`` in the activity, completion by handoff id through the completer) with
Temporal's ``TracingInterceptor`` ahead of handshake-obs's interceptor on the client:

* ``off``: no endpoint configured, ``configure_tracing()`` returns None: every tracer is a
  no-op (the reference for what tracing itself costs).
* ``no_exporter``: an SDK ``TracerProvider`` without any processor: every span is created,
  sampled and ended, then dropped.
* ``dead_collector``: ``configure_tracing()`` with an OTLP/gRPC endpoint on a local port where
  nothing listens, the exporter's default timeout (10 s): every span is created, queued in the
  ``BatchSpanProcessor``, its export fails, is retried in the background and dropped.

Interleaved rounds (off, no_exporter, dead_collector, off, ...), each on a fresh task queue,
after one unreported warm-up round of each. The result is the median of the per-round ratios
dead_collector / no_exporter: what a collector that is down costs the handoffs; the report
also gives dead_collector / off, what tracing with a dead collector costs in all.

    .venv/bin/python -m bench.tracing_overhead [--workflows 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import NoOpTracerProvider, TracerProvider
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker

from handshake_obs import (
    Completer,
    Handshake,
    HandshakeConfig,
    TracingConfig,
    configure_tracing,
    shutdown_tracing,
)
from handshake_obs.dev import start_dev_server

from . import _cpu
from ._common import add_round_options, goal, machine_note, median, ratio, table
from ._workflows import HandoffBenchWorkflow
from .handshake_throughput import (
    ACTIVITY,
    RESULT,
    ExternalSystem,
    RoundResult,
    configure_logs,
    interleaved_rounds,
)

VARIANTS = ("off", "no_exporter", "dead_collector")
#: "Beyond noise": the interleaved rounds of handshake_throughput vary by about this much.
GOAL_RATIO = 0.95


def dead_endpoint() -> str:
    """An OTLP endpoint on a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def _complete_all(completer: Completer, inbox: asyncio.Queue[bytes | str]) -> None:
    while True:
        handoff_id = await inbox.get()
        assert isinstance(handoff_id, str)
        await completer.complete(handoff_id, RESULT)


async def run_round(
    variant: str,
    *,
    address: str,
    workflows: int,
    completers: int,
    workdir: Path,
    number: int,
    timeout: float,
) -> RoundResult:
    """Run ``workflows`` traced handoffs of ``variant`` on a fresh task queue; time them."""
    external = ExternalSystem()
    task_queue = f"bench-tracing-{variant}-{uuid.uuid4().hex[:12]}"
    provider: SdkTracerProvider | None = None
    tracer_provider: TracerProvider = NoOpTracerProvider()
    if variant == "no_exporter":
        provider = SdkTracerProvider()
    elif variant == "dead_collector":
        provider = configure_tracing(TracingConfig(endpoint=dead_endpoint()), set_global=False)
        assert provider is not None
    if provider is not None:
        tracer_provider = provider
    try:
        async with contextlib.AsyncExitStack() as stack:
            handshake = await stack.enter_async_context(
                Handshake(
                    HandshakeConfig(
                        ledger_url=f"sqlite:///{workdir / f'{task_queue}.db'}", targets=("agent",)
                    ),
                    registry=CollectorRegistry(),
                    tracer_provider=tracer_provider,
                )
            )
            tracing = TracingInterceptor(tracer_provider.get_tracer("bench"))
            client = await Client.connect(address, interceptors=[tracing, handshake.interceptor])
            completer = handshake.completer(client)
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=task_queue,
                    workflows=[HandoffBenchWorkflow],
                    activities=[external.instrumented_hand_off],
                )
            )
            consumers = [
                asyncio.create_task(_complete_all(completer, external.inbox))
                for _ in range(completers)
            ]
            before = _cpu.sample()
            started = time.perf_counter()
            all_done = asyncio.gather(
                *(
                    client.execute_workflow(
                        HandoffBenchWorkflow.run,
                        ACTIVITY["instrumented"],
                        id=f"{task_queue}-{i}",
                        task_queue=task_queue,
                    )
                    for i in range(workflows)
                )
            )
            try:
                results: list[Any] = await asyncio.wait_for(all_done, timeout)
            finally:
                elapsed = time.perf_counter() - started
                cpu = _cpu.sample() - before
                for task in consumers:
                    task.cancel()
                await asyncio.gather(*consumers, return_exceptions=True)
            if any(r != RESULT for r in results):
                raise AssertionError(f"{variant} round {number}: unexpected workflow results")
    finally:
        if provider is not None:
            # Not timed; a dead collector's retries go on (sleeping) in a daemon thread.
            await asyncio.to_thread(shutdown_tracing, provider, timeout=1.0)
    return RoundResult(variant, number, workflows, elapsed, cpu)


def report(results: list[RoundResult]) -> tuple[str, float]:
    """The per-round table and the median ratio dead_collector / no_exporter."""
    by_round: dict[int, dict[str, RoundResult]] = {}
    for r in results:
        by_round.setdefault(r.number, {})[r.variant] = r
    rows: list[list[object]] = []
    ratios, totals = [], []
    for number in sorted(by_round):
        rounds = by_round[number]
        ratios.append(ratio(rounds["dead_collector"].rate, rounds["no_exporter"].rate))
        totals.append(ratio(rounds["dead_collector"].rate, rounds["off"].rate))
        for variant in VARIANTS:
            r = rounds[variant]
            rows.append(
                [
                    number,
                    variant,
                    r.workflows,
                    r.seconds,
                    r.rate,
                    f"{ratio(r.rate, rounds['off'].rate):.3f}",
                    r.cpu_ms(r.cpu.process),
                ]
            )
    headers = [
        "round",
        "variant",
        "workflows",
        "seconds",
        "handoffs/s",
        "ratio to off",
        "worker CPU ms/handoff",
    ]
    result = median(ratios)
    lines = [table(headers, rows), ""]
    for variant in VARIANTS:
        mine = [r for r in results if r.variant == variant]
        lines.append(
            f"median {variant}: {median([r.rate for r in mine]):.1f} handoffs/s, "
            f"worker CPU {median([r.cpu_ms(r.cpu.process) for r in mine]):.2f} ms/handoff"
        )
    lines.append(f"median ratio dead_collector/off (tracing in all): {median(totals):.3f}")
    lines.append(
        f"median ratio dead_collector/no_exporter: {result:.3f} "
        f"(goal >= {GOAL_RATIO}: {goal(result >= GOAL_RATIO)})"
    )
    return "\n".join(lines), result


async def main(args: argparse.Namespace) -> int:
    configure_logs(args.logs)
    print(f"tracing overhead: {args.workflows} workflows x {args.rounds} rounds per variant")
    print(f"machine: {machine_note()}")
    env = await start_dev_server()
    try:
        address = env.client.service_client.config.target_host
        with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:

            async def one(variant: str, number: int, workflows: int) -> RoundResult:
                gc.collect()
                await asyncio.sleep(args.pause)
                return await run_round(
                    variant,
                    address=address,
                    workflows=workflows,
                    completers=args.completers,
                    workdir=Path(tmp),
                    number=number,
                    timeout=args.round_timeout,
                )

            results = await interleaved_rounds(one, VARIANTS, args, width=15)
            text, found = report(results)
            print()
            print(text)
    finally:
        await env.shutdown()
    return 0 if found >= GOAL_RATIO or not args.check else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.tracing_overhead", description=__doc__.split("\n\n")[0]
    )
    add_round_options(
        parser,
        workflows=300,
        rounds=3,
        warmup=50,
        logs_help="logs (the exporter's failures too): rendered to /dev/null, shown, or dropped",
    )
    parser.add_argument(
        "--completers", type=int, default=8, help="completer tasks draining the inbox"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the ratio misses the goal"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
