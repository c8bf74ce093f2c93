"""The TypeScript SDK worker and completer (tests/typescript/), as child processes.

Node comes from the OS packages and the SDK from npm (tests/typescript/package-lock.json,
installed by scripts/setup): either missing fails the test, never skips it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .processes import ManagedProcess, wait_until

TYPESCRIPT_DIR = Path(__file__).resolve().parent.parent / "typescript"


def node() -> str:
    """The ``node`` binary, and the installed SDK beside the scripts."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is missing: install the Debian package nodejs (scripts/setup)")
    if not (TYPESCRIPT_DIR / "node_modules" / "@temporalio" / "worker").is_dir():
        pytest.fail(f"the TypeScript SDK is not installed in {TYPESCRIPT_DIR}: run scripts/setup")
    return found


def _started(process: ManagedProcess, event: str) -> None:
    def running() -> bool:
        process.assert_running()
        return event in process.log_path.read_text(errors="replace")

    wait_until(running, timeout=90, what=lambda: f"{process.name}: {event}\n{process.log_tail()}")


def start_worker(
    address: str,
    task_queue: str,
    outbox: Path,
    log_dir: Path,
    *,
    otlp_endpoint: str | None = None,
) -> ManagedProcess:
    """A TypeScript worker dialing ``address``, running once it polls; traced (the SDK's
    OpenTelemetry plugin) when ``otlp_endpoint`` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if otlp_endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    process = ManagedProcess(
        f"ts-worker-{task_queue[-8:]}",
        [node(), "worker.js", address, task_queue, str(outbox)],
        log_dir=log_dir,
        cwd=TYPESCRIPT_DIR,
        env=env,
    )
    _started(process, "worker running")
    return process


def start_completer(address: str, outbox: Path, log_dir: Path) -> ManagedProcess:
    """The external Node process completing what lands in ``outbox``, through ``address``."""
    process = ManagedProcess(
        f"ts-completer-{outbox.name}",
        [node(), "completer.js", address, str(outbox)],
        log_dir=log_dir,
        cwd=TYPESCRIPT_DIR,
    )
    _started(process, "completer running")
    return process
