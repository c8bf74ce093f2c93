"""The pending counts: how many handoffs are pending per target and start-time bucket.

The ledgers keep them in a table of their own (``pending_counts``), changed by the rules in
the transaction of every record and every finish (:class:`~._rules.CountPending`), so the
pending snapshot reads a few hundred aggregate rows instead of every pending handoff. A
bucket is :data:`BUCKET_SECONDS` of start times; the snapshot sums the buckets wholly inside
an age bound and counts the one bucket a bound cuts exactly, from the index on
``(target, started_at)`` of pending handoffs: its cost follows the handoffs started within
one bucket of each bound, never the backlog.

A count row is keyed by target, bucket and *shard* (from the handoff id's last character,
which SQL computes as this module does), so concurrent PostgreSQL writers of one target do
not all queue on one row: 50 writers recording into one bucket kept 0.48 of the records per
second of no counts at all with one shard, 0.85 with four, 0.80 with sixteen
(``bench.pending_count_shards``, docs/benchmarks.md section 3).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._records import HandoffRecord

#: Start times one bucket covers. Part of the schema: the migration that built the counts
#: used it, so changing it is a migration that rebuilds them.
BUCKET_SECONDS = 300.0
#: Shards per bucket: SQLite has one writer (one shard); PostgreSQL's writers spread over
#: several rows.
SQLITE_SHARDS = 1
POSTGRES_SHARDS = 4


def bucket_of(started_at: float) -> int:
    """The bucket of a start time: ``floor(started_at / BUCKET_SECONDS)``, the division as
    SQL computes it (IEEE double), so a bucket rebuilt in SQL is the one counted here."""
    return math.floor(started_at / BUCKET_SECONDS)


def bucket_start(bucket: int) -> float:
    """The earliest start time in ``bucket`` (exactly: the division's rounding can put a
    time just below ``bucket * BUCKET_SECONDS`` into it, or one just above out of it)."""
    start = bucket * BUCKET_SECONDS
    while bucket_of(start) >= bucket:
        below = math.nextafter(start, -math.inf)
        if bucket_of(below) < bucket:
            return start
        start = below
    while bucket_of(start) < bucket:
        start = math.nextafter(start, math.inf)
    return start


def shard_of(handoff_id: str, shards: int) -> int:
    """The shard a handoff is counted in: its id's last character's code point modulo
    ``shards`` (random in a real id; each dialect's ``SHARD`` expression is the same)."""
    return ord(handoff_id[-1]) % shards if shards > 1 and handoff_id else 0


class PendingChange(NamedTuple):
    """One handoff entering (``+1``: recorded) or leaving (``-1``: finished) the pending
    counts (a tuple: one is made per record, on the writer, and a frozen dataclass costs
    three times as much)."""

    target: str
    started_at: float
    handoff_id: str
    delta: int

    @classmethod
    def recorded(cls, record: HandoffRecord) -> PendingChange:
        """A handoff stored as pending."""
        return cls(record.target, record.started_at, record.handoff_id, 1)

    @classmethod
    def finished(cls, record: HandoffRecord) -> PendingChange:
        """A pending handoff finished."""
        return cls(record.target, record.started_at, record.handoff_id, -1)


#: One count row's change: target, bucket, shard, delta.
CountDelta = tuple[str, int, int, int]


def count_deltas(changes: Iterable[PendingChange], shards: int) -> list[CountDelta]:
    """The changes summed per count row, in key order, rows whose changes cancel left out.

    Applying them in key order means concurrent writers lock count rows in one order, so
    they never wait on each other in a cycle."""
    summed: dict[tuple[str, int, int], int] = {}  # not a Counter: its += on a new key is slower
    for change in changes:
        key = (change.target, bucket_of(change.started_at), shard_of(change.handoff_id, shards))
        summed[key] = summed.get(key, 0) + change.delta
    return [(t, b, s, d) for (t, b, s), d in sorted(summed.items()) if d]


@dataclass(frozen=True, slots=True)
class AgeCut:
    """Where one age bound cuts the start times at ``now``: handoffs started at or after
    ``threshold`` are younger than the bound. Buckets after ``bucket`` are wholly younger;
    ``bucket`` itself is counted exactly, from ``threshold`` to ``bucket_end``."""

    threshold: float
    bucket: int
    bucket_end: float


def age_cuts(now: float, age_bounds: Sequence[float]) -> list[AgeCut]:
    """The cut of each age bound, in the order of the bounds."""
    cuts = []
    for bound in age_bounds:
        threshold = now - bound
        bucket = bucket_of(threshold)
        cuts.append(AgeCut(threshold, bucket, bucket_start(bucket + 1)))
    return cuts


def bucket_totals(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, int], int]:
    """Rows ``target, bucket, [shard,] count`` summed per (target, bucket), zeros left out."""
    totals: Counter[tuple[str, int]] = Counter()
    for row in rows:
        totals[(str(row[0]), int(row[1]))] += int(row[-1])
    return {key: n for key, n in totals.items() if n}


@dataclass(frozen=True, slots=True)
class PendingCountMismatch:
    """A count that differs from a full recount of the pending handoffs."""

    target: str
    bucket: int
    counted: int
    recounted: int


def mismatches(
    counted: dict[tuple[str, int], int], recounted: dict[tuple[str, int], int]
) -> list[PendingCountMismatch]:
    """Every (target, bucket) where the kept counts and a recount differ, in key order."""
    return [
        PendingCountMismatch(target, bucket, counted.get(key, 0), recounted.get(key, 0))
        for key in sorted(counted.keys() | recounted.keys())
        for target, bucket in [key]
        if counted.get(key, 0) != recounted.get(key, 0)
    ]


def snapshot_params(cuts: Sequence[AgeCut]) -> tuple[float, ...]:
    """The parameters of the snapshot statement (``SharedStatements.pending_snapshot``)."""
    return (*(x for c in cuts for x in (c.threshold, c.bucket_end)), *(c.bucket for c in cuts))


def snapshot_rows(rows: Iterable[Sequence[Any]], cuts: int) -> list[tuple[Any, ...]]:
    """The snapshot statement's rows as the pending summary's (``target, count, oldest,
    cumulative counts...``), by target: each cut's count is that of the buckets after its
    own, and of its own from the threshold on."""
    summary = []
    for target, total, *rest in sorted(rows, key=lambda row: str(row[0])):
        after, oldest, within = rest[:cuts], rest[cuts], rest[cuts + 1 :]
        cumulative = [int(a) + int(w) for a, w in zip(after, within, strict=True)]
        summary.append((target, int(total), oldest, *cumulative))
    return summary
