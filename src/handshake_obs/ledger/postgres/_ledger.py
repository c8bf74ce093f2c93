"""The shared ledger: PostgreSQL, for several sidecar replicas.

Every operation takes a connection from a pool (autocommit; multi-statement operations run in
an explicit transaction). One outcome per handoff comes from conditional updates
(``... WHERE state = 'pending' RETURNING``): concurrent callers queue on the row lock and only
the first finds the row still pending. A handoff record and an early outcome for the same
token serialise on a transaction-scoped advisory lock keyed by the token digest, so neither
misses the other. Reapers claim expired rows with ``FOR UPDATE SKIP LOCKED`` and a lease.
The schema is created or migrated on :meth:`PostgresLedger.open` under an advisory lock, so
replicas may start together.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from ..._errors import (
    ConfigurationError,
    HandoffAlreadyFinishedError,
    LedgerError,
    UnknownHandoffError,
)
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
    encode_progress,
    list_query,
    record_params,
    row_to_record,
    summary_from_row,
    truncate_message,
)
from ._statements import MIGRATION_LOCK_CLASS, Statements

_T = TypeVar("_T")
_Conn = psycopg.AsyncConnection[TupleRow]

#: Longest schema name PostgreSQL keeps (NAMEDATALEN - 1 bytes).
_MAX_IDENTIFIER_BYTES = 63


class PostgresLedger(Ledger):
    """Ledger in PostgreSQL; see the module docstring for its concurrency."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        if schema is not None and (
            not schema or "\x00" in schema or len(schema.encode()) > _MAX_IDENTIFIER_BYTES
        ):
            raise ConfigurationError(f"invalid PostgreSQL ledger schema name {schema!r}")
        self._url = url
        self._schema = schema
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout_seconds
        self._sql = Statements(schema)
        self._secrets = _secrets_of(url)
        self._pool: AsyncConnectionPool[_Conn] | None = None

    @property
    def schema(self) -> str | None:
        """The schema holding the ledger's tables (None: the connection's default)."""
        return self._schema

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        # Errors are raised outside the except blocks, so no message carrying the password
        # stays attached to them as their context.
        failure: LedgerError | None = None
        try:
            timeout = conninfo_to_dict(self._url).get("connect_timeout") or max(
                1, round(self._connect_timeout)
            )
            async with await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=timeout
            ) as conn:
                await self._migrate(conn)
        except psycopg.Error as err:
            failure = self._ledger_error(err)
        if failure is not None:
            raise failure
        pool: AsyncConnectionPool[_Conn] = AsyncConnectionPool(
            self._url,
            kwargs={"autocommit": True, "connect_timeout": timeout},
            min_size=1,
            max_size=self._pool_size,
            open=False,
            name="handshake-obs-ledger",
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except BaseException as err:
            await pool.close()
            if not isinstance(err, psycopg.Error):
                raise
            failure = self._ledger_error(err)
        if failure is not None:
            raise failure
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _migrate(self, conn: _Conn) -> None:
        sql = self._sql

        async def run(script: str, params: Sequence[Any] = ()) -> TupleRow | None:
            cur = None
            for statement in filter(str.strip, script.split(";")):
                cur = await conn.execute(statement, params)
            return await cur.fetchone() if cur and cur.description is not None else None

        async with conn.transaction():
            await run(sql.lock_migrations, (MIGRATION_LOCK_CLASS, self._schema or ""))
            if self._schema is not None and not await run(sql.schema_exists, (self._schema,)):
                await run(sql.create_schema)
            if not (await run(sql.version_exists, (sql.version_table,)) or (False,))[0]:
                await run(sql.create_version)
            row = await run(sql.get_version)
            version = 0 if row is None else int(row[0])
            if version > len(sql.migrations):
                raise LedgerError(
                    f"ledger schema version {version} is newer than this handshake-obs "
                    f"understands ({len(sql.migrations)})"
                )
            for script in sql.migrations[version:]:
                await run(script)
            await run(sql.set_version, (len(sql.migrations),))

    # -- plumbing -----------------------------------------------------------------------

    def _ledger_error(self, err: psycopg.Error) -> LedgerError:
        """``err`` as a LedgerError, its message without the password (nor ``err`` then)."""
        message = str(err).strip() or type(err).__name__
        leaked = any(secret in message for secret in self._secrets)
        for secret in self._secrets:
            message = message.replace(secret, "***")
        error = LedgerError(f"ledger (postgresql): {message}")
        error.__cause__ = None if leaked else err
        return error

    def _require_pool(self) -> AsyncConnectionPool[_Conn]:
        if self._pool is None:
            raise LedgerError("the ledger is not open")
        return self._pool

    async def _transaction(self, body: Callable[[_Conn], Awaitable[_T]]) -> _T:
        return await self._connection(body, transaction=True)

    async def _connection(
        self, body: Callable[[_Conn], Awaitable[_T]], *, transaction: bool = False
    ) -> _T:
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                if not transaction:
                    return await body(conn)
                async with conn.transaction():
                    return await body(conn)
        except psycopg.Error as err:
            failure = self._ledger_error(err)
        raise failure

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[TupleRow]:
        """Run one statement (autocommit); its rows, if it returns any."""

        async def body(conn: _Conn) -> list[TupleRow]:
            cur = await conn.execute(sql, params)
            return await cur.fetchall() if cur.description is not None else []

        return await self._connection(body)

    async def _one_record(self, sql: str, params: Sequence[Any]) -> HandoffRecord | None:
        rows = await self._fetch(sql, params)
        return row_to_record(rows[0]) if rows else None

    async def _finish(
        self,
        conn: _Conn,
        handoff_id: str,
        outcome: Outcome,
        at: float,
        error_type: str | None,
        error_message: str | None,
    ) -> FinishedOutcome | None:
        cur = await conn.execute(
            self._sql.finish,
            (outcome.value, at, error_type, truncate_message(error_message), handoff_id),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        # A finished handoff needs no marks: those of callers that died go with it.
        await conn.execute(self._sql.end_all_calls, (handoff_id,))
        return FinishedOutcome(record=row_to_record(row), outcome=outcome, finished_at=at)

    # -- handoffs -----------------------------------------------------------------------

    async def record(self, record: HandoffRecord) -> RecordResult:
        digest = token_digest(record.task_token)
        sql = self._sql

        async def body(conn: _Conn) -> RecordResult:
            await conn.execute(sql.lock_digest, (_lock_key(digest),))
            cur = await conn.execute(sql.insert, record_params(record, digest))
            inserted = await cur.fetchone()
            if inserted is None:
                cur = await conn.execute(sql.by_digest, (digest,))
                existing = await cur.fetchone()
                if existing is None:  # pragma: no cover - the conflicting row cannot vanish
                    raise LedgerError("handoff vanished while being recorded")
                return RecordResult(record=row_to_record(existing), created=False)
            cur = await conn.execute(
                sql.supersede,
                (
                    record.started_at,
                    f"superseded by attempt {record.attempt}",
                    record.namespace,
                    record.workflow_id,
                    record.activity_id,
                    record.run_id,
                    record.attempt,
                ),
            )
            older = sorted(map(row_to_record, await cur.fetchall()), key=lambda r: r.attempt)
            closed = Outcome.ALREADY_CLOSED
            superseded = [FinishedOutcome(r, closed, record.started_at) for r in older]
            stored = row_to_record(inserted)
            cur = await conn.execute(sql.take_early, (digest,))
            early = await cur.fetchone()
            reconciled = None
            if early is not None:
                outcome, at, error_type, error_message = early
                reconciled = await self._finish(
                    conn,
                    record.handoff_id,
                    Outcome(outcome),
                    max(at, record.started_at),
                    error_type,
                    error_message,
                )
                if reconciled is not None:
                    stored = reconciled.record
            return RecordResult(
                record=stored, created=True, reconciled=reconciled, superseded=superseded
            )

        return await self._transaction(body)

    async def get(self, handoff_id: str) -> HandoffRecord | None:
        return await self._one_record(self._sql.by_id, (handoff_id,))

    async def find_by_token(self, task_token: bytes) -> HandoffRecord | None:
        return await self._one_record(self._sql.by_digest, (token_digest(task_token),))

    async def find_by_activity(
        self, namespace: str | None, workflow_id: str, run_id: str | None, activity_id: str
    ) -> HandoffRecord | None:
        sql = self._sql.by_activity
        params: tuple[Any, ...] = (workflow_id, activity_id)
        if namespace:
            sql += " AND namespace = %s"
            params += (namespace,)
        if run_id:
            sql += " AND run_id = %s"
            params += (run_id,)
        return await self._one_record(sql + self._sql.by_activity_order, params)

    # -- the completion path ------------------------------------------------------------

    async def begin_call(self, handoff_id: str, until: float) -> str:
        call_id = uuid.uuid4().hex
        await self._fetch(self._sql.begin_call, (handoff_id, call_id, until))
        return call_id

    async def end_call(self, handoff_id: str, call_id: str) -> None:
        await self._fetch(self._sql.end_call, (handoff_id, call_id))

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
        async def body(conn: _Conn) -> FinishedOutcome | None:
            if ends_call is not None:
                await conn.execute(self._sql.end_call, (handoff_id, ends_call))
            return await self._finish(conn, handoff_id, outcome, at, error_type, error_message)

        return await self._transaction(body)

    async def finish_closed(
        self, handoff_id: str, at: float, *, call_id: str | None = None
    ) -> FinishedOutcome | None:
        async def body(conn: _Conn) -> FinishedOutcome | None:
            # The handoff's row lock orders concurrent NOT_FOUNDs: the last to look sees
            # that no other call is left and closes it.
            await conn.execute(self._sql.lock_handoff, (handoff_id,))
            if call_id is not None:
                await conn.execute(self._sql.end_call, (handoff_id, call_id))
            live = await (await conn.execute(self._sql.live_call, (handoff_id, at))).fetchone()
            if live is not None:
                return None  # another call may have won: it records the outcome
            return await self._finish(
                conn, handoff_id, Outcome.ALREADY_CLOSED, at, "already_closed", None
            )

        return await self._transaction(body)

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
        sql = self._sql

        async def body(conn: _Conn) -> FinishedOutcome | None:
            # Taken before looking: a record of this token in flight commits first, or waits.
            await conn.execute(sql.lock_digest, (_lock_key(digest),))
            cur = await conn.execute(sql.id_by_digest, (digest,))
            row = await cur.fetchone()
            if row is not None:
                return await self._finish(conn, row[0], outcome, at, error_type, error_message)
            await conn.execute(
                sql.keep_early,
                (digest, outcome.value, at, error_type, truncate_message(error_message)),
            )
            return None

        return await self._transaction(body)

    async def heartbeat(
        self, handoff_id: str, progress: Any, sequence: int | None, at: float
    ) -> HeartbeatResult:
        async def body(conn: _Conn) -> HeartbeatResult:
            cur = await conn.execute(self._sql.lock_progress, (handoff_id,))
            row = await cur.fetchone()
            if row is None:
                raise UnknownHandoffError(handoff_id)
            kept: int | None = row[0]
            new = sequence if sequence is not None else (kept or 0) + 1
            if kept is not None and new <= kept:
                return HeartbeatResult(accepted=False, sequence=kept)
            await conn.execute(
                self._sql.set_progress, (encode_progress(progress), new, at, handoff_id)
            )
            return HeartbeatResult(accepted=True, sequence=new)

        return await self._transaction(body)

    # -- deadlines and reaping ----------------------------------------------------------

    async def extend_deadline(self, handoff_id: str, deadline: float) -> HandoffRecord:
        async def body(conn: _Conn) -> HandoffRecord:
            cur = await conn.execute(self._sql.extend, (deadline, handoff_id))
            row = await cur.fetchone()
            if row is not None:
                return row_to_record(row)
            cur = await conn.execute(self._sql.outcome_of, (handoff_id,))
            existing = await cur.fetchone()
            if existing is None:
                raise UnknownHandoffError(handoff_id)
            raise HandoffAlreadyFinishedError(handoff_id, existing[0])

        return await self._transaction(body)

    async def claim_expired(
        self, now: float, *, limit: int, claimant: str, lease_seconds: float
    ) -> list[HandoffRecord]:
        rows = await self._fetch(self._sql.claim, (now, now, limit, claimant, now + lease_seconds))
        return sorted((row_to_record(r) for r in rows), key=lambda r: r.deadline or 0.0)

    async def release_claim(self, handoff_id: str, claimant: str) -> None:
        await self._fetch(self._sql.release, (handoff_id, claimant))

    # -- reading ------------------------------------------------------------------------

    async def pending_summary(
        self, now: float, age_bounds: Sequence[float]
    ) -> list[PendingSummary]:
        rows = await self._fetch(
            self._sql.pending_summary(len(age_bounds)), tuple(now - b for b in age_bounds)
        )
        return [summary_from_row(row, age_bounds) for row in rows]

    async def list_handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        sql, params = list_query(self._sql.handoffs_table, query, "%s")
        return [row_to_record(row) for row in await self._fetch(sql, params)]

    async def outcomes_since(self, since: float) -> list[OutcomeTally]:
        rows = await self._fetch(self._sql.outcomes_since, (since,))
        return [OutcomeTally(t, o, e, int(n)) for t, o, e, n in rows]

    async def ping(self) -> None:
        await self._fetch(self._sql.ping)

    async def outcome_counts(self) -> list[OutcomeCount]:
        rows = await self._fetch(self._sql.outcome_counts)
        return [OutcomeCount(target=t, outcome=o, count=int(n)) for t, o, n in rows]


def _lock_key(digest: bytes) -> int:
    """The advisory lock key of a token: its digest's first 64 bits."""
    return int.from_bytes(digest[:8], "big", signed=True)


def _secrets_of(url: str) -> tuple[str, ...]:
    """The password in a connection URL or string, in every spelling a message may show."""
    found: set[str] = set()
    try:
        password = urlsplit(url).password
        if password:
            found.update({password, unquote(password)})
    except ValueError:
        pass
    try:
        value = conninfo_to_dict(url).get("password")
        if value:
            found.add(str(value))
    except psycopg.Error:
        pass
    return tuple(sorted(found, key=len, reverse=True))
