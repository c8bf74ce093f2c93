"""The sidecar: HTTP completion gateway, inventory, status page, worker and reaper."""

from ..config import SidecarSettings, load_settings
from ._activities import (
    COMPLETE_EXTERNAL,
    FAIL_EXTERNAL,
    HTTP_HANDOFF,
    CompleteExternalInput,
    FailExternalInput,
    HttpHandoffInput,
)
from ._api import create_app
from ._runtime import SidecarRuntime
from ._server import QuietUvicorn, run_sidecar

__all__ = [
    "COMPLETE_EXTERNAL",
    "FAIL_EXTERNAL",
    "HTTP_HANDOFF",
    "CompleteExternalInput",
    "FailExternalInput",
    "HttpHandoffInput",
    "QuietUvicorn",
    "SidecarRuntime",
    "SidecarSettings",
    "create_app",
    "load_settings",
    "run_sidecar",
]
