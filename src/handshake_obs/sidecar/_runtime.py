"""What the sidecar's API, page and activities share while the process runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from .._errors import LedgerError, TemporalUnavailableError
from .._handshake import Handshake
from .._vocabulary import Component
from ..completion._completer import Completer
from ..config import HandshakeConfig, SidecarSettings
from ._history import PendingHistory

_log = structlog.get_logger("handshake_obs.sidecar")

#: How long a readiness check waits for Temporal and for the ledger.
READINESS_TIMEOUT = timedelta(seconds=2)


@dataclass
class SidecarRuntime:
    """The sidecar's parts; ``client`` is set once Temporal has answered."""

    config: HandshakeConfig
    settings: SidecarSettings
    handshake: Handshake
    registry: CollectorRegistry
    clock: Callable[[], float] = time.time
    client: Client | None = None
    #: Pending counts sampled over the last hour (the status page's picture).
    history: PendingHistory = field(default_factory=PendingHistory)
    _completer: Completer | None = field(default=None, init=False, repr=False)

    def completer(self) -> Completer:
        """The instrumented completer; 503 (TemporalUnavailableError) until connected."""
        if self.client is None:
            raise TemporalUnavailableError("not connected to Temporal yet")
        if self._completer is None:
            self._completer = self.handshake.completer(self.client)
        return self._completer

    async def readiness(self) -> dict[str, str]:
        """``ok`` or what failed, for Temporal and for the ledger."""
        checks: dict[str, str] = {}
        timeout = READINESS_TIMEOUT.total_seconds()
        try:
            # Written, not only read: a read-only, deleted or replaced ledger is not ready.
            await asyncio.wait_for(self.handshake.ledger.ping(), timeout)
            await asyncio.wait_for(self.handshake.ledger.check_writable(), timeout)
            checks["ledger"] = "ok"
        except (LedgerError, TimeoutError) as err:
            checks["ledger"] = f"unavailable: {err or 'timed out'}"
            self.handshake._metrics.observe_instrumentation_error(Component.LEDGER)
            _log.error("ledger not ready", error=checks["ledger"])
        if self.client is None:
            checks["temporal"] = "unavailable: not connected yet"
        else:
            try:
                healthy = await self.client.service_client.check_health(timeout=READINESS_TIMEOUT)
                checks["temporal"] = "ok" if healthy else "unavailable: not serving"
            except Exception as err:  # noqa: BLE001 - any failure means not ready
                checks["temporal"] = f"unavailable: {err}"
        return checks
