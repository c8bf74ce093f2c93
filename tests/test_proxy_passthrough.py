"""The proxy forwards every call faithfully: bytes, metadata both ways, errors with their
details and trailers, deadlines, cancellation, large messages.

The upstream here is a small gRPC server of the test's own (Temporal is outside the system
under test, and cannot echo what it received): it answers any method, reports what reached
it, and fails or waits when a request asks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from handshake_obs import ConfigurationError, HandshakeConfig
from handshake_obs.config import ProxySettings, TemporalConnection
from handshake_obs.proxy import running_proxy
from handshake_obs.proxy._forwarder import Forwarder

from .support.ports import free_port

#: The most one hop's grpc-timeout header rounds a deadline of 1 to 10 s up by: gRPC core
#: sends it in 10 ms units, rounded up (src/core/lib/transport/timeout_encoding.cc).
GRPC_TIMEOUT_ROUNDING = 0.010

STREAMING_METHOD = "/test.Echo/Stream"
STATUS_DETAILS = b"\x08\x05\x12\x04gone"  # a serialized google.rpc.Status, as bytes


@dataclass
class Upstream:
    """What reached the upstream, and how long it saw each call may take."""

    metadata: list[dict[str, Any]] = field(default_factory=list)
    time_remaining: list[float | None] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, seen: Upstream) -> None:
        self._seen = seen

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        if details.method == STREAMING_METHOD:
            return grpc.unary_stream_rpc_method_handler(self._stream)
        return grpc.unary_unary_rpc_method_handler(self._unary)

    async def _stream(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        self._seen.metadata.append(dict(context.invocation_metadata() or ()))
        for n in range(3):
            yield request + str(n).encode()
        context.set_trailing_metadata((("x-trailer", "streamed"),))

    async def _unary(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self._seen.metadata.append(dict(context.invocation_metadata() or ()))
        self._seen.time_remaining.append(context.time_remaining())
        if request == b"fail":
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                "no such thing",
                trailing_metadata=(("grpc-status-details-bin", STATUS_DETAILS), ("x-why", "gone")),
            )
        if request == b"wait":
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self._seen.cancelled.set()
                raise
        await context.send_initial_metadata((("x-initial", "hello"),))
        context.set_trailing_metadata((("x-trailer", "bye"), ("x-trailer-bin", b"\x00\x01")))
        return request


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    seen = Upstream()
    big = 64 * 1024 * 1024
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", big), ("grpc.max_send_message_length", big)]
    )
    server.add_generic_rpc_handlers((_Handler(seen),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield seen, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@pytest.fixture
async def channel(
    upstream: tuple[Upstream, str], tmp_path: Path
) -> AsyncIterator[grpc.aio.Channel]:
    _, address = upstream
    config = HandshakeConfig(ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    connection = TemporalConnection(
        address=address, api_key="proxy-key", rpc_metadata={"x-cluster": "eu"}
    )
    settings = ProxySettings(listen_address=f"127.0.0.1:{free_port()}")
    async with running_proxy(config, settings, connection, registry=CollectorRegistry()) as proxy:
        big = 64 * 1024 * 1024
        options = [("grpc.max_receive_message_length", big), ("grpc.max_send_message_length", big)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}", options=options) as ch:
            yield ch


def unary(channel: grpc.aio.Channel, method: str = "/test.Echo/Unary") -> Any:
    return channel.unary_unary(method)


async def test_bytes_and_metadata_cross_both_ways(
    channel: grpc.aio.Channel, upstream: tuple[Upstream, str]
) -> None:
    seen, _ = upstream
    call = unary(channel)(
        b"\x00payload\xff",
        metadata=(("x-tenant", "a"), ("x-blob-bin", b"\x01\x02"), ("authorization", "Bearer mine")),
    )
    assert await call == b"\x00payload\xff"
    assert ("x-initial", "hello") in tuple(await call.initial_metadata())
    trailers = tuple(await call.trailing_metadata())
    assert ("x-trailer", "bye") in trailers
    assert ("x-trailer-bin", b"\x00\x01") in trailers
    (received,) = seen.metadata
    assert received["x-tenant"] == "a"
    assert received["x-blob-bin"] == b"\x01\x02"
    # The connection's own metadata is added, and its API key replaces the caller's.
    assert received["x-cluster"] == "eu"
    assert received["authorization"] == "Bearer proxy-key"


async def test_an_error_comes_back_with_code_message_details_and_trailers(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await unary(channel)(b"fail")
    error = raised.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such thing"
    trailers = dict(error.trailing_metadata() or ())
    assert trailers["grpc-status-details-bin"] == STATUS_DETAILS
    assert trailers["x-why"] == "gone"


async def test_the_callers_deadline_is_the_upstream_calls(
    channel: grpc.aio.Channel, upstream: tuple[Upstream, str]
) -> None:
    seen, _ = upstream
    await unary(channel)(b"x", timeout=3.0)
    (remaining,) = seen.time_remaining
    assert remaining is not None
    # Caller to proxy and proxy to upstream: each hop's header may round the deadline up.
    assert 0 < remaining <= 3.0 + 2 * GRPC_TIMEOUT_ROUNDING
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await unary(channel)(b"wait", timeout=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_a_cancelled_call_cancels_the_upstream_call(
    channel: grpc.aio.Channel, upstream: tuple[Upstream, str]
) -> None:
    seen, _ = upstream
    call = unary(channel)(b"wait")
    await asyncio.sleep(0.5)
    call.cancel()
    await asyncio.wait_for(seen.cancelled.wait(), 10)


async def test_a_large_message_passes_both_ways(channel: grpc.aio.Channel) -> None:
    body = bytes(range(256)) * (20 * 1024 * 1024 // 256)  # 20 MiB, beyond gRPC's 4 MiB default
    assert await unary(channel)(body, timeout=60) == body


async def test_an_unknown_method_is_forwarded_as_unary(channel: grpc.aio.Channel) -> None:
    assert await unary(channel, "/some.Other/Thing")(json.dumps({"a": 1}).encode()) == b'{"a": 1}'


async def test_a_streaming_method_is_forwarded_as_a_stream(
    upstream: tuple[Upstream, str],
) -> None:
    """A method the service descriptors say streams gets a streaming handler (none of
    Temporal's does today; the forwarder is ready for one)."""
    seen, address = upstream
    async with grpc.aio.insecure_channel(address) as to_upstream:
        forwarder = Forwarder(
            to_upstream, metadata={}, observers={}, streaming=frozenset({STREAMING_METHOD})
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((forwarder,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                method: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
                    STREAMING_METHOD
                )
                call = method(b"s", metadata=(("x-a", "1"),))
                assert [bytes(m) async for m in call] == [b"s0", b"s1", b"s2"]
                assert ("x-trailer", "streamed") in tuple(await call.trailing_metadata())
        finally:
            await server.stop(0)
    assert seen.metadata[-1]["x-a"] == "1"


async def test_an_address_it_cannot_listen_on_is_one_clear_error(tmp_path: Path) -> None:
    config = HandshakeConfig(ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    settings = ProxySettings(listen_address="192.0.2.1:7234")  # TEST-NET-1: not this machine's
    with pytest.raises(ConfigurationError, match=r"cannot listen on 192\.0\.2\.1:7234"):
        async with running_proxy(
            config, settings, TemporalConnection(), registry=CollectorRegistry()
        ):
            pass
