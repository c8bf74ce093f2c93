"""The reconciler's budget: at most so many Temporal calls per second, whatever is pending.

No bursts: a reconciler starting on a full ledger, or catching up, calls at the budget's
pace and never above it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class CallBudget:
    """Calls spaced ``1 / rate`` seconds apart at the closest (a token bucket holding one
    call): no second ever sees more than ``rate`` calls, plus the one at its edge.
    :meth:`spend` waits until a call fits."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = 1.0
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        """Calls per second."""
        return self._rate

    async def spend(self) -> None:
        """Wait until one call is within the budget, and take it."""
        async with self._lock:  # callers are served in turn: nobody starves
            while True:
                now = self._clock()
                self._tokens = min(
                    self._capacity, self._tokens + (now - self._updated) * self._rate
                )
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)
