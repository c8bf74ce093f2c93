"""The demo workflow (its own module, for the workflow sandbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

DEMO_ACTIVITY = "demo_hand_off"


@dataclass
class DemoTask:
    """One unit of demo work handed to the fake external system."""

    target: str
    prompt: str
    #: The activity's start-to-close timeout: how long a lost token can stay pending.
    timeout_seconds: float


@workflow.defn
class DemoWorkflow:
    """Hands one task off and reports how it ended."""

    @workflow.run
    async def run(self, task: DemoTask) -> dict[str, Any]:
        try:
            result = await workflow.execute_activity(
                DEMO_ACTIVITY,
                task,
                start_to_close_timeout=timedelta(seconds=task.timeout_seconds),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            error_type = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            return {"status": "failed", "error_type": error_type}
        return {"status": "completed", "result": result}
