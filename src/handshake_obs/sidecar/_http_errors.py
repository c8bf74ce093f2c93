"""Every failure of the API as a clear JSON error with the right status code.

handshake-obs's own errors are answered by their ``error_type``, from one table
(:data:`HTTP_ANSWERS`); the others (validation, authentication, routing) below.

===  =====================================================================
400  malformed JSON, a malformed handoff id or task token, JSON nested too deep
     (``json_too_deep``), NaN, Infinity or a huge number (``number_out_of_range``)
401  missing or wrong bearer token (answered before the body is read)
404  unknown handoff
408  the body did not arrive within the body timeout (``body_timeout``)
409  the handoff already has its outcome, or Temporal refused the call
413  request body over the configured limit
422  a well-formed body that fails validation, or is not a JSON object
     (``body_not_an_object``), or a deadline in the past (``deadline_in_past``)
500  an unexpected error (``internal_error``, with a correlation id that is in the log)
502  Temporal answered the call with an unexpected error
503  Temporal or the ledger unavailable (with Retry-After): nothing was lost
===  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._errors import HandshakeError
from .._vocabulary import ErrorType

#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """How the API answers one kind of :class:`HandshakeError`."""

    status: int
    code: str
    #: Put before the error's own message.
    prefix: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """A 503 says when to retry: nothing was lost, the same call may succeed then."""
        return {"Retry-After": str(RETRY_AFTER_SECONDS)} if self.status == 503 else {}


#: The answer to each error type (``error.error_type``); every type has one.
HTTP_ANSWERS: dict[ErrorType, HttpAnswer] = {
    ErrorType.UNKNOWN_HANDOFF: HttpAnswer(404, "unknown_handoff"),
    ErrorType.ALREADY_FINISHED: HttpAnswer(409, "already_finished"),
    ErrorType.DEADLINE_PAST_TEMPORAL_TIMEOUT: HttpAnswer(422, "deadline_past_temporal_timeout"),
    ErrorType.ALREADY_CLOSED: HttpAnswer(409, "already_closed"),
    ErrorType.REJECTED: HttpAnswer(409, "rejected"),
    ErrorType.INVALID_TOKEN: HttpAnswer(400, "invalid_token"),
    ErrorType.UNAVAILABLE: HttpAnswer(503, "temporal_unavailable"),
    ErrorType.LEDGER_UNAVAILABLE: HttpAnswer(
        503, "ledger_unavailable", prefix="the ledger is unavailable: "
    ),
    ErrorType.DEADLINE_IN_PAST: HttpAnswer(422, "deadline_in_past"),
    ErrorType.OTHER: HttpAnswer(502, "temporal_error"),
}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error body."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception the API can meet to its status code."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        headers = dict(err.headers)
        if err.status == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        return error_response(err.status, err.code, err.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors: list[Any] = list(err.errors())
        content_type = request.headers.get("content-type", "")
        if content_type and "json" not in content_type.lower():
            # curl -d sends application/x-www-form-urlencoded: the body is not read as JSON.
            return error_response(
                422,
                "invalid_request",
                "the body must be JSON: send the header Content-Type: application/json "
                f"(this request sent {content_type[:100]!r})",
            )
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        locations = {tuple(e.get("loc", ())) for e in errors}
        if ("path", "handoff_id") in locations:
            return error_response(400, "malformed_handoff_id", "that is not a handoff id")
        if ("body", "task_token") in locations:
            return error_response(400, "malformed_token", "task_token must be base64")
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: "
            f"{e.get('msg', 'invalid')}"
            for e in errors
        )
        return error_response(422, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return error_response(err.status_code, code, str(err.detail))

    @app.exception_handler(HandshakeError)
    async def handshake_error(_: Request, err: HandshakeError) -> JSONResponse:
        answer = HTTP_ANSWERS[err.error_type]
        return error_response(answer.status, answer.code, f"{answer.prefix}{err}", answer.headers)
