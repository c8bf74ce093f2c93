"""A real Prometheus (Debian ``prometheus``) on a free port, with a config of the test's own."""

from __future__ import annotations

import math
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .binaries import prometheus
from .ports import free_port
from .processes import ManagedProcess, answers, http_json, wait_until


@dataclass(frozen=True)
class ScrapeJob:
    """A static scrape job."""

    name: str
    targets: Sequence[str]


def prometheus_config(
    jobs: Sequence[ScrapeJob], *, rule_files: Sequence[Path] = (), alertmanager: str | None = None
) -> dict[str, Any]:
    """Scrape and evaluate every second, so a short run is a long history."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job.name, "static_configs": [{"targets": list(job.targets)}]}
            for job in jobs
        ],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


class Prometheus:
    """Query API of a running Prometheus."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant vector query; returns the result list (raises if Prometheus refuses)."""
        answer = http_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", f"{expr!r}: {answer}"
        data = answer["data"]
        assert data["resultType"] == "vector", f"{expr!r} is not an instant vector: {data}"
        return list(data["result"])

    def finite_values(self, expr: str) -> list[float]:
        """The sample values of ``expr`` that are numbers (not NaN, not infinite)."""
        values = [float(sample["value"][1]) for sample in self.query(expr)]
        return [v for v in values if math.isfinite(v)]

    def exemplars(self, expr: str, *, window: float = 600) -> list[dict[str, Any]]:
        """Exemplars of the series ``expr`` selects over the last ``window`` seconds."""
        now = time.time()
        query = urllib.parse.urlencode({"query": expr, "start": now - window, "end": now})
        answer = http_json(f"{self.url}/api/v1/query_exemplars?{query}")
        assert answer["status"] == "success", answer
        return [e for series in answer["data"] for e in series["exemplars"]]

    def label_values(self, label: str, match: str) -> list[str]:
        query = urllib.parse.urlencode({"match[]": match})
        answer = http_json(f"{self.url}/api/v1/label/{label}/values?{query}")
        assert answer["status"] == "success", answer
        return list(answer["data"])

    def rule_health(self) -> list[dict[str, Any]]:
        """Every loaded rule with its ``health`` and ``lastError``."""
        answer = http_json(f"{self.url}/api/v1/rules")
        return [rule for group in answer["data"]["groups"] for rule in group["rules"]]

    def targets(self) -> list[dict[str, Any]]:
        return list(http_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"])


@contextmanager
def running_prometheus(work_dir: Path, config: dict[str, Any]) -> Iterator[Prometheus]:
    """Prometheus with ``config`` until the block ends; exemplar storage on, as in compose."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    process = ManagedProcess(
        "prometheus",
        [
            prometheus(),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={work_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--log.level=warn",
        ],
        log_dir=work_dir,
    )
    server = Prometheus(process, port)

    def ready() -> bool:
        process.assert_running()
        return answers(f"{server.url}/-/ready")

    try:
        wait_until(ready, timeout=30, what=lambda: f"Prometheus to be ready\n{process.log_tail()}")
        yield server
    finally:
        process.stop()
