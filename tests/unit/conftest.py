"""The fast unit tier: no processes, no network, no dev server. Everything under
``tests/unit`` carries the ``unit`` marker: ``pytest -m unit`` runs the tier alone."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.unit)
