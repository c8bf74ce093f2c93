"""The one definition of a handoff search, shared by the inventory API, the status page and
``handshake-obs pending``.

Each field is one URL query parameter of the same name: the API reads them, the page's
search form writes them (and so does each alert's ``status_url``), and the CLI sends them.
Parsing and validation happen here once, so the three cannot drift apart.

It imports nothing but the vocabulary: the CLI's parser reads :data:`FILTER_FIELDS` for its
help without loading the heavy layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ._vocabulary import State

#: Longest text filter accepted (a workflow id, a target name).
MAX_FILTER_TEXT = 256
#: Largest age filter accepted: ten years.
MAX_AGE_SECONDS = 10 * 365 * 86400
#: ``state`` values that mean "any state".
ANY_STATE = ("", "all", "any")

#: Query parameter name -> what it selects (the API's, the page's and the CLI's help).
FILTER_FIELDS: Mapping[str, str] = {
    "handoff_id": "only the handoff with this id (ho_...)",
    "workflow_id": "only handoffs whose workflow id starts with this",
    "target": "only handoffs to this target",
    "state": "pending, finished or all",
    "min_age_seconds": "only handoffs started at least this many seconds ago",
}


class InvalidFilterError(ValueError):
    """A search parameter that cannot be read; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class HandoffFilter:
    """Which handoffs a search selects; None selects any."""

    #: Exactly this handoff.
    handoff_id: str | None = None
    #: Workflow ids starting with this (an exact id is its own prefix).
    workflow_id: str | None = None
    #: Exactly this target.
    target: str | None = None
    #: Pending or finished; None: both.
    state: State | None = None
    #: Started at least this many seconds ago.
    min_age_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("handoff_id", "workflow_id", "target"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_FILTER_TEXT:
                raise InvalidFilterError(f"{name}: longer than {MAX_FILTER_TEXT} characters")
        age = self.min_age_seconds
        if age is not None and not (0 <= age <= MAX_AGE_SECONDS):
            raise InvalidFilterError(
                f"min_age_seconds: must be between 0 and {MAX_AGE_SECONDS}, not {age:g}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> HandoffFilter:
        """The filter in URL query parameters (empty values select any); unknown parameters
        are not this filter's and are ignored."""

        def text(name: str) -> str | None:
            value = params.get(name, "").strip()
            return value or None

        return cls(
            handoff_id=text("handoff_id"),
            workflow_id=text("workflow_id"),
            target=text("target"),
            state=parse_state(params.get("state", "")),
            min_age_seconds=_parse_age(params.get("min_age_seconds", "")),
        )

    def params(self) -> dict[str, str]:
        """The filter as URL query parameters (only the fields set; "all" for any state)."""
        found: dict[str, str] = {}
        for name in ("handoff_id", "workflow_id", "target"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        found["state"] = self.state.value if self.state is not None else "all"
        if self.min_age_seconds is not None:
            found["min_age_seconds"] = f"{self.min_age_seconds:g}"
        return found

    def describe(self) -> str:
        """The filter for people: ``state pending, target billing, at least 21600s old``."""
        parts = [f"state {self.state.value if self.state else 'any'}"]
        if self.handoff_id:
            parts.append(f"handoff {self.handoff_id}")
        if self.workflow_id:
            parts.append(f"workflow id starting {self.workflow_id!r}")
        if self.target:
            parts.append(f"target {self.target}")
        if self.min_age_seconds is not None:
            parts.append(f"at least {self.min_age_seconds:g}s old")
        return ", ".join(parts)


def parse_state(value: str) -> State | None:
    """``pending`` or ``finished``; empty, ``all`` or ``any``: None (both)."""
    text = value.strip().lower()
    if text in ANY_STATE:
        return None
    try:
        return State(text)
    except ValueError:
        raise InvalidFilterError(
            f"state: {value[:64]!r} is not one of pending, finished, all"
        ) from None


def _parse_age(value: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    try:
        age = float(text)
    except ValueError:
        raise InvalidFilterError(f"min_age_seconds: {text[:64]!r} is not a number") from None
    if not math.isfinite(age):
        raise InvalidFilterError(f"min_age_seconds: {text[:64]!r} is not a number")
    return age
