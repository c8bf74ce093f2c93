"""What ``handshake-obs proxy`` costs: latency per forwarded RPC, handoff throughput, CPU.

One in-memory dev server; the proxy runs as its own process (``handshake-obs proxy``, a
SQLite ledger in a temporary directory), so its CPU is its own and the load generator does
not share its event loop.

* **Latency**: sequential unary calls from one ``grpc.aio`` channel, each timed, direct to
  the dev server, through a bare ``grpc.aio`` byte-forwarding proxy (``bench._bare_proxy``,
  the floor of any Python gRPC proxy) and through ``handshake-obs proxy``, interleaved round
  by round (the order reverses every other round). ``GetSystemInfo`` is forwarded as bytes
  (never decoded); ``RespondActivityTaskCompleted`` with a token no handoff has is decoded,
  looked up in the ledger and forwarded (what every synchronous activity's completion
  costs). Reported: p50 and p99 per path and the added latency (through - direct) per
  round; the result is the median over rounds. CPU per call of each proxy process from
  ``/proc/<pid>/stat``.
* **Handoff throughput**: N workflows whose activity hands its token to an in-process
  completer and completes asynchronously; the completer completes at once. A plain Python
  worker and client (no handshake-obs) dial the dev server directly or the proxy (which
  records every handoff, then finishes it). Ratio through / direct per round, median of the
  interleaved rounds; the noise band as in ``bench.plain_activities``.

    .venv/bin/python -m bench.proxy [--calls 2000] [--workflows 100] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import grpc
from temporalio import activity
from temporalio.api.workflowservice.v1 import (
    GetSystemInfoRequest,
    RespondActivityTaskCompletedRequest,
)
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs.dev import start_dev_server

from ._common import machine_note, median, ratio, table
from ._nginx_front import start_nginx
from ._workflows import HandoffBenchWorkflow

_SERVICE = "/temporal.api.workflowservice.v1.WorkflowService/"
ACTIVITY_NAME = "bench_proxy_handoff"
_TOKENS: asyncio.Queue[bytes] = asyncio.Queue()


@activity.defn(name=ACTIVITY_NAME)
async def hand_off(workflow_id: str) -> str:
    """Gives the token to the in-process completer and completes asynchronously."""
    _TOKENS.put_nowait(activity.info().task_token)
    activity.raise_complete_async()


def _proxy_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_bare_proxy(upstream: str) -> tuple[Any, str]:
    """The floor: a bare ``grpc.aio`` byte-forwarding proxy (``bench._bare_proxy``)."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._bare_proxy", upstream, str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    for _ in range(200):
        try:
            await _timed_calls(address, "GetSystemInfo", b"", 1)
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    return process, address


async def _start_proxy(upstream: str, workdir: Path) -> tuple[Any, str]:
    port, metrics = _free_port(), _free_port()
    cli = Path(sys.executable).parent / "handshake-obs"
    process = await asyncio.create_subprocess_exec(
        str(cli), "--log-level", "warning", "proxy",
        "--temporal-address", upstream,
        "--ledger-url", f"sqlite:///{workdir / 'proxy.db'}",
        "--listen-address", f"127.0.0.1:{port}",
        "--metrics-address", f"127.0.0.1:{metrics}",
        "--async-activity", ACTIVITY_NAME,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        if await asyncio.to_thread(_answers, f"http://127.0.0.1:{metrics}/metrics"):
            break
        await asyncio.sleep(0.1)
    else:
        raise SystemExit("the proxy did not start")
    return process, f"127.0.0.1:{port}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - 127.0.0.1 only
            return True
    except OSError:
        return False


async def _timed_calls(address: str, method: str, body: bytes, calls: int) -> list[float]:
    """Each call's seconds; every answer (an error status included) counts as a call."""
    async with grpc.aio.insecure_channel(address) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            _SERVICE + method
        )
        metadata = (("temporal-namespace", "default"),)
        for _ in range(20):  # connect and warm up
            await _one(call, body, metadata)
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            await _one(call, body, metadata)
            seconds.append(time.perf_counter() - started)
        return seconds


async def _one(call: Any, body: bytes, metadata: Any) -> None:
    try:
        await call(body, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as err:
        if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise


async def latency(paths: dict[str, tuple[str, int]], calls: int, rounds: int) -> None:
    """``paths``: name -> (address, pid of the proxy process or 0)."""
    bodies = {
        "GetSystemInfo": GetSystemInfoRequest().SerializeToString(),
        "RespondActivityTaskCompleted": RespondActivityTaskCompletedRequest(
            namespace="default", task_token=b"\xff\xfe not a token"
        ).SerializeToString(),
    }
    names = list(paths)
    for method, body in bodies.items():
        rows: list[list[object]] = []
        added: dict[str, list[tuple[float, float]]] = {n: [] for n in names if n != "direct"}
        cpu: dict[str, list[float]] = {n: [] for n in added}
        for number in range(1, rounds + 1):
            order = names if number % 2 else names[::-1]
            found: dict[str, tuple[float, float]] = {}
            for name in order:
                address, pid = paths[name]
                before = _proxy_cpu_seconds(pid) if pid else 0.0
                seconds = await _timed_calls(address, method, body, calls)
                found[name] = (_percentile(seconds, 0.5) * 1e3, _percentile(seconds, 0.99) * 1e3)
                if pid:
                    cpu[name].append((_proxy_cpu_seconds(pid) - before) / (calls + 20) * 1e6)
            for name, values in added.items():
                values.append(
                    (found[name][0] - found["direct"][0], found[name][1] - found["direct"][1])
                )
            rows.append([number, *(v for n in names for v in found[n]), *(cpu[n][-1] for n in cpu)])
        print(f"\n{method}: {calls} sequential calls per path per round")
        headers = ["round", *(f"{n} {q} ms" for n in names for q in ("p50", "p99"))]
        print(table([*headers, *(f"{n} CPU us/call" for n in cpu)], rows))
        for name, values in added.items():
            print(
                f"{name}: median added p50 {median([v[0] for v in values]):.3f} ms, "
                f"added p99 {median([v[1] for v in values]):.3f} ms, "
                f"CPU {median(cpu[name]):.0f} us/call"
            )


async def _handoff_round(address: str, workflows: int) -> float:
    client = await Client.connect(address)
    task_queue = f"bench-proxy-{uuid.uuid4()}"

    async def complete() -> None:
        while True:
            token = await _TOKENS.get()
            await client.get_async_activity_handle(task_token=token).complete("done")

    completer = asyncio.create_task(complete())
    try:
        async with Worker(
            client, task_queue=task_queue, workflows=[HandoffBenchWorkflow], activities=[hand_off]
        ):
            started = time.perf_counter()
            handles = [
                await client.start_workflow(
                    HandoffBenchWorkflow.run,
                    ACTIVITY_NAME,
                    id=f"b-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
                for _ in range(workflows)
            ]
            await asyncio.gather(*(h.result() for h in handles))
            return workflows / (time.perf_counter() - started)
    finally:
        completer.cancel()


async def throughput(
    paths: dict[str, tuple[str, tuple[int, ...]]], workflows: int, rounds: int
) -> None:
    """``paths``: name -> (address, pids of the processes in the path); "direct" first."""
    names = list(paths)
    for name in names:  # warm-up, unreported
        await _handoff_round(paths[name][0], max(10, workflows // 5))
    rows: list[list[object]] = []
    ratios: dict[str, list[float]] = {n: [] for n in names[1:]}
    cpu: dict[str, list[float]] = {n: [] for n in names if paths[n][1]}
    last: dict[str, float] = {}
    drift: list[float] = []
    for number in range(1, rounds + 1):
        order = names if number % 2 else names[::-1]
        rate: dict[str, float] = {}
        for name in order:
            address, pids = paths[name]
            await asyncio.sleep(1.0)
            before = sum(_proxy_cpu_seconds(pid) for pid in pids)
            rate[name] = await _handoff_round(address, workflows)
            if pids:
                used = sum(_proxy_cpu_seconds(pid) for pid in pids) - before
                cpu[name].append(used / workflows * 1e3)
            if name in last:
                drift.append(max(rate[name] / last[name], last[name] / rate[name]))
            last[name] = rate[name]
        for name, values in ratios.items():
            values.append(ratio(rate[name], rate["direct"]))
        rows.append(
            [number, *(rate[n] for n in names), *(ratios[n][-1] for n in ratios),
             *(cpu[n][-1] for n in cpu)]
        )  # fmt: skip
    print(f"\nhandoff throughput: {workflows} workflows per round")
    headers = [
        "round", *(f"{n} handoffs/s" for n in names), *(f"{n} / direct" for n in ratios),
        *(f"{n} CPU ms/handoff" for n in cpu),
    ]  # fmt: skip
    print(table(headers, rows))
    band = max(drift) if drift else 1.0
    for name, values in ratios.items():
        spread = f"{min(values):.3f} .. {max(values):.3f}"
        where = f", CPU {median(cpu[name]):.2f} ms per handoff" if name in cpu else ""
        print(f"median {name} / direct: {median(values):.3f} (rounds {spread}){where}")
    print(f"noise band (consecutive rounds of one path): {1 / band:.3f} .. {band:.3f}")


async def main(args: argparse.Namespace) -> None:
    print(machine_note(), f"load average {os.getloadavg()[0]:.1f}")
    env = await start_dev_server()
    direct = env.client.service_client.config.target_host
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        process, proxied = await _start_proxy(direct, root)
        bare, bare_address = await _start_bare_proxy(direct)
        nginx, nginx_address = await start_nginx(root / "nginx", direct, None)
        split, split_address = await start_nginx(root / "split", direct, proxied)
        children = (process, bare, nginx, split)
        try:
            if not args.skip_latency:
                await latency(
                    {
                        "direct": (direct, 0),
                        "bare": (bare_address, bare.pid),
                        "proxy": (proxied, process.pid),
                    },
                    args.calls,
                    args.rounds,
                )
            await throughput(
                {
                    "direct": (direct, ()),
                    "nginx": (nginx_address, (nginx.pid,)),
                    "bare": (bare_address, (bare.pid,)),
                    "proxy": (proxied, (process.pid,)),
                    "split": (split_address, (split.pid, process.pid)),
                },
                args.workflows,
                args.rounds,
            )
        finally:
            for child in children:
                if child.returncode is None:
                    child.terminate()
                await child.wait()
            await env.shutdown()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per path per round")
    parser.add_argument("--workflows", type=int, default=100, help="workflows per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument(
        "--skip-latency", action="store_true", help="measure the handoff throughput only"
    )
    asyncio.run(main(parser.parse_args()))
