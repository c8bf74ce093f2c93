"""SQL text of the SQLite ledger: the shared statements, and SQLite's own."""

from __future__ import annotations

from collections.abc import Sequence

from .._pending_counts import BUCKET_SECONDS
from .._rows import RECORD_COLUMNS
from .._sql import SharedStatements
from ._group_commit import MAX_BATCH

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

        # Parameters: the digests. Those of them that an early outcome awaits, of a list of
        # :data:`_TOKEN_LIST_SIZES` digests (see awaited_tokens).
        e = self.early_outcomes_table
        self._awaited_tokens = {
            size: f"SELECT token_digest FROM {e} WHERE token_digest IN ({_marks(size)})"
            for size in _TOKEN_LIST_SIZES
        }

        # Parameters: before, limit. The finished_at index gives the oldest rows first.
        self.prune = (
            f"DELETE FROM {h} WHERE handoff_id IN ("
            f"  SELECT handoff_id FROM {h} WHERE state = 'finished' AND finished_at < ?"
            "  ORDER BY finished_at LIMIT ?) RETURNING handoff_id"
        )
        # Parameters: claimant, until, now, now, limit, first check delay, first check
        # before, now, limit, limit (see ``check_scheduled_where``).
        self.claim_checks = (
            f"UPDATE {h} SET claimed_by = ?, claim_until = ? WHERE handoff_id IN ("
            "  SELECT handoff_id FROM ("
            f"    SELECT * FROM (SELECT handoff_id, next_check_at AS due FROM {h}"
            f"      WHERE {self.check_scheduled_where} ORDER BY next_check_at LIMIT ?)"
            "    UNION ALL"
            f"    SELECT * FROM (SELECT handoff_id, started_at + ? AS due FROM {h}"
            f"      WHERE {self.check_unchecked_where} ORDER BY started_at LIMIT ?)"
            "  ) ORDER BY due LIMIT ?"
            f") RETURNING {RECORD_COLUMNS}"
        )

    def awaited_tokens(self, digests: Sequence[bytes]) -> tuple[str, list[bytes]]:
        """The query of which of ``digests`` (at most the largest of
        :data:`_TOKEN_LIST_SIZES`) an early outcome awaits, and its parameters: the list
        padded with its first digest to the next size."""
        size = next(s for s in _TOKEN_LIST_SIZES if s >= len(digests))
        return self._awaited_tokens[size], [*digests, *[digests[0]] * (size - len(digests))]


#: The lengths of the token lists queried, up to a batch's: a few statement texts, so that
#: they stay in the connection's statement cache (128 texts) beside the others.
_TOKEN_LIST_SIZES = (
    *(2**n for n in range(1, MAX_BATCH.bit_length()) if 2**n < MAX_BATCH),
    MAX_BATCH,
)


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


#: The statements (one set: SQLite tables are not qualified).
SQL = Statements()
