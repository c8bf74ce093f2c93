"""A background loop that stops when asked, even when a cancellation is lost.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that arrives just as the
awaited call finishes; a loop stopped by ``task.cancel()`` alone then runs on, and whoever
awaits it waits forever. The loop here also watches a stop event, so ``stop()`` returns
within one pass whatever happened to the cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable


class PeriodicTask:
    """Runs ``body`` every ``interval`` seconds (measured start to start) until stopped."""

    def __init__(self, body: Callable[[], Awaitable[None]], *, interval: float, name: str) -> None:
        self._body = body
        self._interval = interval
        self._name = name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (once)."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stop the loop: the pass in progress is cancelled, and no other starts."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            await self._body()
            pause = max(0.0, self._interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stopping.wait()
