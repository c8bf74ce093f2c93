"""Group commit: the rules queued while the writer thread is busy commit in one transaction.

SQLite has one writer, and a commit costs more than a rule's statements; one transaction per
rule caps the ledger at one commit's rate however many callers wait. Here each rule still
runs whole and alone, but the rules that queued up meanwhile share one ``BEGIN IMMEDIATE`` …
``COMMIT``. Durability is unchanged: no caller hears its rule's result before the commit that
holds it, so a handoff is on disk before its token leaves the process. A failed commit fails
every rule of its batch, and none of their writes stays.

A rule that raises undoes only its own writes. Rules rarely raise, so a batch first runs
without savepoints (they cost a third of a record's time): if one raises, the whole
transaction is rolled back and the batch runs again with each rule in its own savepoint.
A body may therefore run twice; only its last run's writes and answer count, so bodies are
functions of the connection alone (a rule's program starts anew, see ``Rule``).

A batch may also run some of its bodies as one, first in its transaction (``together``: the
SQLite ledger writes its common records set-wise, ``_record_batch``). If that raises, the
batch runs again with each body on its own, in savepoints.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import structlog

from ._serial_thread import Answer, SerialThread, deliver

_log = structlog.get_logger("handshake_obs.ledger")

_T = TypeVar("_T")

#: Most rules one transaction takes: the write lock is not held for long at a time.
MAX_BATCH: Final = 128

#: A transaction body: its answer, from the writes it makes on the connection.
Body = Callable[[sqlite3.Connection], Any]
#: Runs some bodies of a batch as one: the answers of those it ran, by their place in the
#: batch; the others run on their own after it.
Together = Callable[[sqlite3.Connection, Sequence[Body]], dict[int, Any]]


@dataclass(slots=True)
class _Queued(Generic[_T]):
    body: Callable[[sqlite3.Connection], _T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[_T]


class GroupCommit:
    """Runs transaction bodies on ``thread``, batching those that wait."""

    def __init__(
        self,
        thread: SerialThread,
        connection: Callable[[], sqlite3.Connection],
        *,
        together: Together | None = None,
        committed: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self._thread = thread
        self._connection = connection
        #: What runs bodies of a batch as one (None: each runs on its own).
        self.together = together
        #: Called on the thread with the connection after each commit.
        self._committed = committed
        self._queue: deque[_Queued[Any]] = deque()
        self._lock = threading.Lock()
        #: Whether a flush is submitted and not yet past taking its batch.
        self._flush_due = False

    async def run(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """``body``'s result once the transaction it ran in has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        with self._lock:
            self._queue.append(_Queued(body, loop, future))
            submit, self._flush_due = not self._flush_due, True
        if submit:
            self._submit_flush()
        return await future

    def _submit_flush(self) -> None:
        try:
            self._thread.post(self._flush)
        except RuntimeError:  # the writer shut down: nothing will run what is queued
            self._fail_queued(sqlite3.ProgrammingError("the ledger is closed"))

    def _fail_queued(self, error: BaseException) -> None:
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            self._flush_due = False
        _deliver(batch, [(False, error)] * len(batch))

    def _flush(self) -> None:
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            more = bool(self._queue)
            self._flush_due = more
        if more:
            self._submit_flush()  # runs after this one: the thread runs one job at a time
        if not batch:
            return
        try:
            answers = self._commit(batch)
        except Exception as err:  # noqa: BLE001 - every rule of the batch hears why
            answers = [(False, err)] * len(batch)
        except BaseException as err:
            _deliver(batch, [(False, err)] * len(batch))
            raise
        _deliver(batch, answers)

    def _commit(self, batch: list[_Queued[Any]]) -> list[Answer]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            answers = _without_savepoints(conn, batch, self.together)
            if answers is None:  # a rule raised: every rule again, each in a savepoint
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                answers = [_in_savepoint(conn, item.body) for item in batch]
            committed = conn.in_transaction  # not when a batch of one failed: rolled back
            if committed:
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if committed and self._committed is not None:
            try:
                self._committed(conn)
            except Exception:  # noqa: BLE001 - the batch committed: its answers stand
                _log.exception("after a ledger commit")
        return answers


def _without_savepoints(
    conn: sqlite3.Connection, batch: list[_Queued[Any]], together: Together | None
) -> list[Answer] | None:
    """Every rule's answer, or None when one raised, ``together`` included (its writes and
    the others' may then still be in the transaction). A batch of one needs no second run:
    its failure is its answer once its transaction is rolled back."""
    if len(batch) == 1:
        try:
            return [(True, batch[0].body(conn))]
        except Exception as err:  # noqa: BLE001 - the rule's own failure is its answer
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, err)]
    answers: list[Answer] = []
    try:
        ran = {} if together is None else together(conn, [item.body for item in batch])
        for place, item in enumerate(batch):
            answers.append((True, ran[place] if place in ran else item.body(conn)))
    except Exception:  # noqa: BLE001 - the batch runs again, where it is answered
        return None
    return answers


def _in_savepoint(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], Any]) -> Answer:
    conn.execute("SAVEPOINT rule")
    try:
        result = body(conn)
    except Exception as err:  # the rule's own failure: only its writes go
        if not conn.in_transaction:
            raise  # SQLite rolled the whole transaction back: the batch fails
        conn.execute("ROLLBACK TO rule")
        conn.execute("RELEASE rule")
        return (False, err)
    conn.execute("RELEASE rule")
    return (True, result)


def _deliver(batch: list[_Queued[Any]], answers: list[Answer]) -> None:
    deliver([(item.loop, item.future, answer) for item, answer in zip(batch, answers, strict=True)])
