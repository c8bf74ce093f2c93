"""Forwarding every call to the upstream as bytes, faithfully.

A generic handler takes every method with identity serializers: the request and the
response cross the proxy as the bytes they are, undecoded. What a call carries besides
arrives too: the caller's metadata goes up (minus its own hop's), the upstream's initial and
trailing metadata come back, the caller's deadline is the upstream call's, a cancelled call
cancels the upstream one, and an upstream error comes back with its code, message and
trailers (``grpc-status-details-bin`` among them: Temporal's typed error details). Calls run
on the event loop: a long poll waits without holding a thread.

A few methods have an :data:`Observer` (the handoffs from the wire): it receives the request
and a ``send`` that makes the upstream call, and returns the response bytes to give back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import structlog

from ._upstream import HOP_METADATA

_log = structlog.get_logger("handshake_obs.proxy")

Metadata = tuple[tuple[str, str | bytes], ...]


class UpstreamError(Exception):
    """The upstream answered a forwarded call with an error status."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: Metadata = ()) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailers = trailers

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> UpstreamError:
        """The upstream's error as the caller gets it back."""
        return cls(error.code(), error.details() or "", _returnable(error.trailing_metadata()))

    @property
    def status_details(self) -> bytes:
        """The serialized ``google.rpc.Status`` of the error, empty if it sent none."""
        for key, value in self.trailers:
            if key == "grpc-status-details-bin" and isinstance(value, bytes):
                return value
        return b""


class Upstream:
    """The upstream side of one caller's call: ``await upstream(body)`` forwards it (the
    answer goes back to the caller); :meth:`call` makes another call in its name (same
    metadata, same deadline) whose answer stays in the proxy."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        method: grpc.aio.UnaryUnaryMultiCallable[Any, Any],
        metadata: Metadata,
        timeout: float | None,
    ) -> None:
        self._channel = channel
        self._method = method
        self._metadata = metadata
        self._timeout = timeout
        #: The forwarded call, once made: its metadata goes back to the caller.
        self.call_made: grpc.aio.UnaryUnaryCall[Any, Any] | None = None

    async def __call__(self, body: bytes) -> bytes:
        call = self._method(body, metadata=self._metadata, timeout=self._timeout)
        self.call_made = call
        return await _answer(call)

    async def call(self, method: str, body: bytes) -> bytes:
        """Another unary method, in this caller's name."""
        multicallable: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(
            method
        )
        return await _answer(multicallable(body, metadata=self._metadata, timeout=self._timeout))


async def _answer(call: grpc.aio.UnaryUnaryCall[Any, Any]) -> bytes:
    try:
        return bytes(await call)
    except grpc.aio.AioRpcError as err:
        raise UpstreamError.of(err) from None
    except asyncio.CancelledError:
        call.cancel()  # the caller went away: so does the upstream call
        raise


#: Sees one call of a decoded method: its request, and the upstream to forward it to;
#: returns the response bytes for the caller (or raises :class:`UpstreamError`).
Observer = Callable[[bytes, Upstream], Awaitable[bytes]]


class Forwarder(grpc.GenericRpcHandler):
    """The proxy's one handler: every method, forwarded to ``channel``."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        metadata: Mapping[str, str],
        observers: Mapping[str, Observer],
        streaming: frozenset[str],
    ) -> None:
        self._channel = channel
        self._added = tuple(metadata.items())
        self._replaced = frozenset(metadata) | HOP_METADATA
        self._observers = observers
        self._streaming = streaming
        self._handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        method: str = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = self._handler(method)
            self._handlers[method] = handler
        return handler

    def _handler(self, method: str) -> grpc.RpcMethodHandler[bytes, bytes]:
        if method in self._streaming:
            return grpc.stream_stream_rpc_method_handler(self._stream(method))
        return grpc.unary_unary_rpc_method_handler(self._unary(method))

    def _outgoing(self, context: grpc.aio.ServicerContext[Any, Any]) -> Metadata:
        incoming = context.invocation_metadata() or ()
        kept = tuple((k, v) for k, v in incoming if k not in self._replaced and k[0] != ":")
        return kept + self._added

    def _unary(
        self, method: str
    ) -> Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]]:
        upstream: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(method)
        observer = self._observers.get(method)

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            send = Upstream(
                self._channel, upstream, self._outgoing(context), context.time_remaining()
            )
            try:
                if observer is None:
                    response = await send(request)
                else:
                    response = await _observed(observer, request, send, method)
            except UpstreamError as err:
                await context.abort(err.code, err.details, trailing_metadata=err.trailers)
            if (call := send.call_made) is not None:
                initial = _returnable(await call.initial_metadata())
                if initial:
                    await context.send_initial_metadata(initial)
                context.set_trailing_metadata(_returnable(await call.trailing_metadata()))
            return response

        return forward

    def _stream(
        self, method: str
    ) -> Callable[[AsyncIterator[bytes], grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]]:
        upstream: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = self._channel.stream_stream(
            method
        )

        async def forward(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[bytes]:
            call = upstream(
                requests, metadata=self._outgoing(context), timeout=context.time_remaining()
            )
            try:
                initial = _returnable(await call.initial_metadata())
                if initial:
                    await context.send_initial_metadata(initial)
                async for response in call:
                    yield bytes(response)
                context.set_trailing_metadata(_returnable(await call.trailing_metadata()))
            except grpc.aio.AioRpcError as err:
                error = UpstreamError.of(err)
                await context.abort(error.code, error.details, trailing_metadata=error.trailers)
            except asyncio.CancelledError:
                call.cancel()
                raise

        return forward


async def _observed(observer: Observer, request: bytes, send: Upstream, method: str) -> bytes:
    """The observer's answer; an observer that fails before forwarding still forwards (what
    handshake-obs sees must never stop the call itself)."""
    try:
        return await observer(request, send)
    except (UpstreamError, asyncio.CancelledError):
        raise
    except Exception as err:
        _log.error("call not observed", method=method, error=repr(err))
        if send.call_made is not None:
            raise
        return await send(request)


def _returnable(metadata: Any) -> Metadata:
    # grpc.aio.Metadata, a tuple of pairs, or None: each iterates as (key, value) pairs.
    """Metadata to hand back to the caller: the upstream's own, minus its hop's."""
    return tuple((k, v) for k, v in (metadata or ()) if k not in HOP_METADATA and k[0] != ":")
