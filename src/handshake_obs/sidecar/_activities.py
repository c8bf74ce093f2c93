"""Activities the sidecar's worker hosts, for workflows in any SDK language.

=============================  ==================================================  ==========
activity type                  argument (JSON)                                      returns
=============================  ==================================================  ==========
``handshake.http_handoff``     ``{"target", "payload", "deadline_seconds"?}``       completes
                                                                                    async
``handshake.complete_external`` ``{"handoff_id", "result"}``                       ``{...}``
``handshake.fail_external``    ``{"handoff_id", "error_type", "message",``          ``{...}``
                               ``"details"?, "non_retryable"?}``
=============================  ==================================================  ==========

``handshake.http_handoff`` records the handoff, then POSTs ``{"handoff_id", "callback_url",
"deadline", "payload", "workflow_id", "run_id", "activity_id", "attempt"}`` to the target's
configured URL with the handoff's ``traceparent``; a delivery failure fails the attempt (the
handoff is aborted) and Temporal retries it by the activity's retry policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from .._errors import (
    ActivityAlreadyClosedError,
    HandoffAlreadyFinishedError,
    HandshakeError,
    TemporalUnavailableError,
    UnknownHandoffError,
)
from .._vocabulary import Outcome
from ..worker._handoff import handoff
from ._runtime import SidecarRuntime

HTTP_HANDOFF = "handshake.http_handoff"
COMPLETE_EXTERNAL = "handshake.complete_external"
FAIL_EXTERNAL = "handshake.fail_external"

#: ``ApplicationError`` type of an ``http_handoff`` to a target with no configured URL.
UNKNOWN_TARGET_TYPE = "UnknownTarget"
#: ``ApplicationError`` type of an ``http_handoff`` the target did not accept (retried).
DELIVERY_FAILED_TYPE = "HandoffDeliveryFailed"


@dataclass
class HttpHandoffInput:
    """Argument of ``handshake.http_handoff``."""

    target: str
    payload: Any = None
    #: Deadline from now; default: the target's policy or the activity's timeouts.
    deadline_seconds: float | None = None


@dataclass
class CompleteExternalInput:
    """Argument of ``handshake.complete_external``."""

    handoff_id: str
    result: Any = None


@dataclass
class FailExternalInput:
    """Argument of ``handshake.fail_external``."""

    handoff_id: str
    error_type: str
    message: str
    details: list[Any] = field(default_factory=list)
    non_retryable: bool = False


class SidecarActivities:
    """The sidecar's activities, bound to its runtime and an HTTP client."""

    def __init__(self, runtime: SidecarRuntime, http: httpx.AsyncClient) -> None:
        self._runtime = runtime
        self._http = http

    @activity.defn(name=HTTP_HANDOFF)
    async def http_handoff(self, request: HttpHandoffInput) -> Any:
        """Deliver the handoff to the target over HTTP, then complete asynchronously."""
        settings = self._runtime.settings
        url = settings.target_urls.get(request.target)
        if url is None:
            raise ApplicationError(
                f"no URL is configured for target {request.target!r}",
                type=UNKNOWN_TARGET_TYPE,
                non_retryable=True,
            )
        deadline = timedelta(seconds=request.deadline_seconds) if request.deadline_seconds else None
        info = activity.info()
        async with handoff(target=request.target, deadline=deadline) as h:
            body = {
                "handoff_id": h.handoff_id,
                "callback_url": (
                    f"{settings.callback_base(self._runtime.config)}/v1/handoffs/{h.handoff_id}"
                ),
                "deadline": (
                    datetime.fromtimestamp(h.deadline, UTC).isoformat() if h.deadline else None
                ),
                "payload": request.payload,
                "workflow_id": info.workflow_id,
                "run_id": info.workflow_run_id,
                "activity_id": info.activity_id,
                "attempt": info.attempt,
            }
            headers = {"traceparent": h.traceparent} if h.traceparent else {}
            if h.tracestate:
                headers["tracestate"] = h.tracestate
            try:
                response = await self._http.post(
                    url,
                    json=body,
                    headers=headers,
                    timeout=settings.delivery_timeout.total_seconds(),
                )
            except httpx.HTTPError as err:
                raise ApplicationError(
                    f"delivery to {request.target} failed: {err!r}", type=DELIVERY_FAILED_TYPE
                ) from None
            if response.status_code >= 300:
                raise ApplicationError(
                    f"delivery to {request.target} answered {response.status_code}",
                    type=DELIVERY_FAILED_TYPE,
                )
        _unreachable()

    @activity.defn(name=COMPLETE_EXTERNAL)
    async def complete_external(self, request: CompleteExternalInput) -> dict[str, Any]:
        """Complete another activity's handoff, instrumented like every completion."""
        try:
            await self._runtime.completer().complete(request.handoff_id, request.result)
        except HandshakeError as err:
            raise _as_activity_error(err) from None
        return {"handoff_id": request.handoff_id, "outcome": Outcome.COMPLETED.value}

    @activity.defn(name=FAIL_EXTERNAL)
    async def fail_external(self, request: FailExternalInput) -> dict[str, Any]:
        """Fail another activity's handoff with a typed error."""
        try:
            await self._runtime.completer().fail(
                request.handoff_id,
                error_type=request.error_type,
                message=request.message,
                details=request.details,
                non_retryable=request.non_retryable,
            )
        except HandshakeError as err:
            raise _as_activity_error(err) from None
        return {"handoff_id": request.handoff_id, "outcome": Outcome.FAILED.value}

    def all(self) -> list[Any]:
        """Every activity, for ``Worker(activities=...)``."""
        return [self.http_handoff, self.complete_external, self.fail_external]


def _as_activity_error(err: HandshakeError) -> ApplicationError:
    """Final errors fail the calling workflow's activity for good; others are retried."""
    final = isinstance(
        err, UnknownHandoffError | HandoffAlreadyFinishedError | ActivityAlreadyClosedError
    )
    retryable = isinstance(err, TemporalUnavailableError) or not final
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=not retryable)


def _unreachable() -> NoReturn:
    raise AssertionError("handoff() completes the activity asynchronously on exit")
