"""The pending snapshot as a full scan of the pending rows: the baseline of the snapshot.

This is the query the ledgers ran before they kept pending counts. The benchmarks time it
beside ``Ledger.pending_summary`` in the same run, and check that both say the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handshake_obs.ledger import age_bucket_labels

#: A target's snapshot as both sides are compared: target, count, oldest start, and the
#: count in each age bucket (by its label).
Snapshot = tuple[str, int, float | None, dict[str, int]]


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


def summaries(rows: Sequence[Sequence[Any]], age_bounds: Sequence[float]) -> list[Snapshot]:
    """The full scan's rows as snapshots, by target (younger-than-each-bound counts turned
    into the disjoint age buckets the ledger reports)."""
    snapshots = []
    for target, total, oldest, *younger in sorted(rows, key=lambda r: str(r[0])):
        cumulative = [int(n or 0) for n in younger]
        disjoint = [b - a for a, b in zip([0, *cumulative], [*cumulative, int(total)], strict=True)]
        labels = age_bucket_labels(age_bounds)
        snapshots.append(
            (str(target), int(total), oldest, dict(zip(labels, disjoint, strict=True)))
        )
    return snapshots


def snapshots_of(summaries: Sequence[Any]) -> list[Snapshot]:
    """``Ledger.pending_summary``'s answer as snapshots."""
    return [(s.target, s.pending, s.oldest_started_at, dict(s.by_age)) for s in summaries]
