"""The embedded ledger: one SQLite file in WAL mode.

Writes go through one thread and one connection (SQLite has one writer anyway, and this
keeps lock waits off the event loop): each write operation is one rule, run whole on that
thread, so it costs one hop to the thread (a queue of our own, ``_serial_thread.py``). Rules
that queue while the thread is busy share one ``BEGIN IMMEDIATE`` transaction
(``_group_commit.py``), and no caller hears its result before that transaction commits; the
common records of such a batch are written set-wise (``_record_batch.py``). Reads for the
scrape-time gauges use a second thread and connection, so a slow summary never delays a
handoff, and a third copies the log back into the file (``_checkpointer.py``), so that no
commit waits for a checkpoint. WAL with ``synchronous=NORMAL`` keeps every committed
handoff across a kill -9 of the process (only an OS crash can lose the last commits).
Several processes may share the file: writers take ``BEGIN IMMEDIATE`` and wait up to
``busy_timeout``.

The file holds task tokens, bearer credentials: a directory the ledger creates is 0700 and
the file 0600, whatever the umask, and SQLite gives its ``-wal`` and ``-shm`` files the
database file's mode.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from ..._errors import LedgerError
from ..._records import HandoffEvent, HandoffRecord, PendingSummary
from ..._token_keys import TokenKeys
from ..._tokens import token_digest
from .._interface import FinishedLatency, HandoffQuery, OutcomeTally, RecordResult
from .._pending_counts import (
    SQLITE_SHARDS,
    PendingChange,
    age_cuts,
    bucket_totals,
    count_deltas,
    snapshot_params,
    snapshot_rows,
)
from .._rows import RowCodec, row_to_event, summary_from_row
from .._rules import Returns, Rule, programs, run_program, take_step
from .._rules_ledger import BucketCounts, RulesLedger
from .._token_cipher import TokenCipher
from ._checkpointer import WRITER_CHECKPOINT_PAGES, Checkpointer
from ._executor import execute
from ._group_commit import GroupCommit
from ._record_batch import RecordBody, write_together
from ._schema import migrate
from ._serial_thread import SerialThread
from ._statements import SQL

_T = TypeVar("_T")

_log = structlog.get_logger("handshake_obs.ledger")


class SqliteLedger(RulesLedger):
    """Ledger in one SQLite file; see the module docstring for its concurrency."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_seconds: float = 10.0,
        create: bool = True,
        token_keys: TokenKeys | None = None,
    ) -> None:
        self._path = Path(path)
        self._busy_timeout = busy_timeout_seconds
        #: Whether opening may create a missing file (loudly); else a missing file is refused.
        self._create = create
        #: (device, inode) of the file as opened: a deleted or replaced file is noticed.
        self._identity: tuple[int, int] | None = None
        self._codec = RowCodec(TokenCipher(token_keys) if token_keys is not None else None)
        self._writer: SerialThread | None = None
        self._group: GroupCommit | None = None
        self._reader: SerialThread | None = None
        self._checkpoint_thread: SerialThread | None = None
        self._checkpointer: Checkpointer | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        if not self._path.exists():
            if not self._create:
                raise LedgerError(
                    f"no ledger at {self._path}: the file does not exist (a ledger is created "
                    "by `handshake-obs serve` or `dev`, or by a worker's Handshake)"
                )
            _log.warning("creating a new, empty ledger", path=str(self._path))
        _create_owner_only(self._path)
        self._writer = SerialThread("handshake-ledger-write")
        self._group = GroupCommit(
            self._writer,
            self._wconn,
            together=functools.partial(write_together, self._codec),
            committed=self._committed,
        )
        self._reader = SerialThread("handshake-ledger-read")
        self._checkpoint_thread = SerialThread("handshake-ledger-checkpoint")
        try:
            self._write_conn = await self._write(self._connect_writer)
            await self._write(lambda: migrate(self._wconn()))
            self._read_conn = await self._read(self._connect)
            self._checkpoint_conn = await _run_on(self._checkpoint_thread, self._connect)
            self._checkpointer = Checkpointer(self._checkpoint_thread, self._cconn)
            self._identity = self._file_identity()
        except BaseException:
            await self.close()  # a refused or failed open leaves the ledger closed
            raise

    async def close(self) -> None:
        """What is queued on each thread still runs (a rule in flight commits and is
        answered), with its connection; then the connection closes and the thread ends. The
        writer goes first: a commit it still runs may queue a checkpoint."""
        writer, checkpoint_thread, reader = self._writer, self._checkpoint_thread, self._reader
        self._writer = self._checkpoint_thread = self._reader = None
        self._group = None
        self._checkpointer = None
        _shut_down(writer, self._write_conn)
        self._write_conn = None
        _shut_down(checkpoint_thread, self._checkpoint_conn)
        self._checkpoint_conn = None
        _shut_down(reader, self._read_conn)
        self._read_conn = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        _enter_wal_mode(conn, time.monotonic() + self._busy_timeout)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        # Checkpoints run on their own thread; this is only the backstop (``_checkpointer``).
        conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")
        return conn

    # -- plumbing -----------------------------------------------------------------------

    def _committed(self, conn: sqlite3.Connection) -> None:
        """After each group commit, on the writer thread: a checkpoint may be due."""
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.written(conn.total_changes)

    def _cconn(self) -> sqlite3.Connection:
        if self._checkpoint_conn is None:
            raise LedgerError("the ledger is not open")
        return self._checkpoint_conn

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
        return await _run_on(self._writer, fn, *args)

    async def _read(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._reader is None:
            raise LedgerError("the ledger is not open")
        return await _run_on(self._reader, fn, *args)

    async def _run(self, rule: Rule[_T]) -> _T:
        return await self._in_group(self._program_body(rule))

    def _program_body(self, rule: Rule[_T]) -> Callable[[sqlite3.Connection], _T]:
        """The transaction body that runs ``rule``'s program on the write connection."""
        return lambda conn: run_program(rule(), functools.partial(execute, conn, self._codec))

    async def record(self, record: HandoffRecord) -> RecordResult:
        # A batch may write it with the other records it holds (``_record_batch``).
        program = self._program_body(lambda: programs.record(record))
        return await self._in_group(RecordBody(record, program))

    async def _in_group(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """``body`` in a transaction of the group commit, once that transaction committed."""
        if self._group is None:
            raise LedgerError("the ledger is not open")
        try:
            return await self._group.run(body)
        except sqlite3.Error as err:
            raise LedgerError(f"ledger (sqlite): {err}") from err

    async def _take(self, step: Returns[_T]) -> _T:
        # One write statement in autocommit takes the write lock as it starts.
        return await self._write(
            lambda: take_step(step, functools.partial(execute, self._wconn(), self._codec))
        )

    async def _insert_new_rows(self, records: Sequence[HandoffRecord]) -> None:
        """Insert ``records`` as new rows in one transaction, without the record rule (see
        ``ledger/_bulk_insert.py``); a token or handoff id recorded already, or repeated in
        ``records``, fails the unique index and rolls all of them back."""
        params = [self._codec.params(r, token_digest(r.task_token)) for r in records]
        counts = count_deltas(map(PendingChange.recorded, records), SQLITE_SHARDS)

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(SQL.insert_new, params)
            conn.executemany(SQL.count_pending, counts)  # counted with the rows, as a rule does

        await self._in_group(insert)

    # -- looking up ---------------------------------------------------------------------

    async def get(self, handoff_id: str) -> HandoffRecord | None:
        return await self._write(self._select_one, SQL.by_id, (handoff_id,))

    async def find_by_token(self, task_token: bytes) -> HandoffRecord | None:
        return await self._write(self._select_one, SQL.by_digest, (token_digest(task_token),))

    async def find_by_activity(
        self, namespace: str | None, workflow_id: str, run_id: str | None, activity_id: str
    ) -> HandoffRecord | None:
        sql, params = SQL.by_activity_query(namespace, workflow_id, run_id, activity_id)
        return await self._write(self._select_one, sql, params)

    async def find_standalone(
        self, namespace: str | None, activity_id: str, activity_run_id: str | None
    ) -> HandoffRecord | None:
        sql, params = SQL.standalone_query(namespace, activity_id, activity_run_id)
        return await self._write(self._select_one, sql, params)

    def _select_one(self, sql: str, params: tuple[Any, ...]) -> HandoffRecord | None:
        row = self._wconn().execute(sql, params).fetchone()
        return None if row is None else self._codec.record(row)

    # -- reading ------------------------------------------------------------------------

    async def pending_summary(
        self, now: float, age_bounds: Sequence[float]
    ) -> list[PendingSummary]:
        cuts = age_cuts(now, age_bounds)
        sql, params = SQL.pending_snapshot(len(cuts)), snapshot_params(cuts)

        def query() -> list[PendingSummary]:
            rows = self._rconn().execute(sql, params).fetchall()
            return [summary_from_row(row, age_bounds) for row in snapshot_rows(rows, len(cuts))]

        return await self._read(query)

    def _in_read_transaction(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """``body`` on the read connection, its queries seeing one snapshot of the file."""
        conn = self._rconn()
        conn.execute("BEGIN")
        try:
            return body(conn)
        finally:
            conn.execute("COMMIT")

    async def _pending_counts_and_recount(self) -> tuple[BucketCounts, BucketCounts]:
        def both(conn: sqlite3.Connection) -> tuple[BucketCounts, BucketCounts]:
            counted = conn.execute(SQL.counted_pending).fetchall()
            recounted = conn.execute(SQL.recount_pending).fetchall()
            return bucket_totals(counted), bucket_totals(recounted)

        return await self._read(self._in_read_transaction, both)

    async def _rebuild_pending_counts(self) -> None:
        def rebuild(conn: sqlite3.Connection) -> None:
            conn.execute(SQL.clear_counts)
            conn.execute(SQL.rebuild_counts)

        await self._in_group(rebuild)

    async def list_handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        sql, params = SQL.list_query(query)

        def run() -> list[HandoffRecord]:
            return [self._codec.record(r) for r in self._rconn().execute(sql, params).fetchall()]

        return await self._read(run)

    async def _events(self, handoff_id: str, limit: int) -> list[HandoffEvent]:
        def run() -> list[HandoffEvent]:
            rows = self._rconn().execute(SQL.events_of, (handoff_id, limit)).fetchall()
            return [row_to_event(handoff_id, row) for row in rows]

        return await self._read(run)

    async def latencies_since(self, since: float, *, limit: int) -> list[FinishedLatency]:
        def run() -> list[FinishedLatency]:
            rows = self._rconn().execute(SQL.latencies_since, (since, limit)).fetchall()
            return [FinishedLatency(t, o, float(s)) for t, o, s in rows]

        return await self._read(run)

    async def outcomes_since(self, since: float) -> list[OutcomeTally]:
        def run() -> list[OutcomeTally]:
            rows = self._rconn().execute(SQL.outcomes_since, (since,)).fetchall()
            return [OutcomeTally(t, o, e, int(n)) for t, o, e, n in rows]

        return await self._read(run)

    async def ping(self) -> None:
        await self._read(lambda: self._rconn().execute(SQL.ping).fetchone())

    async def check_writable(self) -> None:
        if self._identity is None:
            raise LedgerError("the ledger is not open")
        try:
            identity = self._file_identity()
        except FileNotFoundError:
            raise LedgerError(f"the ledger file {self._path} was deleted") from None
        if identity != self._identity:
            raise LedgerError(f"the ledger file {self._path} was replaced by another file")
        await super().check_writable()

    def _file_identity(self) -> tuple[int, int]:
        stat = os.stat(self._path)
        return (stat.st_dev, stat.st_ino)


def _enter_wal_mode(conn: sqlite3.Connection, deadline: float) -> None:
    """Switch a fresh file to WAL; connections opening it at the same moment may get BUSY
    at once (the switch takes an exclusive lock without waiting), so retry until
    ``deadline``."""
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
        else:
            return


#: Modes of what the ledger creates: its credentials are for its owner only.
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def _create_owner_only(path: Path) -> None:
    """Create the ledger's directory and empty file owner-only, unless they exist (an
    operator's own directory or file keeps its mode)."""
    try:
        if not path.parent.exists():
            try:
                path.parent.mkdir(parents=True, mode=DIRECTORY_MODE)
            except FileExistsError:
                pass  # another process made it meanwhile
            else:
                path.parent.chmod(DIRECTORY_MODE)  # a umask narrows mkdir's mode
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as err:
        raise LedgerError(f"ledger (sqlite): cannot create {path}: {err.strerror}") from err
    os.close(fd)


def _shut_down(thread: SerialThread | None, conn: sqlite3.Connection | None) -> None:
    """End ``thread`` once what is queued on it ran, closing ``conn`` last."""
    if thread is None:
        return
    if conn is not None:
        thread.post(conn.close)
    thread.shutdown()


async def _run_on(thread: SerialThread, fn: Callable[..., _T], *args: Any) -> _T:
    try:
        return await thread.call(fn, *args)
    except sqlite3.Error as err:
        raise LedgerError(f"ledger (sqlite): {err}") from err
