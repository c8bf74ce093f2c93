"""Polling helpers for asserting on things that happen asynchronously."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


async def assert_eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.1
) -> T:
    """Retry ``check`` until it stops raising AssertionError (then return its value)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


@asynccontextmanager
async def within(seconds: float, step: str) -> AsyncIterator[None]:
    """Bound one step of a test: a hang fails it by name, with the awaited frames in the
    traceback, instead of running into the test's whole timeout with only the loop's frame."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as timeout:
        raise AssertionError(
            f"{step}: not done within {seconds:g} s; the loop's tasks then:\n{task_stacks()}"
        ) from timeout


def task_stacks() -> str:
    """Where each task of the running loop waits: what a step that never ends waits on
    (a worker's shutdown, say, waits in a task of its own)."""
    stacks = []
    for task in asyncio.all_tasks():
        frames = task.get_stack()
        where = " <- ".join(
            f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"
            for frame in reversed(frames)
        )
        stacks.append(f"  {task.get_name()}: {where or 'not started'}")
    return "\n".join(sorted(stacks))
