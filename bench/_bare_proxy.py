"""The floor under ``handshake-obs proxy``: the least a ``grpc.aio`` byte-forwarding proxy
does (one generic handler, the caller's metadata and deadline passed on, nothing filtered,
decoded or recorded), as its own process for ``bench.proxy``.

    python -m bench._bare_proxy UPSTREAM_HOST:PORT LISTEN_PORT
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import grpc


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        upstream: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(
            handler_call_details.method
        )

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            metadata = tuple(m for m in context.invocation_metadata() or () if m[0] != "user-agent")
            try:
                return bytes(
                    await upstream(request, metadata=metadata, timeout=context.time_remaining())
                )
            except grpc.aio.AioRpcError as err:
                await context.abort(err.code(), err.details() or "")

        return grpc.unary_unary_rpc_method_handler(forward)


async def main(upstream: str, port: int) -> None:
    channel = grpc.aio.insecure_channel(upstream)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_Forward(channel),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
