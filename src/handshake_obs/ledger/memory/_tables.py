"""The in-memory ledger's tables: what the SQL ledgers keep in rows, kept in dictionaries.

Every entry is replaced whole, never changed in place, so a transaction can be undone by
putting back the entries it replaced (see :class:`Changes`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TypeVar

from ..._records import HandoffEvent, HandoffRecord
from .._rules import CallIntent, EarlyOutcome

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Claim:
    """A reaper's claim on an expired handoff."""

    claimant: str
    until: float


@dataclass(slots=True)
class MemoryTables:
    """The state several :class:`MemoryLedger` instances may share, as replicas share a
    database: give the same tables to each."""

    #: Handoffs by id.
    handoffs: dict[str, HandoffRecord] = field(default_factory=dict)
    #: Handoff ids by token digest (the unique index of the SQL ledgers).
    ids_by_digest: dict[bytes, str] = field(default_factory=dict)
    #: Claims by handoff id (the reaper's and the reconciler's).
    claims: dict[str, Claim] = field(default_factory=dict)
    #: When the reconciler checks each handoff next, by handoff id (absent: never checked).
    next_checks: dict[str, float] = field(default_factory=dict)
    #: In-flight call marks by handoff id: each call's id and when its mark lapses.
    calls_in_flight: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Intents of finishing calls by handoff id, then call id (kept while the mark is).
    intents: dict[str, dict[str, CallIntent]] = field(default_factory=dict)
    #: When the readiness probe last wrote.
    probe: dict[int, float] = field(default_factory=dict)
    #: Outcomes kept for tokens not recorded yet, by token digest.
    early_outcomes: dict[bytes, EarlyOutcome] = field(default_factory=dict)
    #: Each handoff's timeline, by handoff id (a tuple, replaced whole on each append).
    events: dict[str, tuple[HandoffEvent, ...]] = field(default_factory=dict)
    #: Pending handoffs by (target, start-time bucket); no entry counts zero.
    pending_counts: dict[tuple[str, int], int] = field(default_factory=dict)


class Changes:
    """The writes of one transaction, and how to undo them."""

    __slots__ = ("_undo",)

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def put(self, table: MutableMapping[_K, _V], key: _K, value: _V) -> None:
        """Set ``table[key]``, remembering what it was."""
        self._remember(table, key)
        table[key] = value

    def delete(self, table: MutableMapping[_K, _V], key: _K) -> None:
        """Remove ``table[key]`` if present, remembering it."""
        if key in table:
            self._remember(table, key)
            del table[key]

    def rollback(self) -> None:
        """Put every table back as it was before the first write."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _remember(self, table: MutableMapping[_K, _V], key: _K) -> None:
        if key in table:
            self._undo.append(functools.partial(table.__setitem__, key, table[key]))
        else:
            self._undo.append(functools.partial(_discard, table, key))


def _discard(table: MutableMapping[_K, _V], key: _K) -> None:
    table.pop(key, None)
