"""Handoffs from the wire: poll responses recorded, completions finished, as the library.

* ``PollActivityTaskQueue``: a task of an activity type configured as asynchronous is
  recorded in the ledger *before* its response is passed to the worker (record before
  release). Its handoff span joins the trace context the task header carries. A task that
  cannot be recorded is not released: the proxy fails the attempt upstream
  (``HandoffNotRecorded``, retryable) and gives the worker an empty poll.
* ``RespondActivityTask{Completed,Failed,Canceled}[ById]`` and
  ``RecordActivityTaskHeartbeat[ById]``, from any connection: a call about a recorded
  handoff runs through the library's completion path, so the outcome is recorded by
  Temporal's answer under the one-outcome rules, and counted, logged and traced alike. A
  call about anything else (a synchronous activity) is forwarded untouched.

The caller always gets Temporal's own answer: the path's RPC is the forwarded call, made
once (never retried by the proxy: the caller's SDK retries as it would without it).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import structlog
from opentelemetry import context as otel_context
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.workflowservice import v1 as ws
from temporalio.service import RPCError, RPCStatusCode

from .._errors import HandshakeError, LedgerError
from .._records import HandoffRecord
from .._tokens import new_handoff_id, token_fingerprint
from .._vocabulary import NOT_RECORDED_TYPE, Component
from ..completion._call import Subject
from ..completion._path import CallResult, CompletionPath
from ..config import HandshakeConfig, ProxySettings
from ..ledger import Ledger
from ..telemetry._metrics import HandshakeMetrics
from ..telemetry._tracing import HandshakeTracing
from ..worker._deadline import timeout_deadline
from ..worker._recorder import HandoffRecorder
from . import _methods as m
from ._forwarder import Observer, Upstream, UpstreamError
from ._wire import ActivityTask, decode, failure_type, progress_of

_log = structlog.get_logger("handshake_obs.proxy")

#: What the caller gets when the path gave up waiting for Temporal's answer.
_NO_ANSWER = "handshake-obs proxy: no answer from temporal in time"

#: One operation of the completion path, given the subject and the forwarded call.
_Operation = Callable[
    [Subject, Callable[[timedelta | None], Awaitable[None]]], Awaitable[CallResult]
]


@dataclass(frozen=True, slots=True)
class WireParts:
    """What recording handoffs from the wire uses; one set per proxy process."""

    ledger: Ledger
    metrics: HandshakeMetrics
    config: HandshakeConfig
    settings: ProxySettings
    tracing: HandshakeTracing
    recorder: HandoffRecorder
    completion: CompletionPath
    clock: Callable[[], float] = time.time


class WireHandoffs:
    """The observers of the decoded methods."""

    def __init__(self, parts: WireParts) -> None:
        self._parts = parts

    def observers(self) -> Mapping[str, Observer]:
        """Method name -> its observer, for the :class:`~._forwarder.Forwarder`."""
        return {
            m.POLL_ACTIVITY_TASK: self._poll,
            m.WORKFLOW_TASK_COMPLETED: self._workflow_task_completed,
            m.COMPLETED: self._completed,
            m.COMPLETED_BY_ID: self._completed_by_id,
            m.FAILED: self._failed,
            m.FAILED_BY_ID: self._failed_by_id,
            m.CANCELED: self._canceled,
            m.CANCELED_BY_ID: self._canceled_by_id,
            m.HEARTBEAT: self._heartbeat,
            m.HEARTBEAT_BY_ID: self._heartbeat_by_id,
        }

    # -- the handoff --------------------------------------------------------------------

    async def _poll(self, request: bytes, send: Upstream) -> bytes:
        response = await send(request)
        if not response:
            return response  # the long poll ended without a task
        task_response = decode(ws.PollActivityTaskQueueResponse, response)
        poll = decode(ws.PollActivityTaskQueueRequest, request)
        if task_response is None or poll is None or not task_response.task_token:
            return response
        task = ActivityTask.of(task_response, poll.namespace)
        released = await self._release(task, poll.task_queue.name, poll.identity, send)
        return response if released else b""  # an empty poll: the worker polls again

    async def _workflow_task_completed(self, request: bytes, send: Upstream) -> bytes:
        """Eager activity execution: the activity tasks come back in this response."""
        response = await send(request)
        completed = decode(ws.RespondWorkflowTaskCompletedResponse, response)
        if completed is None or not completed.activity_tasks:
            return response
        req = decode(ws.RespondWorkflowTaskCompletedRequest, request)
        if req is None:
            return response
        queues = {
            command.schedule_activity_task_command_attributes.activity_id: (
                command.schedule_activity_task_command_attributes.task_queue.name
            )
            for command in req.commands
            if command.HasField("schedule_activity_task_command_attributes")
        }
        kept = []
        for task_response in completed.activity_tasks:
            task = ActivityTask.of(task_response, req.namespace)
            queue = queues.get(task.activity_id, "")
            if await self._release(task, queue, req.identity, send):
                kept.append(task_response)
        if len(kept) == len(completed.activity_tasks):
            return response
        del completed.activity_tasks[:]
        completed.activity_tasks.extend(kept)
        return bytes(completed.SerializeToString())

    async def _release(
        self, task: ActivityTask, task_queue: str, identity: str, send: Upstream
    ) -> bool:
        """Record the task if its type hands off; False: it could not be recorded, and was
        failed back to Temporal instead of being released."""
        rule = self._parts.settings.async_rule(task.activity_type, task_queue)
        if rule is None:
            return True  # not a handoff: untouched, not recorded
        target = rule.target or self._parts.config.target_for_activity(task.activity_type)
        try:
            await self._record(task, target)
        except Exception as err:  # noqa: BLE001 - never release a token the ledger lacks
            await self._not_recorded(task, err, identity, send)
            return False
        return True

    async def _record(self, task: ActivityTask, target: str) -> None:
        parts = self._parts
        parent = task.trace_context()
        attached = otel_context.attach(parent) if parent is not None else None
        try:
            span = parts.tracing.start_handoff(target)
        finally:
            if attached is not None:
                otel_context.detach(attached)
        error: BaseException | None = None
        try:
            record = self._new_record(task, target, span.carrier())
            span.describe(record)
            await parts.recorder.record(record)
        except BaseException as err:
            error = err
            raise
        finally:
            span.end(error)

    def _new_record(
        self, task: ActivityTask, target: str, carrier: dict[str, str]
    ) -> HandoffRecord:
        parts = self._parts
        now = parts.clock()
        deadline = timeout_deadline(
            parts.config,
            started=task.started or _utc(now),
            scheduled=task.scheduled or task.started or _utc(now),
            start_to_close=task.start_to_close,
            schedule_to_close=task.schedule_to_close,
            target_deadline=parts.config.policy(target).deadline,
            now=now,
        )
        return HandoffRecord(
            handoff_id=new_handoff_id(),
            task_token=task.task_token,
            token_fingerprint=token_fingerprint(task.task_token),
            namespace=task.namespace,
            workflow_id=task.workflow_id,
            run_id=task.run_id,
            activity_id=task.activity_id,
            activity_type=task.activity_type,
            attempt=task.attempt,
            target=target,
            started_at=now,
            deadline=deadline,
            traceparent=carrier.get("traceparent"),
            tracestate=carrier.get("tracestate"),
        )

    async def _not_recorded(
        self,
        task: ActivityTask,
        err: Exception,
        identity: str,
        send: Upstream,
    ) -> None:
        """Give the attempt back to Temporal, failed as retryable, instead of releasing it."""
        self._parts.metrics.observe_instrumentation_error(Component.LEDGER)
        fields = {
            "workflow_id": task.workflow_id,
            "activity_id": task.activity_id,
            "token_fingerprint": token_fingerprint(task.task_token),
        }
        _log.error(
            "handoff not recorded: attempt failed back to temporal", error=repr(err), **fields
        )
        failed = ws.RespondActivityTaskFailedRequest(
            task_token=task.task_token,
            namespace=task.namespace,
            identity=identity,
            failure=Failure(
                message=f"handshake-obs proxy could not record the handoff: {err}",
                application_failure_info=ApplicationFailureInfo(
                    type=NOT_RECORDED_TYPE, non_retryable=False
                ),
            ),
        )
        try:
            await send.call(m.FAILED, failed.SerializeToString())
        except UpstreamError as upstream:
            _log.error("attempt not failed back", error=upstream.details, **fields)

    # -- the completion path ------------------------------------------------------------

    async def _completed(self, request: bytes, send: Upstream) -> bytes:
        req = decode(ws.RespondActivityTaskCompletedRequest, request)
        subject = await self._by_token(req and req.task_token)
        return await self._through_path(request, send, subject, self._parts.completion.complete)

    async def _completed_by_id(self, request: bytes, send: Upstream) -> bytes:
        subject = await self._by_id(decode(ws.RespondActivityTaskCompletedByIdRequest, request))
        return await self._through_path(request, send, subject, self._parts.completion.complete)

    async def _failed(self, request: bytes, send: Upstream) -> bytes:
        req = decode(ws.RespondActivityTaskFailedRequest, request)
        subject = await self._by_token(req and req.task_token)
        return await self._through_path(request, send, subject, self._fail(req))

    async def _failed_by_id(self, request: bytes, send: Upstream) -> bytes:
        req = decode(ws.RespondActivityTaskFailedByIdRequest, request)
        subject = await self._by_id(req)
        return await self._through_path(request, send, subject, self._fail(req))

    async def _canceled(self, request: bytes, send: Upstream) -> bytes:
        req = decode(ws.RespondActivityTaskCanceledRequest, request)
        subject = await self._by_token(req and req.task_token)
        completion = self._parts.completion
        return await self._through_path(request, send, subject, completion.report_cancellation)

    async def _canceled_by_id(self, request: bytes, send: Upstream) -> bytes:
        subject = await self._by_id(decode(ws.RespondActivityTaskCanceledByIdRequest, request))
        completion = self._parts.completion
        return await self._through_path(request, send, subject, completion.report_cancellation)

    async def _heartbeat(self, request: bytes, send: Upstream) -> bytes:
        req = decode(ws.RecordActivityTaskHeartbeatRequest, request)
        subject = await self._by_token(req and req.task_token)
        return await self._through_path(request, send, subject, self._beat(req))

    async def _heartbeat_by_id(self, request: bytes, send: Upstream) -> bytes:
        req = decode(ws.RecordActivityTaskHeartbeatByIdRequest, request)
        subject = await self._by_id(req)
        return await self._through_path(request, send, subject, self._beat(req))

    def _fail(self, req: Any) -> _Operation:
        failure: Failure = req.failure if req is not None else Failure()

        async def fail(
            subject: Subject, rpc: Callable[[timedelta | None], Awaitable[None]]
        ) -> CallResult:
            return await self._parts.completion.fail(
                subject, rpc, error_type=failure_type(failure), message=failure.message
            )

        return fail

    def _beat(self, req: Any) -> _Operation:
        details: Payloads = req.details if req is not None else Payloads()

        async def heartbeat(
            subject: Subject, rpc: Callable[[timedelta | None], Awaitable[None]]
        ) -> CallResult:
            return await self._parts.completion.heartbeat(
                subject, rpc, progress=progress_of(details), sequence=None
            )

        return heartbeat

    async def _by_token(self, task_token: bytes | None) -> Subject | None:
        """The recorded handoff of this token (None: not a handoff, or unreadable)."""
        if not task_token:
            return None
        return await self._subject(self._parts.ledger.find_by_token(task_token), task_token)

    async def _by_id(self, req: Any) -> Subject | None:
        """The recorded handoff of this workflow's activity (newest attempt)."""
        if req is None or not req.workflow_id or not req.activity_id:
            return None
        found = self._parts.ledger.find_by_activity(
            req.namespace or None, req.workflow_id, req.run_id or None, req.activity_id
        )
        return await self._subject(found, None)

    async def _subject(
        self, found: Awaitable[HandoffRecord | None], task_token: bytes | None
    ) -> Subject | None:
        try:
            record = await found
        except LedgerError as err:
            # As a plain handle on an instrumented client: the call goes through unobserved.
            self._parts.metrics.observe_instrumentation_error(Component.LEDGER)
            _log.warning("handoff not looked up: ledger unavailable", error=str(err))
            return None
        if record is None:
            return None
        # Temporal answers for a finished handoff, as it would without the proxy.
        return Subject(record, task_token, refuse_finished=False)

    async def _through_path(
        self, request: bytes, send: Upstream, subject: Subject | None, operation: _Operation
    ) -> bytes:
        """Forward ``request`` as the path's one RPC; give back Temporal's own answer."""
        if subject is None:
            return await send(request)
        sent: list[bytes | UpstreamError] = []
        invoked = False

        async def rpc(timeout: timedelta | None) -> None:
            # The caller's deadline bounds the forwarded call (the Forwarder set it).
            del timeout
            nonlocal invoked
            invoked = True
            try:
                sent.append(await send(request))
            except UpstreamError as err:
                sent.append(err)
                raise RPCError(err.details, _status(err.code), err.status_details) from None

        try:
            await operation(subject, rpc)
        except HandshakeError:
            pass  # counted and logged by the path; the caller gets Temporal's answer below
        except Exception as err:  # noqa: BLE001 - telemetry never breaks the call
            _log.error("completion not observed", error=repr(err))
        if not invoked:
            return await send(request)  # the path stopped before its RPC: forward as is
        if not sent:
            # The path gave up before an answer came (its guard): never send twice.
            raise UpstreamError(grpc.StatusCode.DEADLINE_EXCEEDED, _NO_ANSWER)
        answer = sent[-1]
        if isinstance(answer, UpstreamError):
            raise answer
        return answer


def _status(code: grpc.StatusCode) -> RPCStatusCode:
    value: int = code.value[0]
    return RPCStatusCode(value)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
