"""Shortly before a test's timeout, the stack of every asyncio task on the main thread's loop.

pytest-timeout dumps each thread's stack when a test runs out of time, but a test hung on an
``await`` shows only its event loop idle in ``select()``: which coroutine waits, and on what,
is in the tasks' stacks. A timer thread signals the main thread ``LEAD_SECONDS`` before the
timeout; the handler runs there, between two bytecodes of the loop, where the running loop
and its tasks can be read. The stacks go to stderr, which the failure report shows.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

#: Unused by pytest-timeout (SIGALRM), the Temporal dev server's client and Chromium.
REPORT_SIGNAL: Final = signal.SIGUSR2
#: How long before the timeout the tasks are reported.
LEAD_SECONDS: Final = 10.0


def install() -> None:
    """Make ``REPORT_SIGNAL`` print the main thread's asyncio tasks (once per session)."""
    signal.signal(REPORT_SIGNAL, _on_signal)


@contextmanager
def reported_before(timeout_seconds: float) -> Iterator[None]:
    """Report the tasks if the block still runs ``LEAD_SECONDS`` before ``timeout_seconds``."""
    if timeout_seconds <= LEAD_SECONDS:
        yield
        return
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(
        timeout_seconds - LEAD_SECONDS, signal.pthread_kill, (main, REPORT_SIGNAL)
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    print_tasks()


def print_tasks() -> None:
    """Print where each asyncio task of the main thread's running loop waits, to stderr."""
    out = sys.stderr
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        print("hang report: no event loop runs on the main thread", file=out)
        return
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    print(f"hang report: {len(tasks)} asyncio tasks wait on the main thread's loop", file=out)
    for task in tasks:
        print(f"--- {task.get_name()}, awaiting (outermost first):", file=out)
        for line in _await_chain(task.get_coro()):
            print(f"    {line}", file=out)
    out.flush()


def _await_chain(awaitable: object) -> Iterator[str]:
    """Where each coroutine of an ``await`` chain is suspended, down to what it waits on
    (``Task.print_stack`` shows only the outermost coroutine's frame)."""
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            yield repr(awaitable)
            return
        code = frame.f_code
        yield f"{code.co_filename}:{frame.f_lineno} in {code.co_qualname}"
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
