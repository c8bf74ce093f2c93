"""The names the rules record and the dashboards read, derived from the vocabulary.

Recording rules hold the ratios and quantiles that both the alerts and the dashboards read;
their names (:class:`Recorded`) follow Prometheus's ``level:metric:operations`` convention
and are derived from the metrics they read, so a renamed metric renames its rules.
"""

from __future__ import annotations

from typing import Final

from .._vocabulary import UNSUCCESSFUL_OUTCOMES, Metric, Metrics, Outcome

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
    """Names of the recording rules, derived from the metrics they read: the alerts and
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
