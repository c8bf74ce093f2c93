"""Durable storage of handoffs: the interface, its backends, and one in memory for tests."""

from ._age_buckets import age_bucket_labels
from ._interface import HandoffQuery, HeartbeatResult, Ledger, OutcomeTally, RecordResult
from ._url import ledger_from_url
from .memory import MemoryLedger
from .postgres import PostgresLedger
from .sqlite import SqliteLedger

__all__ = [
    "HandoffQuery",
    "HeartbeatResult",
    "Ledger",
    "MemoryLedger",
    "OutcomeTally",
    "PostgresLedger",
    "RecordResult",
    "SqliteLedger",
    "age_bucket_labels",
    "ledger_from_url",
]
