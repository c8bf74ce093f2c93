"""Durable storage of handoffs: the interface and its backends."""

from ._base import (
    HandoffQuery,
    HeartbeatResult,
    Ledger,
    OutcomeCount,
    OutcomeTally,
    RecordResult,
    age_bucket_labels,
)
from ._postgres import PostgresLedger
from ._sqlite import SqliteLedger
from ._url import ledger_from_url

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
