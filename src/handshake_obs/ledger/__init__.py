"""Durable storage of handoffs: the interface, its backends, and one in memory for tests.

``PostgresLedger`` is imported on first use: psycopg comes with the ``postgres`` extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._records import CallIntent
from ._age_buckets import age_bucket_labels
from ._interface import (
    FinishedLatency,
    HandoffQuery,
    HeartbeatResult,
    Ledger,
    OutcomeTally,
    RecordResult,
)
from ._pending_counts import PendingCountMismatch
from ._url import ledger_from_url
from .memory import MemoryLedger
from .sqlite import SqliteLedger

if TYPE_CHECKING:
    from .postgres import PostgresLedger

__all__ = [
    "CallIntent",
    "FinishedLatency",
    "HandoffQuery",
    "HeartbeatResult",
    "Ledger",
    "MemoryLedger",
    "OutcomeTally",
    "PendingCountMismatch",
    "PostgresLedger",
    "RecordResult",
    "SqliteLedger",
    "age_bucket_labels",
    "ledger_from_url",
]


def __getattr__(name: str) -> Any:
    if name != "PostgresLedger":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = importlib.import_module(".postgres", __name__).PostgresLedger
    globals()[name] = value  # looked up once
    return value
