"""The dashboard's colour thresholds, from the rules' settings: one configuration for both.

A stat panel turns orange and red where an alert warns and pages, so the panels that mirror
an alert take their steps from :class:`RuleSettings`: ``dashboards/build.py`` generates them
with the defaults and ``handshake-obs export dashboards`` with the settings given.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._rule_settings import RuleSettings, seconds

#: Titles of the stat panels whose colours follow an alert.
PENDING_PANEL = "Pending handoffs"
OLDEST_PANEL = "Oldest pending handoff"
FAILURE_RATIO_PANEL = "Completion failure ratio (10 min)"
REAPER_PANEL = "Last successful reaper scan"

#: One threshold step: from ``value`` on (None: from the lowest value), ``color``.
Step = tuple[float | None, str]


def stat_thresholds(settings: RuleSettings) -> Mapping[str, list[Step]]:
    """Panel title -> its steps: orange where the warning fires, red where the page does."""
    stale = seconds(settings.reaper_stale_after)
    return {
        PENDING_PANEL: [(None, "green"), (settings.backlog_pending, "orange")],
        OLDEST_PANEL: [
            (None, "green"),
            (seconds(settings.stuck_warning_age), "orange"),
            (seconds(settings.stuck_critical_age), "red"),
        ],
        # Orange half-way to the page: the ratio is noisy, an early hint helps.
        FAILURE_RATIO_PANEL: [
            (None, "green"),
            (settings.failure_ratio / 2, "orange"),
            (settings.failure_ratio, "red"),
        ],
        REAPER_PANEL: [(None, "green"), (stale / 5, "orange"), (stale, "red")],
    }
