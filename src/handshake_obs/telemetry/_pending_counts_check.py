"""Now and then, the ledger's pending counts are checked against a recount, and repaired.

The pending snapshot reads counts the ledger's rules keep beside the rows they summarise;
no rule lets them drift, but a recount is the proof. It is a full scan (about a second at
a million pending handoffs, on the ledger's read connection), so it runs rarely and never at
start-up; a mismatch is logged by the ledger, repaired, and counted here as an
instrumentation error of the pending gauges (what the alert on those errors watches).
"""

from __future__ import annotations

from typing import Final

import structlog

from .._periodic import PeriodicTask
from .._vocabulary import Component
from ..ledger import Ledger
from ._metrics import HandshakeMetrics

_log = structlog.get_logger("handshake_obs.pending_gauges")

#: Seconds between two checks of one process.
CHECK_INTERVAL_SECONDS: Final = 3600.0


class PendingCountsCheck:
    """Recounts the pending handoffs every ``interval`` seconds, the first time one interval
    after :meth:`start`; repairs and counts any drift found."""

    def __init__(
        self, ledger: Ledger, metrics: HandshakeMetrics, *, interval: float = CHECK_INTERVAL_SECONDS
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._started = False
        self._loop = PeriodicTask(self._pass, interval=interval, name="handshake-pending-counts")

    def start(self) -> None:
        """Check from one interval from now until :meth:`stop`."""
        self._started = False
        self._loop.start()

    async def stop(self) -> None:
        """Stop checking (a check in progress is cancelled: it changed nothing yet, or its
        repair is one transaction)."""
        await self._loop.stop()

    async def _pass(self) -> None:
        if not self._started:
            self._started = True  # the loop's first pass is at start-up: not a time to scan
            return
        try:
            drifted = await self._ledger.verify_pending_counts(repair=True)
        except Exception as err:  # noqa: BLE001 - telemetry never breaks the host
            self._metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
            _log.warning("pending counts not checked", error=repr(err))
            return
        if drifted:
            self._metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
