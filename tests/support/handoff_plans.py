"""One workload, two ways: the plans an external system follows for each handoff.

The TypeScript completer (tests/typescript/completer.js) follows the same plans; here a
Python activity hands off with the library and a Python completer follows them through
plain async-activity handles, so the two runs can be compared metric for metric.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.client import AsyncActivityCancelledError, Client
from temporalio.exceptions import ApplicationError

from handshake_obs import handoff

from .activities import EXTERNAL, Delivery
from .workflows import HandoffRequest

#: Each handoff's plan, by name: what the external system does with the token.
PLANS: dict[str, list[dict[str, Any]]] = {
    "complete": [{"op": "complete", "result": "done"}],
    "fail": [{"op": "fail", "type": "PaymentDeclined", "message": "card declined"}],
    "progress": [
        {"op": "heartbeat", "details": {"percent": 40}},
        {"op": "complete", "result": "after progress"},
    ],
    "cancel": [{"op": "await_cancel"}],
}


@activity.defn(name="handOff")
async def hand_off_to_plan(request: HandoffRequest) -> Any:
    """The Python twin of the TypeScript ``handOff``: recorded by the library first."""
    info = activity.info()
    async with handoff(target="approval") as h:
        EXTERNAL.deliver(Delivery(info.workflow_id or "", info.attempt, h.task_token, h))


async def follow_plan(client: Client, task_token: bytes, plan: list[dict[str, Any]]) -> None:
    """Do what ``plan`` says with the token, through plain handles of ``client``."""
    handle = client.get_async_activity_handle(task_token=task_token)
    for step in plan:
        if step["op"] == "complete":
            await handle.complete(step["result"])
        elif step["op"] == "fail":
            error = ApplicationError(step["message"], type=step["type"], non_retryable=True)
            await handle.fail(error)
        elif step["op"] == "heartbeat":
            await handle.heartbeat(step["details"])
        elif step["op"] == "await_cancel":
            while True:
                try:
                    await handle.heartbeat()
                except AsyncActivityCancelledError:
                    break
                await asyncio.sleep(0.2)
            await handle.report_cancellation()
