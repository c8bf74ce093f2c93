"""The embedded ledger: one SQLite file."""

from ._ledger import SqliteLedger

__all__ = ["SqliteLedger"]
