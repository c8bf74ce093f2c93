"""Demo traffic: workflows that hand work off through the sidecar, and a fake external
system that completes most of it, fails some with typed errors, and loses a few tokens for
the reaper."""

from ..._extras import require_extra

require_extra("sidecar", "the demo (handshake-obs dev, handshake-obs demo)")

from ._external_http import DemoExternalSystem, DemoMix  # noqa: E402
from ._run import DEMO_TARGETS, DEMO_TASK_QUEUE, DemoOptions, run_demo  # noqa: E402

__all__ = [
    "DEMO_TARGETS",
    "DEMO_TASK_QUEUE",
    "DemoExternalSystem",
    "DemoMix",
    "DemoOptions",
    "run_demo",
]
