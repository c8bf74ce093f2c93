"""The PostgreSQL ledger's schema: the migrations that build it, and how they are applied.

A one-row table holds how many migrations have been applied; a version newer than the list
is refused. The record function (``_record_function``) is created beside the tables, once
for each definition. Migrations run under a transaction-scoped advisory lock keyed by the schema, so
replicas starting together apply them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from .._rules import check_schema_version
from ._record_function import RecordFunction
from ._statements import BUCKET, SHARD, quote_identifier, table_prefix

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
    # 4: a finishing call's intent kept with its mark (the outcome it records if Temporal
    # accepts), and a one-row table readiness writes to prove the ledger is writable.
    """
    ALTER TABLE {s}calls_in_flight ADD COLUMN outcome TEXT;
    ALTER TABLE {s}calls_in_flight ADD COLUMN error_type TEXT;
    ALTER TABLE {s}calls_in_flight ADD COLUMN error_message TEXT;
    CREATE TABLE {s}ledger_probe (
        single INTEGER PRIMARY KEY CHECK (single = 1),
        at DOUBLE PRECISION NOT NULL
    );
    """,
    # 5: a finished handoff keeps no raw task token (its digest stays): clear the tokens
    # of the handoffs finished before this rule.
    """
    UPDATE {s}handoffs SET task_token = ''::bytea
        WHERE state = 'finished' AND task_token <> ''::bytea;
    """,
    # 6: tokens may be encrypted at rest; the id of the key that encrypted a row's token
    # (NULL: stored as given).
    """
    ALTER TABLE {s}handoffs ADD COLUMN token_key_id TEXT;
    """,
    # 7: what reconciling with Temporal needs: a standalone activity's run id, the attempt's
    # own Temporal timeouts, and when the reconciler checks the handoff next.
    """
    ALTER TABLE {s}handoffs ADD COLUMN activity_run_id TEXT;
    ALTER TABLE {s}handoffs ADD COLUMN scheduled_at DOUBLE PRECISION;
    ALTER TABLE {s}handoffs ADD COLUMN attempt_started_at DOUBLE PRECISION;
    ALTER TABLE {s}handoffs ADD COLUMN schedule_to_close_timeout DOUBLE PRECISION;
    ALTER TABLE {s}handoffs ADD COLUMN start_to_close_timeout DOUBLE PRECISION;
    ALTER TABLE {s}handoffs ADD COLUMN heartbeat_timeout DOUBLE PRECISION;
    ALTER TABLE {s}handoffs ADD COLUMN next_check_at DOUBLE PRECISION;
    CREATE INDEX handoffs_pending_next_check ON {s}handoffs (next_check_at)
        WHERE state = 'pending';
    CREATE INDEX handoffs_standalone_activity ON {s}handoffs (namespace, activity_id)
        WHERE workflow_id = '';
    """,
    # 8: each handoff's timeline, written by the rules in the transaction of each change.
    """
    CREATE TABLE {s}handoff_events (
        id BIGSERIAL PRIMARY KEY,
        handoff_id TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX handoff_events_handoff ON {s}handoff_events (handoff_id, id);
    """,
    # 9: the pending counts per target and start-time bucket (ledger/_pending_counts.py),
    # built from the pending handoffs; the inventory's order for any state and for finished
    # ones (pending ones have theirs since 2). Partial, not one index on (state, ...): SQLite,
    # without statistics, took that for every query on pending handoffs, the reaper's
    # claim among them (27 ms -> 4.7 s at 1M pending).
    """
    CREATE TABLE {s}pending_counts (
        target TEXT NOT NULL,
        bucket BIGINT NOT NULL,
        shard INTEGER NOT NULL,
        pending BIGINT NOT NULL,
        PRIMARY KEY (target, bucket, shard)
    );
    INSERT INTO {s}pending_counts (target, bucket, shard, pending)
        SELECT target, """
    + BUCKET
    + ", "
    + SHARD
    + """, COUNT(*) FROM {s}handoffs WHERE state = 'pending'
        GROUP BY 1, 2, 3;
    CREATE INDEX handoffs_started ON {s}handoffs (started_at, handoff_id);
    CREATE INDEX handoffs_finished_started ON {s}handoffs (started_at, handoff_id)
        WHERE state = 'finished';
    """,
    # 10: the inventory of any state merges the pending and the finished rows, each read from
    # its state's index in that order: the index of every row cost each record a tenth of
    # its writes (bench.ledger_records), for that query alone.
    """
    DROP INDEX IF EXISTS {s}handoffs_started;
    """,
    # 11: a reconciler claim reads the handoffs checked before by their next check and the
    # others by their start, each in this index's order, as far as it claims (see
    # ``check_scheduled_where`` in ledger/_sql.py).
    """
    DROP INDEX IF EXISTS {s}handoffs_pending_next_check;
    CREATE INDEX handoffs_pending_next_check ON {s}handoffs (next_check_at, started_at)
        WHERE state = 'pending';
    """,
)


async def migrate(
    conn: psycopg.AsyncConnection[TupleRow], schema: str | None, record_function: RecordFunction
) -> None:
    """Create the schema if missing and bring it up to date, with the record function
    this version calls, in one transaction."""
    s = table_prefix(schema)
    version_table = f"{s}{VERSION_TABLE}"

    async def run(script: str, params: Sequence[Any] = ()) -> TupleRow | None:
        cur = None
        for statement in filter(str.strip, script.split(";")):
            cur = await conn.execute(statement, params)
        return await cur.fetchone() if cur and cur.description is not None else None

    async with conn.transaction():
        await run(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (MIGRATION_LOCK_CLASS, schema or "")
        )
        if schema is not None and not await run(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
        ):
            await run(f"CREATE SCHEMA {quote_identifier(schema)}")
        if not (await run("SELECT to_regclass(%s) IS NOT NULL", (version_table,)) or (False,))[0]:
            await run(
                f"CREATE TABLE {version_table} (single BOOLEAN PRIMARY KEY DEFAULT TRUE "
                f"CHECK (single), version INTEGER NOT NULL); "
                f"INSERT INTO {version_table} (version) VALUES (0)"
            )
        row = await run(f"SELECT version FROM {version_table}")
        version = 0 if row is None else int(row[0])
        check_schema_version(version, len(MIGRATIONS))
        for script in MIGRATIONS[version:]:
            await run(script.format(s=s))
        await run(f"UPDATE {version_table} SET version = %s", (len(MIGRATIONS),))
        await record_function.create(conn)
