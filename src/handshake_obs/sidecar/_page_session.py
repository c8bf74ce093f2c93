"""Signing a browser in to the pages when the inventory needs a token.

A browser following an alert's link cannot send ``Authorization: Bearer``. The pages
(``/``, ``/handoffs/...``) answer it with a sign-in form instead of a bare 401; the
inventory token typed there buys a cookie that opens the pages, and only the pages: the API
stays bearer-only.

The cookie's value is an HMAC of the inventory token, not the token: it cannot be replayed
as a bearer token on the API, and rotating the token signs every browser out. It is
``HttpOnly`` (no script reads it) and ``SameSite=Lax``: sent when a person follows a link
from a chat or Alertmanager, never with another site's POST. The operator forms carry the
operator token in the form and are checked again, so the cookie alone changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from html import escape
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..config import SidecarSettings
from ._html import STYLE

COOKIE_NAME = "handshake_obs_pages"
#: How long a browser stays signed in (seconds): one on-call shift.
SIGNED_IN_SECONDS = 12 * 3600
SIGN_IN_PATH = "/signin"
_CONTEXT = b"handshake-obs pages session v1"


def session_value(inventory_token: str) -> str:
    """The cookie value that the inventory token signs in."""
    return hmac.new(inventory_token.encode(), _CONTEXT, hashlib.sha256).hexdigest()


def signed_in(settings: SidecarSettings, cookie_header: str) -> bool:
    """Whether the request's ``Cookie`` header holds this sidecar's page session."""
    if settings.inventory_token is None or not cookie_header:
        return False
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # noqa: BLE001 - a malformed header signs nobody in
        return False
    morsel = cookies.get(COOKIE_NAME)
    if morsel is None:
        return False
    expected = session_value(settings.inventory_token)
    return hmac.compare_digest(morsel.value.encode(), expected.encode())


def set_cookie_header(inventory_token: str, *, secure: bool) -> bytes:
    """The ``Set-Cookie`` value that signs a browser in."""
    attributes = f"Path=/; Max-Age={SIGNED_IN_SECONDS}; HttpOnly; SameSite=Lax"
    if secure:
        attributes += "; Secure"
    return f"{COOKIE_NAME}={session_value(inventory_token)}; {attributes}".encode()


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this sidecar, never another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def sign_in_page(next_path: str, *, problem: str | None = None) -> str:
    """The form a browser without a session gets instead of the page it asked for."""
    notice = f"<p class=error id=sign-in-problem>{escape(problem)}</p>" if problem else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Sign in · handshake-obs</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Sign in</h1>"
        "<p>This sidecar's pages need its inventory token (setting "
        "<code>inventory_token</code>). Signing in keeps you in for "
        f"{SIGNED_IN_SECONDS // 3600} hours, in this browser only.</p>"
        f"{notice}"
        f"<form class=search id=sign-in-form method=post action='{SIGN_IN_PATH}'>"
        "<label>inventory token<input name=token type=password required autocomplete=off "
        "autofocus></label>"
        f"<input type=hidden name=next value='{escape(safe_next(next_path), quote=True)}'>"
        "<button type=submit>Sign in</button></form></body></html>"
    )


def requested_path(path: str, query_string: bytes) -> str:
    """The path and query a refused page request asked for (where to return after)."""
    query = query_string.decode("latin-1")
    return quote(path, safe="/") + (f"?{query}" if query else "")


def sign_in_routes(app: FastAPI, settings: SidecarSettings) -> None:
    """``POST /signin``: the sign-in form's target (no token needed to reach it)."""

    @app.post(SIGN_IN_PATH, include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        # A body that is not UTF-8 is no token: it fails the comparison, never the server.
        body = (await request.body()).decode(errors="replace")
        form = {k: v[-1] for k, v in parse_qs(body).items()}
        next_path = safe_next(form.get("next", "/"))
        expected = settings.inventory_token
        if expected is None:  # the pages are open: nothing to sign in to
            return RedirectResponse(next_path, 303)
        given = form.get("token", "").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return HTMLResponse(
                sign_in_page(next_path, problem="That is not the inventory token of this sidecar."),
                status_code=401,
            )
        answer = RedirectResponse(next_path, 303)
        secure = request.url.scheme == "https"
        answer.raw_headers.append((b"set-cookie", set_cookie_header(expected, secure=secure)))
        return answer
