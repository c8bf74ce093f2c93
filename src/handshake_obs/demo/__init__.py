"""``handshake-obs dev``: the local stack with demo traffic — workflows that hand work off
through the sidecar, and a fake external system that completes most of it, fails some with
typed errors, and loses a few tokens for the reaper."""

from ._external_http import DemoExternalSystem, DemoMix
from ._stack import DevOptions, run_dev

__all__ = ["DemoExternalSystem", "DemoMix", "DevOptions", "run_dev"]
