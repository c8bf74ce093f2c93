"""Bearer-token checks, in constant time."""

from __future__ import annotations

import hmac

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._http_errors import ApiError

#: Declares the bearer scheme in the OpenAPI document; the check itself is ours (401, JSON).
bearer_scheme = HTTPBearer(
    auto_error=False, description="A token from the sidecar's configuration."
)


def require_bearer(
    credentials: HTTPAuthorizationCredentials | None, expected: str | None, *, what: str
) -> None:
    """Raise a 401 unless the request carried ``Authorization: Bearer <expected>``.

    ``expected`` None means the endpoints are closed: no token is configured for them.
    """
    if expected is None:
        raise ApiError(401, "unauthenticated", f"no {what} token is configured on this sidecar")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthenticated", f"a bearer token is required ({what})")
    if not hmac.compare_digest(credentials.credentials.strip().encode(), expected.encode()):
        raise ApiError(401, "unauthenticated", "the bearer token is not valid")
