"""A Temporal worker run by a test step, whose shutdown is bounded.

``async with Worker(...)`` waits for the worker's shutdown without a bound, and the SDK's
shutdown is known to hang at times (temporalio/sdk-python#1557, temporalio/sdk-rust#1054).
A test that needs a worker only to produce something (the status page test's traced
handoff) stops it within ``STOP_SECONDS``: past that, the worker is abandoned with a report
of where every task waits (``hang_report``) on stderr, and the test goes on with what the
worker produced.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from temporalio.worker import Worker

from .hang_report import print_tasks

#: How long a worker's shutdown may take before it is abandoned.
STOP_SECONDS: Final = 20.0


@asynccontextmanager
async def running(worker: Worker, *, stop_seconds: float = STOP_SECONDS) -> AsyncIterator[Worker]:
    """``worker`` running for the block; stopped within ``stop_seconds`` after it. A worker
    that fails while running fails the block."""
    run = asyncio.create_task(worker.run(), name="worker under test")
    try:
        yield worker
    finally:
        try:
            await asyncio.wait_for(worker.shutdown(), stop_seconds)
        except TimeoutError:
            print(
                f"the worker did not shut down within {stop_seconds:g} s: abandoned",
                file=sys.stderr,
            )
            print_tasks()
            run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    error = None if run.cancelled() else run.exception()
    if error is not None:
        raise error
