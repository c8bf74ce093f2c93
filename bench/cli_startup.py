"""How long ``handshake-obs --help`` takes, against starting Python and doing nothing.

Three commands, each run to the end as a new process with its output discarded:

* ``python -c pass``: the interpreter's own start and exit, the baseline;
* ``handshake-obs --help``: the console script installed beside this Python;
* ``python -m handshake_obs --help``: the same command through ``-m``.

The variants run interleaved: each round runs every variant once, in an order that rotates
from round to round (so that whatever running first or last costs falls on each in turn),
after an unreported warm-up of each and a short rest before every round. The report gives,
per variant, the median, the spread (interquartile range and extremes) and the median of the
per-round ratios to the baseline, and the machine's load averages before and after.

    .venv/bin/python -m bench.cli_startup [--rounds 30] [--warmup 3] [--pause 0.2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ._common import add_round_count_options, goal, machine_note, median, ratio, table

BASELINE = "python -c pass"
#: ``handshake-obs --help`` answers within this (the CLI's own target).
GOAL_SECONDS = 0.3


def variants() -> dict[str, list[str]]:
    """Variant name -> the command it runs."""
    script = Path(sys.executable).parent / "handshake-obs"
    if not script.exists():
        raise SystemExit(f"{script} is missing: install the package (pip install -e .)")
    return {
        BASELINE: [sys.executable, "-c", "pass"],
        "handshake-obs --help": [str(script), "--help"],
        "python -m handshake_obs --help": [sys.executable, "-m", "handshake_obs", "--help"],
    }


def run_once(argv: Sequence[str]) -> float:
    """Seconds from starting ``argv`` to its exit."""
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def interleaved(
    commands: dict[str, list[str]], *, rounds: int, warmup: int, pause: float
) -> dict[str, list[float]]:
    """Seconds of each variant in each round (``rounds`` values per variant)."""
    names = list(commands)
    for _ in range(warmup):
        for name in names:
            run_once(commands[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        time.sleep(pause)
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(run_once(commands[name]))
    return times


def report(times: dict[str, list[float]]) -> str:
    """The Markdown table of the run."""
    baseline = times[BASELINE]
    rows = []
    for name, values in times.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        per_round = [ratio(value, base) for value, base in zip(values, baseline, strict=True)]
        rows.append(
            [
                name,
                median(values),
                f"{q1:.3f} .. {q3:.3f}",
                f"{min(values):.3f} .. {max(values):.3f}",
                median(per_round),
                median(values) - median(baseline),
            ]
        )
    headers = [
        "command",
        "median s",
        "IQR s",
        "min .. max s",
        "ratio to baseline",
        "over baseline s",
    ]
    return table(headers, rows)


def load() -> str:
    """The load averages, as ``uptime`` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cli_startup", description=__doc__.split("\n\n")[0]
    )
    add_round_count_options(
        parser,
        rounds=30,
        warmup=3,
        warmup_help="unreported runs of each variant before the rounds",
        pause=0.2,
    )
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    args = parse_args(argv)
    commands = variants()
    print(f"CLI start-up: {args.rounds} interleaved rounds of {len(commands)} commands")
    print(f"machine: {machine_note()}")
    print(f"before: {load()}")
    times = interleaved(commands, rounds=args.rounds, warmup=args.warmup, pause=args.pause)
    print(f"after:  {load()}")
    print()
    print(report(times))
    print()
    slowest = max(median(times[name]) for name in commands if name != BASELINE)
    print(
        f"goal: --help within {GOAL_SECONDS} s (median, both ways): {goal(slowest <= GOAL_SECONDS)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
