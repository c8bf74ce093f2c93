"""The Prometheus recording and alerting rules of handshake-obs, from one source.

Rendered with :class:`RuleSettings` (the thresholds, the job selector): ``handshake-obs export
rules`` writes them for a Prometheus (a rule file) or the Prometheus Operator (a
``PrometheusRule``); ``alerts/handshake-obs.rules.yml`` is the committed rendering with the
defaults. Metric names, labels and outcomes come from ``handshake_obs._vocabulary``, never
written here.

Every rule aggregates ``by (job, ...)`` so each alert keeps its ``job`` label, which the
Alertmanager inhibition (a critical alert mutes the warnings of its job) relies on. Counters
are per process and summed; the pending gauges are the same in every process sharing a
ledger and are aggregated with ``max`` / ``min``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .._vocabulary import DEADLINE_EXCEEDED_TYPE, Label, Metrics, Outcome, ReaperRun
from ._recorded import FAILED_OUTCOMES, QUANTILES, Recorded
from ._rule_settings import RuleSettings, number, seconds

#: The one rule group's name.
GROUP_NAME = "handshake-obs"


def _by(*labels: str) -> str:
    """``by (job, ...)``: every rule keeps the job (the Alertmanager inhibition needs it)."""
    return f"by ({', '.join(('job', *labels))})"


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
    #: The status page's search (query parameter, value) that shows what fired; a value may
    #: be a template such as ``{{ $labels.target | urlquery }}``.
    status_filter: tuple[tuple[str, str], ...] = (("state", "pending"),)

    @property
    def anchor(self) -> str:
        """The runbook section (GitHub's anchor of a ``## Name`` heading)."""
        return self.name.lower()


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


#: The alert's target label in a URL query.
_TARGET = "{{ $labels.target | urlquery }}"


def status_url(settings: RuleSettings, alert: Alert) -> str:
    """The status page filtered to what ``alert`` fired for (its ``status_url``)."""
    query = "&".join(
        f"{name}={value if '{{' in value else quote(value, safe='')}"
        for name, value in alert.status_filter
    )
    return f"{settings.status_url.rstrip('/')}/?{query}"


def alert_rules(s: RuleSettings) -> list[Alert]:
    """The alerts, each with its severity, summary, description and runbook anchor."""
    job = s.selector
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
    # The selector filters raw series: a recorded series keeps only the labels it is by.
    reaper_age = f"time() - max {_by()} ({Metrics.REAPER_LAST_SUCCESS.name}{{{job}}})"
    runs = Metrics.REAPER_RUNS.series
    reaper_errors = (
        f'sum {_by()} (rate({runs}{{{Label.RESULT}="{ReaperRun.ERROR}", {job}}}[5m]))\n'
        "/\n"
        f"sum {_by()} (rate({runs}{{{job}}}[5m]))"
    )
    # Only a reconciler that ran before can stop: a job that runs none keeps the gauge at 0.
    reconciler_age = f"time() - (max {_by()} ({Metrics.RECONCILER_LAST_SUCCESS.name}{{{job}}}) > 0)"
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
            status_filter=(
                ("state", "pending"),
                ("target", _TARGET),
                ("min_age_seconds", number(seconds(age))),
            ),
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
            status_filter=(("state", "finished"), ("target", _TARGET)),
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
            status_filter=(("state", "pending"), ("target", _TARGET)),
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
            status_filter=(("state", "pending"), ("target", _TARGET)),
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
            status_filter=(("state", "finished"), ("target", _TARGET)),
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
            name="HandshakeReconcilerNotRunning",
            severity="warning",
            expr=f"{reconciler_age} > {number(seconds(s.reconciler_stale_after))}",
            for_=s.reconciler_stale_for,
            summary=(f"No reconciler pass has succeeded for more than {s.reconciler_stale_after}."),
            description=(
                "The last successful reconciler pass in job {{ $labels.job }} was "
                "{{ $value | humanizeDuration }} ago: handoffs that Temporal closed without "
                "handshake-obs stay counted as pending until their deadline."
            ),
            checks=(reconciler_age,),
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
                "status_url": status_url(settings, a),
            },
        }
        for a in alert_rules(settings)
    ]
    return {"groups": [{"name": GROUP_NAME, "rules": recordings + alerts}]}
