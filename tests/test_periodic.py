"""Background loops stop when asked, even when a pass swallows its cancellation (as
``asyncio.wait_for`` can on Python 3.11 when the awaited call finishes at that moment)."""

from __future__ import annotations

import asyncio
import contextlib

from handshake_obs._periodic import PeriodicTask


async def test_stop_returns_even_when_a_pass_swallows_its_cancellation() -> None:
    passes = 0
    started = asyncio.Event()

    async def swallowing_pass() -> None:
        nonlocal passes
        passes += 1
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # the lost cancellation
            await asyncio.sleep(10)

    loop = PeriodicTask(swallowing_pass, interval=0.01, name="test")
    loop.start()
    await asyncio.wait_for(started.wait(), 5)

    await asyncio.wait_for(loop.stop(), 2)

    assert passes == 1


async def test_passes_repeat_at_the_interval_until_stopped() -> None:
    passes = 0

    async def count() -> None:
        nonlocal passes
        passes += 1

    loop = PeriodicTask(count, interval=0.05, name="test")
    loop.start()
    await asyncio.sleep(0.32)
    await loop.stop()
    seen = passes
    await asyncio.sleep(0.15)

    assert 3 <= seen <= 8
    assert passes == seen
