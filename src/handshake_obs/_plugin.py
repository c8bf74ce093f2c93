"""``HandshakePlugin``: handshake-obs as a Temporal SDK plugin, for clients and workers.

::

    client = await Client.connect(
        "localhost:7233", plugins=[OpenTelemetryPlugin(), HandshakePlugin(config)]
    )
    worker = Worker(client, task_queue="agents", activities=[ask_agent])  # instrumented too
    await worker.run()

The plugin adds :class:`HandshakeInterceptor` to the client (plain async-activity handles are
observed) and, through it, to every worker built on that client (activities that hand off
are recorded), and it owns the :class:`Handshake` behind them: the ledger is opened when the
client connects (or a worker starts, for a plugin given to a ``Worker`` only) and closed
when the last worker it runs stops. A process whose client outlives its workers (a
completer) uses ``async with plugin:`` to decide when it closes.

List it after ``OpenTelemetryPlugin``: interceptors run in the order given, and the handoff
span is the child of the ``RunActivity`` span only if that span is already current.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType

from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry
from temporalio.client import Client, WorkflowHistory
from temporalio.plugin import SimplePlugin
from temporalio.service import ConnectConfig, ServiceClient
from temporalio.worker import Replayer, WorkflowReplayResult

from ._handshake import Handshake
from .completion._completer import Completer
from .config import HandshakeConfig
from .ledger import Ledger

#: The plugin's name, as the SDK lists plugins.
PLUGIN_NAME = "handshake_obs.HandshakePlugin"


class HandshakePlugin(SimplePlugin):
    """Records every handoff and instruments every completion of the clients and workers it
    is given to; starts and stops its :class:`Handshake` with them.

    ``config`` defaults to ``HandshakeConfig.from_env()`` (the ``HANDSHAKE_*`` settings);
    metrics go to ``registry`` (default: prometheus_client's global registry, which
    ``start_http_server`` serves) and spans to ``tracer_provider`` (default: the global one).
    """

    def __init__(
        self,
        config: HandshakeConfig | None = None,
        *,
        registry: CollectorRegistry | None = None,
        ledger: Ledger | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        #: The ledger, metrics and completion path this plugin's clients and workers share.
        self.handshake = Handshake(
            config if config is not None else HandshakeConfig.from_env(),
            registry=REGISTRY if registry is None else registry,
            ledger=ledger,
            tracer_provider=tracer_provider,
        )
        self._lock = asyncio.Lock()
        self._started = False
        #: Workers running and ``async with`` blocks open: the handshake stops at zero.
        self._holders = 0
        super().__init__(
            PLUGIN_NAME, interceptors=[self.handshake.interceptor], run_context=self._held
        )

    def completer(self, client: Client) -> Completer:
        """A completer calling Temporal through ``client`` (one this plugin was given to)."""
        return self.handshake.completer(client)

    async def start(self) -> None:
        """Open the ledger and start the pending gauges, once; later calls do nothing."""
        async with self._lock:
            if not self._started:
                await self.handshake.start()
                self._started = True

    async def stop(self) -> None:
        """Stop the gauges and close the ledger (if started); the plugin can start again."""
        async with self._lock:
            if self._started:
                self._started = False
                await self.handshake.stop()

    async def connect_service_client(
        self,
        config: ConnectConfig,
        next: Callable[[ConnectConfig], Awaitable[ServiceClient]],
    ) -> ServiceClient:
        """Start the handshake before the client exists: its first completion is recorded."""
        await self.start()
        return await next(config)

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        """Around each worker run: started before it polls, stopped after the last one."""
        await self._hold()
        try:
            yield
        finally:
            await self._release()

    async def _hold(self) -> None:
        await self.start()
        self._holders += 1

    async def _release(self) -> None:
        self._holders -= 1
        if self._holders == 0:
            await self.stop()

    @asynccontextmanager
    async def run_replayer(
        self,
        replayer: Replayer,
        histories: AsyncIterator[WorkflowHistory],
        next: Callable[
            [Replayer, AsyncIterator[WorkflowHistory]],
            AbstractAsyncContextManager[AsyncIterator[WorkflowReplayResult]],
        ],
    ) -> AsyncIterator[AsyncIterator[WorkflowReplayResult]]:
        """A replay runs no activity and records nothing: no ledger is opened for it."""
        async with next(replayer, histories) as results:
            yield results

    async def __aenter__(self) -> HandshakePlugin:
        await self._hold()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._release()
