"""Workflows the tests run (kept apart from other code for the workflow sandbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType


@dataclass
class HandoffRequest:
    """What a test workflow asks its activity to do."""

    activity: str
    target: str | None = None
    payload: Any = None
    start_to_close_seconds: float = 60.0
    heartbeat_timeout_seconds: float | None = None
    max_attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    #: Cancel the activity without waiting for it: a cancelled workflow closes at once.
    try_cancel: bool = False


@workflow.defn
class HandoffWorkflow:
    """Runs one activity and reports how it ended, as data the test can assert on."""

    @workflow.run
    async def run(self, request: HandoffRequest) -> dict[str, Any]:
        try:
            result = await workflow.execute_activity(
                request.activity,
                request,
                start_to_close_timeout=timedelta(seconds=request.start_to_close_seconds),
                heartbeat_timeout=(
                    timedelta(seconds=request.heartbeat_timeout_seconds)
                    if request.heartbeat_timeout_seconds
                    else None
                ),
                # A cancelled workflow waits for the external system to report the
                # cancellation through the token.
                cancellation_type=(
                    ActivityCancellationType.TRY_CANCEL
                    if request.try_cancel
                    else ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                ),
                retry_policy=RetryPolicy(
                    maximum_attempts=request.max_attempts,
                    initial_interval=timedelta(milliseconds=100),
                ),
            )
        except ActivityError as err:
            if request.try_cancel and is_cancelled_exception(err):
                raise  # the workflow ends cancelled
            cause = err.cause
            if isinstance(cause, ApplicationError):
                return {
                    "error_type": cause.type,
                    "message": cause.message,
                    "details": list(cause.details),
                    "non_retryable": cause.non_retryable,
                }
            return {"error_type": type(cause).__name__, "message": str(cause)}
        return {"result": result}


@dataclass
class SidecarCall:
    """One activity of the sidecar, scheduled on its task queue with a JSON argument, the way
    a Go or Java workflow would schedule it."""

    activity: str
    task_queue: str
    argument: dict[str, Any]
    start_to_close_seconds: float = 120.0
    max_attempts: int = 1
    #: A cancelled workflow waits for the external system to report the cancellation.
    wait_for_cancellation: bool = False


@workflow.defn
class SidecarWorkflow:
    """Runs one sidecar activity and reports how it ended."""

    @workflow.run
    async def run(self, call: SidecarCall) -> dict[str, Any]:
        try:
            result = await workflow.execute_activity(
                call.activity,
                call.argument,
                task_queue=call.task_queue,
                start_to_close_timeout=timedelta(seconds=call.start_to_close_seconds),
                cancellation_type=(
                    ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                    if call.wait_for_cancellation
                    else ActivityCancellationType.TRY_CANCEL
                ),
                retry_policy=RetryPolicy(
                    maximum_attempts=call.max_attempts,
                    initial_interval=timedelta(milliseconds=200),
                ),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                return {
                    "error_type": cause.type,
                    "message": cause.message,
                    "details": list(cause.details),
                }
            return {"error_type": type(cause).__name__, "message": str(cause)}
        return {"result": result}
