"""The real Prometheus and Alertmanager binaries (Debian packages), or a failed test.

A missing binary fails the test rather than skipping it: CI must never pass without them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Where the Debian package ``prometheus-alertmanager`` puts its server binary.
_ALERTMANAGER_PATHS = (
    "prometheus-alertmanager",
    "alertmanager",
    "/usr/bin/prometheus-alertmanager",
)


def _require(names: tuple[str, ...], package: str) -> str:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    pytest.fail(f"{names[0]} is missing: install the Debian package {package} (scripts/setup)")


def promtool() -> str:
    return _require(("promtool",), "prometheus")


def prometheus() -> str:
    return _require(("prometheus",), "prometheus")


def alertmanager() -> str:
    return _require(_ALERTMANAGER_PATHS, "prometheus-alertmanager")


def amtool() -> str:
    return _require(("amtool",), "prometheus-alertmanager")
