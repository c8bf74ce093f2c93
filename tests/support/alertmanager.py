"""A real Alertmanager (Debian ``prometheus-alertmanager``) and a webhook receiver in the test.

The shipped ``deploy/alertmanager/alertmanager.yml`` keeps its routes and inhibition rules;
:func:`config_for_test` only points every receiver at the test's webhook and shortens the
waits, so the test exercises the routing users deploy.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from .binaries import alertmanager
from .ports import free_port
from .processes import ManagedProcess, answers, http_json, wait_until

#: Waits of the test's routing tree: notify within a second, repeat every two.
TEST_TIMINGS = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "2s"}


@dataclass(frozen=True)
class Notification:
    """One webhook call from Alertmanager."""

    receiver: str
    received_at: float
    payload: dict[str, Any]

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return list(self.payload["alerts"])


class WebhookReceiver:
    """Records every POST; the path names the receiver (``/pager``, ``/tickets``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notifications: list[Notification] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                with receiver._lock:
                    receiver._notifications.append(
                        Notification(self.path.strip("/"), time.monotonic(), payload)
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test asserts on what was received."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    def firing(self, alertname: str) -> list[tuple[Notification, dict[str, Any]]]:
        """Every (notification, alert) pair in which ``alertname`` was firing."""
        return [
            (n, a)
            for n in self.notifications()
            for a in n.alerts
            if a["labels"].get("alertname") == alertname and a["status"] == "firing"
        ]


def config_for_test(shipped: dict[str, Any], webhook_url: str) -> dict[str, Any]:
    """``shipped`` with every receiver posting to ``webhook_url/<receiver>`` and short waits."""
    config = copy.deepcopy(shipped)
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [
                {"url": f"{webhook_url}/{receiver['name']}", "send_resolved": True}
            ],
        }
        for receiver in config["receivers"]
    ]
    _shorten(config["route"], root=True)
    return config


def _shorten(route: dict[str, Any], *, root: bool) -> None:
    for key, value in TEST_TIMINGS.items():
        if root or key in route:
            route[key] = value
    for child in route.get("routes", []):
        _shorten(child, root=False)


class Alertmanager:
    """API of a running Alertmanager."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"

    def alerts(self, alertname: str) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds under ``alertname``, with their ``status``."""
        return [
            alert
            for alert in http_json(f"{self.url}/api/v2/alerts")
            if alert["labels"].get("alertname") == alertname
        ]


@contextmanager
def running_alertmanager(work_dir: Path, config: dict[str, Any]) -> Iterator[Alertmanager]:
    """Alertmanager with ``config`` on a free port, without clustering, until the block ends."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    process = ManagedProcess(
        "alertmanager",
        [
            alertmanager(),
            f"--config.file={config_path}",
            f"--storage.path={work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        log_dir=work_dir,
    )
    server = Alertmanager(process, port)

    def ready() -> bool:
        process.assert_running()
        return answers(f"{server.url}/-/ready")

    try:
        wait_until(
            ready, timeout=30, what=lambda: f"Alertmanager to be ready\n{process.log_tail()}"
        )
        yield server
    finally:
        process.stop()
