"""A ``handshake-obs proxy`` for a test: in this process, or as its own process."""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .ports import free_port
from .processes import ManagedProcess, answers, wait_until


def start_proxy_process(
    *,
    name: str,
    upstream: str,
    ledger_url: str,
    async_activities: Sequence[str],
    log_dir: Path,
    port: int | None = None,
    metrics_port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[ManagedProcess, int, int]:
    """``handshake-obs proxy`` as a child process; returns it, its gRPC and metrics ports
    once ``/metrics`` answers (the gRPC server starts before the metrics server)."""
    port = port or free_port()
    metrics_port = metrics_port or free_port()
    argv = [
        sys.executable,
        "-m",
        "handshake_obs",
        "proxy",
        "--temporal-address",
        upstream,
        "--ledger-url",
        ledger_url,
        "--listen-address",
        f"127.0.0.1:{port}",
        "--metrics-address",
        f"127.0.0.1:{metrics_port}",
    ]
    for rule in async_activities:
        argv += ["--async-activity", rule]
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HANDSHAKE_", "TEMPORAL_"))},
        "HANDSHAKE_TARGETS": "agent,approval",
        "HANDSHAKE_LOG_JSON": "true",
        **(env or {}),
    }
    process = ManagedProcess(name, argv, log_dir=log_dir, env=environ)
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def serving() -> bool:
        process.assert_running()
        return answers(url)

    wait_until(
        serving,
        timeout=60,
        what=lambda: f"{name} /metrics\n{process.log_tail()}",
    )
    return process, port, metrics_port


Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def series(exposition: str) -> Series:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        # The command line turns ``*_created`` off (cli/_main.py); this test process not.
        if sample.name.startswith("handshake_") and not sample.name.endswith("_created")
    }


def scrape(port: int) -> Series:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return series(response.read().decode())
