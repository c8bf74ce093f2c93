"""``handshake-obs pending | show | fail | extend``: a running sidecar's handoffs from a shell.

The commands speak to the sidecar's HTTP API, never to the ledger: the API's bearer tokens
apply, and failing or extending a handoff takes the one completion path every caller takes.

============  ==========================================  =============================
command       API call                                    token
============  ==========================================  =============================
``pending``   ``GET /v1/handoffs`` (follows next_cursor)  ``HANDSHAKE_INVENTORY_TOKEN``
``show``      ``GET /v1/handoffs/{id}``                   ``HANDSHAKE_INVENTORY_TOKEN``
``fail``      ``POST /v1/operator/handoffs/{id}/fail``    ``HANDSHAKE_OPERATOR_TOKEN``
``extend``    ``POST /v1/operator/handoffs/{id}/extend``  ``HANDSHAKE_OPERATOR_TOKEN``
============  ==========================================  =============================

The sidecar is found at ``--url``, else ``HANDSHAKE_URL``, else :data:`DEFAULT_URL`;
``--token`` overrides the command's token. An error of the API, or an unreachable sidecar, is
one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import quote

import httpx

#: Where a sidecar listens by default (``HANDSHAKE_LISTEN_ADDRESS``'s default).
DEFAULT_URL = "http://127.0.0.1:9464"
#: The subcommands this module implements.
INVENTORY_COMMANDS = frozenset({"pending", "show", "fail", "extend"})
#: Handoffs listed by ``pending`` unless ``--limit`` says otherwise.
DEFAULT_LIMIT = 100
#: Seconds one API call may take.
TIMEOUT_SECONDS = 30.0

#: Handoffs asked for in one request (the API's largest page).
PAGE_SIZE = 500
_COLUMNS = ("HANDOFF", "WORKFLOW", "TARGET", "AGE", "DEADLINE", "STATE")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


class CommandError(Exception):
    """A failure the command reports as one line on stderr, with exit code 1."""


@dataclass(frozen=True, slots=True)
class SidecarEndpoint:
    """How to reach one sidecar's API."""

    #: Base URL of the sidecar. ``--url``, ``HANDSHAKE_URL``, :data:`DEFAULT_URL`.
    url: str = DEFAULT_URL
    #: Bearer token of the inventory, if the sidecar protects it. ``--token`` (``pending``,
    #: ``show``), ``HANDSHAKE_INVENTORY_TOKEN``.
    inventory_token: str | None = field(default=None, repr=False)
    #: Bearer token of the operator actions. ``--token`` (``fail``, ``extend``),
    #: ``HANDSHAKE_OPERATOR_TOKEN``.
    operator_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> SidecarEndpoint:
        """The endpoint for a parsed command line: argument > environment > default."""
        operator = args.command in {"fail", "extend"}
        inventory_token = environ.get("HANDSHAKE_INVENTORY_TOKEN") or None
        operator_token = environ.get("HANDSHAKE_OPERATOR_TOKEN") or None
        if args.token:
            if operator:
                operator_token = args.token
            else:
                inventory_token = args.token
        url = args.url or environ.get("HANDSHAKE_URL") or DEFAULT_URL
        return cls(url.rstrip("/"), inventory_token, operator_token)


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` or a plain number of seconds."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration (e.g. 90s, 15m, 2h, 1d, 1h30m)"
            ) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration")
    return seconds


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time with a timezone, e.g. ``2026-11-23T12:00:00Z``."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-23T12:00:00Z)"
        ) from None
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone (e.g. a trailing Z)")
    return instant


def add_inventory_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pending``, ``show``, ``fail`` and ``extend`` to the ``handshake-obs`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", help=f"the sidecar's base URL (default: $HANDSHAKE_URL or {DEFAULT_URL})"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    inventory = argparse.ArgumentParser(add_help=False, parents=[common])
    inventory.add_argument("--token", help="inventory token (default: $HANDSHAKE_INVENTORY_TOKEN)")
    operator = argparse.ArgumentParser(add_help=False, parents=[common])
    operator.add_argument("--token", help="operator token (default: $HANDSHAKE_OPERATOR_TOKEN)")

    pending = commands.add_parser(
        "pending", parents=[inventory], help="list a sidecar's handoffs, oldest first"
    )
    pending.add_argument("--target", help="only handoffs to this target")
    pending.add_argument(
        "--state",
        choices=("pending", "finished", "all"),
        default="pending",
        help="which handoffs (default: pending)",
    )
    pending.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="DURATION",
        help="only handoffs started at least this long ago (90s, 15m, 2h, 1d)",
    )
    pending.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        help=f"most handoffs listed (default: {DEFAULT_LIMIT})",
    )

    show = commands.add_parser("show", parents=[inventory], help="every field of one handoff")
    show.add_argument("handoff_id", metavar="ID", help="the handoff id (ho_...)")

    fail = commands.add_parser(
        "fail", parents=[operator], help="fail a stuck handoff now (HandoffFailedByOperator)"
    )
    fail.add_argument("handoff_id", metavar="ID", help="the handoff id (ho_...)")
    fail.add_argument("--reason", required=True, help="why, as the workflow will see it")

    extend = commands.add_parser("extend", parents=[operator], help="move a handoff's deadline")
    extend.add_argument("handoff_id", metavar="ID", help="the handoff id (ho_...)")
    when = extend.add_mutually_exclusive_group(required=True)
    when.add_argument("--by", type=parse_duration, metavar="DURATION", help="from now: 2h, 30m")
    when.add_argument(
        "--until", type=parse_instant, metavar="TIME", help="e.g. 2026-11-23T12:00:00Z"
    )


def run_inventory_command(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    page_size: int = PAGE_SIZE,
) -> int:
    """Run one parsed inventory command; the exit code.

    ``environ`` (default: the process's) supplies ``HANDSHAKE_URL`` and the tokens;
    ``page_size`` is how many handoffs ``pending`` asks for in one request.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    # httpx logs every request at INFO: noise on an operator's terminal.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    endpoint = SidecarEndpoint.from_args(args, os.environ if environ is None else environ)
    try:
        with httpx.Client(base_url=endpoint.url, timeout=TIMEOUT_SECONDS) as http:
            api = _Api(http, endpoint.url)
            if args.command == "pending":
                _pending(api, endpoint, args, out, page_size=page_size)
            elif args.command == "show":
                _show(api, endpoint, args, out)
            elif args.command == "fail":
                _fail(api, endpoint, args, out)
            else:
                _extend(api, endpoint, args, out)
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
                "is it running? Set --url or HANDSHAKE_URL"
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
    query: dict[str, str | int | float] = {}
    if args.state != "all":
        query["state"] = args.state
    if args.target:
        query["target"] = args.target
    if args.older_than is not None:
        query["min_age_seconds"] = args.older_than
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
    out.writelines(line + "\n" for line in format_table(items))
    if cursor is not None:
        out.write(f"({len(items)} shown; more match: raise --limit or narrow the filters)\n")


def format_table(items: list[dict[str, Any]]) -> list[str]:
    """Aligned rows (header first) of handoffs as the API returns them."""
    rows = [_COLUMNS] + [
        (
            item["handoff_id"],
            item["workflow_id"],
            item["target"],
            format_age(item["age_seconds"]),
            _deadline_text(item),
            item["state"] if item["state"] == "pending" else item["outcome"] or item["state"],
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _show(api: _Api, endpoint: SidecarEndpoint, args: argparse.Namespace, out: TextIO) -> None:
    view = api.call("GET", _handoff_path(args.handoff_id), token=endpoint.inventory_token)
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
            fields.append((name, f"{value} ({format_age(value)})"))
        else:
            fields.append((name, _text(value)))
    width = max(len(name) for name, _ in fields)
    out.writelines(f"{name.ljust(width)}  {text}\n" for name, text in fields)


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


def format_age(seconds: float) -> str:
    """A short human duration: ``42s``, ``12m 05s``, ``3h 07m``, ``2d 04h``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


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
    return (
        f"{text} (overdue {format_age(-left)})" if left < 0 else f"{text} (in {format_age(left)})"
    )


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
        raise CommandError("no operator token: set HANDSHAKE_OPERATOR_TOKEN or pass --token")
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value
