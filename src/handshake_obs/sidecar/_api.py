"""The sidecar's HTTP API: the completion gateway, the inventory and operator actions."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client.exposition import choose_encoder

from .._handoff_filter import (
    FILTER_FIELDS,
    MAX_AGE_SECONDS,
    MAX_FILTER_TEXT,
    HandoffFilter,
    InvalidFilterError,
)
from .._records import HandoffRecord
from .._tokens import HANDOFF_ID_PATTERN
from .._vocabulary import OPERATOR_FAILURE_TYPE, Operation, State
from ..completion._call import refusals
from ..completion._completer import Completer
from ..completion._path import CallResult, HandoffRef
from ._api_reference import render_api_reference
from ._auth import EndpointGroup, bearer_scheme, expected_token, require_bearer
from ._handoff_routes import handoff_page_routes
from ._http_errors import RETRY_AFTER_SECONDS, ApiError, install_error_handlers
from ._lookup import checked_handoff_id as _handoff_id
from ._lookup import find_handoff as _find
from ._page_session import sign_in_routes, signed_in
from ._request_guard import RequestGuard
from ._runtime import SidecarRuntime
from ._schemas import (
    CallView,
    CancelBody,
    CompleteBody,
    ErrorBody,
    ExtendBody,
    FailBody,
    HandoffPage,
    HandoffView,
    Health,
    HeartbeatBody,
    HeartbeatView,
    OperatorFailBody,
    TokenCancelBody,
    TokenCompleteBody,
    TokenExtendBody,
    TokenFailBody,
    TokenHeartbeatBody,
)
from ._search import query_of
from ._status_page import render_status_page
from ._unexpected_errors import UnexpectedErrors
from ._views import view_of

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "Malformed JSON, handoff id or task token",
        401: "Missing or wrong bearer token",
        404: "Unknown handoff",
        409: "The handoff already has its outcome, or Temporal refused the call",
        408: "The body did not arrive within the body timeout",
        413: "Body over the size limit",
        422: "Invalid request, or a body that is not a JSON object",
        500: "An unexpected error; its correlation id is in the log",
        503: "Temporal or the ledger unavailable; retry after Retry-After seconds",
    }.items()
}


#: A handoff id in a path (a malformed one is a 400).
HandoffId = Annotated[
    str, Path(pattern=HANDOFF_ID_PATTERN, examples=["ho_3q2-7Hk0aV9mXw1bYcRtZs4d"])
]

#: The bearer credentials of a request (None when it carries none).
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
_Auth = Callable[[HTTPAuthorizationCredentials | None], None]
_PageAuth = Callable[[Request, HTTPAuthorizationCredentials | None], None]


class _Gateway:
    """The operations behind the routes, shared by the by-id and by-token forms."""

    def __init__(self, runtime: SidecarRuntime) -> None:
        self.runtime = runtime

    def completer(self) -> Completer:
        """The runtime's completer. Before Temporal has answered there is none: the call is
        refused as unavailable (503) and counted, as the completion path counts its own."""
        with refusals(self.runtime.handshake._metrics, None):
            return self.runtime.completer()

    def call_view(self, result: CallResult) -> CallView:
        kept = result.heartbeat
        return CallView(
            operation=result.operation.value,
            handoff=_view(self.runtime, result.handoff) if result.handoff else None,
            heartbeat=HeartbeatView(accepted=kept.accepted, sequence=kept.sequence)
            if kept
            else None,
            outcome=result.outcome.value if result.outcome else None,
            recording_delayed=result.recording_delayed,
            cancel_requested=result.cancel_requested,
        )

    async def refreshed(self, result: CallResult) -> CallView:
        """The call's view with the handoff as the ledger has it now (as the call found it
        when the ledger could not take the outcome: it would not answer now either)."""
        if result.handoff is not None and not result.recording_delayed:
            latest = await self.runtime.handshake.ledger.get(result.handoff.handoff_id)
            result = dataclasses.replace(result, handoff=latest or result.handoff)
        return self.call_view(result)

    async def complete(self, ref: HandoffRef, body: CompleteBody) -> CallView:
        return await self.refreshed(await self.completer().complete(ref, body.result))

    async def fail(self, ref: HandoffRef, body: FailBody) -> CallView:
        result = await self.completer().fail(
            ref,
            error_type=body.error_type,
            message=body.message,
            details=body.details,
            non_retryable=body.non_retryable,
        )
        return await self.refreshed(result)

    async def heartbeat(self, ref: HandoffRef, body: HeartbeatBody) -> CallView:
        kept = await self.completer().heartbeat(ref, body.progress, sequence=body.sequence)
        record = await _find(self.runtime, ref)
        cancel_requested = kept is not None and kept.cancel_requested
        return self.call_view(
            CallResult(Operation.HEARTBEAT, record, kept, cancel_requested=cancel_requested)
        )

    async def cancel(self, ref: HandoffRef, body: CancelBody) -> CallView:
        result = await self.completer().report_cancellation(ref, *body.details)
        return await self.refreshed(result)

    async def extend(self, ref: HandoffRef, body: ExtendBody) -> HandoffView:
        until = (
            body.deadline
            if body.deadline is not None
            else timedelta(seconds=body.extend_by_seconds or 0)
        )
        return _view(self.runtime, await self.completer().extend(ref, until))

    async def operator_fail(self, handoff_id: HandoffId, body: OperatorFailBody) -> CallView:
        result = await self.completer().fail(
            handoff_id,
            error_type=OPERATOR_FAILURE_TYPE,
            message=body.reason,
            non_retryable=body.non_retryable,
        )
        return await self.refreshed(result)

    async def page(self, search: HandoffFilter, limit: int, cursor: str | None) -> HandoffPage:
        now = self.runtime.clock()
        query = query_of(
            search, now=now, limit=limit + 1, after=_decode_cursor(cursor) if cursor else None
        )
        records = await self.runtime.handshake.ledger.list_handoffs(query)
        page, more = records[:limit], len(records) > limit
        return HandoffPage(
            items=[view_of(r, self.runtime.settings, now=now) for r in page],
            next_cursor=_encode_cursor(page[-1]) if more else None,
        )


def create_app(runtime: SidecarRuntime) -> FastAPI:
    """The ASGI application of one sidecar."""
    settings = runtime.settings
    app = FastAPI(
        # Swagger UI and ReDoc load from a CDN (blank offline): /docs is rendered here.
        docs_url=None,
        redoc_url=None,
        title="handshake-obs sidecar",
        version="0.1.0",
        description=(
            "Completion gateway, inventory and operator actions for Temporal asynchronous "
            "activity completion. Raw task tokens are accepted, never returned."
        ),
    )
    install_error_handlers(app)
    gateway = _Gateway(runtime)

    # The request guard has authenticated already (before the body was read); the routes
    # check again, and declare the scheme in the OpenAPI document.
    def completion_auth(credentials: Credentials) -> None:
        group = EndpointGroup.COMPLETION
        require_bearer(credentials, expected_token(settings, group), what=group.value)

    def operator_auth(credentials: Credentials) -> None:
        group = EndpointGroup.OPERATOR
        require_bearer(credentials, expected_token(settings, group), what=group.value)

    def inventory_auth(credentials: Credentials) -> None:
        group = EndpointGroup.INVENTORY
        if (token := expected_token(settings, group)) is not None:
            require_bearer(credentials, token, what=group.value)

    def page_auth(request: Request, credentials: Credentials) -> None:
        """The pages also open to a browser signed in (the cookie of ``/signin``)."""
        if not signed_in(settings, request.headers.get("cookie", "")):
            inventory_auth(credentials)

    app.include_router(_completion_routes(gateway, completion_auth))
    app.include_router(_inventory_routes(gateway, inventory_auth))
    app.include_router(_operator_routes(gateway, operator_auth))
    _health_and_page_routes(app, runtime, page_auth)
    sign_in_routes(app, settings)
    handoff_page_routes(
        app,
        runtime,
        page_auth=page_auth,
        operator_fail=gateway.operator_fail,
        extend=gateway.extend,
    )
    app.add_middleware(RequestGuard, settings=settings)
    # Added last, so outermost: what escapes everything else is still a JSON answer.
    app.add_middleware(UnexpectedErrors)
    return app


def _router(prefix: str, auth: _Auth, tag: str) -> APIRouter:
    return APIRouter(prefix=prefix, dependencies=[Depends(auth)], responses=_ERRORS, tags=[tag])


def _completion_routes(gateway: _Gateway, auth: _Auth) -> APIRouter:
    router = _router("/v1", auth, "completion")

    @router.post("/handoffs/{handoff_id}/complete")
    async def complete_by_id(handoff_id: HandoffId, body: CompleteBody) -> CallView:
        """Complete the handoff's activity with a result."""
        return await gateway.complete(_handoff_id(handoff_id), body)

    @router.post("/handoffs/{handoff_id}/fail")
    async def fail_by_id(handoff_id: HandoffId, body: FailBody) -> CallView:
        """Fail the handoff's activity with a typed error."""
        return await gateway.fail(_handoff_id(handoff_id), body)

    @router.post("/handoffs/{handoff_id}/heartbeat")
    async def heartbeat_by_id(handoff_id: HandoffId, body: HeartbeatBody) -> CallView:
        """Report progress (keeps the activity alive; may extend the deadline)."""
        return await gateway.heartbeat(_handoff_id(handoff_id), body)

    @router.post("/handoffs/{handoff_id}/cancel")
    async def cancel_by_id(handoff_id: HandoffId, body: CancelBody) -> CallView:
        """Report that the activity accepted its cancellation (after a heartbeat answered
        ``cancel_requested``): the handoff ends ``canceled``, the workflow sees a
        cancellation."""
        return await gateway.cancel(_handoff_id(handoff_id), body)

    @router.post("/handoffs/{handoff_id}/extend")
    async def extend_by_id(handoff_id: HandoffId, body: ExtendBody) -> HandoffView:
        """Move the handoff's deadline ("still working, give me until T")."""
        return await gateway.extend(_handoff_id(handoff_id), body)

    @router.post("/tokens/complete")
    async def complete_by_token(body: TokenCompleteBody) -> CallView:
        """Complete by raw task token."""
        return await gateway.complete(_token(body.task_token), body)

    @router.post("/tokens/fail")
    async def fail_by_token(body: TokenFailBody) -> CallView:
        """Fail by raw task token."""
        return await gateway.fail(_token(body.task_token), body)

    @router.post("/tokens/heartbeat")
    async def heartbeat_by_token(body: TokenHeartbeatBody) -> CallView:
        """Heartbeat by raw task token."""
        return await gateway.heartbeat(_token(body.task_token), body)

    @router.post("/tokens/cancel")
    async def cancel_by_token(body: TokenCancelBody) -> CallView:
        """Report the cancellation by raw task token."""
        return await gateway.cancel(_token(body.task_token), body)

    @router.post("/tokens/extend")
    async def extend_by_token(body: TokenExtendBody) -> HandoffView:
        """Extend by raw task token (the token must belong to a recorded handoff)."""
        return await gateway.extend(_token(body.task_token), body)

    return router


def _inventory_routes(gateway: _Gateway, auth: _Auth) -> APIRouter:
    router = _router("/v1", auth, "inventory")

    @router.get("/handoffs")
    async def list_handoffs(
        handoff_id: Annotated[
            str | None, Query(max_length=MAX_FILTER_TEXT, description=FILTER_FIELDS["handoff_id"])
        ] = None,
        workflow_id: Annotated[
            str | None,
            Query(max_length=MAX_FILTER_TEXT, description=FILTER_FIELDS["workflow_id"]),
        ] = None,
        state: Annotated[State | None, Query(description="pending or finished; omitted: both")] = (
            None
        ),
        target: Annotated[
            str | None, Query(max_length=MAX_FILTER_TEXT, description=FILTER_FIELDS["target"])
        ] = None,
        min_age_seconds: Annotated[
            float | None,
            Query(ge=0, le=MAX_AGE_SECONDS, description=FILTER_FIELDS["min_age_seconds"]),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> HandoffPage:
        """Handoffs, oldest first, filtered by handoff id, workflow id prefix, target, state
        and minimum age (the status page's search, and ``handshake-obs pending``)."""
        try:
            search = HandoffFilter(
                handoff_id=handoff_id or None,
                workflow_id=workflow_id or None,
                target=target or None,
                state=state,
                min_age_seconds=min_age_seconds,
            )
        except InvalidFilterError as problem:
            raise ApiError(400, "invalid_filter", str(problem)) from None
        return await gateway.page(search, limit, cursor)

    @router.get("/handoffs/{handoff_id}")
    async def get_handoff(handoff_id: HandoffId) -> HandoffView:
        """One handoff."""
        record = await _find(gateway.runtime, _handoff_id(handoff_id))
        return _view(gateway.runtime, record)

    return router


def _operator_routes(gateway: _Gateway, auth: _Auth) -> APIRouter:
    router = _router("/v1/operator", auth, "operator")

    @router.post("/handoffs/{handoff_id}/fail")
    async def operator_fail(handoff_id: HandoffId, body: OperatorFailBody) -> CallView:
        """Fail a stuck handoff now with ``HandoffFailedByOperator``."""
        return await gateway.operator_fail(_handoff_id(handoff_id), body)

    @router.post("/handoffs/{handoff_id}/extend")
    async def operator_extend(handoff_id: HandoffId, body: ExtendBody) -> HandoffView:
        """Extend a handoff's deadline."""
        return await gateway.extend(_handoff_id(handoff_id), body)

    return router


def _health_and_page_routes(app: FastAPI, runtime: SidecarRuntime, page_auth: _PageAuth) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", tags=["health"], responses={503: {"model": Health}})
    async def readyz() -> Any:
        """Ready when Temporal and the ledger both answer."""
        checks = await runtime.readiness()
        if all(v == "ok" for v in checks.values()):
            return Health(status="ok", checks=checks)
        return JSONResponse(
            Health(status="unavailable", checks=checks).model_dump(),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # The pending gauges first catch up with the counters (bounded); rendering then runs
        # on the loop without a pause, so nothing this process counts slips in between.
        await runtime.handshake.refresh_stale_pending_gauges()
        # OpenMetrics (with exemplars) when the scraper asks for it, else the text format.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(runtime.registry), media_type=content_type)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def api_reference() -> HTMLResponse:
        return HTMLResponse(render_api_reference(app.openapi()))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def status_page(request: Request, credentials: Credentials) -> HTMLResponse:
        page_auth(request, credentials)
        return HTMLResponse(await render_status_page(runtime, dict(request.query_params)))


def _view(runtime: SidecarRuntime, record: HandoffRecord) -> HandoffView:
    return view_of(record, runtime.settings, now=runtime.clock())


def _token(value: str) -> bytes:
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        token = (
            base64.urlsafe_b64decode(padded)
            if "-" in text or "_" in text
            else base64.b64decode(padded, validate=True)
        )
    except (binascii.Error, ValueError):
        raise ApiError(400, "malformed_token", "task_token must be base64") from None
    if not token:
        raise ApiError(400, "malformed_token", "task_token is empty")
    return token


def _encode_cursor(record: HandoffRecord) -> str:
    raw = json.dumps([record.started_at, record.handoff_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        started_at, handoff_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        return float(started_at), str(handoff_id)
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(400, "malformed_cursor", "cursor is not one this API returned") from None
