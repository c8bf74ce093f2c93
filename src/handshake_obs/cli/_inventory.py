"""``handshake-obs pending | show | fail | extend``: a running sidecar's handoffs from a shell.

The commands speak to the sidecar's HTTP API, never to the ledger: the API's bearer tokens
apply, and failing or extending a handoff takes the one completion path every caller takes.

============  ==========================================  =======================
command       API call                                    token (setting)
============  ==========================================  =======================
``pending``   ``GET /v1/handoffs`` (follows next_cursor)  ``inventory_token``
``show``      ``GET /v1/handoffs/{id}``                   ``inventory_token``
``fail``      ``POST /v1/operator/handoffs/{id}/fail``    ``operator_token``
``extend``    ``POST /v1/operator/handoffs/{id}/extend``  ``operator_token``
============  ==========================================  =======================

Where the sidecar is and which tokens to send come from the settings
(``Settings.sidecar_endpoint()``): ``--url``, else the ``url`` setting, else ``http://`` + the
listen address; ``--token`` is the command's token setting. An error of the API, or an
unreachable sidecar, is one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import quote

from .._extras import require_extra

require_extra("sidecar", "the inventory commands (pending, show, fail, extend)")

import httpx  # noqa: E402

from ..config import Settings, SidecarEndpoint, variable_name  # noqa: E402
from ._table import render_table  # noqa: E402
from ._time import format_duration  # noqa: E402

#: Seconds one API call may take.
TIMEOUT_SECONDS = 30.0
#: Handoffs asked for in one request (the API's largest page).
PAGE_SIZE = 500
_HEADER = ("HANDOFF", "WORKFLOW", "TARGET", "AGE", "DEADLINE", "STATE")


class CommandError(Exception):
    """A failure the command reports as one line on stderr, with exit code 1."""


def pending_command(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    page_size: int = PAGE_SIZE,
) -> int:
    """List handoffs; ``page_size`` is how many it asks for in one request."""
    return _run(functools.partial(_pending, page_size=page_size), args, settings, out=out, err=err)


def show_command(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print every field of one handoff."""
    return _run(_show, args, settings, out=out, err=err)


def fail_command(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Fail one handoff now."""
    return _run(_fail, args, settings, out=out, err=err)


def extend_command(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Move one handoff's deadline."""
    return _run(_extend, args, settings, out=out, err=err)


#: What one command does with the API, the endpoint, its arguments and its output.
_Action = Callable[["_Api", SidecarEndpoint, argparse.Namespace, TextIO], None]


def _run(
    action: _Action,
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None,
    err: TextIO | None,
) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    # httpx logs every request at INFO: noise on an operator's terminal.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    endpoint = settings.sidecar_endpoint()
    try:
        with httpx.Client(base_url=endpoint.url, timeout=TIMEOUT_SECONDS) as http:
            action(_Api(http, endpoint.url), endpoint, args, out)
    except CommandError as problem:
        err.write(f"handshake-obs: {problem}\n")
        return 1
    finally:
        out.flush()
    return 0


class _Api:
    """JSON calls to the sidecar, with every failure turned into a :class:`CommandError`."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self._http = http
        self._url = url

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        params: Mapping[str, str | int | float] | None = None,
        body: Any = None,
    ) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            response = self._http.request(method, path, params=params, json=body, headers=headers)
        except httpx.ConnectError as problem:
            raise CommandError(
                f"cannot reach the sidecar at {self._url} ({_reason(problem)}); "
                f"is it running? Set --url or {variable_name('url')}"
            ) from None
        except httpx.TimeoutException:
            raise CommandError(
                f"the sidecar at {self._url} did not answer within {TIMEOUT_SECONDS:.0f}s"
            ) from None
        except httpx.HTTPError as problem:
            raise CommandError(f"request to {self._url} failed: {_reason(problem)}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and answer is not None:
            return answer
        raise CommandError(_error_line(response, answer, self._url))


def _pending(
    api: _Api, endpoint: SidecarEndpoint, args: argparse.Namespace, out: TextIO, *, page_size: int
) -> None:
    query = filter_params(args)
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(items) < args.limit:
        wanted = min(page_size, args.limit - len(items))
        page = api.call(
            "GET",
            "/v1/handoffs",
            token=endpoint.inventory_token,
            params={**query, "limit": wanted, **({"cursor": cursor} if cursor else {})},
        )
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if args.json:
        out.writelines(json.dumps(item) + "\n" for item in items)
        return
    if not items:
        which = "" if args.state == "all" else f"{args.state} "
        out.write(f"No {which}handoff matches.\n")
        return
    out.writelines(line + "\n" for line in format_table(items, now=datetime.now(UTC)))
    if cursor is not None:
        out.write(f"({len(items)} shown; more match: raise --limit or narrow the filters)\n")


def filter_params(args: argparse.Namespace) -> dict[str, str | int | float]:
    """The search options as the API's query parameters (handshake_obs._handoff_filter)."""
    query: dict[str, str | int | float] = {}
    if args.state != "all":
        query["state"] = args.state
    for name in ("handoff_id", "workflow_id", "target"):
        if getattr(args, name, None):
            query[name] = getattr(args, name)
    if args.older_than is not None:
        query["min_age_seconds"] = args.older_than
    return query


def format_table(items: list[dict[str, Any]], *, now: datetime | None = None) -> list[str]:
    """Aligned rows (header first) of handoffs as the API returns them.

    AGE is always the time since the handoff started (by ``now``, else the sidecar's clock
    for pending rows); a listing with finished handoffs adds TOOK, start to outcome.
    """
    finished = any(item["state"] != "pending" for item in items)
    rows = [
        (
            item["handoff_id"],
            item["workflow_id"],
            item["target"],
            format_duration(_age_seconds(item, now)),
            _deadline_text(item),
            _state_text(item),
            *((_took(item),) if finished else ()),
        )
        for item in items
    ]
    return render_table(rows, header=(*_HEADER, "TOOK") if finished else _HEADER)


def _age_seconds(item: Mapping[str, Any], now: datetime | None) -> float:
    """Seconds since the handoff started (the API's age of a finished one is its duration)."""
    if item["state"] == "pending":
        return float(item["age_seconds"])
    return max(0.0, ((now or datetime.now(UTC)) - _instant(item["started_at"])).total_seconds())


def _took(item: Mapping[str, Any]) -> str:
    return "-" if item["state"] == "pending" else format_duration(item["age_seconds"])


def _state_text(item: dict[str, Any]) -> str:
    """pending, the outcome, or ``already_closed (reason)`` when the reason is more."""
    if item["state"] == "pending":
        return "pending"
    outcome = item["outcome"] or item["state"]
    reason = item.get("close_reason")
    return f"{outcome} ({reason})" if reason and reason != outcome else outcome


def _show(api: _Api, endpoint: SidecarEndpoint, args: argparse.Namespace, out: TextIO) -> None:
    view, more = _shown(api, endpoint, args)
    if args.json:
        out.write(json.dumps(view, indent=2) + "\n")
        return
    fields: list[tuple[str, str]] = []
    for name, value in view.items():
        if name == "links" and isinstance(value, dict):
            fields += [(f"links.{k}", _text(v)) for k, v in value.items()]
        elif name == "deadline":
            fields.append((name, _deadline_text(view, exact=True)))
        elif name == "age_seconds":
            fields.append((name, f"{value} ({format_duration(value)})"))
        else:
            fields.append((name, _text(value)))
    out.writelines(line + "\n" for line in render_table(fields))
    if more:
        out.write("(the oldest of several matches: pending with the same filters lists them)\n")


def _shown(
    api: _Api, endpoint: SidecarEndpoint, args: argparse.Namespace
) -> tuple[dict[str, Any], bool]:
    """The handoff ``show`` prints, and whether the filters selected more than it."""
    query = filter_params(args)
    if args.handoff_id:
        if set(query) - {"state", "handoff_id"}:
            raise CommandError("give a handoff id or filters, not both")
        view = api.call("GET", _handoff_path(args.handoff_id), token=endpoint.inventory_token)
        return view, False
    if not set(query) - {"state"}:
        raise CommandError("give a handoff id, or a filter: --workflow-id, --target, --older-than")
    page = api.call(
        "GET", "/v1/handoffs", token=endpoint.inventory_token, params={**query, "limit": 2}
    )
    if not page["items"]:
        raise CommandError("no handoff matches these filters")
    return page["items"][0], len(page["items"]) > 1


def _fail(api: _Api, endpoint: SidecarEndpoint, args: argparse.Namespace, out: TextIO) -> None:
    result = api.call(
        "POST",
        _handoff_path(args.handoff_id, operator=True) + "/fail",
        token=_operator_token(endpoint),
        body={"reason": args.reason},
    )
    if args.json:
        out.write(json.dumps(result) + "\n")
        return
    view = result.get("handoff") or {}
    out.write(
        f"{view.get('handoff_id', args.handoff_id)}: {view.get('outcome') or 'failed'} "
        f"({view.get('error_type')}: {view.get('error_message')}); "
        f"workflow {view.get('workflow_id')}\n"
    )


def _extend(api: _Api, endpoint: SidecarEndpoint, args: argparse.Namespace, out: TextIO) -> None:
    body = (
        {"extend_by_seconds": args.by}
        if args.by is not None
        else {"deadline": args.until.isoformat()}
    )
    view = api.call(
        "POST",
        _handoff_path(args.handoff_id, operator=True) + "/extend",
        token=_operator_token(endpoint),
        body=body,
    )
    if args.json:
        out.write(json.dumps(view) + "\n")
        return
    out.write(
        f"{view['handoff_id']}: deadline {_deadline_text(view)}; workflow {view['workflow_id']}\n"
    )


def _deadline_text(view: Mapping[str, Any], *, exact: bool = False) -> str:
    """The deadline in UTC, and for a pending handoff how far it is (by the sidecar's clock)."""
    if not view.get("deadline"):
        return "none"
    deadline = _instant(view["deadline"])
    text = view["deadline"] if exact else deadline.strftime("%Y-%m-%d %H:%M:%SZ")
    if view.get("state") != "pending":
        return text
    # The sidecar's "now": the age it reported, counted from the start.
    now = _instant(view["started_at"]) + timedelta(seconds=view["age_seconds"])
    left = (deadline - now).total_seconds()
    if left < 0:
        return f"{text} (overdue {format_duration(-left)})"
    return f"{text} (in {format_duration(left)})"


def _instant(text: str) -> datetime:
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return str(value)


def _handoff_path(handoff_id: str, *, operator: bool = False) -> str:
    prefix = "/v1/operator/handoffs/" if operator else "/v1/handoffs/"
    return prefix + quote(handoff_id, safe="")


def _operator_token(endpoint: SidecarEndpoint) -> str:
    if not endpoint.operator_token:
        raise CommandError(
            f"no operator token: set {variable_name('operator_token')} or pass --token"
        )
    return endpoint.operator_token


def _error_line(response: httpx.Response, answer: Any, url: str) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and "message" in error:
        return f"{error['message']} (HTTP {response.status_code} {error.get('code', 'error')})"
    if response.is_success:
        return f"{url} did not answer with JSON: is it a handshake-obs sidecar?"
    snippet = " ".join(response.text.split())[:200] or response.reason_phrase
    return f"HTTP {response.status_code} from {url}: {snippet}"


def _reason(problem: httpx.HTTPError) -> str:
    text = str(problem) or type(problem).__name__
    return "connection refused" if "refused" in text.lower() else text
