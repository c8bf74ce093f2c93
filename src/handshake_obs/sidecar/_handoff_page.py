"""The handoff page at ``/handoffs/{id}``: one handoff's whole story, server-rendered.

What an on-call engineer needs once an alert led them to a handoff: what it is (workflow,
activity, attempt, target, token fingerprint), what happened to it and when (the timeline),
how its deadline compares with Temporal's own timeout, where to look next (the workflow in
the Temporal UI, its trace, the runbook section of its state, the dashboard), and what they
may do about it (fail or extend it, with the operator token). No script; every value is
escaped; the task token is never rendered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from .._handoff_filter import HandoffFilter
from .._records import HandoffEvent, HandoffRecord
from .._vocabulary import HandoffEventKind, Outcome, State
from ._html import STYLE, age, clock, link, status_href
from ._runtime import SidecarRuntime
from ._temporal_timeout import TemporalTimeout
from ._views import links_of

#: Longest progress or error text shown in the timeline (the API has all of it).
MAX_DETAIL = 600

#: The runbook section to read, by outcome (None: the handoff is pending).
_RUNBOOK_SECTION: dict[Outcome | None, str] = {
    None: "handshakehandoffsstuck",
    Outcome.REAPED: "handshakehandoffsreaped",
    Outcome.FAILED: "handshakecompletionfailureratiohigh",
    Outcome.ALREADY_CLOSED: "handshakecompletionfailureratiohigh",
    Outcome.ABORTED: "handshakecompletionfailureratiohigh",
    Outcome.CANCELED: "handshakecompletionfailureratiohigh",
    Outcome.COMPLETED: "handshakehandoffsstuck",
}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to a handoff."""

    at: float
    #: What happened, in a few words (``recorded``, ``heartbeat #3``, ``failed``).
    title: str
    #: More about it (progress, a reason); may be empty.
    detail: str = ""
    #: ``good``, ``bad`` or empty: how the dot is drawn.
    kind: str = ""


def runbook_section(record: HandoffRecord) -> str:
    """The anchor of the runbook section that explains a handoff in this state."""
    return _RUNBOOK_SECTION.get(record.outcome if not record.is_pending else None, "tools")


def timeline_of_record(record: HandoffRecord) -> list[TimelineEntry]:
    """The timeline the handoff's row alone tells: recorded, the progress it keeps, its
    outcome and reason."""
    entries = [
        TimelineEntry(
            record.started_at,
            f"recorded (attempt {record.attempt})",
            f"{record.activity_type} handed off to {record.target}",
        )
    ]
    if record.progress_at is not None:
        entries.append(
            TimelineEntry(
                record.progress_at,
                f"latest heartbeat #{record.progress_sequence}",
                _short(record.progress),
            )
        )
    if record.finished_at is not None:
        entries.append(finished_entry(record))
    return sorted(entries, key=lambda e: e.at)


def timeline_of(record: HandoffRecord, events: Sequence[HandoffEvent]) -> list[TimelineEntry]:
    """The timeline from the ledger's entries; from the row alone for a handoff recorded
    before the ledger kept them."""
    if not events:
        return timeline_of_record(record)
    return [_entry(record, event) for event in events]


def _entry(record: HandoffRecord, event: HandoffEvent) -> TimelineEntry:  # noqa: PLR0911 - one case per kind
    d = event.detail
    match event.kind:
        case HandoffEventKind.RECORDED:
            deadline = d.get("deadline")
            due = f"; deadline {clock(deadline)} UTC" if isinstance(deadline, int | float) else ""
            return TimelineEntry(
                event.at,
                f"recorded (attempt {d.get('attempt', record.attempt)})",
                f"{record.activity_type} handed off to {d.get('target', record.target)}{due}",
            )
        case HandoffEventKind.HEARTBEAT:
            return TimelineEntry(
                event.at, f"heartbeat #{d.get('sequence')}", _short(d.get("progress"))
            )
        case HandoffEventKind.HEARTBEAT_IGNORED:
            return TimelineEntry(
                event.at,
                f"heartbeat #{d.get('sequence')} ignored",
                f"not newer than #{d.get('kept')}, the progress kept",
            )
        case HandoffEventKind.DEADLINE_SET:
            deadline = d.get("deadline")
            return TimelineEntry(
                event.at,
                "deadline set",
                f"to {clock(deadline)} UTC" if isinstance(deadline, int | float) else "",
            )
        case HandoffEventKind.CALL_FAILED:
            return TimelineEntry(
                event.at,
                f"{d.get('operation')} not taken by Temporal",
                f"{d.get('error_type')}: the handoff stays pending",
                "bad",
            )
        case HandoffEventKind.FINISHED:
            outcome = str(d.get("outcome") or "finished")
            reason = ": ".join(str(p) for p in (d.get("error_type"), d.get("error_message")) if p)
            took = f"after {age(event.at - record.started_at)}"
            return TimelineEntry(
                event.at,
                outcome,
                f"{reason} ({took})" if reason else took,
                "good" if outcome == Outcome.COMPLETED else "bad",
            )
        case _:  # pragma: no cover - every kind has its case
            return TimelineEntry(event.at, str(event.kind))


def finished_entry(record: HandoffRecord) -> TimelineEntry:
    """The outcome of a finished handoff, with its reason (error type and message)."""
    outcome = record.outcome.value if record.outcome else "finished"
    reason = ": ".join(p for p in (record.error_type, record.error_message) if p)
    took = f"after {age((record.finished_at or record.started_at) - record.started_at)}"
    return TimelineEntry(
        record.finished_at or record.started_at,
        outcome,
        f"{reason} ({took})" if reason else took,
        "good" if record.outcome is Outcome.COMPLETED else "bad",
    )


def render_handoff_page(
    runtime: SidecarRuntime,
    record: HandoffRecord,
    *,
    timeline: Sequence[TimelineEntry],
    temporal: TemporalTimeout,
    notice: str | None = None,
) -> str:
    """The page of one handoff."""
    now = runtime.clock()
    settings = runtime.settings
    links = links_of(record, settings)
    state = record.outcome.value if record.outcome else record.state.value
    badge = "good" if record.outcome is Outcome.COMPLETED else ("" if record.is_pending else "bad")
    overdue = record.is_pending and record.deadline is not None and record.deadline < now
    if overdue:
        badge = "bad"
        state = "pending, overdue"
    runbook = f"{settings.runbook_url}#{runbook_section(record)}"
    nav = [
        link(links.temporal_ui, "workflow in the Temporal UI", id="workflow-link"),
        link(links.trace, "trace", id="trace-link")
        if links.trace
        else "<span id=trace-link>no trace (the handoff carries no trace context)</span>",
        link(runbook, f"runbook: {runbook_section(record)}", id="runbook-link"),
    ]
    if settings.dashboard_url:
        nav.append(link(settings.dashboard_url, "Grafana dashboard", id="dashboard-link"))
    if settings.prometheus_url:
        nav.append(link(settings.prometheus_url, "Prometheus", id="prometheus-link"))
    pending_here = HandoffFilter(state=State.PENDING, target=record.target)
    nav.append(link(status_href(pending_here), f"all pending to {record.target}"))
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{escape(record.handoff_id)} · {escape(state)} · handshake-obs</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<p class=sub>{link('/', '← status page')}</p>",
        f"<h1><code>{escape(record.handoff_id)}</code>"
        f"<span class='badge {badge}' id=state>{escape(state)}</span></h1>",
        f"<div class=sub>as of {escape(clock(now))} UTC</div>",
        f"<p class=notice id=notice>{escape(notice)}</p>" if notice else "",
        f"<nav class=links id=links>{''.join(nav)}</nav>",
        "<h2>What it is</h2>",
        _facts(record),
        "<h2>Deadline and Temporal's own timeout</h2>",
        _deadlines(record, temporal, now),
        "<h2>Timeline</h2>",
        _timeline(timeline),
        "<h2>What you can do</h2>",
        _actions(runtime, record),
        "<footer>The task token is never shown: its fingerprint (SHA-256 prefix) identifies "
        f"it. The same data: <code>GET /v1/handoffs/{escape(record.handoff_id)}</code>, "
        f"<code>handshake-obs show {escape(record.handoff_id)}</code>.</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _facts(record: HandoffRecord) -> str:
    rows = [
        ("workflow id", f"<code id=workflow-id>{escape(record.workflow_id)}</code>"),
        ("run id", f"<code>{escape(record.run_id)}</code>"),
        ("namespace", escape(record.namespace)),
        (
            "activity",
            f"{escape(record.activity_type)} (id <code>{escape(record.activity_id)}</code>)",
        ),
        ("attempt", f"<span id=attempt>{record.attempt}</span>"),
        ("target", escape(record.target)),
        ("token fingerprint", f"<code id=fingerprint>{escape(record.token_fingerprint)}</code>"),
        ("trace context", f"<code>{escape(record.traceparent or 'none')}</code>"),
    ]
    body = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f"<dl class=facts id=facts>{body}</dl>"


def _deadlines(record: HandoffRecord, temporal: TemporalTimeout, now: float) -> str:
    if record.deadline is None:
        ours = "none: only Temporal's own timeout ends it"
    else:
        left = record.deadline - now
        when = f"{clock(record.deadline)} UTC"
        if not record.is_pending:
            ours = when
        elif left < 0:
            ours = f"{when}, overdue by {age(-left)}: the reaper fails it on its next scan"
        else:
            ours = f"{when}, in {age(left)}"
    rows = [("handshake-obs deadline (the reaper)", ours), ("Temporal", temporal.describe(now))]
    if record.deadline is not None and temporal.closes_at is not None:
        gap = temporal.closes_at - record.deadline
        rows.append(
            (
                "margin",
                f"the deadline comes {age(gap)} before Temporal's timeout"
                if gap >= 0
                else f"Temporal's timeout comes {age(-gap)} before the deadline: "
                "the workflow sees a timeout, not HandoffDeadlineExceeded",
            )
        )
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f"<dl class=facts id=deadlines>{body}</dl>"


def _timeline(entries: Sequence[TimelineEntry]) -> str:
    items = "".join(
        f"<li class='{e.kind}' data-title='{escape(e.title)}'><time>{escape(clock(e.at))}</time>"
        f"<b>{escape(e.title)}</b>"
        + (f" <small>{escape(e.detail)}</small>" if e.detail else "")
        + "</li>"
        for e in entries
    )
    return f"<ol class=timeline id=timeline>{items}</ol>"


def _actions(runtime: SidecarRuntime, record: HandoffRecord) -> str:
    if not record.is_pending:
        return (
            "<p class=note id=actions>It has its outcome: nothing is left to do on it. "
            "Its workflow decides what comes next (see the Temporal UI).</p>"
        )
    if runtime.settings.operator_token is None:
        return (
            "<p class=note id=actions>Failing or extending it needs the operator token, and "
            "none is configured on this sidecar (setting <code>operator_token</code>).</p>"
        )
    hid = escape(record.handoff_id)
    operator_field = (
        "<label>operator token<input name=operator_token type=password required "
        "autocomplete=off></label>"
    )
    return (
        "<div id=actions>"
        f"<form class=search id=fail-form method=post action='/handoffs/{hid}/fail'>"
        f"{operator_field}<label>reason (the workflow sees it)<input name=reason required "
        "maxlength=1024></label><button type=submit>Fail it now</button></form>"
        f"<form class=search id=extend-form method=post action='/handoffs/{hid}/extend'>"
        f"{operator_field}<label>extend by (seconds)<input name=extend_by_seconds required "
        "inputmode=decimal value=3600></label><button type=submit>Extend</button></form>"
        "<p class=note>The same from a shell:</p>"
        f"<pre class=cmd>handshake-obs fail {hid} --reason 'vendor lost it'\n"
        f"handshake-obs extend {hid} --by 1h</pre></div>"
    )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
