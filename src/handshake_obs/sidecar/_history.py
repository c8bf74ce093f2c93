"""Pending counts over time, kept in this process: the samples the status page draws.

A small ring (:data:`SAMPLES_KEPT` samples, one every :data:`SAMPLE_SECONDS`: the last hour)
filled from the ledger by a background loop, so the page needs no Prometheus to show how the
backlog moved. It starts empty with the process; Grafana keeps the longer history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from .._records import PendingSummary

#: Seconds between two samples.
SAMPLE_SECONDS = 15.0
#: Samples kept: an hour of them.
SAMPLES_KEPT = 240


@dataclass(frozen=True, slots=True)
class PendingSample:
    """Pending handoffs by target at one time."""

    at: float
    by_target: Mapping[str, int]


@dataclass(slots=True)
class PendingHistory:
    """The ring of samples, oldest first."""

    samples: deque[PendingSample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))

    def add(self, at: float, summaries: list[PendingSummary]) -> None:
        """Keep a sample of ``summaries`` taken at ``at``."""
        self.samples.append(sample_of(at, summaries))

    def with_now(self, at: float, summaries: list[PendingSummary]) -> list[PendingSample]:
        """The samples kept, and the one the page has just read as the last."""
        return [*self.samples, sample_of(at, summaries)]


def sample_of(at: float, summaries: list[PendingSummary]) -> PendingSample:
    """A sample of pending summaries."""
    return PendingSample(at, {s.target: s.pending for s in summaries})
