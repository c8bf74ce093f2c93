"""Asking Temporal, cheaply, whether a handoff's activity attempt is still open.

One ``DescribeWorkflowExecution`` answers for a running workflow: the attempt is open while
the workflow lists it among its pending activities with the same attempt number. When the
workflow closed, or no longer lists the activity, the activity's closing event tells how it
ended; it is near the end of the history, so it is looked for from the end
(``GetWorkflowExecutionHistoryReverse``), a page or two at most. A standalone activity
(no workflow) is one ``DescribeActivityExecution``. Every call is paid from the budget.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ActivityExecutionStatus, EventType, WorkflowExecutionStatus
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    DescribeActivityExecutionRequest,
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryReverseRequest,
    GetWorkflowExecutionHistoryReverseResponse,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from .._records import HandoffRecord
from .._vocabulary import CloseReason, WorkflowCloseStatus
from ._budget import CallBudget

_T = TypeVar("_T")

#: History pages read from the end, at most, to find an activity's closing event.
HISTORY_PAGES = 2
#: Events per history page.
HISTORY_PAGE_SIZE = 200

_WORKFLOW_STATUS: dict[int, WorkflowCloseStatus] = {
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED: WorkflowCloseStatus.COMPLETED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED: WorkflowCloseStatus.FAILED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED: WorkflowCloseStatus.CANCELED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED: WorkflowCloseStatus.TERMINATED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: WorkflowCloseStatus.TIMED_OUT,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW: (
        WorkflowCloseStatus.CONTINUED_AS_NEW
    ),
}

_CLOSING_EVENTS: dict[int, CloseReason] = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: CloseReason.COMPLETED_ELSEWHERE,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: CloseReason.FAILED_ELSEWHERE,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: CloseReason.CANCELED_ELSEWHERE,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: CloseReason.ACTIVITY_TIMED_OUT,
}

_STANDALONE_STATUS: dict[int, tuple[CloseReason, str]] = {
    ActivityExecutionStatus.ACTIVITY_EXECUTION_STATUS_COMPLETED: (
        CloseReason.COMPLETED_ELSEWHERE,
        "completed",
    ),
    ActivityExecutionStatus.ACTIVITY_EXECUTION_STATUS_FAILED: (
        CloseReason.FAILED_ELSEWHERE,
        "failed",
    ),
    ActivityExecutionStatus.ACTIVITY_EXECUTION_STATUS_CANCELED: (
        CloseReason.CANCELED_ELSEWHERE,
        "canceled",
    ),
    ActivityExecutionStatus.ACTIVITY_EXECUTION_STATUS_TERMINATED: (
        CloseReason.CANCELED_ELSEWHERE,
        "standalone activity terminated",
    ),
    ActivityExecutionStatus.ACTIVITY_EXECUTION_STATUS_TIMED_OUT: (
        CloseReason.ACTIVITY_TIMED_OUT,
        "timed out",
    ),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What Temporal showed of one handoff's attempt."""

    #: The attempt is still open: the handoff waits for real.
    open: bool
    reason: CloseReason | None = None
    #: What was seen, for the handoff's message (the workflow's status, the newer attempt).
    detail: str | None = None

    @classmethod
    def still_open(cls) -> Verdict:
        """The attempt is open."""
        return cls(open=True)

    @classmethod
    def closed(cls, reason: CloseReason, detail: str) -> Verdict:
        """The attempt is closed, for ``reason``."""
        return cls(open=False, reason=reason, detail=detail)


class TemporalProbe:
    """Looks up handoffs' attempts in Temporal, each call paid from ``budget``."""

    def __init__(
        self,
        client: Client,
        budget: CallBudget,
        *,
        rpc_timeout: timedelta,
        on_call: Callable[[], None] = lambda: None,
    ) -> None:
        self._service = client.workflow_service
        self._budget = budget
        self._timeout = rpc_timeout
        self._on_call = on_call

    async def check(self, record: HandoffRecord) -> Verdict:
        """The attempt's state; raises :class:`RPCError` when Temporal does not answer."""
        if not record.workflow_id:
            return await self._check_standalone(record)
        return await self._check_workflow_activity(record)

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        await self._budget.spend()
        self._on_call()
        return await call()

    # -- an activity of a workflow ------------------------------------------------------

    async def _check_workflow_activity(self, record: HandoffRecord) -> Verdict:
        execution = WorkflowExecution(workflow_id=record.workflow_id, run_id=record.run_id)
        request = DescribeWorkflowExecutionRequest(namespace=record.namespace, execution=execution)
        try:
            described = await self._call(
                lambda: self._service.describe_workflow_execution(
                    request, retry=False, timeout=self._timeout
                )
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return Verdict.closed(
                    CloseReason.WORKFLOW_CLOSED, WorkflowCloseStatus.NOT_FOUND.value
                )
            raise
        status = _WORKFLOW_STATUS.get(described.workflow_execution_info.status)
        if status is None:  # running
            for pending in described.pending_activities:
                if pending.activity_id != record.activity_id:
                    continue
                if pending.attempt > record.attempt:
                    return Verdict.closed(
                        CloseReason.SUPERSEDED, f"attempt {pending.attempt} is pending"
                    )
                return Verdict.still_open()
        found = await self._closing_event(record, execution)
        if found is not None:
            return found
        if status is None:
            # Running, and the activity is gone without a closing event in the pages read:
            # closed, how is not known cheaply.
            return Verdict.closed(CloseReason.NOT_FOUND, "activity no longer pending")
        return Verdict.closed(CloseReason.WORKFLOW_CLOSED, status.value)

    async def _closing_event(
        self, record: HandoffRecord, execution: WorkflowExecution
    ) -> Verdict | None:
        """How the activity closed, from its closing event near the end of the history."""
        closing: dict[int, HistoryEvent] = {}
        attempts: dict[int, int] = {}
        token = b""
        for _ in range(HISTORY_PAGES):
            request = GetWorkflowExecutionHistoryReverseRequest(
                namespace=record.namespace,
                execution=execution,
                maximum_page_size=HISTORY_PAGE_SIZE,
                next_page_token=token,
            )
            page = await self._call(functools.partial(self._history_page, request))
            for event in page.history.events:  # newest first
                found = _read_event(event, record, closing, attempts)
                if found is not None:
                    return found if found.reason is not None else None
            token = page.next_page_token
            if not token:
                return None
        return None

    async def _history_page(
        self, request: GetWorkflowExecutionHistoryReverseRequest
    ) -> GetWorkflowExecutionHistoryReverseResponse:
        return await self._service.get_workflow_execution_history_reverse(
            request, retry=False, timeout=self._timeout
        )

    # -- a standalone activity -------------------------------------------------------

    async def _check_standalone(self, record: HandoffRecord) -> Verdict:
        request = DescribeActivityExecutionRequest(
            namespace=record.namespace,
            activity_id=record.activity_id,
            run_id=record.activity_run_id or "",
        )
        try:
            described = await self._call(
                lambda: self._service.describe_activity_execution(
                    request, retry=False, timeout=self._timeout
                )
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return Verdict.closed(CloseReason.NOT_FOUND, "standalone activity not found")
            raise
        info = described.info
        closed = _STANDALONE_STATUS.get(info.status)
        if closed is not None:
            return Verdict.closed(*closed)
        if info.attempt > record.attempt:
            return Verdict.closed(CloseReason.SUPERSEDED, f"attempt {info.attempt} is running")
        return Verdict.still_open()


def _read_event(
    event: HistoryEvent,
    record: HandoffRecord,
    closing: dict[int, HistoryEvent],
    attempts: dict[int, int],
) -> Verdict | None:
    """Read one event going backwards; a verdict once the activity's scheduled event shows
    (``reason`` None: it has no closing event, it is open)."""
    kind = event.event_type
    if kind in _CLOSING_EVENTS:
        closing[_attributes(event).scheduled_event_id] = event
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        attempts[event.event_id] = event.activity_task_started_event_attributes.attempt
    elif (
        kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_id == record.activity_id
    ):
        return _how_it_closed(closing.get(event.event_id), record, attempts)
    return None


def _how_it_closed(
    closed: HistoryEvent | None, record: HandoffRecord, attempts: dict[int, int]
) -> Verdict:
    if closed is None:
        return Verdict(open=True)
    last_attempt = attempts.get(_attributes(closed).started_event_id, record.attempt)
    if last_attempt > record.attempt:
        return Verdict.closed(CloseReason.SUPERSEDED, f"attempt {last_attempt} closed it")
    reason = _CLOSING_EVENTS[closed.event_type]
    return Verdict.closed(reason, reason.value.replace("_", " "))


def _attributes(event: HistoryEvent) -> Any:
    """The event's attributes (each closing event's carry its scheduled and started ids)."""
    return getattr(event, event.WhichOneof("attributes") or "")
