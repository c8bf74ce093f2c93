"""A look inside a ledger's store, past its interface: what the tests count and check.

SQLite and PostgreSQL ledgers are read with direct SQL on a connection of our own; the
in-memory ledger through its tables. Nothing here goes through the ``Ledger`` interface, so
the checks do not depend on what they check.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg

from handshake_obs._vocabulary import State
from handshake_obs.ledger import Ledger, MemoryLedger, PostgresLedger, SqliteLedger
from handshake_obs.ledger._pending_counts import bucket_of
from handshake_obs.ledger.postgres._statements import table_prefix

from .postgres import POSTGRES_URL

#: A pending count's key: target and start-time bucket.
Key = tuple[str, int]

#: What an open handoff counts as in :func:`count_outcomes`.
PENDING = State.PENDING.value


@dataclass(frozen=True, slots=True, order=True)
class OutcomeCount:
    """Number of handoffs of one target in one state/outcome (``pending`` for open ones)."""

    target: str
    outcome: str
    count: int


@dataclass(frozen=True, slots=True)
class SideTables:
    """What a ledger keeps besides its handoffs."""

    #: Every in-flight call mark: (handoff id, call id).
    calls_in_flight: frozenset[tuple[str, str]]
    #: The token digest of every kept early outcome.
    early_outcomes: frozenset[bytes]
    #: Marks whose handoff has finished: a finished handoff must keep none.
    marks_of_finished: frozenset[tuple[str, str]]
    #: Early outcomes whose token is recorded: applied ones must be gone.
    early_of_recorded: frozenset[bytes]

    def marks_of(self, handoff_id: str) -> set[str]:
        """Call ids of the marks on one handoff."""
        return {call for handoff, call in self.calls_in_flight if handoff == handoff_id}


_COUNTS = "SELECT target, coalesce(outcome, 'pending'), COUNT(*) FROM {s}handoffs GROUP BY 1, 2"
_MARKS = "SELECT handoff_id, call_id FROM {s}calls_in_flight"
_EARLY = "SELECT token_digest FROM {s}early_outcomes"
_MARKS_OF_FINISHED = (
    "SELECT c.handoff_id, c.call_id FROM {s}calls_in_flight c "
    "JOIN {s}handoffs h ON h.handoff_id = c.handoff_id WHERE h.state = 'finished'"
)
_KEPT_COUNTS = "SELECT target, bucket, pending FROM {s}pending_counts"  # one row per shard
_PENDING_STARTS = "SELECT target, started_at FROM {s}handoffs WHERE state = 'pending'"
_EARLY_OF_RECORDED = (
    "SELECT e.token_digest FROM {s}early_outcomes e "
    "JOIN {s}handoffs h ON h.token_digest = e.token_digest"
)


async def count_outcomes(ledger: Ledger) -> list[OutcomeCount]:
    """Handoffs per target and outcome (``pending`` for open ones), sorted by both."""
    if isinstance(ledger, MemoryLedger):
        tables = ledger._tables
        counts = Counter(
            (r.target, r.outcome.value if r.outcome else PENDING) for r in tables.handoffs.values()
        )
        rows: list[tuple[Any, ...]] = [(t, o, n) for (t, o), n in counts.items()]
    else:
        (rows,) = await _query(ledger, _COUNTS)
    return sorted(OutcomeCount(t, o, int(n)) for t, o, n in rows)


async def side_tables(ledger: Ledger) -> SideTables:
    """The ledger's in-flight marks and kept early outcomes, as stored now."""
    if isinstance(ledger, MemoryLedger):
        tables = ledger._tables
        marks = {
            (handoff, call) for handoff, calls in tables.calls_in_flight.items() for call in calls
        }
        early = set(tables.early_outcomes)
        return SideTables(
            calls_in_flight=frozenset(marks),
            early_outcomes=frozenset(early),
            marks_of_finished=frozenset(
                (handoff, call)
                for handoff, call in marks
                if handoff in tables.handoffs and not tables.handoffs[handoff].is_pending
            ),
            early_of_recorded=frozenset(d for d in early if d in tables.ids_by_digest),
        )
    marks_rows, early_rows, finished_rows, recorded_rows = await _query(
        ledger, _MARKS, _EARLY, _MARKS_OF_FINISHED, _EARLY_OF_RECORDED
    )
    return SideTables(
        calls_in_flight=frozenset((h, c) for h, c in marks_rows),
        early_outcomes=frozenset(bytes(d) for (d,) in early_rows),
        marks_of_finished=frozenset((h, c) for h, c in finished_rows),
        early_of_recorded=frozenset(bytes(d) for (d,) in recorded_rows),
    )


async def pending_counts(ledger: Ledger) -> tuple[Counter[Key], Counter[Key]]:
    """The pending counts the ledger keeps (summed over shards, zeros left out), and the
    same counted here from its pending rows, both per (target, start-time bucket)."""
    if isinstance(ledger, MemoryLedger):
        tables = ledger._tables
        kept_rows: list[tuple[Any, ...]] = [
            (t, b, n) for (t, b), n in tables.pending_counts.items()
        ]
        starts: list[tuple[Any, ...]] = [
            (r.target, r.started_at) for r in tables.handoffs.values() if r.is_pending
        ]
    else:
        kept_rows, starts = await _query(ledger, _KEPT_COUNTS, _PENDING_STARTS)
    kept: Counter[Key] = Counter()
    for target, bucket, n in kept_rows:
        # Each handoff leaves the shard it entered: no row of a shard counts below zero.
        assert int(n) >= 0, f"a pending count below zero: {target} {bucket} {n}"
        kept[(target, int(bucket))] += int(n)
    recounted = Counter((target, bucket_of(started)) for target, started in starts)
    # Zeros are left out; a count below zero stays (it is drift).
    return Counter({key: n for key, n in kept.items() if n}), recounted


async def assert_side_tables_consistent(ledger: Ledger) -> SideTables:
    """No in-flight mark outlives its handoff's finish; no applied early outcome is kept;
    the pending counts are those of the pending rows."""
    tables = await side_tables(ledger)
    assert tables.marks_of_finished == frozenset(), "finished handoffs keep in-flight marks"
    assert tables.early_of_recorded == frozenset(), "applied early outcomes are still kept"
    kept, recounted = await pending_counts(ledger)
    assert kept == recounted, "the pending counts differ from the pending rows"
    return tables


async def _query(ledger: Ledger, *queries: str) -> list[list[tuple[Any, ...]]]:
    """The rows of each query (``{s}`` is the table prefix) on the ledger's own store."""
    if isinstance(ledger, SqliteLedger):
        return await asyncio.to_thread(_sqlite_query, ledger, queries)
    if isinstance(ledger, PostgresLedger):
        prefix = table_prefix(ledger.schema)
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            results = []
            for query in queries:
                cur = await conn.execute(query.format(s=prefix))
                results.append(list(await cur.fetchall()))
            return results
    raise TypeError(f"no way to look inside a {type(ledger).__name__}")


def _sqlite_query(ledger: SqliteLedger, queries: tuple[str, ...]) -> list[list[tuple[Any, ...]]]:
    conn = sqlite3.connect(ledger.path)
    try:
        return [conn.execute(query.format(s="")).fetchall() for query in queries]
    finally:
        conn.close()
