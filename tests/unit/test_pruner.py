"""The pruner: finished handoffs past their retention go in bounded batches, pending ones
never; a pass is bounded too, and a ledger failure ends it without raising."""

from __future__ import annotations

from datetime import timedelta

from handshake_obs import LedgerError, Outcome
from handshake_obs.completion._pruner import MAX_BATCHES_PER_PASS, Pruner
from handshake_obs.config import HandshakeConfig
from handshake_obs.ledger import MemoryLedger
from handshake_obs.testing import pending_record

NOW = 1_800_000_000.0


async def _finished(ledger: MemoryLedger, count: int, at: float) -> None:
    for _ in range(count):
        record = pending_record(started_at=at - 1)
        await ledger.record(record)
        await ledger.finish(record.handoff_id, Outcome.COMPLETED, at)


async def test_a_pass_prunes_old_finished_handoffs_in_batches_and_keeps_the_rest() -> None:
    config = HandshakeConfig(ledger_retention=timedelta(hours=1), ledger_prune_batch_size=3)
    ledger = MemoryLedger()
    async with ledger:
        await _finished(ledger, 7, NOW - 7200)
        await _finished(ledger, 2, NOW - 60)
        old_pending = pending_record(started_at=NOW - 99_999)
        await ledger.record(old_pending)
        batches: list[int] = []
        prune = ledger.prune_finished

        async def counting(before: float, *, limit: int) -> int:
            batches.append(await prune(before, limit=limit))
            return batches[-1]

        ledger.prune_finished = counting  # type: ignore[method-assign]

        pruned = await Pruner(ledger, config, clock=lambda: NOW).prune_once()

        assert pruned == 7
        assert batches == [3, 3, 1]
        assert len(ledger._tables.handoffs) == 3
        assert await ledger.get(old_pending.handoff_id) is not None


async def test_a_pass_stops_after_its_bound_and_the_next_goes_on() -> None:
    config = HandshakeConfig(ledger_retention=timedelta(hours=1), ledger_prune_batch_size=1)
    ledger = MemoryLedger()
    async with ledger:
        await _finished(ledger, MAX_BATCHES_PER_PASS + 2, NOW - 7200)
        pruner = Pruner(ledger, config, clock=lambda: NOW)

        assert await pruner.prune_once() == MAX_BATCHES_PER_PASS
        assert await pruner.prune_once() == 2


async def test_no_retention_prunes_nothing_and_a_ledger_failure_does_not_raise() -> None:
    ledger = MemoryLedger()
    async with ledger:
        await _finished(ledger, 2, NOW - 10**7)
        kept = Pruner(ledger, HandshakeConfig(ledger_retention=None), clock=lambda: NOW)

        async def broken(before: float, *, limit: int) -> int:
            raise LedgerError("ledger (memory): down")

        assert await kept.prune_once() == 0
        ledger.prune_finished = broken  # type: ignore[method-assign]
        assert await Pruner(ledger, HandshakeConfig(), clock=lambda: NOW).prune_once() == 0
        assert len(ledger._tables.handoffs) == 2
