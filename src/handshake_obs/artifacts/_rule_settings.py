"""The one configuration of the rules and dashboards: thresholds, durations and selectors.

Durations are Prometheus durations (``90s``, ``6h``, ``1h30m``); ratios are fractions
(``0.5`` is 50 %). ``handshake-obs export --set NAME=VALUE`` (and ``alerts/rules.py
--set``) change a field; ``docs/alerts.md`` describes each.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._vocabulary import PUBLISHED_RUNBOOK_URL

#: Where the runbook is published; each alert links to its anchor there.
DEFAULT_RUNBOOK_URL = PUBLISHED_RUNBOOK_URL
#: Where the sidecar's status page is, as the people who get the alerts reach it: the
#: default listen address of ``handshake-obs serve``.
DEFAULT_STATUS_URL = "http://127.0.0.1:9464/"


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Thresholds and names of the rules. Durations are Prometheus durations (``90s``,
    ``6h``, ``1h30m``); ratios are fractions (``0.5`` is 50 %)."""

    #: Scrape job of the sidecar (and of every process sharing its ledger): the target-down
    #: and reaper alerts select it, unless ``job_selector`` says otherwise.
    sidecar_job: str = "handshake-obs"
    #: Label matchers that select the sidecar's series (and those of every process sharing
    #: its ledger), e.g. ``job="handshake-obs", namespace="payments"``. Empty: the job
    #: ``sidecar_job``.
    job_selector: str = ""
    #: Where ``docs/runbook.md`` is published; each alert links to its anchor there.
    runbook_url: str = DEFAULT_RUNBOOK_URL
    #: The sidecar's status page as on-call reaches it; each alert's ``status_url``
    #: annotation opens it filtered to what fired.
    status_url: str = DEFAULT_STATUS_URL
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
    #: No successful reconciler pass for this long, in a job whose reconciler ran before:
    #: warning (pending counts may include handoffs Temporal closed). Keep it well above
    #: ``HANDSHAKE_RECONCILE_INTERVAL_SECONDS``.
    reconciler_stale_after: str = "5m"
    reconciler_stale_for: str = "1m"
    #: A sidecar target down (or no target at all) for this long: critical.
    target_down_for: str = "2m"
    #: Pending gauges not recomputed for this long: warning. Keep it well above
    #: ``HANDSHAKE_METRICS_REFRESH_SECONDS``.
    gauges_stale_after: str = "2m"
    gauges_stale_for: str = "5m"
    #: Failures of handshake-obs's own instrumentation counted in this window: warning.
    instrumentation_errors_window: str = "15m"
    instrumentation_errors_for: str = "0m"

    @property
    def selector(self) -> str:
        """The label matchers of the sidecar's series: :attr:`job_selector`, or its job."""
        return self.job_selector.strip() or f'job="{self.sidecar_job}"'


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
