"""One call per handoff at a time, and outcomes durable before they are reported: the
completion path over a real SQLite file, Temporal a stand-in (outside the system under test).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from handshake_obs import HandoffAlreadyFinishedError, HandshakeConfig, LedgerError, Outcome
from handshake_obs.completion._call import Subject
from handshake_obs.completion._path import CompletionPath
from handshake_obs.ledger import SqliteLedger
from handshake_obs.telemetry._metrics import HandshakeMetrics

from ..support.ledger_inspection import side_tables
from ..support.waiting import assert_eventually
from .completion_kit import FakeRpc, errors, finished, new_record, rpcs

pytestmark = pytest.mark.unit


async def test_concurrent_completes_in_one_process_make_one_call(tmp_path: Path) -> None:
    config = HandshakeConfig(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", targets=("agent",))
    registry = CollectorRegistry()
    async with SqliteLedger(tmp_path / "l.db") as ledger:
        path = CompletionPath(
            ledger=ledger, metrics=HandshakeMetrics(config, registry=registry), config=config
        )
        record = (await ledger.record(new_record())).record
        released = asyncio.Event()
        rpc = FakeRpc([released])

        calls = [
            asyncio.ensure_future(path.complete(Subject(record, record.task_token), rpc))
            for _ in range(50)
        ]
        await asyncio.sleep(0.2)
        released.set()
        results = await asyncio.gather(*calls, return_exceptions=True)

    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, HandoffAlreadyFinishedError)]
    assert len(accepted) == 1
    assert accepted[0].outcome is Outcome.COMPLETED
    assert len(refused) == 49
    assert rpc.attempts == 1
    assert rpcs(registry, "complete") == 1
    assert errors(registry, "already_finished") == 49
    assert errors(registry, "already_closed") == 0
    assert finished(registry, "completed") == 1


async def test_an_intent_not_written_in_time_refuses_the_call(tmp_path: Path) -> None:
    """The ledger's write lock held by another connection: the mark cannot be written
    within the bound, so the call is refused and the RPC never made."""
    import sqlite3  # noqa: PLC0415 - the other connection, only here

    config = HandshakeConfig(
        ledger_url=f"sqlite:///{tmp_path / 'l.db'}",
        targets=("agent",),
        ledger_call_timeout=timedelta(seconds=0.2),
    )
    registry = CollectorRegistry()
    async with SqliteLedger(tmp_path / "l.db", busy_timeout_seconds=1) as ledger:
        path = CompletionPath(
            ledger=ledger, metrics=HandshakeMetrics(config, registry=registry), config=config
        )
        record = (await ledger.record(new_record())).record
        rpc = FakeRpc()
        other = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(LedgerError, match="nothing sent to Temporal"):
                await path.complete(Subject(record, record.task_token), rpc)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert rpc.attempts == 0
        assert errors(registry, "ledger_unavailable") == 1
        stored = await ledger.get(record.handoff_id)
        assert stored is not None
        assert stored.is_pending

        async def no_mark_left() -> None:
            assert (await side_tables(ledger)).marks_of(record.handoff_id) == set()

        # The mark written once the lock went is ended by the refused call.
        await assert_eventually(no_mark_left, timeout=5)
