"""A :class:`~handshake_obs._handoff_filter.HandoffFilter` as the ledger's inventory query."""

from __future__ import annotations

from .._handoff_filter import HandoffFilter
from ..ledger import HandoffQuery


def query_of(
    search: HandoffFilter, *, now: float, limit: int, after: tuple[float, str] | None = None
) -> HandoffQuery:
    """The ledger query of a search at ``now``: the age filter becomes a start time."""
    return HandoffQuery(
        state=search.state,
        target=search.target,
        started_before=None if search.min_age_seconds is None else now - search.min_age_seconds,
        limit=limit,
        after=after,
        handoff_id=search.handoff_id,
        workflow_id_prefix=search.workflow_id,
    )
