"""SQL text of the PostgreSQL ledger.

Every table name is qualified with the ledger's schema when one is configured, so nothing
depends on the connection's ``search_path`` (which poolers such as PgBouncer do not carry).
"""

from __future__ import annotations

from .._rows import HANDOFF_COLUMNS, RECORD_COLUMNS, outcomes_since_query

#: Table holding the schema version (one row).
VERSION_TABLE = "handshake_schema_version"

#: First key of the advisory lock that serialises migrations (the second is the schema's hash).
MIGRATION_LOCK_CLASS = 0x48534F42

#: Schema migrations, in order; ``{s}`` is the schema prefix (``"name".`` or nothing).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE {s}handoffs (
        handoff_id TEXT PRIMARY KEY,
        task_token BYTEA NOT NULL,
        token_digest BYTEA NOT NULL,
        token_fingerprint TEXT NOT NULL,
        namespace TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        activity_id TEXT NOT NULL,
        activity_type TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        target TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        deadline DOUBLE PRECISION,
        state TEXT NOT NULL CHECK (state IN ('pending', 'finished')),
        outcome TEXT,
        finished_at DOUBLE PRECISION,
        error_type TEXT,
        error_message TEXT,
        progress TEXT,
        progress_sequence BIGINT,
        progress_at DOUBLE PRECISION,
        traceparent TEXT,
        tracestate TEXT,
        calls_in_flight INTEGER NOT NULL DEFAULT 0,
        calls_in_flight_until DOUBLE PRECISION,
        claimed_by TEXT,
        claim_until DOUBLE PRECISION
    );
    CREATE UNIQUE INDEX handoffs_token_digest ON {s}handoffs (token_digest);
    CREATE INDEX handoffs_pending_deadline ON {s}handoffs (deadline)
        WHERE state = 'pending' AND deadline IS NOT NULL;
    CREATE INDEX handoffs_pending_target_started ON {s}handoffs (target, started_at)
        WHERE state = 'pending';
    CREATE INDEX handoffs_activity ON {s}handoffs (namespace, workflow_id, activity_id, attempt);
    CREATE TABLE {s}early_outcomes (
        token_digest BYTEA PRIMARY KEY,
        outcome TEXT NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL,
        error_type TEXT,
        error_message TEXT
    );
    """,
    # 2: the inventory lists pending handoffs oldest first, and recent outcomes.
    """
    CREATE INDEX handoffs_pending_started ON {s}handoffs (started_at, handoff_id)
        WHERE state = 'pending';
    CREATE INDEX handoffs_finished_at ON {s}handoffs (finished_at) WHERE state = 'finished';
    """,
    # 3: one row per completion call in flight, each lapsing on its own (a count with one
    # shared expiry let a dead caller's mark be kept alive by the calls after it).
    """
    CREATE TABLE {s}calls_in_flight (
        handoff_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (handoff_id, call_id)
    );
    ALTER TABLE {s}handoffs DROP COLUMN calls_in_flight;
    ALTER TABLE {s}handoffs DROP COLUMN calls_in_flight_until;
    """,
)


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


class Statements:
    """The ledger's statements for one schema (None: the connection's search_path)."""

    def __init__(self, schema: str | None) -> None:
        self.schema = quote_identifier(schema) if schema else None
        s = f"{self.schema}." if self.schema else ""
        h = f"{s}handoffs"
        self.version_table = v = f"{s}{VERSION_TABLE}"
        self.migrations = tuple(script.format(s=s) for script in MIGRATIONS)
        self.lock_migrations = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
        self.schema_exists = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
        self.create_schema = f"CREATE SCHEMA {self.schema}"
        self.version_exists = "SELECT to_regclass(%s) IS NOT NULL"
        self.create_version = (
            f"CREATE TABLE {v} (single BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (single), "
            f"version INTEGER NOT NULL); INSERT INTO {v} (version) VALUES (0)"
        )
        self.get_version = f"SELECT version FROM {v}"
        self.set_version = f"UPDATE {v} SET version = %s"
        select = f"SELECT {RECORD_COLUMNS} FROM {h}"
        returning = f"RETURNING {RECORD_COLUMNS}"

        self.lock_digest = "SELECT pg_advisory_xact_lock(%s)"
        self.insert = (
            f"INSERT INTO {h} ({', '.join(HANDOFF_COLUMNS)}) "
            f"VALUES ({', '.join('%s' for _ in HANDOFF_COLUMNS)}) "
            f"ON CONFLICT (token_digest) DO NOTHING {returning}"
        )
        self.by_id = f"{select} WHERE handoff_id = %s"
        self.by_digest = f"{select} WHERE token_digest = %s"
        self.by_activity = f"{select} WHERE workflow_id = %s AND activity_id = %s"
        self.by_activity_order = " ORDER BY started_at DESC, attempt DESC LIMIT 1"
        self.id_by_digest = f"SELECT handoff_id FROM {h} WHERE token_digest = %s"
        self.supersede = (
            f"UPDATE {h} SET state = 'finished', outcome = 'already_closed', finished_at = %s, "
            "error_type = 'superseded', error_message = %s "
            "WHERE namespace = %s AND workflow_id = %s AND activity_id = %s AND run_id = %s "
            f"AND attempt < %s AND state = 'pending' {returning}"
        )
        self.take_early = (
            f"DELETE FROM {s}early_outcomes WHERE token_digest = %s "
            "RETURNING outcome, finished_at, error_type, error_message"
        )
        self.keep_early = (
            f"INSERT INTO {s}early_outcomes AS e (token_digest, outcome, finished_at, "
            "error_type, error_message) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (token_digest) DO UPDATE SET outcome = excluded.outcome, "
            "finished_at = excluded.finished_at, error_type = excluded.error_type, "
            "error_message = excluded.error_message WHERE e.outcome = 'already_closed'"
        )
        self.finish = (
            f"UPDATE {h} SET state = 'finished', outcome = %s, finished_at = %s, "
            "error_type = %s, error_message = %s WHERE handoff_id = %s AND state = 'pending' "
            f"{returning}"
        )
        c = f"{s}calls_in_flight"
        self.begin_call = f"INSERT INTO {c} (handoff_id, call_id, until) VALUES (%s, %s, %s)"
        self.end_call = f"DELETE FROM {c} WHERE handoff_id = %s AND call_id = %s"
        self.end_all_calls = f"DELETE FROM {c} WHERE handoff_id = %s"
        self.live_call = f"SELECT 1 FROM {c} WHERE handoff_id = %s AND until > %s LIMIT 1"
        self.lock_handoff = f"SELECT 1 FROM {h} WHERE handoff_id = %s FOR UPDATE"
        self.lock_progress = f"SELECT progress_sequence FROM {h} WHERE handoff_id = %s FOR UPDATE"
        self.set_progress = (
            f"UPDATE {h} SET progress = %s, progress_sequence = %s, progress_at = %s "
            "WHERE handoff_id = %s"
        )
        self.extend = f"UPDATE {h} SET deadline = %s WHERE handoff_id = %s AND state = 'pending' "
        self.extend += returning
        self.outcome_of = f"SELECT outcome FROM {h} WHERE handoff_id = %s"
        claimed = ", ".join(f"h.{c}" for c in RECORD_COLUMNS.split(", "))
        # The CTE locks the rows it picks and skips rows another claimant is locking right
        # now; MATERIALIZED keeps it evaluated once, so LIMIT bounds what is claimed.
        self.claim = (
            "WITH picked AS MATERIALIZED ("
            f"  SELECT handoff_id FROM {h}"
            "   WHERE state = 'pending' AND deadline IS NOT NULL AND deadline <= %s"
            "     AND (claim_until IS NULL OR claim_until < %s)"
            "   ORDER BY deadline LIMIT %s FOR UPDATE SKIP LOCKED"
            f") UPDATE {h} AS h SET claimed_by = %s, claim_until = %s FROM picked "
            f"WHERE h.handoff_id = picked.handoff_id RETURNING {claimed}"
        )
        self.release = (
            f"UPDATE {h} SET claimed_by = NULL, claim_until = NULL "
            "WHERE handoff_id = %s AND claimed_by = %s"
        )
        # Byte order, as SQLite sorts, whatever the database's collation.
        c = 'COLLATE "C"'
        self.summary_from = f" FROM {h} WHERE state = 'pending' GROUP BY target ORDER BY target {c}"
        outcome = "coalesce(outcome, 'pending')"
        self.handoffs_table = h
        self.ping = f"SELECT 1 FROM {h} LIMIT 1"
        self.outcomes_since = outcomes_since_query(h, "%s")
        self.outcome_counts = (
            f"SELECT target, {outcome}, COUNT(*) FROM {h} GROUP BY 1, 2 "
            f"ORDER BY target {c}, {outcome} {c}"
        )

    def pending_summary(self, buckets: int) -> str:
        """Count, oldest start and cumulative counts of ``buckets`` age bounds, per target."""
        cumulative = "".join(", COUNT(*) FILTER (WHERE started_at >= %s)" for _ in range(buckets))
        return f"SELECT target, COUNT(*), MIN(started_at){cumulative}{self.summary_from}"
