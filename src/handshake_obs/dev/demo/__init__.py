"""Demo traffic: workflows that hand work off through the sidecar, and a fake external
system that completes most of it, fails some with typed errors, and loses a few tokens for
the reaper."""

from ._external_http import DemoExternalSystem, DemoMix
from ._run import DEMO_TARGETS, DEMO_TASK_QUEUE, DemoOptions, run_demo

__all__ = [
    "DEMO_TARGETS",
    "DEMO_TASK_QUEUE",
    "DemoExternalSystem",
    "DemoMix",
    "DemoOptions",
    "run_demo",
]
