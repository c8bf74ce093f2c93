"""uvicorn's HTTP/1.1 protocol with a header timeout: a client that never finishes its
request line and headers is disconnected.

uvicorn times out idle keep-alive connections, but not one that sends part of its headers
and stalls (any byte received cancels the keep-alive timer): without this, each such client
holds a connection for ever, up to ``max_connections``. The request guard bounds the body;
this bounds what comes before it, with the same ``body_timeout``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutProtocol(H11Protocol):
    """H11Protocol that closes a connection whose next request's headers are not complete
    within :attr:`header_timeout` seconds of the connection or of the previous response."""

    #: Seconds; set per server by :func:`protocol_with_header_timeout`.
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._timed_cycle: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_timer is not None and self.cycle is not self._timed_cycle:
            self._disarm()  # a new request's headers arrived: the body has its own timeout

    def on_response_complete(self) -> None:
        finished = self.cycle
        super().on_response_complete()
        # Unless a pipelined request started already, the next headers are on the clock.
        if self.cycle is finished and not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._timed_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is self._timed_cycle and not self.transport.is_closing():
            self.transport.close()


def protocol_with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for one server, with its header timeout."""
    return type("SidecarHttpProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})
