"""WAL checkpoints on a thread of their own, not in the writer's commits.

In WAL mode SQLite copies the log back into the database file (a checkpoint) in the commit
that takes the log past ``wal_autocheckpoint`` pages (1,000 by default): that commit then
also copies the pages and syncs both files, and every record of its batch waits for it. On
this schema a batch of 50 records writes about 140 log pages, so every seventh commit paid
for one: 7 of the 20 µs each record's share of its commit cost (``docs/benchmarks.md``).

Here the writer's connection checkpoints itself only past :data:`WRITER_CHECKPOINT_PAGES`
(a backstop, should this thread fall behind), and after each commit the ledger tells the
:class:`Checkpointer` how many rows its connection has written so far: past
:data:`CHECKPOINT_EVERY_ROWS` more, one ``PASSIVE`` checkpoint is queued on the
checkpointer's thread and connection. A passive checkpoint takes no lock the writer needs:
it copies what has committed and leaves the rest for the next one. Durability is the
commit's, unchanged: a committed transaction is in the log, checkpointed or not.

The log starts over only when a checkpoint has copied all of it and nothing committed since,
which sustained writes rarely allow: then it grows to the backstop, where the writer's own
checkpoint has little left to copy, and the log starts over (measured: 10,575 pages at most
over 40,000 records from 50 writers).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Final

import structlog

from ._serial_thread import SerialThread

#: Rows written between two checkpoints: a row writes one to three log pages, so about the
#: 1,000 pages at which SQLite would checkpoint by itself.
CHECKPOINT_EVERY_ROWS: Final = 500
#: Log pages at which the writer's own connection checkpoints after all (40 MB of 4 KiB
#: pages): only when the checkpointer cannot keep up, or fails.
WRITER_CHECKPOINT_PAGES: Final = 10_000

_log = structlog.get_logger("handshake_obs.ledger")


class Checkpointer:
    """Queues a passive checkpoint on ``thread`` once enough rows were written."""

    def __init__(self, thread: SerialThread, connection: Callable[[], sqlite3.Connection]) -> None:
        self._thread = thread
        self._connection = connection
        self._lock = threading.Lock()
        #: The writer's row count when the last checkpoint was queued.
        self._queued_at = 0
        #: Whether a checkpoint is queued and not yet done.
        self._queued = False

    def written(self, total_rows: int) -> None:
        """The writer's connection has written ``total_rows`` rows since it opened (its
        ``total_changes``); called on the writer thread after a commit."""
        with self._lock:
            if self._queued or total_rows - self._queued_at < CHECKPOINT_EVERY_ROWS:
                return
            self._queued, self._queued_at = True, total_rows
        # Shut down: closing the last connection checkpoints anyway.
        with contextlib.suppress(RuntimeError):
            self._thread.post(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as err:  # the writer's own checkpoint is the backstop
            _log.warning("ledger checkpoint failed", error=str(err))
        finally:
            with self._lock:
                self._queued = False
