"""The status page at ``/``: server-rendered HTML, readable at a glance, refreshing itself.

No front-end build and no script: a table per question an on-call engineer asks first.
Every value is escaped; no task token is ever rendered (only fingerprints).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from html import escape

from .._config import OTHER_TARGET
from .._model import HandoffRecord, PendingSummary, State
from ..ledger import HandoffQuery, OutcomeTally
from ._runtime import SidecarRuntime
from ._views import links_of

#: Seconds between automatic reloads.
REFRESH_SECONDS = 10
#: Oldest pending handoffs listed.
OLDEST_SHOWN = 25
#: Window of "recent outcomes".
RECENT_SECONDS = 3600

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fafbfc}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
.sub{color:#57606a;margin-bottom:1rem}
table{border-collapse:collapse;background:#fff;min-width:28rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.overdue{color:#b42318;font-weight:600}.ok{color:#1a7f37}.bad{color:#b42318;font-weight:600}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.4rem}code{font-size:12px}
"""


async def render_status_page(runtime: SidecarRuntime) -> str:
    """The whole page, from the ledger and this process's metrics."""
    now = runtime.clock()
    ledger = runtime.handshake.ledger
    summaries = await ledger.pending_summary(now, runtime.config.pending_age_bounds)
    oldest = await ledger.list_handoffs(HandoffQuery(state=State.PENDING, limit=OLDEST_SHOWN))
    tallies = await ledger.outcomes_since(now - RECENT_SECONDS)
    pending_total = sum(s.pending for s in summaries)
    oldest_age = max(
        (now - s.oldest_started_at for s in summaries if s.oldest_started_at), default=None
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        "<title>handshake-obs status</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>handshake-obs</h1>",
        f"<div class=sub>Temporal namespace <code>{escape(runtime.config.temporal_namespace)}"
        f"</code> · as of {escape(_clock(now))} UTC · refreshes every {REFRESH_SECONDS}s</div>",
        "<div class=cards>",
        _card("pending handoffs", str(pending_total), "pending-total"),
        _card("oldest pending", _age(oldest_age) if oldest_age is not None else "—", "oldest-age"),
        _card("reaper", *_reaper_health(runtime, now)),
        "</div>",
        "<h2>Pending by target</h2>",
        _pending_table(summaries, runtime),
        "<h2>Oldest pending handoffs</h2>",
        _oldest_table(oldest, runtime, now),
        f"<h2>Outcomes in the last {RECENT_SECONDS // 60} minutes</h2>",
        _outcomes_table(tallies),
        "<h2>Errors by type (this process)</h2>",
        _errors_table(runtime),
        "</body></html>",
    ]
    return "\n".join(parts)


def _card(title: str, value: str, ident: str) -> str:
    return f'<div class=card id="{escape(ident)}">{escape(title)}<b>{escape(value)}</b></div>'


def _reaper_health(runtime: SidecarRuntime, now: float) -> tuple[str, str]:
    last = runtime.registry.get_sample_value("handshake_reaper_last_success_timestamp_seconds")
    interval = runtime.config.reaper_interval.total_seconds()
    if not last:
        return ("not run yet", "reaper")
    age = now - last
    state = "healthy" if age <= 3 * interval + 5 else "STALE"
    return (f"{state}: last scan {_age(age)} ago", "reaper")


def _pending_table(summaries: list[PendingSummary], runtime: SidecarRuntime) -> str:
    if not summaries:
        return "<p class=ok>Nothing is pending.</p>"
    ages = list(summaries[0].by_age)
    head = "".join(f"<th>{escape(a)}</th>" for a in ages)
    rows = []
    for s in sorted(summaries, key=lambda s: -s.pending):
        label = runtime.config.target_label(s.target)
        name = escape(s.target) + ("" if label != OTHER_TARGET else " <small>(other)</small>")
        cells = "".join(f"<td class=n>{s.by_age.get(a, 0)}</td>" for a in ages)
        oldest = _clock(s.oldest_started_at) if s.oldest_started_at else "—"
        rows.append(
            f"<tr><td>{name}</td><td class=n>{s.pending}</td><td>{escape(oldest)}</td>{cells}</tr>"
        )
    return (
        "<table id=pending-by-target><tr><th>target</th><th>pending</th><th>oldest since</th>"
        f"{head}</tr>{''.join(rows)}</table>"
    )


def _oldest_table(records: list[HandoffRecord], runtime: SidecarRuntime, now: float) -> str:
    if not records:
        return "<p class=ok>No pending handoff.</p>"
    rows = []
    for r in records:
        links = links_of(r, runtime.settings)
        overdue = r.deadline is not None and r.deadline < now
        deadline = _clock(r.deadline) if r.deadline is not None else "none"
        trace = f' · <a href="{escape(links.trace)}">trace</a>' if links.trace else ""
        rows.append(
            "<tr class=handoff>"
            f"<td><code>{escape(r.handoff_id)}</code></td>"
            f'<td><a href="{escape(links.temporal_ui)}">{escape(r.workflow_id)}</a>{trace}</td>'
            f"<td>{escape(r.target)}</td>"
            f"<td class=n>{escape(_age(now - r.started_at))}</td>"
            f'<td class="{"overdue" if overdue else ""}">{escape(deadline)}'
            f"{' (overdue)' if overdue else ''}</td>"
            f"<td>{r.attempt}</td><td><code>{escape(r.token_fingerprint)}</code></td></tr>"
        )
    return (
        "<table id=oldest-pending><tr><th>handoff</th><th>workflow</th><th>target</th>"
        "<th>age</th><th>deadline (UTC)</th><th>attempt</th><th>token</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _outcomes_table(tallies: list[OutcomeTally]) -> str:
    if not tallies:
        return "<p>No handoff finished recently.</p>"
    by_outcome: dict[tuple[str, str], int] = defaultdict(int)
    errors: dict[tuple[str, str, str], int] = defaultdict(int)
    for t in tallies:
        by_outcome[(t.target, t.outcome)] += t.count
        if t.error_type:
            errors[(t.target, t.outcome, t.error_type)] += t.count
    rows = "".join(
        f"<tr><td>{escape(target)}</td><td>{escape(outcome)}</td><td class=n>{n}</td></tr>"
        for (target, outcome), n in sorted(by_outcome.items())
    )
    detail = "".join(
        f"<tr><td>{escape(target)}</td><td>{escape(outcome)}</td><td>{escape(kind)}</td>"
        f"<td class=n>{n}</td></tr>"
        for (target, outcome, kind), n in sorted(errors.items(), key=lambda kv: -kv[1])
    )
    table = (
        "<table id=recent-outcomes><tr><th>target</th><th>outcome</th><th>handoffs</th></tr>"
        f"{rows}</table>"
    )
    if detail:
        table += (
            "<h2>Failure types in the last hour</h2><table id=recent-errors><tr><th>target</th>"
            f"<th>outcome</th><th>error type</th><th>handoffs</th></tr>{detail}</table>"
        )
    return table


def _errors_table(runtime: SidecarRuntime) -> str:
    rows = []
    for family in runtime.registry.collect():
        if family.name != "handshake_completion_errors":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value > 0:
                rows.append((sample.labels["target"], sample.labels["error_type"], sample.value))
    if not rows:
        return "<p class=ok>No completion error since this process started.</p>"
    body = "".join(
        f"<tr><td>{escape(t)}</td><td>{escape(e)}</td><td class=n>{int(v)}</td></tr>"
        for t, e, v in sorted(rows, key=lambda r: -r[2])
    )
    return (
        "<table id=completion-errors><tr><th>target</th><th>error type</th><th>calls</th></tr>"
        f"{body}</table>"
    )


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
