"""The embedded ledger: one SQLite file in WAL mode.

Writes go through one thread and one connection (SQLite has one writer anyway, and this keeps
lock waits off the event loop); reads for the scrape-time gauges use a second thread and
connection, so a slow summary never delays a handoff. WAL with ``synchronous=NORMAL`` keeps
every committed handoff across a kill -9 of the process (only an OS crash can lose the last
commits). Several processes may share the file: writers take ``BEGIN IMMEDIATE`` and wait up
to ``busy_timeout``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..._errors import HandoffAlreadyFinishedError, LedgerError, UnknownHandoffError
from ..._records import FinishedOutcome, HandoffRecord, PendingSummary
from ..._tokens import token_digest
from ..._vocabulary import Outcome
from .._interface import (
    HandoffQuery,
    HeartbeatResult,
    Ledger,
    OutcomeCount,
    OutcomeTally,
    RecordResult,
)
from .._rows import (
    HANDOFF_COLUMNS,
    RECORD_COLUMNS,
    SELECT_HANDOFF,
    encode_progress,
    list_query,
    outcomes_since_query,
    record_params,
    row_to_record,
    summary_from_row,
    truncate_message,
)
from ._schema import MIGRATIONS as _MIGRATIONS

_T = TypeVar("_T")

_INSERT = (
    f"INSERT INTO handoffs ({', '.join(HANDOFF_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in HANDOFF_COLUMNS)}) "
    "ON CONFLICT (token_digest) DO NOTHING"
)


class SqliteLedger(Ledger):
    """Ledger in one SQLite file; see the module docstring for its concurrency."""

    def __init__(self, path: str | Path, *, busy_timeout_seconds: float = 10.0) -> None:
        self._path = Path(path)
        self._busy_timeout = busy_timeout_seconds
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="handshake-ledger-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="handshake-ledger-read")
        try:
            self._write_conn = await self._write(self._connect)
            await self._write(self._migrate)
            self._read_conn = await self._read(self._connect)
        except BaseException:
            await self.close()  # a refused or failed open leaves the ledger closed
            raise

    async def close(self) -> None:
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        if writer is not None:
            conn, self._write_conn = self._write_conn, None
            if conn is not None:
                writer.submit(conn.close).result()
            writer.shutdown(wait=True)
        if reader is not None:
            conn, self._read_conn = self._read_conn, None
            if conn is not None:
                reader.submit(conn.close).result()
            reader.shutdown(wait=True)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        return conn

    def _migrate(self) -> None:
        conn = self._wconn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            _check_schema_version(version, len(_MIGRATIONS))
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- plumbing -----------------------------------------------------------------------

    def _wconn(self) -> sqlite3.Connection:
        if self._write_conn is None:
            raise LedgerError("the ledger is not open")
        return self._write_conn

    def _rconn(self) -> sqlite3.Connection:
        if self._read_conn is None:
            raise LedgerError("the ledger is not open")
        return self._read_conn

    async def _write(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._writer is None:
            raise LedgerError("the ledger is not open")
        return await _run(self._writer, fn, *args)

    async def _read(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._reader is None:
            raise LedgerError("the ledger is not open")
        return await _run(self._reader, fn, *args)

    def _transaction(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._wconn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # -- handoffs -----------------------------------------------------------------------

    async def record(self, record: HandoffRecord) -> RecordResult:
        return await self._write(self._transaction, lambda c: _record(c, record))

    async def get(self, handoff_id: str) -> HandoffRecord | None:
        return await self._write(
            self._select_one, f"{SELECT_HANDOFF} WHERE handoff_id = ?", (handoff_id,)
        )

    async def find_by_token(self, task_token: bytes) -> HandoffRecord | None:
        return await self._write(
            self._select_one,
            f"{SELECT_HANDOFF} WHERE token_digest = ?",
            (token_digest(task_token),),
        )

    async def find_by_activity(
        self, namespace: str | None, workflow_id: str, run_id: str | None, activity_id: str
    ) -> HandoffRecord | None:
        sql = f"{SELECT_HANDOFF} WHERE workflow_id = ? AND activity_id = ?"
        params: tuple[Any, ...] = (workflow_id, activity_id)
        if namespace:
            sql += " AND namespace = ?"
            params += (namespace,)
        if run_id:
            sql += " AND run_id = ?"
            params += (run_id,)
        return await self._write(
            self._select_one, sql + " ORDER BY started_at DESC, attempt DESC LIMIT 1", params
        )

    def _select_one(self, sql: str, params: tuple[Any, ...]) -> HandoffRecord | None:
        row = self._wconn().execute(sql, params).fetchone()
        return None if row is None else row_to_record(row)

    # -- the completion path ------------------------------------------------------------

    async def begin_call(self, handoff_id: str, until: float) -> str:
        call_id = uuid.uuid4().hex
        await self._write(
            self._execute,
            "INSERT INTO calls_in_flight (handoff_id, call_id, until) VALUES (?, ?, ?)",
            (handoff_id, call_id, until),
        )
        return call_id

    async def end_call(self, handoff_id: str, call_id: str) -> None:
        await self._write(
            self._execute,
            "DELETE FROM calls_in_flight WHERE handoff_id = ? AND call_id = ?",
            (handoff_id, call_id),
        )

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        self._wconn().execute(sql, params)

    async def finish(
        self,
        handoff_id: str,
        outcome: Outcome,
        at: float,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        ends_call: str | None = None,
    ) -> FinishedOutcome | None:
        def body(conn: sqlite3.Connection) -> FinishedOutcome | None:
            if ends_call is not None:
                _end_call(conn, handoff_id, ends_call)
            return _finish(conn, handoff_id, outcome, at, error_type, error_message)

        return await self._write(self._transaction, body)

    async def finish_closed(
        self, handoff_id: str, at: float, *, call_id: str | None = None
    ) -> FinishedOutcome | None:
        def body(conn: sqlite3.Connection) -> FinishedOutcome | None:
            if call_id is not None:
                _end_call(conn, handoff_id, call_id)
            live = conn.execute(
                "SELECT 1 FROM calls_in_flight WHERE handoff_id = ? AND until > ? LIMIT 1",
                (handoff_id, at),
            ).fetchone()
            if live is not None:
                return None  # another call may have won: it records the outcome
            return _finish(conn, handoff_id, Outcome.ALREADY_CLOSED, at, "already_closed", None)

        return await self._write(self._transaction, body)

    async def record_early_outcome(
        self,
        task_token: bytes,
        outcome: Outcome,
        at: float,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> FinishedOutcome | None:
        digest = token_digest(task_token)

        def body(conn: sqlite3.Connection) -> FinishedOutcome | None:
            row = conn.execute(
                "SELECT handoff_id FROM handoffs WHERE token_digest = ?", (digest,)
            ).fetchone()
            if row is not None:
                return _finish(conn, row[0], outcome, at, error_type, error_message)
            conn.execute(
                "INSERT INTO early_outcomes (token_digest, outcome, finished_at, error_type, "
                "error_message) VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_digest) DO UPDATE SET "
                "outcome = excluded.outcome, finished_at = excluded.finished_at, "
                "error_type = excluded.error_type, error_message = excluded.error_message "
                "WHERE early_outcomes.outcome = 'already_closed'",
                (digest, outcome.value, at, error_type, truncate_message(error_message)),
            )
            return None

        return await self._write(self._transaction, body)

    async def heartbeat(
        self, handoff_id: str, progress: Any, sequence: int | None, at: float
    ) -> HeartbeatResult:
        def body(conn: sqlite3.Connection) -> HeartbeatResult:
            row = conn.execute(
                "SELECT progress_sequence FROM handoffs WHERE handoff_id = ?", (handoff_id,)
            ).fetchone()
            if row is None:
                raise UnknownHandoffError(handoff_id)
            kept: int | None = row[0]
            new = sequence if sequence is not None else (kept or 0) + 1
            if kept is not None and new <= kept:
                return HeartbeatResult(accepted=False, sequence=kept)
            conn.execute(
                "UPDATE handoffs SET progress = ?, progress_sequence = ?, progress_at = ? "
                "WHERE handoff_id = ?",
                (encode_progress(progress), new, at, handoff_id),
            )
            return HeartbeatResult(accepted=True, sequence=new)

        return await self._write(self._transaction, body)

    # -- deadlines and reaping ----------------------------------------------------------

    async def extend_deadline(self, handoff_id: str, deadline: float) -> HandoffRecord:
        def body(conn: sqlite3.Connection) -> HandoffRecord:
            row = conn.execute(
                f"UPDATE handoffs SET deadline = ? WHERE handoff_id = ? AND state = 'pending' "
                f"RETURNING {RECORD_COLUMNS}",
                (deadline, handoff_id),
            ).fetchone()
            if row is not None:
                return row_to_record(row)
            existing = conn.execute(
                "SELECT outcome FROM handoffs WHERE handoff_id = ?", (handoff_id,)
            ).fetchone()
            if existing is None:
                raise UnknownHandoffError(handoff_id)
            raise HandoffAlreadyFinishedError(handoff_id, existing[0])

        return await self._write(self._transaction, body)

    async def claim_expired(
        self, now: float, *, limit: int, claimant: str, lease_seconds: float
    ) -> list[HandoffRecord]:
        def body(conn: sqlite3.Connection) -> list[HandoffRecord]:
            # BEGIN IMMEDIATE holds the write lock: no other process can claim these rows
            # between the SELECT and the UPDATE.
            rows = conn.execute(
                f"UPDATE handoffs SET claimed_by = ?, claim_until = ? WHERE handoff_id IN ("
                "  SELECT handoff_id FROM handoffs"
                "  WHERE state = 'pending' AND deadline IS NOT NULL AND deadline <= ?"
                "    AND (claim_until IS NULL OR claim_until < ?)"
                "  ORDER BY deadline LIMIT ?"
                f") RETURNING {RECORD_COLUMNS}",
                (claimant, now + lease_seconds, now, now, limit),
            ).fetchall()
            return sorted((row_to_record(r) for r in rows), key=lambda r: r.deadline or 0.0)

        return await self._write(self._transaction, body)

    async def release_claim(self, handoff_id: str, claimant: str) -> None:
        await self._write(
            self._execute,
            "UPDATE handoffs SET claimed_by = NULL, claim_until = NULL "
            "WHERE handoff_id = ? AND claimed_by = ?",
            (handoff_id, claimant),
        )

    # -- reading ------------------------------------------------------------------------

    async def pending_summary(
        self, now: float, age_bounds: Sequence[float]
    ) -> list[PendingSummary]:
        def query() -> list[PendingSummary]:
            cumulative = ", ".join(
                "SUM(CASE WHEN started_at >= ? THEN 1 ELSE 0 END)" for _ in age_bounds
            )
            sql = (
                "SELECT target, COUNT(*), MIN(started_at)"
                + (f", {cumulative}" if age_bounds else "")
                + " FROM handoffs WHERE state = 'pending' GROUP BY target"
            )
            rows = self._rconn().execute(sql, tuple(now - b for b in age_bounds)).fetchall()
            return [summary_from_row(row, age_bounds) for row in rows]

        return await self._read(query)

    async def list_handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        sql, params = list_query("handoffs", query, "?")

        def run() -> list[HandoffRecord]:
            return [row_to_record(r) for r in self._rconn().execute(sql, params).fetchall()]

        return await self._read(run)

    async def outcomes_since(self, since: float) -> list[OutcomeTally]:
        def run() -> list[OutcomeTally]:
            rows = self._rconn().execute(outcomes_since_query("handoffs", "?"), (since,))
            return [OutcomeTally(t, o, e, int(n)) for t, o, e, n in rows.fetchall()]

        return await self._read(run)

    async def ping(self) -> None:
        await self._read(lambda: self._rconn().execute("SELECT 1 FROM handoffs LIMIT 1").fetchone())

    async def outcome_counts(self) -> list[OutcomeCount]:
        def query() -> list[OutcomeCount]:
            rows = (
                self._rconn()
                .execute(
                    "SELECT target, coalesce(outcome, 'pending'), COUNT(*) FROM handoffs "
                    "GROUP BY 1, 2 ORDER BY 1, 2"
                )
                .fetchall()
            )
            return [OutcomeCount(target=t, outcome=o, count=n) for t, o, n in rows]

        return await self._read(query)


def _check_schema_version(found: int, known: int) -> None:
    if found > known:
        raise LedgerError(
            f"ledger schema version {found} is newer than this handshake-obs understands ({known})"
        )


def _record(conn: sqlite3.Connection, record: HandoffRecord) -> RecordResult:
    digest = token_digest(record.task_token)
    cursor = conn.execute(_INSERT, record_params(record, digest))
    if cursor.rowcount == 0:
        row = conn.execute(f"{SELECT_HANDOFF} WHERE token_digest = ?", (digest,)).fetchone()
        return RecordResult(record=row_to_record(row), created=False)
    superseded = [
        outcome
        for (handoff_id,) in conn.execute(
            "SELECT handoff_id FROM handoffs WHERE namespace = ? AND workflow_id = ? "
            "AND activity_id = ? AND run_id = ? AND attempt < ? AND state = 'pending'",
            (
                record.namespace,
                record.workflow_id,
                record.activity_id,
                record.run_id,
                record.attempt,
            ),
        ).fetchall()
        if (
            outcome := _finish(
                conn,
                handoff_id,
                Outcome.ALREADY_CLOSED,
                record.started_at,
                "superseded",
                f"superseded by attempt {record.attempt}",
            )
        )
    ]
    reconciled = None
    early = conn.execute(
        "SELECT outcome, finished_at, error_type, error_message FROM early_outcomes "
        "WHERE token_digest = ?",
        (digest,),
    ).fetchone()
    if early is not None:
        conn.execute("DELETE FROM early_outcomes WHERE token_digest = ?", (digest,))
        outcome, at, error_type, error_message = early
        reconciled = _finish(
            conn,
            record.handoff_id,
            Outcome(outcome),
            max(at, record.started_at),
            error_type,
            error_message,
        )
    stored = conn.execute(f"{SELECT_HANDOFF} WHERE handoff_id = ?", (record.handoff_id,)).fetchone()
    return RecordResult(
        record=row_to_record(stored), created=True, reconciled=reconciled, superseded=superseded
    )


def _end_call(conn: sqlite3.Connection, handoff_id: str, call_id: str) -> None:
    conn.execute(
        "DELETE FROM calls_in_flight WHERE handoff_id = ? AND call_id = ?", (handoff_id, call_id)
    )


def _finish(
    conn: sqlite3.Connection,
    handoff_id: str,
    outcome: Outcome,
    at: float,
    error_type: str | None,
    error_message: str | None,
) -> FinishedOutcome | None:
    row = conn.execute(
        "UPDATE handoffs SET state = 'finished', outcome = ?, finished_at = ?, error_type = ?, "
        "error_message = ? WHERE handoff_id = ? AND state = 'pending' "
        f"RETURNING {RECORD_COLUMNS}",
        (outcome.value, at, error_type, truncate_message(error_message), handoff_id),
    ).fetchone()
    if row is None:
        return None
    # A finished handoff needs no marks: those of callers that died go with it.
    conn.execute("DELETE FROM calls_in_flight WHERE handoff_id = ?", (handoff_id,))
    return FinishedOutcome(record=row_to_record(row), outcome=outcome, finished_at=at)


async def _run(executor: ThreadPoolExecutor, fn: Callable[..., _T], *args: Any) -> _T:
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    except sqlite3.Error as err:
        raise LedgerError(f"ledger (sqlite): {err}") from err
