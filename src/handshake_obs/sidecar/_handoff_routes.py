"""The handoff page's routes: the page, and its fail and extend forms for an operator in a
browser (form posts with the operator token as a field, answered by a redirect back)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError

from ._auth import bearer_scheme, require_bearer
from ._handoff_page import render_handoff_page, timeline_of
from ._http_errors import ApiError
from ._lookup import checked_handoff_id, find_handoff
from ._runtime import SidecarRuntime
from ._schemas import CallView, ExtendBody, HandoffView, OperatorFailBody
from ._temporal_timeout import temporal_timeout

_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]

#: What the handoff page says after an operator action redirected back to it.
_DONE_NOTICES = {
    "failed": "Failed: the workflow now sees HandoffFailedByOperator with your reason.",
    "extended": "Extended: the new deadline is below.",
}


def handoff_page_routes(
    app: FastAPI,
    runtime: SidecarRuntime,
    *,
    page_auth: Callable[[Request, HTTPAuthorizationCredentials | None], None],
    operator_fail: Callable[[str, OperatorFailBody], Awaitable[CallView]],
    extend: Callable[[str, ExtendBody], Awaitable[HandoffView]],
) -> None:
    """The handoff page, and its two forms (fail, extend) for an operator in a browser."""

    async def page(handoff_id: str, notice: str | None, status: int = 200) -> HTMLResponse:
        record = await find_handoff(runtime, checked_handoff_id(handoff_id))
        timeline = timeline_of(record, await runtime.handshake.ledger.events(record.handoff_id))
        temporal = await temporal_timeout(runtime, record)
        html = render_handoff_page(
            runtime, record, timeline=timeline, temporal=temporal, notice=notice
        )
        return HTMLResponse(html, status_code=status)

    @app.get("/handoffs/{handoff_id}", response_class=HTMLResponse, include_in_schema=False)
    async def handoff_page(
        request: Request, handoff_id: str, credentials: _Credentials, done: str | None = None
    ) -> HTMLResponse:
        page_auth(request, credentials)
        return await page(handoff_id, _DONE_NOTICES.get(done or ""))

    async def form_action(
        request: Request, handoff_id: str, done: str, act: Callable[[dict[str, str]], Any]
    ) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        token = form.get("operator_token", "")
        try:
            require_bearer(
                HTTPAuthorizationCredentials(scheme="Bearer", credentials=token) if token else None,
                runtime.settings.operator_token,
                what="operator",
            )
            await act(form)
        except ApiError as problem:
            return await page(handoff_id, f"Not done: {problem.message}", problem.status)
        except ValidationError as problem:
            reasons = "; ".join(str(e["msg"]) for e in problem.errors())
            return await page(handoff_id, f"Not done: {reasons}", 422)
        return RedirectResponse(f"/handoffs/{quote(handoff_id, safe='')}?done={done}", 303)

    @app.post("/handoffs/{handoff_id}/fail", include_in_schema=False)
    async def fail_form(request: Request, handoff_id: str) -> Response:
        async def act(form: dict[str, str]) -> Any:
            body = OperatorFailBody(reason=form.get("reason", ""))
            return await operator_fail(checked_handoff_id(handoff_id), body)

        return await form_action(request, handoff_id, "failed", act)

    @app.post("/handoffs/{handoff_id}/extend", include_in_schema=False)
    async def extend_form(request: Request, handoff_id: str) -> Response:
        async def act(form: dict[str, str]) -> Any:
            body = ExtendBody.model_validate(
                {"extend_by_seconds": form.get("extend_by_seconds") or None}
            )
            return await extend(checked_handoff_id(handoff_id), body)

        return await form_action(request, handoff_id, "extended", act)
