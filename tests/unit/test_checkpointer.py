"""The SQLite ledger's checkpointer, on a real file and thread: one passive checkpoint per
:data:`CHECKPOINT_EVERY_ROWS` rows written, none queued twice, and a failing one logged
while the next is still queued."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from handshake_obs.ledger.sqlite._checkpointer import CHECKPOINT_EVERY_ROWS, Checkpointer
from handshake_obs.ledger.sqlite._serial_thread import SerialThread


class Traced:
    """A connection to one WAL file whose checkpoints are counted."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.checkpoints = 0
        self.conn.set_trace_callback(self._traced)

    def _traced(self, statement: str) -> None:
        if "wal_checkpoint" in statement:
            self.checkpoints += 1


@pytest.fixture
def thread() -> Iterator[SerialThread]:
    thread = SerialThread("checkpoint-test")
    yield thread
    thread.shutdown()


def drain(thread: SerialThread) -> None:
    """Wait until what is queued on ``thread`` ran."""
    done = threading.Event()
    thread.post(done.set)
    assert done.wait(10)


def test_a_checkpoint_is_queued_once_per_rows_written(tmp_path: Path, thread: SerialThread) -> None:
    traced = Traced(tmp_path / "ledger.db")
    checkpointer = Checkpointer(thread, lambda: traced.conn)

    checkpointer.written(CHECKPOINT_EVERY_ROWS - 1)
    drain(thread)
    assert traced.checkpoints == 0
    checkpointer.written(CHECKPOINT_EVERY_ROWS)
    drain(thread)
    assert traced.checkpoints == 1
    checkpointer.written(2 * CHECKPOINT_EVERY_ROWS - 1)  # counted from the last one
    drain(thread)
    assert traced.checkpoints == 1
    checkpointer.written(2 * CHECKPOINT_EVERY_ROWS)
    drain(thread)
    assert traced.checkpoints == 2


def test_a_checkpoint_queued_is_not_queued_again(tmp_path: Path, thread: SerialThread) -> None:
    traced = Traced(tmp_path / "ledger.db")
    checkpointer = Checkpointer(thread, lambda: traced.conn)
    release = threading.Event()
    thread.post(lambda: release.wait(10))  # the checkpoint waits behind this

    checkpointer.written(CHECKPOINT_EVERY_ROWS)
    checkpointer.written(5 * CHECKPOINT_EVERY_ROWS)
    release.set()
    drain(thread)
    assert traced.checkpoints == 1


def test_a_failing_checkpoint_is_logged_and_the_next_is_queued(
    tmp_path: Path, thread: SerialThread
) -> None:
    traced = Traced(tmp_path / "ledger.db")
    traced.conn.close()  # every checkpoint on it fails
    checkpointer = Checkpointer(thread, lambda: traced.conn)

    with structlog.testing.capture_logs() as logs:
        checkpointer.written(CHECKPOINT_EVERY_ROWS)
        drain(thread)
        checkpointer.written(2 * CHECKPOINT_EVERY_ROWS)
        drain(thread)
    failed = [e for e in logs if e["event"] == "ledger checkpoint failed"]
    assert len(failed) == 2
    assert all(e["log_level"] == "warning" and "closed" in e["error"] for e in failed)


def test_after_shutdown_nothing_is_queued(tmp_path: Path) -> None:
    traced = Traced(tmp_path / "ledger.db")
    thread = SerialThread("checkpoint-test")
    thread.shutdown()
    Checkpointer(thread, lambda: traced.conn).written(CHECKPOINT_EVERY_ROWS)  # no error
    assert traced.checkpoints == 0
