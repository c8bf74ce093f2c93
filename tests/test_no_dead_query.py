"""No dead query: every metric name the rules and the dashboard use is served by a real
sidecar, and every expression returns data from a real Prometheus that scraped it.

One run for the module: ``handshake-obs dev`` (completions, typed failures, lost tokens that
the reaper fails at their ~5.4 s deadline) scraped every second by Prometheus with the
shipped rule file. How each kind of expression is checked:

- recording rules: the recorded series (with its ``quantile`` label) has a finite value;
- alerts: each alert is a condition that is false in a healthy run, so each of its
  ``checks`` (the expression without its final comparison, and the guard it is joined
  with, declared beside the rule in ``alerts/rules.py``) has a finite value, and the whole
  expression is accepted by Prometheus; ``HandshakeHandoffsReaped`` holds in this run (tokens
  are lost on purpose), so its whole expression returns data;
- dashboard queries: run with the variables as Grafana would fill them (``$job`` the sidecar
  job, ``$target`` the "All" value, ``$__rate_interval`` a few scrape intervals);
- dashboard variables: ``label_values(...)`` through the label values API;
- the dashboard's alert annotation: ``ALERTS`` has the firing reaped alert.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.rules import RULES_FILE, RuleSettings, alert_rules, recording_rules

from .support.dev_stack import DEMO_TARGETS, DevStack, dev_stack
from .support.processes import http_get
from .support.prometheus import Prometheus, ScrapeJob, prometheus_config, running_prometheus

DASHBOARD_FILE = Path(__file__).resolve().parents[1] / "dashboards" / "handshake-obs.json"
JOB = RuleSettings().sidecar_job
#: ``$__rate_interval`` as Grafana computes it for a 1 s scrape interval, rounded up.
RATE_INTERVAL = "15s"
#: Series made by Prometheus itself, not by the sidecar.
PROMETHEUS_SERIES = {"up", "ALERTS"}
NAME = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b")


@dataclass
class ObservedRun:
    prometheus: Prometheus
    stack: DevStack
    exposition: str
    waited: float


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD_FILE.read_text()))


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) with the variables filled as Grafana fills them."""
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    values = {
        "$job": JOB,
        "$target": variables["target"]["allValue"],
        "$__rate_interval": RATE_INTERVAL,
    }
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in values.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unfilled variable in {panel['title']}: {expr}"
            found.append((panel["title"], expr))
    return found


def recorded_series() -> list[str]:
    """Every recording rule as a selector of the series it records."""
    selectors = []
    for rule in recording_rules(RuleSettings()):
        matchers = ", ".join(f'{k}="{v}"' for k, v in rule.labels.items())
        selectors.append(f"{rule.record}{{{matchers}}}" if matchers else rule.record)
    return selectors


def alert_checks() -> list[tuple[str, str]]:
    return [(a.name, check) for a in alert_rules(RuleSettings()) for check in a.checks]


def must_answer() -> list[str]:
    """Queries that must have a finite value once the run has shown everything."""
    return [
        'sum(handshake_handoffs_finished_total{outcome="completed"}) > 0',
        'sum(handshake_handoffs_finished_total{outcome="failed"}) > 0',
        'sum(handshake_handoffs_finished_total{outcome="reaped"}) > 0',
        *recorded_series(),
        *(check for _, check in alert_checks()),
        *(expr for _, expr in dashboard_exprs()),
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedRun]:
    work = tmp_path_factory.mktemp("no-dead-query")
    with dev_stack(work) as stack:
        config = prometheus_config(
            [
                ScrapeJob(JOB, [stack.metrics_target]),
                ScrapeJob("temporal-sdk", [stack.sdk_metrics_target]),
            ],
            rule_files=[RULES_FILE],
        )
        with running_prometheus(work / "prometheus", config) as prometheus:
            started = time.monotonic()
            pending = set(must_answer())
            deadline = started + 75
            while pending and time.monotonic() < deadline:
                stack.process.assert_running()
                pending = {q for q in pending if not prometheus.finite_values(q)}
                time.sleep(0.5)
            exposition = http_get(f"http://{stack.metrics_target}/metrics").decode()
            yield ObservedRun(prometheus, stack, exposition, time.monotonic() - started)


def referenced_names() -> dict[str, set[str]]:
    """Metric names (not recording rules) in the rule file and the dashboard, by source."""
    rules_text = "\n".join(
        [r.expr for r in recording_rules(RuleSettings())]
        + [a.expr for a in alert_rules(RuleSettings())]
    )
    board = dashboard()
    board_text = "\n".join(
        [expr for _, expr in dashboard_exprs()]
        + [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
        + [a["expr"] for a in board["annotations"]["list"]]
    )
    names: dict[str, set[str]] = {}
    for source, text in (("alerts/rules.py", rules_text), ("dashboard", board_text)):
        for token in NAME.findall(text):
            ours = token.startswith(("handshake_", "temporal_")) and ":" not in token
            if ours or token in PROMETHEUS_SERIES:
                names.setdefault(token, set()).add(source)
    return names


def test_the_run_had_completions_failures_reaps_and_errors(run: ObservedRun) -> None:
    outcomes = {
        s["metric"]["outcome"]: float(s["value"][1])
        for s in run.prometheus.query("sum by (outcome) (handshake_handoffs_finished_total)")
    }
    assert outcomes.get("completed", 0) > 0, outcomes
    assert outcomes.get("failed", 0) > 0, outcomes
    assert outcomes.get("reaped", 0) > 0, outcomes
    assert run.prometheus.finite_values("sum(handshake_completion_errors_total) > 0")
    health = {r.get("name"): r["health"] for r in run.prometheus.rule_health()}
    assert set(health.values()) == {"ok"}, health


def test_every_metric_name_used_is_served_by_the_sidecar(run: ObservedRun) -> None:
    served = {
        sample.name
        for family in text_string_to_metric_families(run.exposition)
        for sample in family.samples
    }
    names = referenced_names()
    assert "handshake_pending_handoffs" in names
    assert "up" in names
    missing = {
        name: sources
        for name, sources in names.items()
        if name not in PROMETHEUS_SERIES and name not in served
    }
    assert missing == {}, f"names no sidecar serves: {missing}"
    assert run.prometheus.finite_values(f'up{{job="{JOB}"}} == 1')


def test_every_recording_rule_returns_data(run: ObservedRun) -> None:
    empty = [s for s in recorded_series() if not run.prometheus.finite_values(s)]
    assert empty == [], f"recording rules without data after {run.waited:.0f}s"


def test_every_alert_expression_returns_data_without_its_threshold(run: ObservedRun) -> None:
    empty = [(n, c) for n, c in alert_checks() if not run.prometheus.finite_values(c)]
    assert empty == [], f"alert checks without data after {run.waited:.0f}s"
    for alert in alert_rules(RuleSettings()):
        run.prometheus.query(alert.expr)  # valid PromQL, an instant vector
    (reaped,) = [a for a in alert_rules(RuleSettings()) if a.name == "HandshakeHandoffsReaped"]
    assert run.prometheus.query(reaped.expr), "tokens were lost and reaped: the alert holds"


def test_every_dashboard_query_returns_data(run: ObservedRun) -> None:
    empty = [(t, e) for t, e in dashboard_exprs() if not run.prometheus.finite_values(e)]
    assert empty == [], f"dashboard queries without data after {run.waited:.0f}s"


def test_dashboard_variables_and_annotations_return_data(run: ObservedRun) -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"] if v["type"] == "query"}
    for name, variable in variables.items():
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
        assert match, variable["query"]
        selector = match.group(1).replace("$job", JOB)
        values = run.prometheus.label_values(match.group(2), selector)
        expected = {JOB} if name == "job" else set(DEMO_TARGETS)
        assert expected <= set(values), (name, values)
    for annotation in board["annotations"]["list"]:
        expr = annotation["expr"].replace("$job", JOB)
        assert run.prometheus.query(expr), f"annotation {annotation['name']}: {expr}"
