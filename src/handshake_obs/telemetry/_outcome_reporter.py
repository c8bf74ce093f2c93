"""The one place a handoff's outcome is counted, logged and marked on its span.

The ledger tells exactly one caller that it finished a handoff (a completion, the reaper, a
new attempt superseding an old one, an early outcome applied at recording, an abort); that
caller hands the :class:`~handshake_obs._records.FinishedOutcome` here, so that an outcome
is counted once and described the same way whichever part of handshake-obs recorded it.
"""

from __future__ import annotations

from typing import Any

import structlog
from opentelemetry.trace import Span

from .._records import FinishedOutcome
from ._logging import handoff_fields
from ._metrics import HandshakeMetrics
from ._tracing import HandshakeTracing, trace_exemplar

_log = structlog.get_logger("handshake_obs.outcomes")


class OutcomeReporter:
    """Counts, logs and traces outcomes; one per process, shared by recorder and path."""

    def __init__(self, metrics: HandshakeMetrics) -> None:
        self._metrics = metrics

    def report(
        self,
        finished: FinishedOutcome,
        event: str,
        *,
        log: structlog.typing.FilteringBoundLogger | None = None,
        span: Span | None = None,
        **fields: Any,
    ) -> None:
        """Report the outcome this caller recorded: counted (with the current span as its
        exemplar), logged as ``event`` with the handoff's identity, and set on ``span``.

        ``log`` keeps the caller's logger and bound context; ``fields`` add to the line.
        """
        self._metrics.observe_finished(finished, exemplar=trace_exemplar())
        if span is not None:
            HandshakeTracing.finished(span, finished)
        (log or _log).info(
            event,
            **handoff_fields(finished.record),
            outcome=finished.outcome.value,
            latency_seconds=round(finished.latency_seconds, 3),
            **fields,
        )
