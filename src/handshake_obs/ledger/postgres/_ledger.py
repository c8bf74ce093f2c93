"""The shared ledger: PostgreSQL, for several sidecar replicas.

Every operation takes a connection from a pool (autocommit). A write operation is one rule
run in one transaction on one connection, each of its steps awaited in turn (see
``_executor`` for how the steps lock); the record rule's common case is batched into calls
of a server-side function instead (``_record_batches``). Reapers claim expired rows with
``FOR UPDATE SKIP LOCKED`` and a lease. The schema is created or migrated on
:meth:`PostgresLedger.open` under an advisory lock, so replicas may start together.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import ExecStatus
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from ..._errors import ConfigurationError, LedgerError
from ..._records import HandoffEvent, HandoffRecord, PendingSummary
from ..._token_keys import TokenKeys
from ..._tokens import token_digest
from .._interface import FinishedLatency, HandoffQuery, OutcomeTally, RecordResult
from .._pending_counts import (
    POSTGRES_SHARDS,
    PendingChange,
    age_cuts,
    bucket_totals,
    count_deltas,
    snapshot_params,
    snapshot_rows,
)
from .._rows import RowCodec, row_to_event, summary_from_row
from .._rules import Returns, Rule, run_program_async, take_step_async
from .._rules_ledger import BucketCounts, RulesLedger
from .._token_cipher import TokenCipher
from ._executor import execute
from ._in_flight import OperationsInFlight
from ._record_batches import MAX_CALLS, RecordBatches
from ._record_function import BatchArguments, RecordFunction
from ._schema import migrate
from ._statements import Statements

_T = TypeVar("_T")
_Conn = psycopg.AsyncConnection[TupleRow]
_log = structlog.get_logger("handshake_obs.ledger")
TUPLES_OK = ExecStatus.TUPLES_OK

#: Longest schema name PostgreSQL keeps (NAMEDATALEN - 1 bytes).
_MAX_IDENTIFIER_BYTES = 63


class PostgresLedger(RulesLedger):
    """Ledger in PostgreSQL; see the module docstring for its concurrency."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        connect_timeout_seconds: float = 10.0,
        token_keys: TokenKeys | None = None,
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
        self._codec = RowCodec(TokenCipher(token_keys) if token_keys is not None else None)
        self._record_function = RecordFunction(self._sql)
        self._record_batches: RecordBatches | None = RecordBatches(
            self._call_record_function, self._codec, max_calls=min(MAX_CALLS, pool_size)
        )
        self._secrets = _secrets_of(url)
        self._pool: AsyncConnectionPool[_Conn] | None = None
        self._in_flight = OperationsInFlight()

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
                await migrate(conn, self._schema, self._record_function)
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
        """The operations in flight, and those that start while they run, finish first (a
        record waiting for its batch is stored and answered), for at most the connect
        timeout: then the pool closes, and an operation still running fails."""
        if self._pool is None:
            return
        if not await self._in_flight.settled(self._connect_timeout):
            _log.warning(
                "closing the ledger with operations still running",
                operations=len(self._in_flight),
                waited_seconds=self._connect_timeout,
            )
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

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
            with self._in_flight.one():
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
            # Not ``cur.description``: it builds an object per column of every result.
            result = cur.pgresult
            return await cur.fetchall() if result and result.status == TUPLES_OK else []

        return await self._connection(body)

    async def _one_record(self, sql: str, params: Sequence[Any]) -> HandoffRecord | None:
        rows = await self._fetch(sql, params)
        return self._codec.record(rows[0]) if rows else None

    async def _run(self, rule: Rule[_T]) -> _T:
        async def body(conn: _Conn) -> _T:
            return await run_program_async(
                rule(), functools.partial(execute, conn, self._sql, self._codec)
            )

        return await self._transaction(body)

    async def _take(self, step: Returns[_T]) -> _T:
        async def body(conn: _Conn) -> _T:  # autocommit: the one statement commits itself
            return await take_step_async(
                step, functools.partial(execute, conn, self._sql, self._codec)
            )

        return await self._connection(body)

    async def _insert_new_rows(self, records: Sequence[HandoffRecord]) -> None:
        """Insert ``records`` as new rows with ``COPY``, in one transaction, without the
        record rule (see ``ledger/_bulk_insert.py``); a token or handoff id recorded already,
        or repeated in ``records``, fails the unique index and rolls all of them back."""
        rows = [self._codec.params(r, token_digest(r.task_token)) for r in records]
        counts = count_deltas(map(PendingChange.recorded, records), POSTGRES_SHARDS)

        async def body(conn: _Conn) -> None:
            async with conn.cursor().copy(self._sql.copy_new) as copy:
                for row in rows:
                    await copy.write_row(row)
            # Counted with the rows, as a rule does.
            await conn.cursor().executemany(self._sql.count_pending, counts)

        await self._transaction(body)

    # -- recording ----------------------------------------------------------------------

    async def record(self, record: HandoffRecord) -> RecordResult:
        # The common case batched into one statement (see ``_record_batches``); the rule's
        # program decides every other, and whatever the batch left to it.
        self._require_pool()
        with self._in_flight.one():  # from its batch to the rule's answer (see ``close``)
            batches = self._record_batches
            if batches is not None and BatchArguments.fits(record):
                stored = await batches.record(record)
                if stored is not None:
                    return RecordResult(record=stored, created=True)
            return await super().record(record)

    async def _call_record_function(self, batch: BatchArguments) -> list[HandoffRecord]:
        rows = await self._fetch(self._record_function.call, batch.params())
        return [self._codec.record(row) for row in rows]

    # -- looking up ---------------------------------------------------------------------

    async def get(self, handoff_id: str) -> HandoffRecord | None:
        return await self._one_record(self._sql.by_id, (handoff_id,))

    async def find_by_token(self, task_token: bytes) -> HandoffRecord | None:
        return await self._one_record(self._sql.by_digest, (token_digest(task_token),))

    async def find_by_activity(
        self, namespace: str | None, workflow_id: str, run_id: str | None, activity_id: str
    ) -> HandoffRecord | None:
        sql, params = self._sql.by_activity_query(namespace, workflow_id, run_id, activity_id)
        return await self._one_record(sql, params)

    async def find_standalone(
        self, namespace: str | None, activity_id: str, activity_run_id: str | None
    ) -> HandoffRecord | None:
        sql, params = self._sql.standalone_query(namespace, activity_id, activity_run_id)
        return await self._one_record(sql, params)

    # -- reading ------------------------------------------------------------------------

    async def pending_summary(
        self, now: float, age_bounds: Sequence[float]
    ) -> list[PendingSummary]:
        cuts = age_cuts(now, age_bounds)
        sql, params = self._sql.pending_snapshot(len(cuts)), snapshot_params(cuts)

        async def query(conn: _Conn) -> list[TupleRow]:
            await conn.execute(self._sql.no_jit)
            return await (await conn.execute(sql, params)).fetchall()

        rows = await self._transaction(query)
        return [summary_from_row(row, age_bounds) for row in snapshot_rows(rows, len(cuts))]

    async def _snapshot(self, body: Callable[[_Conn], Awaitable[_T]]) -> _T:
        """``body`` in one read-only transaction whose queries all see one snapshot."""

        async def in_snapshot(conn: _Conn) -> _T:
            await conn.execute(self._sql.snapshot)
            return await body(conn)

        return await self._transaction(in_snapshot)

    async def _pending_counts_and_recount(self) -> tuple[BucketCounts, BucketCounts]:
        async def both(conn: _Conn) -> tuple[BucketCounts, BucketCounts]:
            counted = await (await conn.execute(self._sql.counted_pending)).fetchall()
            recounted = await (await conn.execute(self._sql.recount_pending)).fetchall()
            return bucket_totals(counted), bucket_totals(recounted)

        return await self._snapshot(both)

    async def _rebuild_pending_counts(self) -> None:
        async def rebuild(conn: _Conn) -> None:
            # Once the lock is held, every writer that changed a count has committed, and
            # each new one waits: the recount below sees all the rows the counts count.
            await conn.execute(self._sql.lock_counts)
            await conn.execute(self._sql.clear_counts)
            await conn.execute(self._sql.rebuild_counts)

        await self._transaction(rebuild)

    async def list_handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        sql, params = self._sql.list_query(query)
        return [self._codec.record(row) for row in await self._fetch(sql, params)]

    async def _events(self, handoff_id: str, limit: int) -> list[HandoffEvent]:
        rows = await self._fetch(self._sql.events_of, (handoff_id, limit))
        return [row_to_event(handoff_id, row) for row in rows]

    async def latencies_since(self, since: float, *, limit: int) -> list[FinishedLatency]:
        rows = await self._fetch(self._sql.latencies_since, (since, limit))
        return [FinishedLatency(t, o, float(s)) for t, o, s in rows]

    async def outcomes_since(self, since: float) -> list[OutcomeTally]:
        rows = await self._fetch(self._sql.outcomes_since, (since,))
        return [OutcomeTally(t, o, e, int(n)) for t, o, e, n in rows]

    async def ping(self) -> None:
        await self._fetch(self._sql.ping)


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
