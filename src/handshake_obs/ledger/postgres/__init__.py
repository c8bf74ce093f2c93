"""The shared ledger: PostgreSQL, for several replicas."""

from ._ledger import PostgresLedger

__all__ = ["PostgresLedger"]
