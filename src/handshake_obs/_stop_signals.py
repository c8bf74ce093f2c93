"""SIGTERM and SIGINT stop the long-running commands cleanly, whenever they arrive.

A signal that lands before the event loop has its handlers (the process is still importing,
connecting, opening the ledger) would otherwise kill the process (SIGTERM: exit -15) or
raise ``KeyboardInterrupt`` in the middle of an import. :func:`catch_stop_signals` runs as
early as the command is known and records the request; :func:`stop_event` turns it into the
loop's stop event (already set when the signal came first). After the loop is gone the
handlers stay ours, so a signal during interpreter shutdown changes nothing either.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when the loop needs it: ``--help`` stays fast
    import asyncio

#: The signals that ask a long-running command to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested = threading.Event()


def _record(_signum: int, _frame: FrameType | None) -> None:
    _requested.set()


def catch_stop_signals() -> None:
    """From now on SIGTERM/SIGINT are recorded as a stop request (never a kill)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _record)


def stop_requested() -> bool:
    """Whether a stop signal has arrived since :func:`catch_stop_signals`."""
    return _requested.is_set()


def stop_event() -> asyncio.Event:
    """An event of the running loop, set by SIGTERM/SIGINT (now, or one that came before).

    The loop's handlers are removed when the loop closes; the recording handler is put back
    then by :func:`catch_stop_signals` (the commands call it after ``asyncio.run``).
    """
    import asyncio  # noqa: PLC0415 - see the import above

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request() -> None:
        _requested.set()
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, request)
    if _requested.is_set():
        stop.set()
    return stop
