"""Secure defaults: who can reach the sidecar decides whether it may serve without tokens.

Bound to loopback, only processes of the same host can call it, and an endpoint group without
a token is a convenience (a laptop, a pod's sidecar container). Bound to anything else, a
missing token would open the inventory (every handoff id and workflow id) to the network, or
leave the gateway closed by accident: ``serve`` refuses to start unless each group has its
token, or ``allow_unauthenticated`` says the operator means it. Every group served without a
token is logged as a warning, whatever the address.
"""

from __future__ import annotations

import ipaddress

import structlog

from .._errors import ConfigurationError
from ..config import HandshakeConfig, SidecarSettings
from ._auth import CLOSED_WITHOUT_TOKEN, EndpointGroup, expected_token

_log = structlog.get_logger("handshake_obs.serve")

#: The setting that lets a non-loopback sidecar start with a group lacking its token.
OPT_OUT_VARIABLE = "HANDSHAKE_ALLOW_UNAUTHENTICATED"


def is_loopback(host: str) -> bool:
    """Whether ``host`` can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: reachable from elsewhere


def check_exposure(config: HandshakeConfig, settings: SidecarSettings) -> None:
    """Refuse (ConfigurationError) or warn about the endpoint groups that have no token."""
    host, _ = config.listen_host_port
    missing = [group for group in EndpointGroup if expected_token(settings, group) is None]
    if not missing:
        return
    names = ", ".join(group.value for group in missing)
    if not is_loopback(host) and not settings.allow_unauthenticated:
        raise ConfigurationError(
            f"refusing to serve on {config.listen_address} without a token for: {names}. "
            "Set HANDSHAKE_COMPLETION_TOKEN, HANDSHAKE_OPERATOR_TOKEN and "
            "HANDSHAKE_INVENTORY_TOKEN, bind to loopback (127.0.0.1), or set "
            f"{OPT_OUT_VARIABLE}=true to serve so on purpose (docs/security.md)"
        )
    for group in missing:
        _log.warning(
            "serving an endpoint group without authentication",
            endpoints=group.value,
            effect="refuses every request"
            if group in CLOSED_WITHOUT_TOKEN
            else "open to anyone who reaches the address",
            listen_address=config.listen_address,
            loopback=is_loopback(host),
        )
