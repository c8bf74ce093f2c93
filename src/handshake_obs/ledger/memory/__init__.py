"""The in-memory ledger: the shared rules without a database, for tests."""

from ._ledger import MemoryLedger
from ._tables import MemoryTables

__all__ = ["MemoryLedger", "MemoryTables"]
