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
#: The signal that made the request (to deliver it again if the command is not ours to stop).
_received: list[int] = []


def _record(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)
    _requested.set()


#: The handlers before :func:`catch_stop_signals`, put back by :func:`release_stop_signals`.
_previous: dict[int, object] = {}


def catch_stop_signals() -> None:
    """From now on SIGTERM/SIGINT are recorded as a stop request (never a kill)."""
    for sig in STOP_SIGNALS:
        previous = signal.signal(sig, _record)
        if previous is not _record:
            _previous[sig] = previous


def release_stop_signals() -> None:
    """Give SIGTERM/SIGINT back their default behaviour (a short command: Ctrl-C interrupts
    it); a signal that arrived while they were caught is delivered again now."""
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _previous.pop(sig, defaults[sig]))  # type: ignore[arg-type]
    if _received:
        signal.raise_signal(_received.pop(0))


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
