"""The demo activity: hands its task to the fake external system by handoff id."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

from temporalio import activity

from .._handoff import handoff
from ._workflows import DEMO_ACTIVITY, DemoTask


class DemoActivities:
    """Activities bound to the inbox of the fake external system."""

    def __init__(self, inbox: asyncio.Queue[str]) -> None:
        self._inbox = inbox

    @activity.defn(name=DEMO_ACTIVITY)
    async def hand_off(self, task: DemoTask) -> Any:
        """Record the handoff, give its id away, complete asynchronously."""
        async with handoff(target=task.target) as h:
            self._inbox.put_nowait(h.handoff_id)
        _unreachable()


def _unreachable() -> NoReturn:
    raise AssertionError("handoff() completes the activity asynchronously on exit")
