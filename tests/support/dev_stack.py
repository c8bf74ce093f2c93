"""A real sidecar under load: ``handshake-obs dev`` (and ``serve`` replicas) as processes.

``handshake-obs dev`` runs a Temporal dev server, the sidecar with its reaper, and demo
traffic that completes, fails (typed) and loses tokens; it serves the handshake metrics and
the Temporal SDK's. With ``--activity-timeout 6`` a lost token's derived deadline is about
5.4 s, so reaps start within seconds.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port
from .processes import ManagedProcess, answers, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: The targets ``handshake-obs dev`` hands work to.
DEMO_TARGETS = ("agent-runner", "java-billing", "human-approval")

#: Fast refresh and reaping, so a short run shows everything.
FAST_SETTINGS = {
    "HANDSHAKE_METRICS_REFRESH_SECONDS": "1",
    "HANDSHAKE_REAPER_INTERVAL_SECONDS": "1",
}


@dataclass
class DevStack:
    """A running ``handshake-obs dev``."""

    process: ManagedProcess
    state_dir: Path
    temporal_port: int
    metrics_port: int
    sdk_metrics_port: int

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def sdk_metrics_target(self) -> str:
        return f"127.0.0.1:{self.sdk_metrics_port}"

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.state_dir / 'ledger.db'}"


@contextmanager
def dev_stack(
    work_dir: Path, *, rate: float = 5.0, activity_timeout: float = 6.0
) -> Iterator[DevStack]:
    """Run ``handshake-obs dev`` until the block ends (then SIGINT, as Ctrl-C would)."""
    state_dir = (work_dir / "dev-state").resolve()
    temporal_port, ui_port, metrics_port, sdk_port = (free_port() for _ in range(4))
    argv = [
        sys.executable, "-m", "handshake_obs", "--log-json", "dev",
        "--state-dir", str(state_dir),
        "--temporal-port", str(temporal_port),
        "--temporal-ui-port", str(ui_port),
        "--metrics-port", str(metrics_port),
        "--sdk-metrics-port", str(sdk_port),
        "--rate", str(rate),
        "--activity-timeout", str(activity_timeout),
        "--seed", "7",
        "--no-prometheus",  # the test brings its own Prometheus and Alertmanager
        "--demo-port", str(free_port()),
    ]  # fmt: skip
    process = ManagedProcess(
        "handshake-obs-dev",
        argv,
        log_dir=work_dir,
        cwd=PROJECT_ROOT,
        env={**os.environ, **FAST_SETTINGS},
    )
    stack = DevStack(process, state_dir, temporal_port, metrics_port, sdk_port)
    try:
        wait_until(
            lambda: _alive_and_answering(process, f"http://{stack.metrics_target}/metrics"),
            timeout=60,
            what=lambda: f"handshake-obs dev to serve /metrics\n{process.log_tail()}",
        )
        wait_until(
            lambda: _alive_and_answering(process, f"http://{stack.sdk_metrics_target}/metrics"),
            timeout=60,
            what=lambda: f"the Temporal SDK metrics of handshake-obs dev\n{process.log_tail()}",
        )
        yield stack
    finally:
        process.stop(signal.SIGINT)


@contextmanager
def sidecar_replica(
    work_dir: Path, stack: DevStack, *, name: str
) -> Iterator[tuple[ManagedProcess, str]]:
    """``handshake-obs serve`` sharing the dev stack's ledger and Temporal: another replica.

    Yields the process and its metrics target (``host:port``).
    """
    port = free_port()
    env = {
        **os.environ,
        **FAST_SETTINGS,
        "HANDSHAKE_LEDGER_URL": stack.ledger_url,
        "HANDSHAKE_TEMPORAL_ADDRESS": f"127.0.0.1:{stack.temporal_port}",
        "HANDSHAKE_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "HANDSHAKE_TARGETS": ",".join(DEMO_TARGETS),
        # Its own task queue: the demo's handoff activities stay with the dev stack's sidecar.
        "HANDSHAKE_TASK_QUEUE": f"{name}-idle",
    }
    process = ManagedProcess(
        name,
        [sys.executable, "-m", "handshake_obs", "--log-json", "serve"],
        log_dir=work_dir,
        cwd=PROJECT_ROOT,
        env=env,
    )
    target = f"127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _alive_and_answering(process, f"http://{target}/metrics"),
            timeout=30,
            what=lambda: f"{name} to serve /metrics\n{process.log_tail()}",
        )
        yield process, target
    finally:
        process.stop(signal.SIGTERM)


def _alive_and_answering(process: ManagedProcess, url: str) -> bool:
    process.assert_running()
    return answers(url)
