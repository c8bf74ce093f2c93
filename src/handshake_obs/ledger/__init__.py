"""Durable storage of handoffs: the interface and its backends."""

from ._interface import (
    HandoffQuery,
    HeartbeatResult,
    Ledger,
    OutcomeCount,
    OutcomeTally,
    RecordResult,
    age_bucket_labels,
)
from ._url import ledger_from_url
from .postgres._ledger import PostgresLedger
from .sqlite._ledger import SqliteLedger

__all__ = [
    "HandoffQuery",
    "HeartbeatResult",
    "Ledger",
    "OutcomeCount",
    "OutcomeTally",
    "PostgresLedger",
    "RecordResult",
    "SqliteLedger",
    "age_bucket_labels",
    "ledger_from_url",
]
