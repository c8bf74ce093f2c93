"""The status page at ``/``: server-rendered HTML, readable at a glance, refreshing itself.

No front-end build and no script: summary cards, then a table per question an on-call
engineer asks first (what is pending where, which handoffs are oldest or overdue, how recent
handoffs ended, which completion calls failed). Every value is escaped; no task token is
ever rendered (only fingerprints).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from html import escape

from .._handoff_filter import FILTER_FIELDS, HandoffFilter, InvalidFilterError
from .._records import HandoffRecord, PendingSummary
from .._vocabulary import OTHER_TARGET, UNSUCCESSFUL_OUTCOMES, Label, Metrics, Outcome, State
from ..ledger import HandoffQuery, OutcomeTally
from ._charts import latency_chart, pending_chart
from ._html import STYLE, age, clock, handoff_href, link
from ._runtime import SidecarRuntime
from ._search import query_of
from ._views import links_of

#: Seconds between automatic reloads.
REFRESH_SECONDS = 10
#: Oldest pending handoffs listed.
OLDEST_SHOWN = 25
#: Most recent finished handoffs the latency picture counts.
LATENCIES_DRAWN = 5000
#: Handoffs a search lists.
SEARCH_SHOWN = 50
#: Window of "recent outcomes".
RECENT_SECONDS = 3600

_AGE_LABEL = re.compile(r"^(\d+(?:\.\d+)?)s-(\d+(?:\.\d+)?)s$")
_OLDER_LABEL = re.compile(r"^>(\d+(?:\.\d+)?)s$")


async def render_status_page(
    runtime: SidecarRuntime, params: Mapping[str, str] | None = None
) -> str:
    """The whole page, from the ledger and this process's metrics; ``params`` (the URL's
    query) holds a search (:class:`HandoffFilter`), which replaces the oldest-pending list
    with the handoffs it selects."""
    now = runtime.clock()
    ledger = runtime.handshake.ledger
    search, problem = _search_of(params or {})
    summaries = await ledger.pending_summary(now, runtime.config.pending_age_bounds)
    oldest = await ledger.list_handoffs(HandoffQuery(state=State.PENDING, limit=OLDEST_SHOWN))
    found = (
        await ledger.list_handoffs(query_of(search, now=now, limit=SEARCH_SHOWN + 1))
        if search is not None
        else None
    )
    tallies = await ledger.outcomes_since(now - RECENT_SECONDS)
    latencies = await ledger.latencies_since(now - RECENT_SECONDS, limit=LATENCIES_DRAWN)
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
        f"<style>{STYLE}</style></head><body>",
        "<h1>handshake-obs</h1>",
        f"<div class=sub>Temporal namespace <code>{escape(runtime.config.temporal_namespace)}"
        f"</code> · as of {escape(clock(now))} UTC · refreshes every {REFRESH_SECONDS}s</div>",
        _links_nav(runtime),
        _search_form(search, runtime, problem),
        "<div class=cards>",
        _card("pending handoffs", str(pending_total), "pending-total"),
        _card("oldest pending", age(oldest_age) if oldest_age is not None else "—", "oldest-age"),
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
        *(
            _search_section(search, found, runtime, now)
            if search is not None and found is not None
            else [
                "<h2>Oldest pending handoffs</h2>",
                _oldest_note(len(oldest), pending_total, overdue),
                _oldest_table(oldest, runtime, now),
            ]
        ),
        "<h2>Pictures</h2>",
        "<div class=grid>",
        pending_chart(runtime.history.with_now(now, summaries)),
        latency_chart(latencies, window=f"{RECENT_SECONDS // 60} minutes"),
        "</div>",
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
    since = now - last
    if since <= 3 * interval + 5:
        return (f"healthy: last scan {age(since)} ago", "good")
    return (f"STALE: last scan {age(since)} ago", "bad")


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
    since = now - last
    if since <= 3 * runtime.config.reconcile_interval.total_seconds() + 5:
        return (
            f"healthy: {int(reconciled)} closed since start, last pass {age(since)} ago",
            "good",
        )
    return (f"STALE: last pass {age(since)} ago", "bad")


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
            f'<td class=n title="started {escape(clock(s.oldest_started_at))} UTC">'
            f"{escape(age(now - s.oldest_started_at))}</td>"
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


def _oldest_table(
    records: list[HandoffRecord],
    runtime: SidecarRuntime,
    now: float,
    *,
    ident: str = "oldest-pending",
    with_state: bool = False,
) -> str:
    if not records:
        return "<p class='empty ok'>No pending handoff.</p>"
    rows = []
    for r in records:
        links = links_of(r, runtime.settings)
        overdue = _is_overdue(r, now)
        trace = f' · <a href="{escape(links.trace)}">trace</a>' if links.trace else ""
        if r.deadline is None:
            deadline = "none"
        elif not r.is_pending:
            deadline = escape(clock(r.deadline))
        else:
            left = r.deadline - now
            due = f"overdue by {age(-left)}" if overdue else f"in {age(left)}"
            deadline = f"{escape(clock(r.deadline))}<small>{escape(due)}</small>"
        rows.append(
            f"<tr class=handoff data-state={'overdue' if overdue else 'due'}>"
            f"<td><code>{link(handoff_href(r.handoff_id), r.handoff_id)}</code></td>"
            f'<td><a href="{escape(links.temporal_ui)}">{escape(r.workflow_id)}</a>{trace}</td>'
            f"<td>{escape(r.target)}</td>"
            + (f"<td class=state>{escape(_state_text(r))}</td>" if with_state else "")
            + f"<td class='n age'>{escape(_age_of(r, now))}</td>"
            f"<td class=deadline>{deadline}</td>"
            f"<td class=n>{r.attempt}</td><td><code>{escape(r.token_fingerprint)}</code></td></tr>"
        )
    state_head = "<th>state</th>" if with_state else ""
    return (
        f"<table id={ident}><tr><th>handoff</th><th>workflow (Temporal UI)</th>"
        f"<th>target</th>{state_head}<th class=n>age</th><th>deadline (UTC)</th>"
        "<th class=n>attempt</th>"
        f"<th>token fingerprint</th></tr>{''.join(rows)}</table>"
    )


def _search_of(params: Mapping[str, str]) -> tuple[HandoffFilter | None, str | None]:
    """The search in the URL's query (None: no search), or why it cannot be read."""
    if not any(params.get(name, "").strip() for name in FILTER_FIELDS):
        return None, None
    try:
        return HandoffFilter.from_params(params), None
    except InvalidFilterError as problem:
        return None, str(problem)


def _search_form(search: HandoffFilter | None, runtime: SidecarRuntime, problem: str | None) -> str:
    """A plain GET form: its fields are the filter's query parameters."""
    current = search or HandoffFilter(state=State.PENDING)

    def text_field(name: str, label: str, value: str | None, extra: str = "") -> str:
        return (
            f'<label>{escape(label)}<input name={name} value="{escape(value or "")}" '
            f'title="{escape(FILTER_FIELDS[name])}"{extra}></label>'
        )

    state = current.state.value if current.state is not None else "all"
    options = "".join(
        f"<option{' selected' if value == state else ''}>{value}</option>"
        for value in ("pending", "finished", "all")
    )
    targets = "".join(f'<option value="{escape(t)}">' for t in runtime.config.targets)
    age_value = f"{current.min_age_seconds:g}" if current.min_age_seconds is not None else ""
    error = f"<p class=error id=search-error>{escape(problem)}</p>" if problem else ""
    return (
        "<form class=search id=search method=get action=/>"
        + text_field("handoff_id", "handoff id", current.handoff_id)
        + text_field("workflow_id", "workflow id starts with", current.workflow_id)
        + text_field("target", "target", current.target, " list=targets")
        + f"<datalist id=targets>{targets}</datalist>"
        + f"<label>state<select name=state>{options}</select></label>"
        + text_field("min_age_seconds", "at least (seconds) old", age_value, " inputmode=decimal")
        + "<button type=submit>Search</button>"
        + (f" {link('/', 'clear')}" if search is not None else "")
        + f"</form>{error}"
    )


def _search_section(
    search: HandoffFilter, found: list[HandoffRecord], runtime: SidecarRuntime, now: float
) -> list[str]:
    shown = found[:SEARCH_SHOWN]
    more = len(found) > len(shown)
    if shown:
        count = f"The {len(shown)} oldest shown; more match." if more else f"{len(shown)} match."
        note = f"<p class=note id=search-count>{escape(count)} Oldest first.</p>"
        table = _oldest_table(shown, runtime, now, ident="search-results", with_state=True)
    else:
        note = ""
        table = "<p class=no-match id=search-count>No handoff matches.</p>"
    return [f"<h2>Handoffs: {escape(search.describe())}</h2>", note, table]


def _links_nav(runtime: SidecarRuntime) -> str:
    settings = runtime.settings
    found = [("Temporal UI", settings.temporal_ui_url), ("runbook", settings.runbook_url)]
    if settings.dashboard_url:
        found.append(("Grafana dashboard", settings.dashboard_url))
    if settings.prometheus_url:
        found.append(("Prometheus", settings.prometheus_url))
    return "<nav class=links id=links>" + "".join(link(u, t) for t, u in found) + "</nav>"


def _state_text(record: HandoffRecord) -> str:
    if record.is_pending:
        return "pending"
    outcome = record.outcome.value if record.outcome else "finished"
    return f"{outcome} ({record.error_type})" if record.error_type else outcome


def _age_of(record: HandoffRecord, now: float) -> str:
    """A pending handoff's age; a finished one's time to its outcome."""
    if record.finished_at is not None:
        return f"took {age(record.finished_at - record.started_at)}"
    return age(now - record.started_at)


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
