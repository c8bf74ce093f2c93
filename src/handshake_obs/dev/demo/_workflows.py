"""The demo workflow (its own module, for the workflow sandbox).

It schedules the sidecar's ``handshake.http_handoff`` activity on the sidecar's task queue
with a JSON argument, exactly as a Go or Java workflow would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError


@dataclass
class DemoTask:
    """One unit of demo work handed to the fake external system through the sidecar."""

    target: str
    prompt: str
    sidecar_task_queue: str
    #: The activity's start-to-close timeout: how long a lost handoff can stay pending.
    timeout_seconds: float


@workflow.defn
class DemoWorkflow:
    """Hands one task off through the sidecar and reports how it ended."""

    @workflow.run
    async def run(self, task: DemoTask) -> dict[str, Any]:
        try:
            result = await workflow.execute_activity(
                "handshake.http_handoff",
                {"target": task.target, "payload": {"prompt": task.prompt}},
                task_queue=task.sidecar_task_queue,
                start_to_close_timeout=timedelta(seconds=task.timeout_seconds),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            error_type = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            return {"status": "failed", "error_type": error_type}
        return {"status": "completed", "result": result}
