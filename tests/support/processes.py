"""Child processes of a test: free ports, polling, clean stops, and their logs on failure."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def http_get(url: str, *, timeout: float = 5.0, accept: str | None = None) -> bytes:
    """GET ``url`` (always on 127.0.0.1) and return the body; raises on HTTP errors."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return bytes(response.read())


def http_json(url: str, *, timeout: float = 5.0) -> Any:
    return json.loads(http_get(url, timeout=timeout))


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 right now."""
    try:
        http_get(url, timeout=1.0)
    except (OSError, urllib.error.URLError):
        return False
    return True


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str | Callable[[], str],
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``.

    ``what`` may be a callable, evaluated on failure (e.g. to include a log's last lines).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {described}")
        time.sleep(interval)


class ManagedProcess:
    """A child process whose output goes to a log file, stopped by signal then killed."""

    def __init__(self, name: str, argv: list[str], *, log_dir: Path, **popen: Any) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, **popen)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- last lines of {self.name} ({self.log_path}) ---\n" + "\n".join(text[-lines:])

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"{self.name} exited with {code}\n{self.log_tail()}"

    def kill(self) -> None:
        """SIGKILL: a crash, not a stop."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
