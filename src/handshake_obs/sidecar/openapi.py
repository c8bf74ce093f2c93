"""The sidecar's OpenAPI document, as served at ``/openapi.json`` and committed in
``docs/openapi.json``: ``python -m handshake_obs.sidecar.openapi > docs/openapi.json``."""

from __future__ import annotations

import json
import sys
from typing import Any

from prometheus_client import CollectorRegistry

from .._handshake import Handshake
from ..config import HandshakeConfig, SidecarSettings
from ._api import create_app
from ._runtime import SidecarRuntime


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the sidecar (built without any I/O)."""
    config = HandshakeConfig()
    registry = CollectorRegistry()
    runtime = SidecarRuntime(
        config, SidecarSettings(), Handshake(config, registry=registry), registry
    )
    return create_app(runtime).openapi()


def render() -> str:
    """The document as committed: stable key order, two-space indent, final newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
