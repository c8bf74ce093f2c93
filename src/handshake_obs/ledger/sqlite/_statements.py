"""SQL text of the SQLite ledger: the shared statements, and SQLite's own."""

from __future__ import annotations

from .._pending_counts import BUCKET_SECONDS
from .._rows import RECORD_COLUMNS
from .._sql import SharedStatements

_QUOTIENT = f"(started_at / {BUCKET_SECONDS!r})"
#: A pending handoff's bucket (:func:`~.._pending_counts.bucket_of`): CAST truncates, so a
#: negative quotient with a fraction is one less (SQLite may be built without floor()).
BUCKET = (
    f"(CAST({_QUOTIENT} AS INTEGER) - "
    f"({_QUOTIENT} < 0 AND {_QUOTIENT} <> CAST({_QUOTIENT} AS INTEGER)))"
)


class Statements(SharedStatements):
    """The SQLite ledger's statements (``?`` placeholders, tables of the main database)."""

    def __init__(self) -> None:
        # Without statistics SQLite may read one target's pending handoffs through another
        # index of pending ones, walking them all: the snapshot names the index it needs.
        super().__init__(
            placeholder="?",
            bucket=BUCKET,
            shard="0",  # one writer: one shard (SQLITE_SHARDS)
            bucket_seconds=repr(BUCKET_SECONDS),
            by_target_hint=" INDEXED BY handoffs_pending_target_started",
        )
        h = self.handoffs_table
        # Parameters: claimant, until, now, now, limit. BEGIN IMMEDIATE holds the write
        # lock, so no other process claims these rows between the inner SELECT and the UPDATE.
        self.claim = (
            f"UPDATE {h} SET claimed_by = ?, claim_until = ? WHERE handoff_id IN ("
            f"  SELECT handoff_id FROM {h}"
            "  WHERE state = 'pending' AND deadline IS NOT NULL AND deadline <= ?"
            "    AND (claim_until IS NULL OR claim_until < ?)"
            "  ORDER BY deadline LIMIT ?"
            f") RETURNING {RECORD_COLUMNS}"
        )

        # Parameters: before, limit. The finished_at index gives the oldest rows first.
        self.prune = (
            f"DELETE FROM {h} WHERE handoff_id IN ("
            f"  SELECT handoff_id FROM {h} WHERE state = 'finished' AND finished_at < ?"
            "  ORDER BY finished_at LIMIT ?) RETURNING handoff_id"
        )
        # Parameters: claimant, until, now, first check before, now, first check delay, limit.
        self.claim_checks = (
            f"UPDATE {h} SET claimed_by = ?, claim_until = ? WHERE handoff_id IN ("
            f"  SELECT handoff_id FROM {h} WHERE {self.check_due_where}"
            "  ORDER BY COALESCE(next_check_at, started_at + ?) LIMIT ?"
            f") RETURNING {RECORD_COLUMNS}"
        )


#: The statements (one set: SQLite tables are not qualified).
SQL = Statements()
