"""``Handshake``: the ledger, metrics and configuration of one process, wired together."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry
from temporalio.client import Client

from ._completer import Completer
from ._completion import CompletionPath
from ._config import HandshakeConfig
from ._interceptor import HandshakeInterceptor
from ._metrics import HandshakeMetrics
from ._pending_gauges import PendingGaugesCollector, PendingGaugesRefresher
from ._reaper import Reaper
from ._recorder import HandoffRecorder
from ._tracing import HandshakeTracing
from .ledger import Ledger, ledger_from_url


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
        clock: Callable[[], float] = time.time,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self.ledger = ledger if ledger is not None else ledger_from_url(config.ledger_url)
        self.metrics = HandshakeMetrics(config, registry=registry)
        self._pending = PendingGaugesCollector(config)
        registry.register(self._pending)
        self.refresher = PendingGaugesRefresher(
            self._pending, self.ledger, config, metrics=self.metrics, clock=clock
        )
        self.tracing = HandshakeTracing(config, tracer_provider=tracer_provider)
        self.recorder = HandoffRecorder(
            ledger=self.ledger,
            metrics=self.metrics,
            config=config,
            tracing=self.tracing,
            clock=clock,
        )
        self.completion = CompletionPath(
            ledger=self.ledger,
            metrics=self.metrics,
            config=config,
            tracing=self.tracing,
            clock=clock,
        )
        self.interceptor = HandshakeInterceptor(recorder=self.recorder, completion=self.completion)

    async def start(self) -> None:
        """Open the ledger, compute the pending gauges once, then keep them fresh."""
        await self.ledger.open()
        await self.refresher.refresh()
        self.refresher.start()

    async def stop(self) -> None:
        """Stop the refresher and close the ledger."""
        await self.refresher.stop()
        await self.ledger.close()

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
        return Completer(client, completion=self.completion)

    def reaper(self, client: Client, *, identity: str | None = None) -> Reaper:
        """A reaper that fails expired handoffs through ``client`` (not started)."""
        return Reaper(
            client,
            ledger=self.ledger,
            completion=self.completion,
            metrics=self.metrics,
            config=self.config,
            identity=identity,
            clock=self._clock,
        )
