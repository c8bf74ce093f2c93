"""SQL text of the PostgreSQL ledger: the shared statements, and PostgreSQL's own.

Every table name is qualified with the ledger's schema when one is configured, so nothing
depends on the connection's ``search_path`` (which poolers such as PgBouncer do not carry).
"""

from __future__ import annotations

from .._pending_counts import BUCKET_SECONDS, POSTGRES_SHARDS
from .._rows import HANDOFF_COLUMNS, RECORD_COLUMNS
from .._sql import SharedStatements

#: A pending handoff's bucket (:func:`~.._pending_counts.bucket_of`), in double precision.
BUCKET = f"floor(started_at / {BUCKET_SECONDS!r}::double precision)::bigint"
#: A pending handoff's shard (:func:`~.._pending_counts.shard_of`); mod(), as migrations
#: must not hold a percent sign.
SHARD = f"mod(ascii(right(handoff_id, 1)), {POSTGRES_SHARDS})"


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table_prefix(schema: str | None) -> str:
    """What qualifies a table name in ``schema`` (nothing: the connection's search_path)."""
    return f"{quote_identifier(schema)}." if schema else ""


class Statements(SharedStatements):
    """The ledger's statements for one schema (None: the connection's search_path)."""

    def __init__(self, schema: str | None) -> None:
        super().__init__(
            placeholder="%s",
            bucket=BUCKET,
            shard=SHARD,
            bucket_seconds=f"{BUCKET_SECONDS!r}::double precision",
            prefix=table_prefix(schema),
        )
        #: The schema as a quoted identifier (None: the connection's search_path).
        self.schema = quote_identifier(schema) if schema else None
        #: What qualifies the name of each table and function (``"name".`` or nothing).
        self.prefix = table_prefix(schema)
        h = self.handoffs_table

        #: The shared insert as written, for the record function (``_record_function``).
        self.insert_unless_recorded = self.insert
        # One round trip: the stored row comes back with the insert.
        self.insert += f" RETURNING {RECORD_COLUMNS}"
        # Bulk loading of new rows (see ledger/_bulk_insert.py): the columns of the insert.
        self.copy_new = f"COPY {h} ({', '.join(HANDOFF_COLUMNS)}) FROM STDIN"
        self.lock_digest = "SELECT pg_advisory_xact_lock(%s)"
        self.lock_handoff = f"SELECT 1 FROM {h} WHERE handoff_id = %s FOR UPDATE"
        # The row stays locked until the progress is written: reports queue, none is lost.
        self.progress_of += " FOR UPDATE"
        # A finish in progress holds the row: the mark waits, then sees the handoff finished.
        self.mark_call += " FOR SHARE"

        claimed = ", ".join(f"h.{c}" for c in RECORD_COLUMNS.split(", "))
        # Parameters: now, now, limit, claimant, until. The CTE locks the rows it picks and
        # skips rows another claimant is locking right now; MATERIALIZED keeps it evaluated
        # once, so LIMIT bounds what is claimed.
        self.claim = (
            "WITH picked AS MATERIALIZED ("
            f"  SELECT handoff_id FROM {h}"
            "   WHERE state = 'pending' AND deadline IS NOT NULL AND deadline <= %s"
            "     AND (claim_until IS NULL OR claim_until < %s)"
            "   ORDER BY deadline LIMIT %s FOR UPDATE SKIP LOCKED"
            f") UPDATE {h} AS h SET claimed_by = %s, claim_until = %s FROM picked "
            f"WHERE h.handoff_id = picked.handoff_id RETURNING {claimed}"
        )
        # Parameters: the pruned handoffs' ids.
        self.prune_events = (
            f"DELETE FROM {table_prefix(schema)}handoff_events WHERE handoff_id = ANY(%s)"
        )
        # Parameters: before, limit. By physical row address, the cheapest way to delete a
        # bounded batch; rows another transaction is locking are left for the next batch.
        self.prune = (
            f"DELETE FROM {h} WHERE ctid IN ("
            f"  SELECT ctid FROM {h} WHERE state = 'finished' AND finished_at < %s"
            "   ORDER BY finished_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING handoff_id"
        )
        # Parameters: now, now, limit, first check delay, first check before, now, limit,
        # limit, claimant, until (see ``check_scheduled_where``); as the reaper's claim, rows
        # another replica is claiming are skipped. The rows each kind locks and the merge
        # leaves out stay locked only until this statement commits.
        self.claim_checks = (
            "WITH scheduled AS MATERIALIZED ("
            f"  SELECT handoff_id, next_check_at AS due FROM {h}"
            f"   WHERE {self.check_scheduled_where}"
            "   ORDER BY next_check_at LIMIT %s FOR UPDATE SKIP LOCKED"
            "), unchecked AS MATERIALIZED ("
            f"  SELECT handoff_id, started_at + %s AS due FROM {h}"
            f"   WHERE {self.check_unchecked_where}"
            "   ORDER BY started_at LIMIT %s FOR UPDATE SKIP LOCKED"
            "), picked AS MATERIALIZED ("
            "  SELECT handoff_id FROM (SELECT * FROM scheduled UNION ALL SELECT * FROM unchecked)"
            "   AS due_checks ORDER BY due LIMIT %s"
            f") UPDATE {h} AS h SET claimed_by = %s, claim_until = %s FROM picked "
            f"WHERE h.handoff_id = picked.handoff_id RETURNING {claimed}"
        )
        pc = self.pending_counts_table
        # Rows a writer is changing are left for the next prune (and never waited for: a
        # writer holding another count row may be waiting for this one).
        self.drop_empty_counts = (
            f"DELETE FROM {pc} WHERE ctid IN ("
            f"  SELECT ctid FROM {pc} WHERE pending = 0 FOR UPDATE SKIP LOCKED)"
        )
        #: First statement of a snapshot read: every query of it sees the same commits.
        self.snapshot = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        # The snapshot's estimated cost grows with the targets and can pass jit_above_cost:
        # compiling it then took 600 ms, for a statement that runs in a few.
        self.no_jit = "SET LOCAL jit = off"
        # The counts' writers wait while a repair rebuilds them (reads go on).
        self.lock_counts = f"LOCK TABLE {pc} IN EXCLUSIVE MODE"
