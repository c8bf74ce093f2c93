"""The changes this process made to what is pending, numbered, so that a pending snapshot
knows whether it includes them.

Every handoff the counters count as started or finished is a change to what is pending. A
snapshot remembers the number reached when its ledger query began: every change numbered up
to it had already committed, so the snapshot includes it; a later one it may miss. A scrape
whose snapshot is behind the number now refreshes it first (:mod:`._pending_refresher`).
"""

from __future__ import annotations

import threading


class PendingChanges:
    """How many handoffs this process has counted as started or finished (thread-safe: the
    event loop notes changes, scrape threads read them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def note(self) -> None:
        """One handoff was recorded or finished, and the ledger has committed it."""
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        """How many changes were noted so far."""
        with self._lock:
            return self._count
