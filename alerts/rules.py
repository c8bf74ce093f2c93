"""The Prometheus recording and alerting rules of handshake-obs, from one source.

``handshake-obs.rules.yml`` beside this file is rendered from here with the default
:class:`RuleSettings` and committed; CI fails when it is stale. To change a threshold for
everyone, change its default below and render again; to render your own variant, pass
``--set`` (see ``docs/alerts.md``)::

    .venv/bin/python alerts/rules.py                 # rewrite alerts/handshake-obs.rules.yml
    .venv/bin/python alerts/rules.py --check         # exit 1 when the committed file is stale
    .venv/bin/python alerts/rules.py --set stuck_critical_age=12h --output my.rules.yml

Recording rules hold the ratios and quantiles that both the alerts and the dashboards read;
their names (:class:`Recorded`) are derived from the metrics they read. Metric names, labels
and outcomes come from ``handshake_obs._vocabulary``, never written here.
Every rule aggregates ``by (job, ...)`` so each alert keeps its ``job`` label, which the
Alertmanager inhibition (a critical alert mutes the warnings of its job) relies on. Counters
are per process and summed; the pending gauges are the same in every process sharing a
ledger and are aggregated with ``max`` / ``min``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from handshake_obs._vocabulary import (
    DEADLINE_EXCEEDED_TYPE,
    UNSUCCESSFUL_OUTCOMES,
    Label,
    Metric,
    Metrics,
    Outcome,
    ReaperRun,
)

#: The committed rule file, rendered with the default settings.
RULES_FILE = Path(__file__).with_name("handshake-obs.rules.yml")

#: Outcomes that count as a failed completion (the vocabulary's unsuccessful outcomes, in its
#: order): the external system failed the handoff, it was reaped at its deadline, Temporal
#: had already closed it, or the activity gave up.
FAILED_OUTCOMES: tuple[Outcome, ...] = tuple(o for o in Outcome if o in UNSUCCESSFUL_OUTCOMES)

#: Quantiles recorded for every latency histogram (label ``quantile``).
QUANTILES: tuple[str, ...] = ("0.5", "0.9", "0.99")

SEVERITIES: tuple[str, ...] = ("critical", "warning")


def _recorded(level: str, name: str, operations: str) -> str:
    """A recording rule's name, ``level:metric:operations`` (Prometheus's convention)."""
    return f"{level}:{name}:{operations}"


def _age_of(metric: Metric) -> str:
    """What ``time() - <metric>`` is called: ``..._timestamp_seconds`` becomes ``..._age``."""
    return metric.name.removesuffix("_timestamp_seconds") + "_age"


_QUANTILE_RATE = "histogram_quantile_rate5m"


class Recorded:
    """Names of the recording rules, derived from the metrics they read: the alerts below and
    ``dashboards/build.py`` query these."""

    STARTED_RATE: Final = _recorded("job_target", Metrics.HANDOFFS_STARTED.name, "rate5m")
    FINISHED_RATE: Final = _recorded("job_target_outcome", Metrics.HANDOFFS_FINISHED.name, "rate5m")
    FINISHED_INCREASE: Final = _recorded(
        "job_target", Metrics.HANDOFFS_FINISHED.name, "increase10m"
    )
    #: Share of the finished handoffs whose outcome is unsuccessful.
    FAILURE_RATIO: Final = _recorded("job_target", "handshake_completion_failures", "ratio_rate10m")
    LATENCY_QUANTILES: Final = _recorded(
        "job_target", Metrics.COMPLETION_LATENCY.name, _QUANTILE_RATE
    )
    ERRORS_RATE: Final = _recorded(
        "job_target_error_type", Metrics.COMPLETION_ERRORS.name, "rate5m"
    )
    RPC_QUANTILES: Final = _recorded(
        "job_operation", Metrics.COMPLETION_RPC_DURATION.name, _QUANTILE_RATE
    )
    PENDING: Final = _recorded("job_target", Metrics.PENDING.name, "max")
    PENDING_BY_AGE: Final = _recorded("job_target_age", Metrics.PENDING_BY_AGE.name, "max")
    OLDEST_PENDING_AGE: Final = _recorded("job_target", _age_of(Metrics.OLDEST_PENDING), "seconds")
    REAPER_LAST_SUCCESS_AGE: Final = _recorded(
        "job", _age_of(Metrics.REAPER_LAST_SUCCESS), "seconds"
    )
    #: Share of reaper scans that failed.
    REAPER_ERROR_RATIO: Final = _recorded(
        "job", f"{Metrics.REAPER_RUNS.name}_errors", "ratio_rate5m"
    )
    REAP_LAG_QUANTILES: Final = _recorded("job", Metrics.REAP_LAG.name, _QUANTILE_RATE)
    SNAPSHOT_AGE: Final = _recorded(
        "job_instance", _age_of(Metrics.PENDING_SNAPSHOT_TIMESTAMP), "seconds"
    )


def _by(*labels: str) -> str:
    """``by (job, ...)``: every rule keeps the job (the Alertmanager inhibition needs it)."""
    return f"by ({', '.join(('job', *labels))})"


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Thresholds and names of the rules. Durations are Prometheus durations (``90s``,
    ``6h``, ``1h30m``); ratios are fractions (``0.5`` is 50 %)."""

    #: Scrape job of the sidecar (and of every process sharing its ledger): the target-down
    #: and reaper alerts select it.
    sidecar_job: str = "handshake-obs"
    #: Where ``docs/runbook.md`` is published; each alert links to its anchor there.
    runbook_url: str = "https://github.com/handshake-obs/handshake-obs/blob/main/docs/runbook.md"
    #: Oldest pending handoff older than this: warning.
    stuck_warning_age: str = "6h"
    #: Oldest pending handoff older than this: critical.
    stuck_critical_age: str = "24h"
    stuck_for: str = "5m"
    #: Share of handoffs finishing without ``completed`` over 10 minutes: critical above it.
    failure_ratio: float = 0.5
    #: ...but only with at least this many handoffs finished in those 10 minutes.
    failure_min_handoffs: int = 10
    failure_for: str = "5m"
    #: p99 of one Temporal RPC of the completion path, seconds: warning above it.
    rpc_p99_seconds: float = 0.5
    rpc_latency_for: str = "10m"
    #: Handoffs pending for one target: warning above it.
    backlog_pending: int = 1000
    backlog_for: str = "15m"
    #: Window of the backlog's growth rate (``deriv``).
    backlog_growth_window: str = "1h"
    #: Growth is only reported once the backlog holds more than this many handoffs.
    backlog_growing_min_pending: int = 100
    backlog_growing_for: str = "1h"
    #: Handoffs reaped in this window...
    reaped_window: str = "15m"
    #: ...above this count: warning (0: any reaped handoff warns).
    reaped_count: int = 0
    reaped_for: str = "0m"
    #: No successful reaper scan in the sidecar job for this long: critical. Keep it well
    #: above ``HANDSHAKE_REAPER_INTERVAL_SECONDS``.
    reaper_stale_after: str = "5m"
    reaper_stale_for: str = "1m"
    #: Share of reaper scans that fail over 5 minutes: critical above it.
    reaper_error_ratio: float = 0.5
    reaper_failing_for: str = "10m"
    #: A sidecar target down (or no target at all) for this long: critical.
    target_down_for: str = "2m"
    #: Pending gauges not recomputed for this long: warning. Keep it well above
    #: ``HANDSHAKE_METRICS_REFRESH_SECONDS``.
    gauges_stale_after: str = "2m"
    gauges_stale_for: str = "5m"
    #: Failures of handshake-obs's own instrumentation counted in this window: warning.
    instrumentation_errors_window: str = "15m"
    instrumentation_errors_for: str = "0m"


@dataclass(frozen=True, slots=True)
class Recording:
    """One recording rule."""

    record: str
    expr: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alerting rule.

    ``checks`` are the parts of ``expr`` that answer with data in a healthy system (the
    expression without its final comparison, and the guard it is joined with); the
    no-dead-query test runs each against a real Prometheus. An alert that does not fire
    returns nothing, so its whole ``expr`` cannot prove its metric names right.
    """

    name: str
    severity: str
    expr: str
    for_: str
    summary: str
    description: str
    checks: tuple[str, ...]

    @property
    def anchor(self) -> str:
        """The runbook section (GitHub's anchor of a ``## Name`` heading)."""
        return self.name.lower()


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as ``90s`` or ``1h30m``."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def number(value: float) -> str:
    """A threshold as PromQL reads it (``86400``, ``0.5``)."""
    return f"{value:g}" if value != int(value) else str(int(value))


def _quantiles(record: str, template: str) -> list[Recording]:
    return [Recording(record, template.format(q=q), {"quantile": q}) for q in QUANTILES]


def recording_rules(settings: RuleSettings) -> list[Recording]:
    """Ratios, rates and quantiles shared by the alerts and the dashboards."""
    target, outcome = Label.TARGET, Label.OUTCOME
    started = Metrics.HANDOFFS_STARTED.series
    finished = Metrics.HANDOFFS_FINISHED.series
    failed = "|".join(FAILED_OUTCOMES)
    runs = Metrics.REAPER_RUNS.series
    return [
        Recording(Recorded.STARTED_RATE, f"sum {_by(target)} (rate({started}[5m]))"),
        Recording(Recorded.FINISHED_RATE, f"sum {_by(target, outcome)} (rate({finished}[5m]))"),
        Recording(Recorded.FINISHED_INCREASE, f"sum {_by(target)} (increase({finished}[10m]))"),
        Recording(
            Recorded.FAILURE_RATIO,
            f'sum {_by(target)} (rate({finished}{{{outcome}=~"{failed}"}}[10m]))\n'
            "/\n"
            f"sum {_by(target)} (rate({finished}[10m]))",
        ),
        *_quantiles(
            Recorded.LATENCY_QUANTILES,
            f"histogram_quantile({{q}}, sum {_by(target, 'le')} "
            f'(rate({Metrics.COMPLETION_LATENCY.bucket}{{{{{outcome}="{Outcome.COMPLETED}"}}}}'
            "[5m])))",
        ),
        Recording(
            Recorded.ERRORS_RATE,
            f"sum {_by(target, Label.ERROR_TYPE)} (rate({Metrics.COMPLETION_ERRORS.series}[5m]))",
        ),
        *_quantiles(
            Recorded.RPC_QUANTILES,
            f"histogram_quantile({{q}}, sum {_by(Label.OPERATION, 'le')} "
            f"(rate({Metrics.COMPLETION_RPC_DURATION.bucket}[5m])))",
        ),
        Recording(Recorded.PENDING, f"max {_by(target)} ({Metrics.PENDING.name})"),
        Recording(
            Recorded.PENDING_BY_AGE,
            f"max {_by(target, Label.AGE)} ({Metrics.PENDING_BY_AGE.name})",
        ),
        Recording(
            Recorded.OLDEST_PENDING_AGE,
            f"time() - min {_by(target)} ({Metrics.OLDEST_PENDING.name})",
        ),
        Recording(
            Recorded.REAPER_LAST_SUCCESS_AGE,
            f"time() - max {_by()} ({Metrics.REAPER_LAST_SUCCESS.name})",
        ),
        Recording(
            Recorded.REAPER_ERROR_RATIO,
            f'sum {_by()} (rate({runs}{{{Label.RESULT}="{ReaperRun.ERROR}"}}[5m]))\n'
            "/\n"
            f"sum {_by()} (rate({runs}[5m]))",
        ),
        *_quantiles(
            Recorded.REAP_LAG_QUANTILES,
            f"histogram_quantile({{q}}, sum {_by('le')} (rate({Metrics.REAP_LAG.bucket}[5m])))",
        ),
        Recording(
            Recorded.SNAPSHOT_AGE,
            f"time() - max {_by('instance')} ({Metrics.PENDING_SNAPSHOT_TIMESTAMP.name})",
        ),
    ]


def alert_rules(s: RuleSettings) -> list[Alert]:
    """The alerts, each with its severity, summary, description and runbook anchor."""
    job = f'job="{s.sidecar_job}"'
    oldest = Recorded.OLDEST_PENDING_AGE
    ratio = Recorded.FAILURE_RATIO
    finished = Recorded.FINISHED_INCREASE
    rpc_p99 = f'{Recorded.RPC_QUANTILES}{{quantile="0.99"}}'
    pending = Recorded.PENDING
    growth = f"deriv({pending}[{s.backlog_growth_window}]) * 3600"
    reaped_outcome = f'{Label.OUTCOME}="{Outcome.REAPED}"'
    reaped = (
        f"sum {_by(Label.TARGET)} (increase("
        f"{Metrics.HANDOFFS_FINISHED.series}{{{reaped_outcome}}}[{s.reaped_window}]))"
    )
    reaper_age = f"{Recorded.REAPER_LAST_SUCCESS_AGE}{{{job}}}"
    reaper_errors = f"{Recorded.REAPER_ERROR_RATIO}{{{job}}}"
    up = f"up{{{job}}}"
    gauges_age = Recorded.SNAPSHOT_AGE
    instrumentation = (
        f"sum {_by('instance', Label.COMPONENT)} (increase("
        f"{Metrics.INSTRUMENTATION_ERRORS.series}[{s.instrumentation_errors_window}]))"
    )

    def stuck(severity: str, age: str) -> Alert:
        return Alert(
            name="HandshakeHandoffsStuck",
            severity=severity,
            expr=f"{oldest} > {number(seconds(age))}",
            for_=s.stuck_for,
            summary=f"A handoff has been pending for more than {age}.",
            description=(
                "The oldest pending handoff to {{ $labels.target }} (job {{ $labels.job }}) "
                "has waited {{ $value | humanizeDuration }} for its external system; its "
                "workflow is still blocked on it."
            ),
            checks=(oldest,),
        )

    return [
        stuck("warning", s.stuck_warning_age),
        stuck("critical", s.stuck_critical_age),
        Alert(
            name="HandshakeCompletionFailureRatioHigh",
            severity="critical",
            expr=(
                f"{ratio} > {number(s.failure_ratio)}\nand\n{finished} >= {s.failure_min_handoffs}"
            ),
            for_=s.failure_for,
            summary=(
                f"More than {number(s.failure_ratio * 100)}% of handoffs finish without completing."
            ),
            description=(
                "{{ $value | humanizePercentage }} of the handoffs to {{ $labels.target }} "
                "(job {{ $labels.job }}) that finished in the last 10 minutes were failed, "
                "reaped, already closed or aborted instead of completed."
            ),
            checks=(ratio, finished),
        ),
        Alert(
            name="HandshakeCompletionRpcLatencyHigh",
            severity="warning",
            expr=f"{rpc_p99} > {number(s.rpc_p99_seconds)}",
            for_=s.rpc_latency_for,
            summary=(
                "Temporal RPCs of the completion path are slow "
                f"(p99 above {number(s.rpc_p99_seconds * 1000)} ms)."
            ),
            description=(
                "The p99 of {{ $labels.operation }} calls to Temporal from job "
                "{{ $labels.job }} is {{ $value | humanizeDuration }} over the last 5 minutes."
            ),
            checks=(rpc_p99,),
        ),
        Alert(
            name="HandshakePendingBacklogHigh",
            severity="warning",
            expr=f"{pending} > {s.backlog_pending}",
            for_=s.backlog_for,
            summary=f"More than {s.backlog_pending} handoffs are pending for one target.",
            description=(
                "{{ $value | humanize }} handoffs to {{ $labels.target }} (job "
                "{{ $labels.job }}) are waiting for their external system."
            ),
            checks=(pending,),
        ),
        Alert(
            name="HandshakePendingBacklogGrowing",
            severity="warning",
            expr=f"{growth} > 0\nand\n{pending} > {s.backlog_growing_min_pending}",
            for_=s.backlog_growing_for,
            summary="The pending backlog of a target keeps growing.",
            description=(
                "Handoffs to {{ $labels.target }} (job {{ $labels.job }}) pile up by "
                "{{ $value | humanize }} per hour: more are handed off than answered."
            ),
            checks=(growth, pending),
        ),
        Alert(
            name="HandshakeHandoffsReaped",
            severity="warning",
            expr=f"{reaped} > {s.reaped_count}",
            for_=s.reaped_for,
            summary="Handoffs are reaped at their deadline: their external system never answered.",
            description=(
                "Handoffs to {{ $labels.target }} (job {{ $labels.job }}) failed with "
                f"{DEADLINE_EXCEEDED_TYPE} in the last {s.reaped_window}: "
                "{{ $value | humanize }}. Their external system never answered."
            ),
            checks=(reaped,),
        ),
        Alert(
            name="HandshakeReaperNotRunning",
            severity="critical",
            expr=f"{reaper_age} > {number(seconds(s.reaper_stale_after))}",
            for_=s.reaper_stale_for,
            summary=f"No reaper scan has succeeded for more than {s.reaper_stale_after}.",
            description=(
                "The last successful reaper scan in job {{ $labels.job }} was "
                "{{ $value | humanizeDuration }} ago: expired handoffs are not failed and "
                "their workflows wait for Temporal's own timeout."
            ),
            checks=(reaper_age,),
        ),
        Alert(
            name="HandshakeReaperFailing",
            severity="critical",
            expr=f"{reaper_errors} > {number(s.reaper_error_ratio)}",
            for_=s.reaper_failing_for,
            summary="Most reaper scans fail.",
            description=(
                "{{ $value | humanizePercentage }} of the reaper scans in job "
                "{{ $labels.job }} failed over the last 5 minutes: the ledger or Temporal "
                "does not answer."
            ),
            checks=(reaper_errors,),
        ),
        Alert(
            name="HandshakeSidecarDown",
            severity="critical",
            expr=f"{up} == 0\nor\nabsent({up})",
            for_=s.target_down_for,
            summary="A handshake-obs sidecar cannot be scraped.",
            description=(
                "Prometheus cannot scrape {{ with $labels.instance }}{{ . }}{{ else }}any "
                "target{{ end }} of job {{ $labels.job }}: no reaping, no pending gauges, no "
                "alerts from it."
            ),
            # absent() answers only when the target is gone; its argument must answer now.
            checks=(up,),
        ),
        Alert(
            name="HandshakePendingGaugesStale",
            severity="warning",
            expr=f"{gauges_age} > {number(seconds(s.gauges_stale_after))}",
            for_=s.gauges_stale_for,
            summary="The pending-handoff gauges are no longer refreshed from the ledger.",
            description=(
                "{{ $labels.instance }} (job {{ $labels.job }}) last computed its pending "
                "gauges {{ $value | humanizeDuration }} ago: pending and stuck handoffs are "
                "not seen."
            ),
            checks=(gauges_age,),
        ),
        Alert(
            name="HandshakeInstrumentationErrors",
            severity="warning",
            expr=f"{instrumentation} > 0",
            for_=s.instrumentation_errors_for,
            summary="Part of the handshake was not recorded by handshake-obs.",
            description=(
                "Failures of the {{ $labels.component }} part of {{ $labels.instance }} "
                "(job {{ $labels.job }}) in the last "
                f"{s.instrumentation_errors_window}: "
                "{{ $value | humanize }}. The handshake went on; the ledger may miss outcomes."
            ),
            checks=(instrumentation,),
        ),
    ]


def rule_groups(settings: RuleSettings) -> dict[str, Any]:
    """The rule file's content: one group, recording rules first.

    Rules of one group are evaluated in order at the same timestamp, so every alert reads the
    recording rules of its own evaluation (rules in separate groups would read the previous
    one, a whole interval old).
    """
    base = settings.runbook_url
    recordings: list[dict[str, Any]] = [
        {"record": r.record, "expr": r.expr, **({"labels": r.labels} if r.labels else {})}
        for r in recording_rules(settings)
    ]
    alerts: list[dict[str, Any]] = [
        {
            "alert": a.name,
            "expr": a.expr,
            "for": a.for_,
            "labels": {"severity": a.severity},
            "annotations": {
                "summary": a.summary,
                "description": a.description,
                "runbook_url": f"{base}#{a.anchor}",
            },
        }
        for a in alert_rules(settings)
    ]
    return {"groups": [{"name": "handshake-obs", "rules": recordings + alerts}]}


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, everything else as PyYAML chooses."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_HEADER = """\
# Prometheus rules of handshake-obs. Rendered by alerts/rules.py (edit that file, then run
# `.venv/bin/python alerts/rules.py`); thresholds and how to change them: docs/alerts.md.
"""


def render(settings: RuleSettings | None = None) -> str:
    """The rule file as YAML."""
    body = yaml.dump(
        rule_groups(settings or RuleSettings()),
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,  # one line per value: diffs of the rendered file stay readable
        allow_unicode=True,
    )
    return _HEADER + body


def settings_with(assignments: Sequence[str], base: RuleSettings | None = None) -> RuleSettings:
    """``base`` with ``NAME=VALUE`` assignments applied (values parsed as the field's type)."""
    current = base or RuleSettings()
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or not hasattr(current, name):
            raise ValueError(f"not NAME=VALUE with a RuleSettings field: {assignment!r}")
        default = getattr(current, name)
        value: Any = type(default)(raw)
        if isinstance(default, str) and name.endswith(("_age", "_for", "_after", "_window")):
            seconds(value)  # reject what Prometheus would not read
        changes[name] = value
    return dataclasses.replace(current, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    """Render the rules; ``--check`` compares with the committed file instead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the output is stale")
    parser.add_argument("--output", type=Path, default=RULES_FILE)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting"
    )
    args = parser.parse_args(argv)
    try:
        text = render(settings_with(args.set))
    except ValueError as err:
        parser.error(str(err))
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.output} is stale: run .venv/bin/python alerts/rules.py\n")
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
