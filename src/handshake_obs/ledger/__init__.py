"""Durable storage of handoffs: the interface and its backends."""

from ._base import HeartbeatResult, Ledger, OutcomeCount, RecordResult, age_bucket_labels
from ._postgres import PostgresLedger
from ._sqlite import SqliteLedger
from ._url import ledger_from_url

__all__ = [
    "HeartbeatResult",
    "Ledger",
    "OutcomeCount",
    "PostgresLedger",
    "RecordResult",
    "SqliteLedger",
    "age_bucket_labels",
    "ledger_from_url",
]
