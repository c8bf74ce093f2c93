"""Closing the SQLite ledger: what is queued on its threads when it closes still runs, on
its connections (a record in flight is committed and answered, a queued checkpoint copies
the log back), and nothing is logged as failed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from handshake_obs.ledger import SqliteLedger
from handshake_obs.ledger.sqlite._checkpointer import CHECKPOINT_EVERY_ROWS
from handshake_obs.ledger.sqlite._serial_thread import SerialThread

from ..test_ledger_contract import make_record

#: How long a thread is held after ``close`` starts (it blocks the loop until the threads end).
HELD_SECONDS = 0.3

Logs = list[MutableMapping[str, Any]]


@pytest.fixture
def logs() -> Iterator[Logs]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def held_until_close(thread: SerialThread | None) -> threading.Timer:
    """Hold ``thread`` until :data:`HELD_SECONDS` after the returned timer is started (just
    before ``close``), so that what is queued meanwhile is still queued when it closes."""
    assert thread is not None
    release = threading.Event()
    thread.post(lambda: release.wait(10))
    return threading.Timer(HELD_SECONDS, release.set)


def failures(logs: Logs) -> Logs:
    return [entry for entry in logs if entry["log_level"] in {"error", "critical"}]


async def test_a_record_in_flight_when_the_ledger_closes_is_committed_and_answered(
    tmp_path: Path, logs: Logs
) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    await ledger.open()
    record = make_record()
    release = held_until_close(ledger._writer)
    in_flight = asyncio.ensure_future(ledger.record(record))
    await asyncio.sleep(0.05)  # queued behind the held writer
    release.start()
    await ledger.close()

    result = await asyncio.wait_for(in_flight, 5)
    assert result.created
    async with SqliteLedger(path, create=False) as reopened:
        assert await reopened.get(record.handoff_id) == result.record
    assert failures(logs) == []


async def test_a_checkpoint_queued_when_the_ledger_closes_runs_on_its_connection(
    tmp_path: Path, logs: Logs
) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    await ledger.open()
    release = held_until_close(ledger._checkpoint_thread)
    # Enough rows for the checkpointer to queue a checkpoint, behind the held thread.
    await asyncio.gather(*(ledger.record(make_record()) for _ in range(CHECKPOINT_EVERY_ROWS)))
    release.start()
    await ledger.close()

    assert failures(logs) == []
    assert not [e for e in logs if e["event"] == "ledger checkpoint failed"]
