"""An unexpected exception is answered as the documented JSON error, never a plain 500.

The answer is 500 ``internal_error`` with a correlation id; the same id is in the log line
with the traceback, so an operator finds the one from the other. Nothing about the failure
beyond the id is answered (it may name internals).
"""

from __future__ import annotations

import json
import secrets

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_log = structlog.get_logger("handshake_obs.sidecar")


def new_correlation_id() -> str:
    """A short random id that ties an answer to its log line."""
    return secrets.token_hex(8)


class UnexpectedErrors:
    """ASGI middleware, outermost: catches what every other handler let through."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001 - the one place that answers every other error
            correlation_id = new_correlation_id()
            _log.exception(
                "unexpected error answering a request",
                correlation_id=correlation_id,
                method=scope.get("method"),
                path=scope.get("path"),
            )
            if started:
                return  # the answer is under way: the client sees a cut-off response
            body = json.dumps(
                {
                    "error": {
                        "code": "internal_error",
                        "message": f"an unexpected error (correlation id {correlation_id}); "
                        "it is logged with that id",
                        "correlation_id": correlation_id,
                    }
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-correlation-id", correlation_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
