"""Activities the tests run, and the in-process "external system" they hand tokens to."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity

from handshake_obs import Handoff, handoff

from .workflows import HandoffRequest


@dataclass
class Delivery:
    """What the external system received for one activity attempt."""

    workflow_id: str
    attempt: int
    task_token: bytes
    handoff: Handoff | None

    @property
    def explicit(self) -> Handoff:
        """The handoff given by ``handoff()`` (the activity must have been explicit)."""
        assert self.handoff is not None, "hand_off_plain gives no Handoff"
        return self.handoff


class ExternalSystem:
    """Mailboxes by workflow id: where activities drop what they hand over."""

    def __init__(self) -> None:
        self._boxes: dict[str, asyncio.Queue[Delivery]] = defaultdict(asyncio.Queue)
        #: Set by a test once it has completed a token, for activities that wait for it.
        self.completed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def deliver(self, delivery: Delivery) -> None:
        self._boxes[delivery.workflow_id].put_nowait(delivery)

    async def receive(self, workflow_id: str, timeout: float = 20.0) -> Delivery:
        return await asyncio.wait_for(self._boxes[workflow_id].get(), timeout)


EXTERNAL = ExternalSystem()


@activity.defn
async def hand_off_explicit(request: HandoffRequest) -> Any:
    """Hands off through handshake_obs.handoff(): recorded before the token leaves."""
    info = activity.info()
    seconds = request.extra.get("deadline_seconds")
    deadline = None if seconds is None else timedelta(seconds=seconds)
    async with handoff(target=request.target, deadline=deadline) as h:
        if request.extra.get("raise_before_release"):
            raise RuntimeError("queue unavailable")
        EXTERNAL.deliver(Delivery(info.workflow_id or "", info.attempt, h.task_token, h))
    return None  # not reached: a clean exit completes asynchronously


@activity.defn
async def hand_off_plain(request: HandoffRequest) -> Any:
    """An uninstrumented activity: gives the token away and completes asynchronously."""
    info = activity.info()
    EXTERNAL.deliver(Delivery(info.workflow_id or "", info.attempt, info.task_token, None))
    if request.extra.get("wait_for_completion"):
        # The external system completes before the interceptor records: the worst order.
        await EXTERNAL.completed[info.workflow_id or ""].wait()
    activity.raise_complete_async()


@activity.defn
async def plain_result(request: HandoffRequest) -> Any:
    """An ordinary activity: returns at once."""
    return {"echo": request.payload}


@activity.defn
async def hand_off_standalone(deadline_seconds: float | None = None) -> Any:
    """Hands off through handoff(), as a standalone activity (no workflow): delivered under
    its activity id."""
    info = activity.info()
    deadline = None if deadline_seconds is None else timedelta(seconds=deadline_seconds)
    async with handoff(target="agent", deadline=deadline) as h:
        EXTERNAL.deliver(Delivery(info.activity_id, info.attempt, h.task_token, h))
    return None  # not reached: a clean exit completes asynchronously


ALL_ACTIVITIES: list[Callable[..., Any]] = [
    hand_off_explicit,
    hand_off_plain,
    plain_result,
    hand_off_standalone,
]
