"""Writing the artifacts out: rules, dashboards, runbook, or all of them, into one folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Final

from ._dashboards import DASHBOARD_NAME, render_dashboard
from ._rule_settings import RuleSettings

#: What ``handshake-obs export`` writes.
ARTIFACTS: Final = ("rules", "dashboards", "runbook")
#: File names in the output folder.
RULES_NAME: Final = "handshake-obs.rules.yml"
PROMETHEUS_RULE_NAME: Final = "handshake-obs.prometheusrule.yaml"
RUNBOOK_NAME: Final = "runbook.md"


@dataclass(frozen=True)
class ExportOptions:
    """How the artifacts are rendered: one configuration for rules and dashboards."""

    settings: RuleSettings = field(default_factory=RuleSettings)
    #: ``rules`` (a Prometheus rule file) or ``prometheusrule`` (the Operator's resource).
    rule_format: str = "rules"
    #: The dashboard's default data source (uid or name; None: Grafana's default).
    datasource: str | None = None
    #: The PrometheusRule's name, namespace and extra labels.
    name: str = "handshake-obs"
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def packaged_runbook_text() -> str:
    """The runbook every alert links to, as shipped."""
    return (files(__package__) / "data" / RUNBOOK_NAME).read_text(encoding="utf-8")


def export(artifact: str, out: Path, options: ExportOptions | None = None) -> list[Path]:
    """Write ``artifact`` (one of :data:`ARTIFACTS`, or ``all``) into ``out``; the paths."""
    options = options or ExportOptions()
    wanted = ARTIFACTS if artifact == "all" else (artifact,)
    if unknown := set(wanted) - set(ARTIFACTS):
        raise ValueError(f"unknown artifact {sorted(unknown)[0]!r}: one of {ARTIFACTS} or all")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind in wanted:
        name, text = _render(kind, options)
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _render(kind: str, options: ExportOptions) -> tuple[str, str]:
    if kind == "dashboards":
        return DASHBOARD_NAME, render_dashboard(options.settings, datasource=options.datasource)
    if kind == "runbook":
        return RUNBOOK_NAME, packaged_runbook_text()
    # PyYAML is the 'export' extra's: imported only to render rules.
    from ._rule_file import render, render_prometheus_rule  # noqa: PLC0415

    if options.rule_format == "prometheusrule":
        rule = render_prometheus_rule(
            options.settings, name=options.name, namespace=options.namespace, labels=options.labels
        )
        return PROMETHEUS_RULE_NAME, rule
    return RULES_NAME, render(options.settings)
