"""Pruning: finished handoffs leave the ledger once their retention has passed.

A finished row keeps no credential (its token is forgotten as it finishes), but it keeps
identities and error messages, and an unbounded table slows every scan. The reaper's loop
(``serve`` and ``reap``) prunes after each scan, in batches of ``ledger_prune_batch_size``
rows, each its own short transaction: on SQLite each batch is one job of the writer thread,
so the writes that queued meanwhile go between two batches; on PostgreSQL each batch skips
rows another transaction is locking. A pass stops after :data:`MAX_BATCHES_PER_PASS` batches,
so a large backlog is worked off over several scans, never in one long hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from .._errors import LedgerError
from ..config import HandshakeConfig
from ..ledger import Ledger

_log = structlog.get_logger("handshake_obs.pruner")

#: Most batches one pass deletes (a backlog is left for the next scans).
MAX_BATCHES_PER_PASS = 20


class Pruner:
    """Deletes finished handoffs older than the configured retention, in batches."""

    def __init__(
        self, ledger: Ledger, config: HandshakeConfig, *, clock: Callable[[], float]
    ) -> None:
        self._ledger = ledger
        self._retention = config.ledger_retention
        self._batch = config.ledger_prune_batch_size
        self._clock = clock

    async def prune_once(self) -> int:
        """One pass: batches until one comes back short (or the pass's bound); how many
        handoffs went. A ledger error ends the pass (logged); the next pass tries again."""
        if self._retention is None:
            return 0
        before = self._clock() - self._retention.total_seconds()
        pruned = 0
        for _ in range(MAX_BATCHES_PER_PASS):
            try:
                batch = await self._ledger.prune_finished(before, limit=self._batch)
            except LedgerError as err:
                _log.warning("finished handoffs not pruned: ledger unavailable", error=str(err))
                break
            pruned += batch
            if batch < self._batch:
                break
            await asyncio.sleep(0)  # let the handoffs waiting on the ledger go first
        if pruned:
            _log.info("finished handoffs pruned", pruned=pruned, finished_before=before)
        return pruned
