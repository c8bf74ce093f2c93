"""The SQLite ledger's schema, as the migrations that build it.

``PRAGMA user_version`` holds how many have been applied; a version newer than this list is
refused at start-up.
"""

from __future__ import annotations

import sqlite3

from .._rules import check_schema_version
from ._statements import BUCKET

#: Schema migrations, in order.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE handoffs (
        handoff_id TEXT PRIMARY KEY,
        task_token BLOB NOT NULL,
        token_digest BLOB NOT NULL UNIQUE,
        token_fingerprint TEXT NOT NULL,
        namespace TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        activity_id TEXT NOT NULL,
        activity_type TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        target TEXT NOT NULL,
        started_at REAL NOT NULL,
        deadline REAL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'finished')),
        outcome TEXT,
        finished_at REAL,
        error_type TEXT,
        error_message TEXT,
        progress TEXT,
        progress_sequence INTEGER,
        progress_at REAL,
        traceparent TEXT,
        tracestate TEXT,
        calls_in_flight INTEGER NOT NULL DEFAULT 0,
        calls_in_flight_until REAL,
        claimed_by TEXT,
        claim_until REAL
    );
    CREATE INDEX handoffs_pending_deadline ON handoffs (deadline)
        WHERE state = 'pending' AND deadline IS NOT NULL;
    CREATE INDEX handoffs_pending_target_started ON handoffs (target, started_at)
        WHERE state = 'pending';
    CREATE INDEX handoffs_activity ON handoffs (namespace, workflow_id, activity_id, attempt);
    CREATE TABLE early_outcomes (
        token_digest BLOB PRIMARY KEY,
        outcome TEXT NOT NULL,
        finished_at REAL NOT NULL,
        error_type TEXT,
        error_message TEXT
    );
    """,
    # 2: the inventory lists pending handoffs oldest first, and recent outcomes.
    """
    CREATE INDEX handoffs_pending_started ON handoffs (started_at, handoff_id)
        WHERE state = 'pending';
    CREATE INDEX handoffs_finished_at ON handoffs (finished_at) WHERE state = 'finished';
    """,
    # 3: one row per completion call in flight, each lapsing on its own (a count with one
    # shared expiry let a dead caller's mark be kept alive by the calls after it).
    """
    CREATE TABLE calls_in_flight (
        handoff_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        until REAL NOT NULL,
        PRIMARY KEY (handoff_id, call_id)
    );
    ALTER TABLE handoffs DROP COLUMN calls_in_flight;
    ALTER TABLE handoffs DROP COLUMN calls_in_flight_until;
    """,
    # 4: a finishing call's intent kept with its mark (the outcome it records if Temporal
    # accepts), and a one-row table readiness writes to prove the ledger is writable.
    """
    ALTER TABLE calls_in_flight ADD COLUMN outcome TEXT;
    ALTER TABLE calls_in_flight ADD COLUMN error_type TEXT;
    ALTER TABLE calls_in_flight ADD COLUMN error_message TEXT;
    CREATE TABLE ledger_probe (
        single INTEGER PRIMARY KEY CHECK (single = 1),
        at REAL NOT NULL
    );
    """,
    # 5: a finished handoff keeps no raw task token (its digest stays): clear the tokens
    # of the handoffs finished before this rule.
    """
    UPDATE handoffs SET task_token = X'' WHERE state = 'finished' AND task_token != X'';
    """,
    # 6: tokens may be encrypted at rest; the id of the key that encrypted a row's token
    # (NULL: stored as given).
    """
    ALTER TABLE handoffs ADD COLUMN token_key_id TEXT;
    """,
    # 7: what reconciling with Temporal needs: a standalone activity's run id, the attempt's
    # own Temporal timeouts, and when the reconciler checks the handoff next.
    """
    ALTER TABLE handoffs ADD COLUMN activity_run_id TEXT;
    ALTER TABLE handoffs ADD COLUMN scheduled_at REAL;
    ALTER TABLE handoffs ADD COLUMN attempt_started_at REAL;
    ALTER TABLE handoffs ADD COLUMN schedule_to_close_timeout REAL;
    ALTER TABLE handoffs ADD COLUMN start_to_close_timeout REAL;
    ALTER TABLE handoffs ADD COLUMN heartbeat_timeout REAL;
    ALTER TABLE handoffs ADD COLUMN next_check_at REAL;
    CREATE INDEX handoffs_pending_next_check ON handoffs (next_check_at)
        WHERE state = 'pending';
    CREATE INDEX handoffs_standalone_activity ON handoffs (namespace, activity_id)
        WHERE workflow_id = '';
    """,
    # 8: each handoff's timeline, written by the rules in the transaction of each change.
    """
    CREATE TABLE handoff_events (
        id INTEGER PRIMARY KEY,
        handoff_id TEXT NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX handoff_events_handoff ON handoff_events (handoff_id, id);
    """,
    # 9: the pending counts per target and start-time bucket (ledger/_pending_counts.py),
    # built from the pending handoffs; the inventory's order for any state and for finished
    # ones (pending ones have theirs since 2). Partial, not one index on (state, ...): SQLite,
    # without statistics, took that for every query on pending handoffs, the reaper's
    # claim among them (27 ms -> 4.7 s at 1M pending).
    f"""
    CREATE TABLE pending_counts (
        target TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        shard INTEGER NOT NULL,
        pending INTEGER NOT NULL,
        PRIMARY KEY (target, bucket, shard)
    ) WITHOUT ROWID;
    INSERT INTO pending_counts (target, bucket, shard, pending)
        SELECT target, {BUCKET}, 0, COUNT(*) FROM handoffs WHERE state = 'pending'
        GROUP BY 1, 2;
    CREATE INDEX handoffs_started ON handoffs (started_at, handoff_id);
    CREATE INDEX handoffs_finished_started ON handoffs (started_at, handoff_id)
        WHERE state = 'finished';
    """,
    # 10: the inventory of any state merges the pending and the finished rows, each read from
    # its state's index in that order: the index of every row cost each record a tenth of
    # its writes (bench.ledger_records), for that query alone.
    """
    DROP INDEX IF EXISTS handoffs_started;
    """,
    # 11: a reconciler claim reads the handoffs checked before by their next check and the
    # others by their start, each in this index's order, as far as it claims (see
    # ``check_scheduled_where`` in ledger/_sql.py).
    """
    DROP INDEX IF EXISTS handoffs_pending_next_check;
    CREATE INDEX handoffs_pending_next_check ON handoffs (next_check_at, started_at)
        WHERE state = 'pending';
    """,
)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date in one transaction (other processes wait for it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        check_schema_version(version, len(MIGRATIONS))
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
