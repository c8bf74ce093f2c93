"""The worker side of the interceptor: records every activity that completes asynchronously.

Activities that return or raise normally pass straight through: no record, no metric, no
ledger access.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from ._complete_async import is_complete_async
from ._handoff import ActivityScope, current_scope
from ._recorder import HandoffRecorder


class ActivityRecording(ActivityInboundInterceptor):
    """Gives each activity a scope for ``handoff()``, and records a handoff for an activity
    that raised complete-async without one."""

    def __init__(self, next: ActivityInboundInterceptor, recorder: HandoffRecorder) -> None:
        super().__init__(next)
        self._recorder = recorder

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        scope = ActivityScope(self._recorder)
        reset = current_scope.set(scope)
        try:
            return await super().execute_activity(input)
        except BaseException as err:
            if is_complete_async(err) and scope.recorded is None:
                await self._recorder.record_after_release(activity.info())
            raise
        finally:
            current_scope.reset(reset)
