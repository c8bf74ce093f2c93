"""Demo traffic: workflows that hand work off through the sidecar, and a fake external
system that completes most of it, fails some with typed errors, and loses a few tokens for
the reaper."""

from ._external_http import DemoExternalSystem, DemoMix

__all__ = ["DemoExternalSystem", "DemoMix"]
