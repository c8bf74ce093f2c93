"""The record rule's common case for a batch of handoffs, run server-side in one statement.

Almost every record is a first attempt whose token has no early outcome waiting. For it the
rule (``programs.record``) takes the token's lock, stores the row, appends its ``recorded``
timeline entry and counts it: seven statements from the client, ``BEGIN`` to ``COMMIT``,
each a round trip that costs the client's CPU, and that CPU bounds how many records
concurrent writers make per second. This PL/pgSQL function makes the same writes for a
whole batch of records (``_record_batches``) as one autocommit statement: it takes the
batch's token locks (in key order, so two batches never wait on each other in a cycle),
then inserts the rows whose token is neither recorded nor awaited by an early outcome,
their timeline entries and their counts (in key order, last, as every rule). It returns the
rows it stored; every record it left (the token recorded already, an early outcome waiting)
goes through the rule's program, which decides those cases.

The rows and timeline entries travel as JSON arrays, read back with the tables' own row
types (``jsonb_populate_recordset``), so the function names no column type.

The function's name carries a digest of its definition, so a ledger opened by two versions
of handshake-obs side by side (a rolling upgrade) holds the function each of them calls.
It runs with its caller's privileges: a role that may not write the tables cannot record
through it either.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from ..._records import HandoffRecord
from ..._tokens import token_digest
from .._rows import HANDOFF_COLUMNS, RECORD_COLUMNS, RowCodec, event_params
from .._rules import programs
from .._sql import COUNT_COLUMNS, EVENT_COLUMNS
from ._executor import lock_key
from ._statements import BUCKET, SHARD, Statements

#: Stands for the function's name in its definition until the definition's digest names it.
_NAME = "{name}"


class RecordFunction:
    """The record function of one schema's statements: its definition, and its call."""

    def __init__(self, sql: Statements) -> None:
        prefix = sql.prefix
        h, ev, pc = sql.handoffs_table, sql.events_table, sql.pending_counts_table
        columns, event_columns = ", ".join(HANDOFF_COLUMNS), ", ".join(EVENT_COLUMNS)
        unless_recorded = sql.insert_unless_recorded.removeprefix(sql.insert_new)
        count_conflict = sql.count_pending[sql.count_pending.index(" ON CONFLICT") :]
        early = sql.early_of.replace("%s", "given.token_digest")
        # $1: the lock keys; $2: the rows (HANDOFF_COLUMNS); $3: their timeline entries.
        # Each statement of a PL/pgSQL function reads what committed before it began: the
        # early-outcome check, after the locks, sees every early outcome of these tokens.
        definition = (
            f"CREATE OR REPLACE FUNCTION {prefix}{_NAME}(bigint[], jsonb, jsonb) "
            f"RETURNS SETOF {h} LANGUAGE plpgsql AS $record$\n"
            "BEGIN\n"
            "  PERFORM pg_advisory_xact_lock(k) FROM unnest($1) AS k ORDER BY k;\n"
            "  RETURN QUERY WITH\n"
            f"  given AS (SELECT * FROM jsonb_populate_recordset(NULL::{h}, $2)),\n"
            f"  stored AS (INSERT INTO {h} ({columns}) SELECT {columns} FROM given\n"
            f"    WHERE NOT EXISTS ({early}){unless_recorded} RETURNING *),\n"
            f"  entries AS (INSERT INTO {ev} ({event_columns}) SELECT {event_columns}\n"
            f"    FROM jsonb_populate_recordset(NULL::{ev}, $3)\n"
            "    WHERE handoff_id IN (SELECT handoff_id FROM stored)),\n"
            f"  counted AS (INSERT INTO {pc} AS c ({', '.join(COUNT_COLUMNS)})\n"
            f"    SELECT target, {BUCKET}, {SHARD}, COUNT(*) FROM stored\n"
            f"    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3{count_conflict})\n"
            "  SELECT * FROM stored;\n"
            "END\n"
            "$record$"
        )
        #: The function's name, qualified with the schema (``"name".`` or nothing).
        self.name = f"{prefix}handshake_record_{_digest(definition)}"
        #: What creates the function (run where it does not exist yet).
        self.definition = definition.replace(f"{prefix}{_NAME}", self.name, 1)
        #: The call: the rows it stored, of the records given.
        self.call = f"SELECT {RECORD_COLUMNS} FROM {self.name}(%s::bigint[], %s::jsonb, %s::jsonb)"

    async def create(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        """Create the function unless it exists (inside the migration's transaction)."""
        exists = await conn.execute("SELECT to_regproc(%s) IS NOT NULL", (self.name,))
        row = await exists.fetchone()
        if row is None or not row[0]:
            await conn.execute(self.definition)


class BatchArguments:
    """The call's arguments for a batch, built one record at a time."""

    __slots__ = ("_codec", "_digests", "_entries", "_ids", "_locks", "_rows")

    def __init__(self, codec: RowCodec) -> None:
        self._codec = codec
        self._locks: list[int] = []
        self._rows: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._digests: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._rows)

    @staticmethod
    def fits(record: HandoffRecord) -> bool:
        """Whether ``record`` may go in a batch: a first attempt (a later one may supersede
        older ones: the program decides) whose numbers JSON can carry."""
        numbers = (record.started_at, record.deadline, record.scheduled_at)
        return not programs.may_supersede(record) and all(
            n is None or math.isfinite(n) for n in numbers
        )

    def add(self, record: HandoffRecord) -> bool:
        """Add ``record`` as the rule would store it (its lock, its row and its entry);
        False, and nothing added, if the batch holds its handoff id or its token already
        (the program decides what a second record of either does)."""
        stored = programs.storable(record)
        digest = token_digest(stored.task_token)
        if stored.handoff_id in self._ids or digest in self._digests:
            return False
        self._ids.add(stored.handoff_id)
        self._digests.add(digest)
        self._locks.append(lock_key(digest))
        row = self._codec.params(stored, digest)
        self._rows.append(dict(zip(HANDOFF_COLUMNS, map(_json_value, row), strict=True)))
        entry = event_params(programs.recorded_event(stored))
        self._entries.append(dict(zip(EVENT_COLUMNS, entry, strict=True)))
        return True

    def params(self) -> tuple[list[int], str, str]:
        """The call's parameters."""
        return self._locks, _json(self._rows), _json(self._entries)


def _json_value(value: Any) -> Any:
    """A column's value as JSON carries it to the row type (bytea in its hex form)."""
    return "\\x" + value.hex() if isinstance(value, bytes) else value


def _json(values: Sequence[dict[str, Any]]) -> str:
    return json.dumps(values, separators=(",", ":"), allow_nan=False)


def _digest(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()[:12]
