"""What every request goes through before the application sees it, in this order:

1. **Authentication, before any body is read.** A request for a group of endpoints that its
   ``Authorization`` header does not open is answered 401 at once (:mod:`._auth`).
2. **The body, bounded in size and time.** A declared or streamed body over
   ``max_body_bytes`` gets 413; a body that has not fully arrived within ``body_timeout``
   (a stalled or slow upload) gets 408 and the connection is closed.
3. **The JSON, checked** (:mod:`._json_checks`): depth, NaN/Infinity, huge numbers,
   non-object bodies, each with its code.

The body read here is replayed to the application, which parses it again (it is small by
construction).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import SidecarSettings
from ._auth import authenticate, endpoint_group, is_page
from ._http_errors import ApiError
from ._json_checks import RefusedJsonError, check_json_body
from ._page_session import requested_path, sign_in_page, signed_in

#: Methods whose body the API reads (the others have none).
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def keep_alive_timeout(settings: SidecarSettings) -> int:
    """Whole seconds an idle connection stays open (1 to 5): at most the body timeout, so a
    connection refused early (its body unread) is closed about when a stalled one would be."""
    return max(1, min(5, int(settings.body_timeout.total_seconds())))


class _RefusedBodyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RequestGuard:
    """ASGI middleware: authenticate, then read a bounded body in bounded time, then check it."""

    def __init__(self, app: ASGIApp, *, settings: SidecarSettings) -> None:
        self._app = app
        self._settings = settings
        self._max = settings.max_body_bytes
        self._timeout = settings.body_timeout.total_seconds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if await self._refused(scope, headers, send):
            return
        if scope["method"] not in _WITH_BODY:
            await self._app(scope, receive, send)
            return
        try:
            body = await self._read_body(headers, receive)
            if body is None:  # the client went away: let the application see it
                await self._app(scope, receive, send)
                return
            content_type = headers.get(b"content-type", b"")
            # An HTML form (the handoff page's operator actions) is not JSON.
            is_form = content_type.startswith(b"application/x-www-form-urlencoded")
            if (body and not (is_form and not scope["path"].startswith("/v1/"))) or (
                content_type.startswith(b"application/json")
            ):
                check_json_body(body)
        except _RefusedBodyError as refused:
            await _answer(
                send, refused.status, refused.code, refused.message, close=refused.status == 408
            )
            return
        except RefusedJsonError as refused:
            status = 422 if refused.code == "body_not_an_object" else 400
            await _answer(send, status, refused.code, refused.message, close=False)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    async def _refused(self, scope: Scope, headers: dict[bytes, bytes], send: Send) -> bool:
        """Answer (and say so) a request whose credentials do not open its endpoint group."""
        group = endpoint_group(scope["method"], scope["path"])
        page = is_page(scope["path"])
        cookie = headers.get(b"cookie", b"").decode("latin-1")
        if group is None or (page and signed_in(self._settings, cookie)):
            return False
        try:
            authenticate(
                self._settings, group, headers.get(b"authorization", b"").decode("latin-1")
            )
        except ApiError as err:
            if page and scope["method"] in ("GET", "HEAD"):
                # A person following a link: the sign-in form, not a bare 401.
                wanted = requested_path(scope["path"], scope.get("query_string", b""))
                await _answer_html(send, 401, sign_in_page(wanted))
            else:
                headers_out = {b"www-authenticate": b"Bearer"}
                await _answer(send, err.status, err.code, err.message, headers_out, close=False)
            return True
        return False

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes | None:
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self._max:
            raise _RefusedBodyError(413, "body_too_large", self._too_large())
        chunks: list[bytes] = []
        seen = 0
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None
                    chunk = message.get("body", b"")
                    seen += len(chunk)
                    if seen > self._max:
                        raise _RefusedBodyError(413, "body_too_large", self._too_large())
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _RefusedBodyError(
                408, "body_timeout", f"the request body did not arrive within {self._timeout:g} s"
            ) from None

    def _too_large(self) -> str:
        return f"request bodies are limited to {self._max} bytes"


async def _answer_html(send: Send, status: int, html: str) -> None:
    """An HTML page as the answer (the sign-in form)."""
    body = html.encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b"Bearer"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: dict[bytes, bytes] | None = None,
    *,
    close: bool = True,
) -> None:
    """The JSON error body.

    ``close`` (a stalled upload): the connection is closed after the answer. Otherwise (an
    early 401 or 413) the client still gets to read the answer while it sends; the server
    discards the rest and closes the connection once it is idle for the keep-alive timeout
    (:func:`keep_alive_timeout`): closing at once could reset the connection under a client
    still writing, before it read why.
    """
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or {}).items(),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
