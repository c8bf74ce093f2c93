"""Prometheus and Alertmanager for the local stack, when their Debian packages are installed.

Each runs as a child process on 127.0.0.1 with its state under the stack's state directory,
scrapes the sidecar (and the Temporal SDK's metrics) with the project's alert rules, so
alerts can be seen firing. A missing binary or a busy port is reported and skipped: the rest
of the stack runs without it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog

_log = structlog.get_logger("handshake_obs.dev")

ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
#: The rendered rule file of the stack (in the state directory).
RULES_FILE = "handshake-obs.rules.yml"


@dataclass(frozen=True, slots=True)
class Observability:
    """The child processes started, and where they listen."""

    processes: tuple[asyncio.subprocess.Process, ...]
    urls: dict[str, str]

    async def stop(self) -> None:
        """Terminate the children and wait for them."""
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def start_observability(
    state_dir: Path,
    *,
    sidecar: str,
    sdk_metrics: str,
    rules_dir: Path | None,
    prometheus_port: int,
    alertmanager_port: int,
) -> Observability:
    """Start Alertmanager, then Prometheus, where installed and their ports are free.

    ``rules_dir`` None loads the rules this package ships (wherever it is installed), with
    each alert's ``status_url`` pointing at this stack's sidecar."""
    processes: list[asyncio.subprocess.Process] = []
    urls: dict[str, str] = {}
    alertmanager = next(filter(None, map(shutil.which, ALERTMANAGER_BINARIES)), None)
    alertmanager_address = f"127.0.0.1:{alertmanager_port}"
    if alertmanager and _port_free(alertmanager_port):
        directory = _prepared(
            state_dir / "alertmanager", "alertmanager.yml", _alertmanager_config()
        )
        config = directory / "alertmanager.yml"
        processes.append(
            await _spawn(
                alertmanager,
                f"--config.file={config}",
                f"--web.listen-address={alertmanager_address}",
                "--cluster.listen-address=",
                f"--storage.path={directory / 'data'}",
                log=directory / "alertmanager.log",
            )
        )
        # Debian's Alertmanager has no web UI: its API lists what reached it.
        urls["Alertmanager (API)"] = f"http://{alertmanager_address}/api/v2/alerts"
    else:
        _log.info("alertmanager not started", installed=bool(alertmanager), port=alertmanager_port)
    prometheus = shutil.which("prometheus")
    if prometheus and _port_free(prometheus_port):
        rules = _rule_files(rules_dir) if rules_dir else [_packaged_rules(state_dir, sidecar)]
        text = _prometheus_config(
            sidecar=sidecar,
            sdk_metrics=sdk_metrics,
            rules=rules,
            alertmanager=alertmanager_address if "Alertmanager (API)" in urls else None,
        )
        directory = _prepared(state_dir / "prometheus", "prometheus.yml", text)
        config = directory / "prometheus.yml"
        processes.append(
            await _spawn(
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--enable-feature=exemplar-storage",
                log=directory / "prometheus.log",
            )
        )
        # Debian's Prometheus 2.42 serves the classic UI: /alerts is a 404 there.
        urls["Prometheus (alerts)"] = f"http://127.0.0.1:{prometheus_port}/classic/alerts"
    else:
        _log.info("prometheus not started", installed=bool(prometheus), port=prometheus_port)
    return Observability(tuple(processes), urls)


def _prepared(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return directory


def _packaged_rules(state_dir: Path, sidecar: str) -> Path:
    """The shipped rules, rendered into the state directory with this stack's status page."""
    from ..artifacts import RuleSettings, render  # noqa: PLC0415 - needs PyYAML (dev extra)

    text = render(RuleSettings(status_url=f"http://{sidecar}/"))
    return _prepared(state_dir / "rules", RULES_FILE, text) / RULES_FILE


def _rule_files(rules_dir: Path) -> list[Path]:
    rules = sorted(rules_dir.glob("*.yml")) + sorted(rules_dir.glob("*.yaml"))
    if not rules:
        _log.warning("no alert rules found; Prometheus runs without them", rules=str(rules_dir))
    return rules


def _prometheus_config(
    *, sidecar: str, sdk_metrics: str, rules: list[Path], alertmanager: str | None
) -> str:
    # JSON is YAML: no YAML library needed to write it.
    config: dict[str, object] = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(r.resolve()) for r in rules],
        "scrape_configs": [
            {"job_name": "handshake-obs", "static_configs": [{"targets": [sidecar]}]},
            {"job_name": "temporal-sdk", "static_configs": [{"targets": [sdk_metrics]}]},
        ],
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return json.dumps(config, indent=2) + "\n"


def _alertmanager_config() -> str:
    return (
        json.dumps(
            {
                "route": {"receiver": "local", "group_by": ["alertname", "job"]},
                "receivers": [{"name": "local"}],
                "inhibit_rules": [
                    {
                        "source_matchers": ["severity=critical"],
                        "target_matchers": ["severity=warning"],
                        "equal": ["job"],
                    }
                ],
            },
            indent=2,
        )
        + "\n"
    )


async def _spawn(binary: str, *args: str, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        # Its own session: a Ctrl-C in the terminal reaches the stack, which stops its
        # children in order, rather than every process at once.
        return await asyncio.create_subprocess_exec(
            binary, *args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
