"""Demo traffic for ``handshake-obs dev``: workflows that hand off work, and a fake external
system that completes most of it, fails some with typed errors, and loses a few tokens."""

from ._external import DemoExternalSystem, DemoMix
from ._run import run_demo_traffic

__all__ = ["DemoExternalSystem", "DemoMix", "run_demo_traffic"]
