"""One vocabulary, used everywhere: every word has its HTTP answer and its documentation,
every metric is registered by exactly the collectors that own it, and every metric the
shipped rules and dashboard query is one the vocabulary defines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from handshake_obs import ErrorType, HandshakeConfig, Outcome
from handshake_obs._vocabulary import Metrics
from handshake_obs.sidecar._http_errors import HTTP_ANSWERS
from handshake_obs.telemetry._metrics import HandshakeMetrics
from handshake_obs.telemetry._pending_gauges import PendingGaugesCollector

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"
RULES = ROOT / "alerts" / "handshake-obs.rules.yml"
DASHBOARD = ROOT / "dashboards" / "handshake-obs.json"

#: A PromQL identifier (metric, recording rule, function or label name).
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
#: Quoted strings and ``{...}`` label matchers: not names of series.
_NOT_SERIES = re.compile(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\bby\s*\([^)]*\)')


def test_every_error_type_has_an_http_answer() -> None:
    assert set(HTTP_ANSWERS) == set(ErrorType)


def test_every_outcome_and_error_type_is_documented() -> None:
    doc = METRICS_DOC.read_text()
    for value in [*Outcome, *ErrorType]:
        assert f"`{value.value}`" in doc, f"docs/metrics.md does not list {value.value}"
        assert re.search(rf"^- `{value.value}` — ", doc, re.MULTILINE), (
            f"docs/metrics.md does not say what {value.value} means"
        )


def test_every_metric_is_registered_by_its_collectors_and_nothing_else() -> None:
    registry = CollectorRegistry()
    config = HandshakeConfig()
    metrics = HandshakeMetrics(config, registry=registry)
    registry.register(PendingGaugesCollector(config, metrics.pending_changes))
    registered = {(family.name, family.type) for family in registry.collect()}
    assert registered == {(m.name, m.kind) for m in Metrics.all()}
    for family in registry.collect():
        metric = next(m for m in Metrics.all() if m.name == family.name)
        assert family.documentation == metric.help


def series_names() -> set[str]:
    """Every name a query may use for a metric of the vocabulary."""
    names = set()
    for metric in Metrics.all():
        names.add(metric.series)
        if metric.kind == "histogram":
            names |= {metric.bucket, metric.count, metric.sum}
    return names


def rule_exprs() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("record") or rule["alert"], rule["expr"]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["name"], str(variable["query"])
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield annotation["name"], annotation["expr"]


def metric_names(expr: str) -> set[str]:
    """The handshake-obs metric names ``expr`` reads (recording rules, with a ``:``, aside)."""
    bare = _NOT_SERIES.sub(" ", expr)
    return {
        name for name in _NAME.findall(bare) if name.startswith("handshake_") and ":" not in name
    }


def recorded_names(expr: str) -> set[str]:
    return {name for name in _NAME.findall(_NOT_SERIES.sub(" ", expr)) if name.count(":") == 2}


def test_the_name_parser_finds_metrics_and_recording_rules() -> None:
    expr = 'sum by (target) (rate(handshake_x_total{outcome="handshake_y"}[5m])) / job:a_b:c'
    assert metric_names(expr) == {"handshake_x_total"}
    assert recorded_names(expr) == {"job:a_b:c"}


def test_every_metric_the_rules_and_dashboard_query_is_in_the_vocabulary() -> None:
    known = series_names()
    used = [(where, name) for where, expr in [*rule_exprs(), *dashboard_exprs()]
            for name in metric_names(expr)]  # fmt: skip
    assert used, "no metric found in the rules and the dashboard"
    unknown = [(where, name) for where, name in used if name not in known]
    assert unknown == []


def test_every_recording_rule_the_dashboard_reads_is_in_the_rules() -> None:
    recorded = {name for name, _ in rule_exprs()}
    read = {name for _, expr in dashboard_exprs() for name in recorded_names(expr)}
    assert read
    assert read - recorded == set()
