"""The shipped Grafana dashboard, adapted to where it is imported.

The dashboard is generated at build time (``dashboards/build.py``, with
grafana-foundation-sdk, an exactly pinned build tool) and shipped as package data; export
adapts the generated JSON instead of generating it again, so that it needs neither the SDK
nor its version at run time, and what is exported is what CI validated. Adapting changes
three things, each a setting: which jobs the ``job`` variable offers (the job selector), the
default data source, and the colour thresholds that mirror the alerts.
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any, Final

from .._vocabulary import Metrics
from ._rule_settings import RuleSettings
from ._thresholds import stat_thresholds

#: The dashboard file's name, in the package and where it is exported.
DASHBOARD_NAME: Final = "handshake-obs.json"


def packaged_dashboard_text() -> str:
    """The dashboard JSON as shipped (generated with the default settings)."""
    return (files(__package__) / "data" / DASHBOARD_NAME).read_text(encoding="utf-8")


def dashboard(settings: RuleSettings | None = None, *, datasource: str | None = None) -> Any:
    """The dashboard, adapted to ``settings`` and to a default data source uid or name."""
    settings = settings or RuleSettings()
    board = copy.deepcopy(json.loads(packaged_dashboard_text()))
    for variable in board["templating"]["list"]:
        if variable["name"] == "datasource" and datasource:
            variable["current"] = {"selected": True, "text": datasource, "value": datasource}
        if variable["name"] == "job" and settings.job_selector.strip():
            query = f"label_values({Metrics.PENDING.name}{{{settings.selector}}}, job)"
            variable["query"] = query
    steps = stat_thresholds(settings)
    for panel in board["panels"]:
        if panel["type"] == "stat" and panel["title"] in steps:
            thresholds = panel["fieldConfig"]["defaults"]["thresholds"]
            thresholds["steps"] = [
                {"color": color, "value": value} for value, color in steps[panel["title"]]
            ]
    return board


def render_dashboard(settings: RuleSettings | None = None, *, datasource: str | None = None) -> str:
    """:func:`dashboard` as the JSON text Grafana imports (keys sorted, as generated)."""
    return json.dumps(dashboard(settings, datasource=datasource), indent=2, sort_keys=True) + "\n"
