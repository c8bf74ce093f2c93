"""``handshake-obs dev`` as a newcomer runs it, on a fresh clone: within a minute the metrics
move and the status page is populated; SIGINT stops everything it started."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .support.ports import free_port
from .support.sidecar import PROJECT_ROOT

FINISHED = re.compile(r"^handshake_handoffs_finished_total\{([^}]*)\} ([0-9.e+]+)$", re.M)


def finished(text: str, outcome: str | None = None) -> float:
    return sum(
        float(value)
        for labels, value in FINISHED.findall(text)
        if outcome is None or f'outcome="{outcome}"' in labels
    )


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True, timeout=60
    )
    return clone


async def read_until(stream: asyncio.StreamReader, needle: str, timeout: float) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        line = await asyncio.wait_for(stream.readline(), max(0.1, deadline - time.monotonic()))
        assert line, f"output ended before {needle!r}:\n{seen}"
        seen += line.decode()
    return seen


@pytest.mark.timeout(180)
async def test_dev_on_a_fresh_clone_moves_metrics_fills_the_page_and_stops_on_sigint(
    fresh_clone: Path, tmp_path: Path
) -> None:
    ports = {
        name: free_port()
        for name in ("temporal", "ui", "sidecar", "sdk", "demo", "prometheus", "alertmanager")
    }
    env = {**os.environ, "PYTHONPATH": str(fresh_clone / "src")}
    log = tmp_path / "dev.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "handshake_obs", "--log-json", "dev",
            "--temporal-port", str(ports["temporal"]), "--temporal-ui-port", str(ports["ui"]),
            "--metrics-port", str(ports["sidecar"]), "--sdk-metrics-port", str(ports["sdk"]),
            "--demo-port", str(ports["demo"]), "--prometheus-port", str(ports["prometheus"]),
            "--alertmanager-port", str(ports["alertmanager"]),
            "--rate", "4", "--activity-timeout", "6", "--seed", "7",
            cwd=fresh_clone, env=env, stdout=subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    sidecar = f"http://127.0.0.1:{ports['sidecar']}"
    started = time.monotonic()
    try:
        assert process.stdout is not None
        await read_until(process.stdout, f"{sidecar}/", timeout=60)
        async with httpx.AsyncClient(base_url=sidecar, timeout=5) as http:
            first = finished((await http.get("/metrics")).text)
            while True:
                await asyncio.sleep(2)
                text = (await http.get("/metrics")).text
                page = (await http.get("/")).text
                if (
                    finished(text) > first
                    and finished(text, "reaped") > 0
                    and finished(text, "failed") > 0
                    and "class=handoff" in page
                    and "id=recent-outcomes" in page
                ):
                    break
                assert time.monotonic() - started < 60, "no moving metrics within a minute"
        assert (fresh_clone / ".handshake" / "ledger.db").exists()
        assert listening(ports["prometheus"])
        assert listening(ports["alertmanager"])
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 60)
    assert code == 0, log.read_text()[-4000:]
    for name, port in ports.items():
        assert not listening(port), f"{name} still listening on {port} after SIGINT"
