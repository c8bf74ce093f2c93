"""The status page at ``/``: server-rendered HTML, readable at a glance, refreshing itself.

No front-end build and no script: summary cards, then a table per question an on-call
engineer asks first (what is pending where, which handoffs are oldest or overdue, how recent
handoffs ended, which completion calls failed). Every value is escaped; no task token is
ever rendered (only fingerprints).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from html import escape

from .._records import HandoffRecord, PendingSummary
from .._vocabulary import OTHER_TARGET, UNSUCCESSFUL_OUTCOMES, Label, Metrics, Outcome, State
from ..ledger import HandoffQuery, OutcomeTally
from ._runtime import SidecarRuntime
from ._views import links_of

#: Seconds between automatic reloads.
REFRESH_SECONDS = 10
#: Oldest pending handoffs listed.
OLDEST_SHOWN = 25
#: Window of "recent outcomes".
RECENT_SECONDS = 3600

_AGE_LABEL = re.compile(r"^(\d+(?:\.\d+)?)s-(\d+(?:\.\d+)?)s$")
_OLDER_LABEL = re.compile(r"^>(\d+(?:\.\d+)?)s$")

_STYLE = """
:root{--line:#d0d7de;--muted:#57606a;--bad:#b42318;--bad-bg:#fef3f2;--ok:#1a7f37}
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem 2rem;color:#1b1f24;background:#f6f8fa}
h1{font-size:1.35rem;margin:0}h2{font-size:1.05rem;margin:1.8rem 0 .2rem}
.sub,.note,.empty,small{color:var(--muted)}.sub{margin:.2rem 0 1rem}.note{margin:0 0 .5rem}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid var(--line);padding:.3rem .65rem;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.zero{color:#afb8c1}
code{font-size:12px}a{color:#0550ae}
tr[data-state=overdue] td{background:var(--bad-bg)}
tr[data-state=overdue] td:first-child{box-shadow:inset 4px 0 var(--bad)}
td.deadline small{display:block}tr[data-state=overdue] td.deadline{color:var(--bad)}
tr[data-state=overdue] td.deadline small{color:var(--bad);font-weight:700}
.cards{display:flex;gap:.8rem;flex-wrap:wrap}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.55rem 1rem;
min-width:9rem;color:var(--muted)}
.card b{display:block;font-size:1.45rem;color:#1b1f24;font-variant-numeric:tabular-nums}
.card.bad{border-color:var(--bad);box-shadow:inset 0 3px var(--bad)}.card.bad b{color:var(--bad)}
.card.good b{color:var(--ok)}
.grid{display:flex;gap:0 2.5rem;flex-wrap:wrap;align-items:flex-start}
.empty{background:#fff;border:1px dashed var(--line);border-radius:6px;padding:.5rem .9rem;
margin:.3rem 0;display:inline-block}.empty.ok::before{content:"\\2713  ";color:var(--ok)}
.bad-n{color:var(--bad);font-weight:600}footer{margin-top:2rem;font-size:12px;color:var(--muted)}
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
    overdue = sum(_is_overdue(r, now) for r in oldest)
    reaper_text, reaper_class = _reaper_health(runtime, now)
    reconciler_text, reconciler_class = _reconciler_health(runtime, now)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        f"<title>{pending_total} pending · handshake-obs</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>handshake-obs</h1>",
        f"<div class=sub>Temporal namespace <code>{escape(runtime.config.temporal_namespace)}"
        f"</code> · as of {escape(_clock(now))} UTC · refreshes every {REFRESH_SECONDS}s</div>",
        "<div class=cards>",
        _card("pending handoffs", str(pending_total), "pending-total"),
        _card("oldest pending", _age(oldest_age) if oldest_age is not None else "—", "oldest-age"),
        _card(
            "overdue" if len(oldest) < OLDEST_SHOWN else f"overdue (of oldest {OLDEST_SHOWN})",
            str(overdue),
            "overdue-count",
            "bad" if overdue else "",
        ),
        _card("reaper", reaper_text, "reaper", reaper_class),
        _card("reconciler", reconciler_text, "reconciler", reconciler_class),
        "</div>",
        "<h2>Pending by target</h2>",
        "<p class=note>How many handoffs wait on each target, and for how long.</p>",
        _pending_table(summaries, runtime, now),
        "<h2>Oldest pending handoffs</h2>",
        _oldest_note(len(oldest), pending_total, overdue),
        _oldest_table(oldest, runtime, now),
        "<div class=grid><section>",
        f"<h2>Outcomes in the last {RECENT_SECONDS // 60} minutes</h2>",
        _outcomes_table(tallies),
        "</section><section>",
        f"<h2>Failure types in the last {RECENT_SECONDS // 60} minutes</h2>",
        _failure_types_table(tallies),
        "</section><section>",
        "<h2>Completion errors by type</h2>",
        "<p class=note>Calls to this sidecar that did not do what they asked, since it started.",
        "</p>",
        _errors_table(runtime),
        "</section></div>",
        "<footer>Task tokens are never shown: a fingerprint (SHA-256 prefix) identifies each."
        " The same data: <code>GET /v1/handoffs</code>, <code>handshake-obs pending</code>,"
        " <code>/metrics</code>.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _card(title: str, value: str, ident: str, kind: str = "") -> str:
    return f'<div class="card {kind}" id={ident}>{escape(title)}<b>{escape(value)}</b></div>'


def _reaper_health(runtime: SidecarRuntime, now: float) -> tuple[str, str]:
    last = runtime.registry.get_sample_value(Metrics.REAPER_LAST_SUCCESS.series)
    interval = runtime.config.reaper_interval.total_seconds()
    if not last:
        return ("not run yet", "")
    age = now - last
    if age <= 3 * interval + 5:
        return (f"healthy: last scan {_age(age)} ago", "good")
    return (f"STALE: last scan {_age(age)} ago", "bad")


def _reconciler_health(runtime: SidecarRuntime, now: float) -> tuple[str, str]:
    if not runtime.config.reconcile_enabled:
        return ("off", "")
    last = runtime.registry.get_sample_value(Metrics.RECONCILER_LAST_SUCCESS.series)
    if not last:
        return ("not run yet", "")
    reconciled = sum(
        sample.value
        for family in runtime.registry.collect()
        if family.name == Metrics.RECONCILED.name
        for sample in family.samples
        if sample.name == Metrics.RECONCILED.series
    )
    age = now - last
    if age <= 3 * runtime.config.reconcile_interval.total_seconds() + 5:
        return (f"healthy: {int(reconciled)} closed since start, last pass {_age(age)} ago", "good")
    return (f"STALE: last pass {_age(age)} ago", "bad")


def _pending_table(summaries: list[PendingSummary], runtime: SidecarRuntime, now: float) -> str:
    if not summaries or not any(s.pending for s in summaries):
        return "<p class='empty ok'>Nothing is pending.</p>"
    ages = list(summaries[0].by_age)
    head = "".join(f"<th class=n>{escape(_age_range(a))}</th>" for a in ages)
    rows = []
    for s in sorted(summaries, key=lambda s: -s.pending):
        label = runtime.config.target_label(s.target)
        name = escape(s.target) + ("" if label != OTHER_TARGET else " <small>(other)</small>")
        cells = "".join(_count_cell(s.by_age.get(a, 0)) for a in ages)
        oldest = (
            f'<td class=n title="started {escape(_clock(s.oldest_started_at))} UTC">'
            f"{escape(_age(now - s.oldest_started_at))}</td>"
            if s.oldest_started_at
            else "<td class=n>—</td>"
        )
        rows.append(f"<tr><td>{name}</td><td class=n>{s.pending}</td>{oldest}{cells}</tr>")
    return (
        "<table id=pending-by-target><tr><th>target</th><th class=n>pending</th>"
        f"<th class=n>oldest</th>{head}</tr>{''.join(rows)}</table>"
    )


def _oldest_note(shown: int, pending: int, overdue: int) -> str:
    if not shown:
        return ""
    which = f"The {shown} oldest of {pending}" if shown < pending else f"All {shown}"
    late = f"; <b class=bad-n>{overdue} past their deadline</b>" if overdue else ""
    return f"<p class=note>{which}, oldest first{late}.</p>"


def _oldest_table(records: list[HandoffRecord], runtime: SidecarRuntime, now: float) -> str:
    if not records:
        return "<p class='empty ok'>No pending handoff.</p>"
    rows = []
    for r in records:
        links = links_of(r, runtime.settings)
        overdue = _is_overdue(r, now)
        trace = f' · <a href="{escape(links.trace)}">trace</a>' if links.trace else ""
        if r.deadline is None:
            deadline = "none"
        else:
            left = r.deadline - now
            due = f"overdue by {_age(-left)}" if overdue else f"in {_age(left)}"
            deadline = f"{escape(_clock(r.deadline))}<small>{escape(due)}</small>"
        rows.append(
            f"<tr class=handoff data-state={'overdue' if overdue else 'due'}>"
            f"<td><code>{escape(r.handoff_id)}</code></td>"
            f'<td><a href="{escape(links.temporal_ui)}">{escape(r.workflow_id)}</a>{trace}</td>'
            f"<td>{escape(r.target)}</td>"
            f"<td class='n age'>{escape(_age(now - r.started_at))}</td>"
            f"<td class=deadline>{deadline}</td>"
            f"<td class=n>{r.attempt}</td><td><code>{escape(r.token_fingerprint)}</code></td></tr>"
        )
    return (
        "<table id=oldest-pending><tr><th>handoff</th><th>workflow (Temporal UI)</th>"
        "<th>target</th><th class=n>age</th><th>deadline (UTC)</th><th class=n>attempt</th>"
        f"<th>token fingerprint</th></tr>{''.join(rows)}</table>"
    )


def _outcomes_table(tallies: list[OutcomeTally]) -> str:
    if not tallies:
        return "<p class=empty>No handoff finished recently.</p>"
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in tallies:
        counts[t.target][t.outcome] += t.count
    present = {o for by_outcome in counts.values() for o in by_outcome}
    outcomes: list[str] = [o.value for o in Outcome if o.value in present]
    outcomes += sorted(present - set(outcomes))
    head = "".join(f"<th class=n>{escape(o)}</th>" for o in outcomes)
    rows = []
    for target in sorted(counts):
        cells = "".join(
            _count_cell(counts[target].get(o, 0), bad=o in UNSUCCESSFUL_OUTCOMES) for o in outcomes
        )
        total = sum(counts[target].values())
        rows.append(f"<tr><td>{escape(target)}</td>{cells}<td class=n>{total}</td></tr>")
    return (
        f"<table id=recent-outcomes><tr><th>target</th>{head}<th class=n>total</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _failure_types_table(tallies: list[OutcomeTally]) -> str:
    errors: dict[tuple[str, str, str], int] = defaultdict(int)
    for t in tallies:
        if t.error_type:
            errors[(t.target, t.outcome, t.error_type)] += t.count
    if not errors:
        return "<p class='empty ok'>No handoff failed recently.</p>"
    rows = "".join(
        f"<tr><td>{escape(target)}</td><td>{escape(outcome)}</td><td>{escape(kind)}</td>"
        f"<td class=n>{n}</td></tr>"
        for (target, outcome, kind), n in sorted(errors.items(), key=lambda kv: -kv[1])
    )
    return (
        "<table id=recent-errors><tr><th>target</th><th>outcome</th><th>error type</th>"
        f"<th class=n>handoffs</th></tr>{rows}</table>"
    )


def _errors_table(runtime: SidecarRuntime) -> str:
    rows = []
    for family in runtime.registry.collect():
        if family.name != Metrics.COMPLETION_ERRORS.name:
            continue
        for sample in family.samples:
            if sample.name == Metrics.COMPLETION_ERRORS.series and sample.value > 0:
                labels = sample.labels
                rows.append((labels[Label.TARGET], labels[Label.ERROR_TYPE], sample.value))
    if not rows:
        return "<p class='empty ok'>No completion error since this process started.</p>"
    body = "".join(
        f"<tr><td>{escape(t)}</td><td>{escape(e)}</td><td class=n>{int(v)}</td></tr>"
        for t, e, v in sorted(rows, key=lambda r: -r[2])
    )
    return (
        "<table id=completion-errors><tr><th>target</th><th>error type</th>"
        f"<th class=n>calls</th></tr>{body}</table>"
    )


def _count_cell(n: int, *, bad: bool = False) -> str:
    if n == 0:
        return "<td class='n zero'>0</td>"
    return f"<td class='n{' bad-n' if bad else ''}'>{n}</td>"


def _is_overdue(record: HandoffRecord, now: float) -> bool:
    return record.deadline is not None and record.deadline < now


def _age_range(label: str) -> str:
    """``60s-600s`` as ``1m-10m``, ``>86400s`` as ``> 1d``: the age buckets for people."""
    if match := _AGE_LABEL.match(label):
        low, high = (float(v) for v in match.groups())
        return f"< {_span(high)}" if low == 0 else f"{_span(low)}-{_span(high)}"
    if match := _OLDER_LABEL.match(label):
        return f"> {_span(float(match.group(1)))}"
    return label


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h".replace(".0h", "h")
    return f"{seconds / 86400:.1f}d".replace(".0d", "d")
