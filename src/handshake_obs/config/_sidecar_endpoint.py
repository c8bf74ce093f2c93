"""Where the inventory commands (``pending``, ``show``, ``fail``, ``extend``) find a sidecar."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SidecarEndpoint:
    """How to reach one sidecar's HTTP API."""

    #: Base URL of the sidecar, without a trailing slash. Setting ``url``; default: ``http://``
    #: + the listen address (a wildcard host read as this machine's loopback).
    url: str
    #: Bearer token of the inventory, if the sidecar protects it. Setting ``inventory_token``.
    inventory_token: str | None = field(default=None, repr=False)
    #: Bearer token of the operator actions. Setting ``operator_token``.
    operator_token: str | None = field(default=None, repr=False)
