"""The handshake-obs Grafana dashboard, generated with Grafana's own Python SDK.

``handshake-obs.json`` beside this file, and its copy shipped in the package
(``src/handshake_obs/artifacts/data/``, which ``handshake-obs export dashboards`` adapts), are
generated from here and committed; CI fails when either is stale::

    .venv/bin/python dashboards/build.py           # rewrite dashboards/handshake-obs.json
    .venv/bin/python dashboards/build.py --check   # exit 1 when the committed JSON is stale

Why grafana-foundation-sdk and not grafanalib: docs/dashboards.md. Every query reads the
``${datasource}`` variable, filters on ``$job`` (and ``$target`` where the metric has one),
uses ``$__rate_interval`` in its rates, or reads a recording rule of
``alerts/handshake-obs.rules.yml`` for ratios and quantiles. Metric, label and outcome names
come from ``handshake_obs._vocabulary``, recording-rule names and the colour thresholds from
``handshake_obs.artifacts`` (the rules' one configuration): no query can name something that
does not exist, and no panel turns red where no alert fires.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

with warnings.catch_warnings():
    # The SDK steers new code to the v2 dashboard API; file provisioning and Grafana's
    # published dashboard schema (the one this JSON is validated against) are the v1 model.
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import dashboard as dash

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import heatmap, stat, timeseries
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from handshake_obs._vocabulary import (
    DEADLINE_EXCEEDED_TYPE,
    ErrorType,
    Label,
    Metrics,
    Outcome,
)
from handshake_obs.artifacts import (
    DASHBOARD_NAME,
    FAILED_OUTCOMES,
    Recorded,
    RuleSettings,
    stat_thresholds,
)
from handshake_obs.artifacts._thresholds import (
    FAILURE_RATIO_PANEL,
    OLDEST_PANEL,
    PENDING_PANEL,
    REAPER_PANEL,
)

#: The committed dashboard (Grafana's provisioning in compose reads it from here).
DASHBOARD_FILE = Path(__file__).with_name(DASHBOARD_NAME)
#: The copy shipped in the package, which ``handshake-obs export dashboards`` adapts.
PACKAGED_FILE = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "handshake_obs"
    / "artifacts"
    / "data"
    / DASHBOARD_NAME
)
#: The colours of the panels that mirror an alert, from the rules' default settings.
THRESHOLDS = stat_thresholds(RuleSettings())

RUNBOOK_URL = RuleSettings().runbook_url

DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")

#: Label filters of every query: the dashboard's ``job`` and ``target`` variables.
JOB = 'job=~"$job"'
JOB_TARGET = f'{JOB}, {Label.TARGET}=~"$target"'


def _rate(series: str, filters: str = JOB_TARGET) -> str:
    """``rate()`` of ``series`` over Grafana's rate interval, filtered by the variables."""
    return f"rate({series}{{{filters}}}[$__rate_interval])"


def _each(label: str) -> str:
    """A legend naming each series by ``label``'s value."""
    return "{{" + label + "}}"


def _words(values: Sequence[str]) -> str:
    """Label values as a description lists them."""
    return ", ".join(values)


def _query(
    expr: str,
    legend: str,
    *,
    ref: str = "A",
    instant: bool = False,
    heatmap_format: bool = False,
    exemplar: bool = False,
) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    query = query.instant() if instant else query.range()
    if heatmap_format:
        query = query.format(PromQueryFormat.HEATMAP)
    if exemplar:
        query = query.exemplar(True)
    return query


class _Ids:
    """Panel ids, unique in the dashboard and stable from one generation to the next."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> int:
        return next(self._next)


def _timeseries(
    ids: _Ids,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prom.Dataquery],
    *,
    width: int = 12,
    stack: bool = False,
    bars: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .span(width)
        .height(8)
        .targets(list(queries))
        .fill_opacity(20 if stack else 10)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stack:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    return panel


def _stat(
    ids: _Ids,
    title: str,
    description: str,
    unit: str,
    query: prom.Dataquery,
    thresholds: Sequence[tuple[float | None, str]],
) -> stat.Panel:
    steps = [model.Threshold(value=value, color=color) for value, color in thresholds]
    return (
        stat.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(4)
        .targets([query])
        .thresholds(dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def _heatmap(ids: _Ids, title: str, description: str, query: prom.Dataquery) -> heatmap.Panel:
    return (
        heatmap.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit("s")
        .span(12)
        .height(8)
        .targets([query])
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .cell_values(heatmap.CellValues().unit("reqps"))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .fill("dark-orange")
            .scale(heatmap_model.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
        )
        .show_legend()
        .exemplars_color("rgba(138, 184, 255, 1)")
    )


def _row(ids: _Ids, title: str) -> dash.Row:
    return dash.Row(title).id(ids())


def _section(
    board: dash.Dashboard, row: dash.Row, panels: Sequence[cogbuilder.Builder[model.Panel]]
) -> dash.Dashboard:
    """A row and the panels under it (rows stay expanded: panels follow them at top level)."""
    board = board.with_row(row)
    for panel in panels:
        board = board.with_panel(panel)
    return board


def build() -> dash.Dashboard:
    """The dashboard: overview, completions, pending handoffs, errors, reaper, reconciler,
    Temporal RPCs."""
    ids = _Ids()
    board = (
        dash.Dashboard("handshake-obs")
        .uid("handshake-obs")
        .description(
            "Temporal asynchronous activity completion: handoffs, completions, pending work, "
            "errors and the reaper, from handshake-obs metrics and recording rules."
        )
        .tags(["handshake-obs", "temporal"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .link(
            dash.DashboardLink("Runbook")
            .type(model.DashboardLinkType.LINK)
            .url(RUNBOOK_URL)
            .icon("doc")
            .target_blank(True)
        )
        .with_variable(
            dash.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
            .description("The Prometheus that scrapes handshake-obs and loads its rules.")
        )
        .with_variable(
            dash.QueryVariable("job")
            .label("Job")
            .description("Scrape job of the processes sharing one ledger.")
            .datasource(DATASOURCE)
            .query(f"label_values({Metrics.PENDING.name}, job)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .include_all(True)
            .all_value(".+")
        )
        .with_variable(
            dash.QueryVariable("target")
            .label("Target")
            .description("External systems handoffs go to (HANDSHAKE_TARGETS, and other).")
            .datasource(DATASOURCE)
            .query(f"label_values({Metrics.PENDING.name}{{{JOB}}}, {Label.TARGET})")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".+")
        )
        .annotation(
            dash.AnnotationQuery()
            .name("Alerts")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("red")
            .expr(f'ALERTS{{alertname=~"Handshake.+", alertstate="firing", {JOB}}}')
            .title_format("{{alertname}}")
            .text_format(f"{_each('severity')} {_each(Label.TARGET)}")
            .step("60s")
            .use_value_for_time(False)
        )
    )

    board = _section(
        board,
        _row(ids, "Overview"),
        [
            _stat(
                ids,
                PENDING_PANEL,
                "Handoffs waiting for their outcome, from the ledger (all selected targets). "
                "Orange from the backlog of HandshakePendingBacklogHigh.",
                "short",
                _query(f"sum({Recorded.PENDING}{{{JOB_TARGET}}})", "pending"),
                THRESHOLDS[PENDING_PANEL],
            ),
            _stat(
                ids,
                OLDEST_PANEL,
                "Age of the oldest pending handoff. Orange and red from the warning and "
                "critical ages of HandshakeHandoffsStuck.",
                "s",
                _query(
                    f"max({Recorded.OLDEST_PENDING_AGE}{{{JOB_TARGET}}})",
                    "oldest",
                ),
                THRESHOLDS[OLDEST_PANEL],
            ),
            _stat(
                ids,
                FAILURE_RATIO_PANEL,
                "Share of finished handoffs that did not complete "
                f"({_words(FAILED_OUTCOMES)}) over 10 minutes, worst target. Red above the "
                "ratio of HandshakeCompletionFailureRatioHigh.",
                "percentunit",
                _query(
                    f"max({Recorded.FAILURE_RATIO}{{{JOB_TARGET}}})",
                    "failure ratio",
                ),
                THRESHOLDS[FAILURE_RATIO_PANEL],
            ),
            _stat(
                ids,
                REAPER_PANEL,
                "Time since the reaper last completed a scan. Red from the staleness of "
                "HandshakeReaperNotRunning.",
                "s",
                _query(f"min({Recorded.REAPER_LAST_SUCCESS_AGE}{{{JOB}}})", "age"),
                THRESHOLDS[REAPER_PANEL],
            ),
        ],
    )

    board = _section(
        board,
        _row(ids, "Completions"),
        [
            _timeseries(
                ids,
                "Completion rate by outcome",
                f"Handoffs that reached their one outcome, per second: {_words(list(Outcome))}.",
                "ops",
                [
                    _query(
                        f"sum by ({Label.OUTCOME}) ({_rate(Metrics.HANDOFFS_FINISHED.series)})",
                        _each(Label.OUTCOME),
                    ),
                    _query(f"sum({_rate(Metrics.HANDOFFS_STARTED.series)})", "started", ref="B"),
                ],
            ),
            _timeseries(
                ids,
                "Completion failure ratio",
                "Share of the handoffs finished over 10 minutes that did not complete, by target "
                "(recording rule; HandshakeCompletionFailureRatioHigh pages above its ratio).",
                "percentunit",
                [_query(f"{Recorded.FAILURE_RATIO}{{{JOB_TARGET}}}", _each(Label.TARGET))],
            ),
            _timeseries(
                ids,
                "Completion latency percentiles",
                "End-to-end latency of completed handoffs, handoff start to completion: p50, p90 "
                "and p99 over 5 minutes, by target (recording rules).",
                "s",
                [
                    _query(
                        f"{Recorded.LATENCY_QUANTILES}{{{JOB_TARGET}}}",
                        f"{_each(Label.TARGET)} p{_each('quantile')}",
                    )
                ],
            ),
            _heatmap(
                ids,
                "Completion latency heatmap",
                "Distribution of end-to-end handoff latency, all outcomes, from the histogram "
                "buckets. Exemplars (dots) link to the trace of the handoff that recorded them.",
                _query(
                    f"sum by (le) ({_rate(Metrics.COMPLETION_LATENCY.bucket)})",
                    _each("le"),
                    heatmap_format=True,
                    exemplar=True,
                ),
            ),
        ],
    )

    board = _section(
        board,
        _row(ids, "Pending handoffs"),
        [
            _timeseries(
                ids,
                "Pending by target",
                "Handoffs waiting for their outcome, by target, computed from the ledger.",
                "short",
                [_query(f"{Recorded.PENDING}{{{JOB_TARGET}}}", _each(Label.TARGET))],
                width=8,
            ),
            _timeseries(
                ids,
                "Pending by age",
                "Pending handoffs by age range (disjoint ranges that add up to the pending count).",
                "short",
                [
                    _query(
                        f"sum by ({Label.AGE}) ({Recorded.PENDING_BY_AGE}{{{JOB_TARGET}}})",
                        _each(Label.AGE),
                    )
                ],
                width=8,
                stack=True,
            ),
            _timeseries(
                ids,
                "Oldest pending age",
                "Age of the oldest pending handoff, by target: a line that only rises is a handoff "
                "nobody answers.",
                "s",
                [_query(f"{Recorded.OLDEST_PENDING_AGE}{{{JOB_TARGET}}}", _each(Label.TARGET))],
                width=8,
            ),
        ],
    )

    board = _section(
        board,
        _row(ids, "Errors"),
        [
            _timeseries(
                ids,
                "Completion errors by type",
                "Calls on the completion path that did not do what they were asked, per second: "
                f"{_words(list(ErrorType))}.",
                "ops",
                [
                    _query(
                        f"sum by ({Label.ERROR_TYPE}) ({_rate(Metrics.COMPLETION_ERRORS.series)})",
                        _each(Label.ERROR_TYPE),
                    )
                ],
            ),
            _timeseries(
                ids,
                "Instrumentation errors",
                "Failures inside handshake-obs itself (ledger writes, pending-gauge refreshes), "
                "per second. The handshake went on; investigate the ledger.",
                "ops",
                [
                    _query(
                        f"sum by ({Label.COMPONENT}) "
                        f"({_rate(Metrics.INSTRUMENTATION_ERRORS.series, JOB)})",
                        _each(Label.COMPONENT),
                    )
                ],
            ),
        ],
    )

    board = _section(
        board,
        _row(ids, "Reaper"),
        [
            _timeseries(
                ids,
                "Reaped handoffs",
                f"Handoffs failed with {DEADLINE_EXCEEDED_TYPE} by the reaper, per second, by "
                "target: their external system never answered in time.",
                "ops",
                [
                    _query(
                        f"sum by ({Label.TARGET}) ("
                        + _rate(
                            Metrics.HANDOFFS_FINISHED.series,
                            f'{Label.OUTCOME}="{Outcome.REAPED}", {JOB_TARGET}',
                        )
                        + ")",
                        _each(Label.TARGET),
                    )
                ],
                width=6,
                bars=True,
            ),
            _timeseries(
                ids,
                "Reap lag",
                "How long after its deadline a handoff was reaped: p50, p90, p99 over 5 minutes "
                "(recording rules). Normally below the reaper interval.",
                "s",
                [_query(f"{Recorded.REAP_LAG_QUANTILES}{{{JOB}}}", f"p{_each('quantile')}")],
                width=6,
            ),
            _timeseries(
                ids,
                "Reaper scans by result",
                "Reaper scans per second, successful and failed (ledger or Temporal unreachable).",
                "ops",
                [
                    _query(
                        f"sum by ({Label.RESULT}) ({_rate(Metrics.REAPER_RUNS.series, JOB)})",
                        _each(Label.RESULT),
                    )
                ],
                width=6,
            ),
            _timeseries(
                ids,
                "Time since last successful reaper scan",
                "Seconds since a reaper scan last succeeded, by job (recording rule); "
                "HandshakeReaperNotRunning pages when it grows past its staleness.",
                "s",
                [_query(f"{Recorded.REAPER_LAST_SUCCESS_AGE}{{{JOB}}}", _each("job"))],
                width=6,
            ),
        ],
    )

    board = _section(
        board,
        _row(ids, "Reconciler"),
        [
            _timeseries(
                ids,
                "Reconciled handoffs",
                "Pending handoffs the reconciler found closed in Temporal, per second, by "
                "reason: completed, failed or cancelled outside handshake-obs, Temporal's own "
                "timeout, the workflow closed, a newer attempt. Not a real wait.",
                "ops",
                [
                    _query(
                        f"sum by ({Label.REASON}) ({_rate(Metrics.RECONCILED.series, JOB_TARGET)})",
                        _each(Label.REASON),
                    )
                ],
                width=8,
                bars=True,
            ),
            _timeseries(
                ids,
                "Reconciler Temporal calls",
                "Temporal calls the reconciler makes per second, by job: within "
                "HANDSHAKE_RECONCILE_CALLS_PER_SECOND per process.",
                "ops",
                [
                    _query(
                        f"sum by (job) ({_rate(Metrics.RECONCILER_TEMPORAL_CALLS.series, JOB)})",
                        _each("job"),
                    )
                ],
                width=8,
            ),
            _timeseries(
                ids,
                "Time since last successful reconciler pass",
                "Seconds since a reconciler pass last succeeded, by job; "
                "HandshakeReconcilerNotRunning warns when it grows past its staleness.",
                "s",
                [
                    _query(
                        f"time() - max by (job) ({Metrics.RECONCILER_LAST_SUCCESS.name}{{{JOB}}})",
                        _each("job"),
                    )
                ],
                width=8,
            ),
        ],
    )

    return _section(
        board,
        _row(ids, "Temporal RPCs"),
        [
            _timeseries(
                ids,
                "Completion RPC latency",
                "One Temporal RPC of the completion path, by operation: p50, p90, p99 over 5 "
                "minutes (recording rules); HandshakeCompletionRpcLatencyHigh warns when p99 "
                "stays above its threshold.",
                "s",
                [
                    _query(
                        f"{Recorded.RPC_QUANTILES}{{{JOB}}}",
                        f"{_each(Label.OPERATION)} p{_each('quantile')}",
                    )
                ],
            ),
            _timeseries(
                ids,
                "Completion RPC rate by operation",
                "Temporal RPCs of the completion path per second, by operation; each retry counts.",
                "ops",
                [
                    _query(
                        f"sum by ({Label.OPERATION}) "
                        f"({_rate(Metrics.COMPLETION_RPC_DURATION.count, JOB)})",
                        _each(Label.OPERATION),
                    )
                ],
            ),
        ],
    )


#: Keys of interval variables only, which the SDK writes on every variable with their defaults;
#: Grafana's dashboard type has none of them on other variables.
_INTERVAL_ONLY_KEYS = ("auto", "auto_count", "auto_min")


def render() -> str:
    """The dashboard JSON, as committed."""
    board = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    for variable in board["templating"]["list"]:
        if variable["type"] != "interval":
            for key in _INTERVAL_ONLY_KEYS:
                variable.pop(key, None)
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate dashboards/handshake-obs.json.")
    parser.add_argument("--check", action="store_true", help="fail when the JSON is stale")
    parser.add_argument("--output", type=Path, help="write (or check) only this file")
    args = parser.parse_args(argv)
    text = render()
    status = 0
    for path in [args.output] if args.output else [DASHBOARD_FILE, PACKAGED_FILE]:
        if args.check:
            if (path.read_text() if path.exists() else "") != text:
                sys.stderr.write(f"{path} is stale: run .venv/bin/python dashboards/build.py\n")
                status = 1
        else:
            path.write_text(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
