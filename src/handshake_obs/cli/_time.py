"""Durations and instants as an operator writes and reads them, in every command.

One format both ways: ``parse_duration`` reads ``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` or
a plain number of seconds; ``format_duration`` writes whole seconds in at most two units
(``42s``, ``12m05s``, ``3h07m``, ``2d04h``), which ``parse_duration`` reads back.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
from datetime import datetime

#: Unit letter -> seconds, largest first.
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` or a plain number of seconds."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _PART.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration (e.g. 90s, 15m, 2h, 1d, 1h30m)"
            ) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration")
    return seconds


def format_duration(seconds: float) -> str:
    """Whole seconds (none below zero) in the two largest units that apply: ``42s``,
    ``12m05s``, ``3h07m``, ``2d04h``; the smaller units are dropped, not rounded."""
    whole = max(0, round(seconds))
    for (unit, size), (smaller, smaller_size) in itertools.pairwise(_UNITS.items()):
        if whole >= size:
            return f"{whole // size}{unit}{whole % size // smaller_size:02d}{smaller}"
    return f"{whole}s"


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time with a timezone, e.g. ``2026-11-23T12:00:00Z``."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-23T12:00:00Z)"
        ) from None
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone (e.g. a trailing Z)")
    return instant
