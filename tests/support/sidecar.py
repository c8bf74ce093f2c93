"""A real sidecar process (``python -m handshake_obs serve``) and a fake external system that
receives its HTTP handoffs, for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from .ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPLETION_TOKEN = "test-completion-token-0123456789"
OPERATOR_TOKEN = "test-operator-token-0123456789"


@dataclass
class Delivery:
    """One HTTP handoff the external system received."""

    body: dict[str, Any]
    headers: dict[str, str]


class ExternalReceiver:
    """An HTTP server standing in for a non-Python external system."""

    def __init__(self, *, status: int = 202) -> None:
        self.status = status
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                receiver.deliveries.put(
                    Delivery(body, {k.lower(): v for k, v in self.headers.items()})
                )
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/handoffs"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    async def receive(self, timeout: float = 30) -> Delivery:
        return await asyncio.to_thread(self.deliveries.get, True, timeout)


@dataclass
class Sidecar:
    """A running sidecar process and how to reach it."""

    process: asyncio.subprocess.Process
    url: str
    task_queue: str
    ledger_url: str
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def client(self, token: str | None = COMPLETION_TOKEN) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def sidecar_env(
    *,
    ledger_url: str,
    temporal_address: str | None,
    port: int,
    task_queue: str,
    config_file: Path | None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {
        **os.environ,
        "HANDSHAKE_LEDGER_URL": ledger_url,
        "HANDSHAKE_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "HANDSHAKE_TASK_QUEUE": task_queue,
        "HANDSHAKE_COMPLETION_TOKEN": COMPLETION_TOKEN,
        "HANDSHAKE_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "HANDSHAKE_TARGETS": "billing,approval",
        "HANDSHAKE_REAPER_INTERVAL_SECONDS": "0.5",
        "HANDSHAKE_METRICS_REFRESH_SECONDS": "0.5",
        "HANDSHAKE_RPC_TIMEOUT_SECONDS": "2",
        "HANDSHAKE_RPC_MAX_ATTEMPTS": "2",
        "HANDSHAKE_REAPER_LEASE_SECONDS": "5",
    }
    # None: the extra variables say where Temporal is (TEMPORAL_* or a temporal.toml profile).
    if temporal_address is not None:
        env["HANDSHAKE_TEMPORAL_ADDRESS"] = temporal_address
    if config_file is not None:
        env["HANDSHAKE_CONFIG_FILE"] = str(config_file)
    env.update(extra or {})
    return env


def write_targets(path: Path, targets: dict[str, str], *, deadline_seconds: float = 300) -> Path:
    lines = []
    for name, url in targets.items():
        lines += [
            "[[targets]]",
            f'name = "{name}"',
            f'url = "{url}"',
            f"deadline_seconds = {deadline_seconds}",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


@asynccontextmanager
async def running_sidecar(
    tmp_path: Path,
    temporal_address: str | None,
    *,
    targets: dict[str, str] | None = None,
    ledger_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 30,
    require_ready: bool = True,
) -> AsyncIterator[Sidecar]:
    """Start a sidecar process; stop it with SIGTERM (and check it exits 0) afterwards."""
    port = free_port()
    task_queue = f"sidecar-{uuid.uuid4()}"
    ledger_url = ledger_url or f"sqlite:///{tmp_path / f'sidecar-{port}.db'}"
    config_file = write_targets(tmp_path / f"targets-{port}.toml", targets) if targets else None
    env = sidecar_env(
        ledger_url=ledger_url,
        temporal_address=temporal_address,
        port=port,
        task_queue=task_queue,
        config_file=config_file,
        extra=extra_env,
    )
    log_path = tmp_path / f"sidecar-{port}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "handshake_obs", "--log-json", "serve",
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    sidecar = Sidecar(process, f"http://127.0.0.1:{port}", task_queue, ledger_url, log_path, env)
    try:
        await wait_until_up(sidecar, timeout=ready_timeout, ready=require_ready)
        yield sidecar
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise AssertionError(f"the sidecar ignored SIGTERM:\n{sidecar.logs()}") from None


async def wait_until_up(sidecar: Sidecar, *, timeout: float, ready: bool) -> None:
    """Wait for /readyz (or /healthz when ``ready`` is False) to answer 200."""
    path = "/readyz" if ready else "/healthz"
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=sidecar.url, timeout=2) as http:
        while True:
            if sidecar.process.returncode is not None:
                raise AssertionError(f"the sidecar exited:\n{sidecar.logs()}")
            try:
                if (await http.get(path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the sidecar never became ready:\n{sidecar.logs()}")
            await asyncio.sleep(0.1)
