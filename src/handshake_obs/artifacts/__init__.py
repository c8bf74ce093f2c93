"""The operable artifacts shipped with handshake-obs: alert rules, dashboard, runbook.

One configuration (:class:`RuleSettings`: thresholds, job selector) renders consistent rules
and dashboards, in the spirit of a monitoring mixin. ``handshake-obs export`` writes them;
the rule renderer needs the ``export`` extra (PyYAML) and is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._dashboards import DASHBOARD_NAME, dashboard, packaged_dashboard_text, render_dashboard
from ._export import ARTIFACTS, ExportOptions, export, packaged_runbook_text
from ._recorded import FAILED_OUTCOMES, QUANTILES, SEVERITIES, Recorded
from ._rule_settings import DEFAULT_RUNBOOK_URL, RuleSettings, number, seconds, settings_with
from ._rules import Alert, Recording, alert_rules, recording_rules, rule_groups
from ._thresholds import stat_thresholds

if TYPE_CHECKING:
    from ._rule_file import (
        PROMETHEUS_RULE_LABELS,
        RULE_FORMATS,
        prometheus_rule,
        render,
        render_prometheus_rule,
    )

#: Names of the module that needs PyYAML, imported on first use.
_RULE_FILE_NAMES = frozenset(
    {
        "PROMETHEUS_RULE_LABELS",
        "RULE_FORMATS",
        "prometheus_rule",
        "render",
        "render_prometheus_rule",
    }
)

__all__ = [
    "ARTIFACTS",
    "DASHBOARD_NAME",
    "DEFAULT_RUNBOOK_URL",
    "FAILED_OUTCOMES",
    "PROMETHEUS_RULE_LABELS",
    "QUANTILES",
    "RULE_FORMATS",
    "SEVERITIES",
    "Alert",
    "ExportOptions",
    "Recorded",
    "Recording",
    "RuleSettings",
    "alert_rules",
    "dashboard",
    "export",
    "number",
    "packaged_dashboard_text",
    "packaged_runbook_text",
    "prometheus_rule",
    "recording_rules",
    "render",
    "render_dashboard",
    "render_prometheus_rule",
    "rule_groups",
    "seconds",
    "settings_with",
    "stat_thresholds",
]


def __getattr__(name: str) -> Any:
    if name not in _RULE_FILE_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("._rule_file", __name__), name)
    globals()[name] = value  # looked up once
    return value
