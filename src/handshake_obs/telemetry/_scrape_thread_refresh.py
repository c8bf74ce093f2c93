"""A scrape served from another thread refreshes a stale pending snapshot on the event loop.

``prometheus_client.start_http_server`` (a worker's or the proxy's ``/metrics``) collects in
its own thread. The ledger belongs to the Handshake's event loop, so the refresh runs there
(``asyncio.run_coroutine_threadsafe``) and the thread waits for it, at most the scrape
refresh timeout and a little scheduling grace: a blocked or busy loop costs a scrape that
long, never more. A collect on the loop's own thread cannot wait for the loop; it serves the
last snapshot (an async ``/metrics`` handler awaits the refresh before it renders).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Final

import structlog

from .._vocabulary import Component
from ._metrics import HandshakeMetrics
from ._pending_refresher import PendingGaugesRefresher

_log = structlog.get_logger("handshake_obs.pending_gauges")

#: How much longer than the refresh's own bound the thread waits for the loop to answer.
LOOP_GRACE_SECONDS: Final = 0.1


class ScrapeThreadRefresh:
    """The collector's hook: called at the start of every collect, in the scraping thread.

    Built on the event loop that runs the Handshake (it remembers that loop and its thread).
    """

    def __init__(
        self, refresher: PendingGaugesRefresher, *, timeout: float, metrics: HandshakeMetrics
    ) -> None:
        self._refresher = refresher
        self._timeout = timeout
        self._metrics = metrics
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def __call__(self) -> None:
        """Refresh a stale snapshot before it is served, waiting a bounded time."""
        if threading.get_ident() == self._loop_thread or not self._refresher.stale:
            return
        if self._loop.is_closed():
            return
        refreshing = self._refresher.refresh_if_stale(self._timeout)
        try:
            answer = asyncio.run_coroutine_threadsafe(refreshing, self._loop)
        except RuntimeError:  # the loop closed since the check above
            refreshing.close()
            return
        try:
            answer.result(self._timeout + LOOP_GRACE_SECONDS)
        except (TimeoutError, concurrent.futures.CancelledError):
            # The loop did not run the refresh in time (blocked, busy, or shutting down).
            answer.cancel()
            self._metrics.observe_instrumentation_error(Component.PENDING_GAUGES)
            _log.warning(
                "pending gauges not refreshed for a scrape: the event loop did not answer",
                within_seconds=self._timeout + LOOP_GRACE_SECONDS,
            )
