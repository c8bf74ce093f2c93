"""The sidecar: HTTP completion gateway, inventory, status page, worker and reaper."""

from .._extras import require_extra

require_extra("sidecar", "the sidecar (handshake_obs.sidecar)")

from ..config import SidecarSettings, load_settings  # noqa: E402
from ._activities import (  # noqa: E402
    COMPLETE_EXTERNAL,
    FAIL_EXTERNAL,
    HTTP_HANDOFF,
    CompleteExternalInput,
    FailExternalInput,
    HttpHandoffInput,
)
from ._api import create_app  # noqa: E402
from ._runtime import SidecarRuntime  # noqa: E402
from ._server import QuietUvicorn, run_sidecar  # noqa: E402

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
