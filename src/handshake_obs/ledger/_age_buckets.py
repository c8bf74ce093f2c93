"""The pending-age ranges a pending summary counts handoffs in."""

from __future__ import annotations

from collections.abc import Sequence


def age_bucket_labels(age_bounds: Sequence[float]) -> list[str]:
    """Label values of the disjoint pending-age buckets: ``0s-60s``, ... ``>86400s``."""
    lowers = [0.0, *age_bounds]
    labels = [f"{lo:g}s-{hi:g}s" for lo, hi in zip(lowers, age_bounds, strict=False)]
    return [*labels, f">{lowers[-1]:g}s"]
