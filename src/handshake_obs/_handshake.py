"""``Handshake``: the ledger, metrics and configuration of one process, wired together."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from ._delayed_writes import DRAIN_SECONDS, DelayedWrites
from ._interceptor import HandshakeInterceptor
from .completion._completer import Completer
from .completion._path import CompletionPath
from .completion._reaper import Reaper
from .config import HandshakeConfig
from .ledger import Ledger, ledger_from_url
from .telemetry._metrics import HandshakeMetrics
from .telemetry._outcome_reporter import OutcomeReporter
from .telemetry._pending_counts_check import PendingCountsCheck
from .telemetry._pending_gauges import PendingGaugesCollector
from .telemetry._pending_refresher import PendingGaugesRefresher
from .telemetry._scrape_thread_refresh import ScrapeThreadRefresh
from .telemetry._tracing import HandshakeTracing
from .worker._recorder import HandoffRecorder

if TYPE_CHECKING:
    from .reconcile import Reconciler


class Handshake:
    """Everything a worker or completer process needs, started and stopped together.

    ::

        async with Handshake(config, registry=registry) as handshake:
            client = await Client.connect(url, interceptors=[handshake.interceptor])
            worker = Worker(client, task_queue=..., activities=[...])  # instrumented too
            completer = handshake.completer(client)

    Spans go to ``tracer_provider`` (default: the global one, e.g. installed by
    :func:`configure_tracing`).
    """

    def __init__(
        self,
        config: HandshakeConfig,
        *,
        registry: CollectorRegistry,
        ledger: Ledger | None = None,
        create_ledger: bool = True,
        clock: Callable[[], float] = time.time,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        #: The configuration every part applies.
        self.config = config
        #: Where handoffs are kept (opened by :meth:`start`): the configured one, with the
        #: configured token keys. ``create_ledger=False``: a missing SQLite file is refused
        #: when opened, never created empty (a command that expects a ledger).
        self.ledger = (
            ledger
            if ledger is not None
            else ledger_from_url(
                config.ledger_url, create=create_ledger, token_keys=config.token_keys
            )
        )
        self._clock = clock
        # Registered first: a scrape from another thread refreshes before anything is read.
        self._scrape_thread_refresh = ScrapeThreadRefresh()
        registry.register(self._scrape_thread_refresh)
        self._metrics = HandshakeMetrics(config, registry=registry)
        pending = PendingGaugesCollector(config, self._metrics.pending_changes)
        registry.register(pending)
        self._refresher = PendingGaugesRefresher(
            pending, self.ledger, config, metrics=self._metrics, clock=clock
        )
        self._counts_check = PendingCountsCheck(self.ledger, self._metrics)
        tracing = self._tracing = HandshakeTracing(config, tracer_provider=tracer_provider)
        # One reporter: an outcome is counted and described alike whoever recorded it.
        reporter = self._reporter = OutcomeReporter(self._metrics)
        #: Ledger writes that outlived their bound, owed by this process.
        self._delayed = DelayedWrites(self._metrics)
        self._recorder = HandoffRecorder(
            ledger=self.ledger,
            metrics=self._metrics,
            config=config,
            tracing=tracing,
            reporter=reporter,
            clock=clock,
            delayed=self._delayed,
        )
        self._completion = CompletionPath(
            ledger=self.ledger,
            metrics=self._metrics,
            config=config,
            tracing=tracing,
            reporter=reporter,
            clock=clock,
            delayed=self._delayed,
        )
        #: Give to ``Client.connect(interceptors=[...])``: instruments the client and every
        #: worker built on it.
        self.interceptor = HandshakeInterceptor(self)

    async def start(self) -> None:
        """Open the ledger, compute the pending gauges once, then keep them fresh: in the
        background, and at a scrape after this process recorded or finished a handoff."""
        await self.ledger.open()
        await self._refresher.refresh()
        self._refresher.start()
        self._counts_check.start()
        # A scrape thread (prometheus_client's HTTP server) refreshes on this loop.
        self._scrape_thread_refresh.start(
            self._refresher, metrics=self._metrics, timeout=self._scrape_refresh_timeout
        )

    async def stop(self) -> None:
        """Stop the refresher, give the ledger writes still owed time to land, and close
        the ledger."""
        self._scrape_thread_refresh.stop()
        await self._refresher.stop()
        await self._counts_check.stop()
        await self._delayed.drain(DRAIN_SECONDS)
        await self.ledger.close()

    async def refresh_pending_gauges(self) -> None:
        """Recompute the pending gauges from the ledger now (they refresh on their own every
        ``metrics_refresh_interval``)."""
        await self._refresher.refresh()

    async def refresh_stale_pending_gauges(self) -> bool:
        """What an async ``/metrics`` handler on this event loop awaits before it renders:
        the pending gauges brought up to every handoff this process counted, within
        ``metrics_scrape_refresh_timeout``. False: they were not (the last snapshot is
        served, and ``handshake_pending_snapshot_changes_behind`` says so). A scrape from
        another thread does this by itself."""
        return await self._refresher.refresh_if_stale(self._scrape_refresh_timeout)

    @property
    def _scrape_refresh_timeout(self) -> float:
        return self.config.metrics_scrape_refresh_timeout.total_seconds()

    async def __aenter__(self) -> Handshake:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def completer(self, client: Client) -> Completer:
        """A completer that calls Temporal through ``client``."""
        return Completer(client, self)

    def reaper(self, client: Client, *, identity: str | None = None) -> Reaper:
        """A reaper that fails expired handoffs through ``client`` (not started)."""
        return Reaper(client, self, identity=identity)

    def reconciler(self, client: Client, *, identity: str | None = None) -> Reconciler:
        """A reconciler that closes the handoffs Temporal closed without handshake-obs,
        asking Temporal through ``client`` (not started)."""
        # Imported here: a process that never reconciles does not load it.
        from .reconcile import Reconciler  # noqa: PLC0415

        return Reconciler(client, self, identity=identity)
