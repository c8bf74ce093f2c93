"""The pending snapshot as a full scan of the pending rows: the baseline of the snapshot.

This is the query the ledgers ran before they kept pending counts. The benchmarks time it
beside ``Ledger.pending_summary`` in the same run, and check that both say the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handshake_obs._records import PendingSummary
from handshake_obs.ledger._rows import summary_from_row


def full_scan_sql(placeholder: str, bounds: int, *, table: str = "handoffs") -> str:
    """Count, oldest start and cumulative counts of ``bounds`` age bounds, per target."""
    cumulative = "".join(
        f", SUM(CASE WHEN started_at >= {placeholder} THEN 1 ELSE 0 END)" for _ in range(bounds)
    )
    return (
        f"SELECT target, COUNT(*), MIN(started_at){cumulative} FROM {table} "  # noqa: S608 - a fixed benchmark query
        "WHERE state = 'pending' GROUP BY target"
    )


def full_scan_params(now: float, age_bounds: Sequence[float]) -> tuple[float, ...]:
    """The thresholds of the bounds at ``now``."""
    return tuple(now - b for b in age_bounds)


def summaries(rows: Sequence[Sequence[Any]], age_bounds: Sequence[float]) -> list[PendingSummary]:
    """The full scan's rows as the ledger's summaries, by target."""
    return [summary_from_row(row, age_bounds) for row in sorted(rows, key=lambda r: str(r[0]))]
