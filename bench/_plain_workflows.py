"""Workflow of ``bench.plain_activities``, kept in its own module for the workflow sandbox.

The activity is named by string, so this module imports no benchmark code.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn
class PlainActivityBenchWorkflow:
    """Runs one ordinary activity (it returns; no async completion) and returns its result."""

    @workflow.run
    async def run(self, activity_name: str) -> str:
        result: str = await workflow.execute_activity(
            activity_name,
            workflow.info().workflow_id,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_attempts=1),
            result_type=str,
        )
        return result
