"""``handshake-obs dev`` as a new user meets it: started by the installed console script from
a directory that is not the repository (as after ``pip install 'handshake-obs[dev]'``),
with a PATH that does not hold the virtualenv (as after ``scripts/dev``). Every URL the banner
prints answers; the README lists the same pages; Prometheus loads the rules the package ships
(with each alert's ``status_url`` on this stack's sidecar); the commands the banner suggests
run as printed."""

from __future__ import annotations

import functools
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from .support.binaries import prometheus
from .support.ports import free_port
from .support.processes import ManagedProcess, http_json, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BANNER_LINE = re.compile(r"^  (\S.*?)\s{2,}(http://\S+)$")


def banner_urls(log: str) -> dict[str, str]:
    """The ``name  URL`` lines of the banner."""
    found: dict[str, str] = {}
    for line in log.splitlines():
        if match := BANNER_LINE.match(line):
            found[match.group(1).strip()] = match.group(2)
    return found


def readme_urls() -> dict[str, str]:
    """The ``| what | where |`` table of the README's quickstart."""
    rows = re.findall(
        r"^\| ([^|]+?) \| (http://\S+) \|$", (PROJECT_ROOT / "README.md").read_text(), re.M
    )
    return dict(rows)


def test_dev_from_outside_the_repository_prints_urls_that_answer_and_loads_the_shipped_rules(
    tmp_path: Path,
) -> None:
    prometheus()  # a missing Prometheus fails the test (scripts/setup installs it)
    script = Path(sys.executable).parent / "handshake-obs"
    assert script.exists(), script
    ports = {name: free_port() for name in (
        "temporal", "temporal-ui", "metrics", "sdk-metrics", "demo", "prometheus", "alertmanager"
    )}  # fmt: skip
    argv = [str(script), "dev", "--state-dir", str(tmp_path / "state"), "--seed", "3"]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != script.parent
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDSHAKE_")}
    env |= {"PATH": path, "HANDSHAKE_METRICS_REFRESH_SECONDS": "1"}
    process = ManagedProcess("dev", argv, log_dir=tmp_path, cwd=tmp_path, env=env)
    try:

        def banner_printed() -> bool:
            process.assert_running()
            return "  try:" in process.log_path.read_text()

        wait_until(
            banner_printed,
            timeout=120,
            what=lambda: f"the banner of handshake-obs dev\n{process.log_tail()}",
        )
        log = process.log_path.read_text()
        urls = banner_urls(log)
        for name in ("status page", "metrics", "API (OpenAPI)", "Temporal UI",
                     "Prometheus (alerts)", "Alertmanager (API)"):  # fmt: skip
            assert name in urls, f"the banner has no {name!r}: {urls}"
        for name, url in urls.items():
            wait_until(
                functools.partial(_answers_200, url),
                timeout=60,
                what=f"{name} at {url} to answer 200",
            )
        assert urls["Prometheus (alerts)"].endswith("/classic/alerts")

        # The README lists the same pages, at the default ports.
        listed = readme_urls()
        for name, url in listed.items():
            assert name in urls, f"README lists {name!r}, the banner does not: {sorted(urls)}"
            assert _path(url) == _path(urls[name]), (name, url, urls[name])

        # Prometheus runs the packaged rules, linking to this stack's status page.
        rules = http_json(f"http://127.0.0.1:{ports['prometheus']}/api/v1/rules")
        alerts = [r for g in rules["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"]
        assert len(alerts) >= 10, rules
        stuck = next(a for a in alerts if a["name"] == "HandshakeHandoffsStuck")
        assert stuck["annotations"]["status_url"].startswith(
            f"http://127.0.0.1:{ports['metrics']}/?state=pending"
        )

        # The commands the banner suggests run as printed (the first one; the second needs a
        # handoff id the reader picks).
        suggestion = next(line for line in log.splitlines() if line.startswith("  try:"))
        command = suggestion.removeprefix("  try:").strip()
        assert shlex.split(command)[1] == str(script), command  # not on PATH: its full path
        run = subprocess.run(
            ["bash", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(("HANDOFF", "No pending handoff")), run.stdout
    finally:
        process.stop(signal.SIGINT)


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
