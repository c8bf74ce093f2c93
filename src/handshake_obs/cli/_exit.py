"""Ending a long-running command: flush, then leave without interpreter finalization.

temporalio's core runtime (Rust, on tokio threads) has no shutdown call, and its threads
outlive the event loop. When one of them takes or releases the GIL while CPython finalizes
(resolving a late RPC future, dropping a Python object it held), the process aborts with
``Fatal Python error: PyGILState_Release: thread state ... must be current when releasing``
(exit 134, SIGABRT) — temporalio/sdk-python#300, a race that shows up now and then on stop.
Under Kubernetes it makes a clean SIGTERM look like a crash.

By the time a command returns, everything of ours is closed: the ledger, the HTTP server,
the worker (its graceful shutdown), the span exporter (``exporting_spans``). What remains is
flushing the log queue and the standard streams; then ``os._exit`` ends the process before
finalization can race those threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush logs and the standard streams, then exit with ``code`` at once."""
    # Imported here: only the long-running commands get this far (``--help`` stays light).
    from ..telemetry._logging import flush_logs  # noqa: PLC0415

    flush_logs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe: nothing more can be written anyway.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
