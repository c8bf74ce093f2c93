"""Bearer-token checks, in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from ._http_errors import ApiError


def require_bearer(request: Request, expected: str | None, *, what: str) -> None:
    """Raise a 401 unless the request carries ``Authorization: Bearer <expected>``.

    ``expected`` None means the endpoints are closed: no token is configured for them.
    """
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if expected is None:
        raise ApiError(401, "unauthenticated", f"no {what} token is configured on this sidecar")
    if scheme.lower() != "bearer" or not presented:
        raise ApiError(401, "unauthenticated", f"a bearer token is required ({what})")
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise ApiError(401, "unauthenticated", "the bearer token is not valid")
