"""Bearer-token checks, in constant time, and which token guards which endpoints.

The API has three groups of endpoints, each with its own token (:func:`endpoint_group` is the
one map from a request to its group). A group without a token: the completion and operator
endpoints refuse every request; the inventory and the status page are open (on loopback, or
with ``allow_unauthenticated``).
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..config import SidecarSettings
from ._http_errors import ApiError

#: Declares the bearer scheme in the OpenAPI document; the check itself is ours (401, JSON).
bearer_scheme = HTTPBearer(
    auto_error=False, description="A token from the sidecar's configuration."
)


class EndpointGroup(StrEnum):
    """The endpoints one token opens."""

    COMPLETION = "completion"
    OPERATOR = "operator"
    INVENTORY = "inventory"


#: Groups that refuse every request when they have no token (the inventory is open then).
CLOSED_WITHOUT_TOKEN = frozenset({EndpointGroup.COMPLETION, EndpointGroup.OPERATOR})


def expected_token(settings: SidecarSettings, group: EndpointGroup) -> str | None:
    """The token configured for ``group`` (None: none)."""
    return {
        EndpointGroup.COMPLETION: settings.completion_token,
        EndpointGroup.OPERATOR: settings.operator_token,
        EndpointGroup.INVENTORY: settings.inventory_token,
    }[group]


def is_page(path: str) -> bool:
    """Whether ``path`` is a page for people (the status page, a handoff's page)."""
    return path == "/" or path.startswith("/handoffs/")


def endpoint_group(method: str, path: str) -> EndpointGroup | None:
    """The group a request belongs to (None: health, metrics, documentation: no token)."""
    if path.startswith("/v1/operator/"):
        return EndpointGroup.OPERATOR
    if path.startswith("/v1/tokens/"):
        return EndpointGroup.COMPLETION
    if path == "/v1/handoffs" or path.startswith("/v1/handoffs/"):
        return EndpointGroup.INVENTORY if method in ("GET", "HEAD") else EndpointGroup.COMPLETION
    if is_page(path):
        # The status page and the handoff pages (their forms carry the operator token in
        # the form and are checked again there).
        return EndpointGroup.INVENTORY
    return None


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


def authenticate(settings: SidecarSettings, group: EndpointGroup, authorization: str) -> None:
    """Raise the 401 :class:`ApiError` unless ``authorization`` (the header) opens ``group``."""
    expected = expected_token(settings, group)
    if expected is None and group not in CLOSED_WITHOUT_TOKEN:
        return  # an open inventory
    scheme, _, credentials = authorization.strip().partition(" ")
    given = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials.strip())
        if scheme and credentials.strip()
        else None
    )
    require_bearer(given, expected, what=group.value)
