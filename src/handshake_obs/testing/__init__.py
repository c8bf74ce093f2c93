"""Test support: what your own tests and load tests need to exercise handshake-obs.

* :class:`MemoryLedger`: the ledger's rules without a database.
* :func:`pending_record`: a new pending :class:`~handshake_obs.HandoffRecord`, shaped like the
  ones a worker records (random task token, its fingerprint, a fresh handoff id).
* :func:`bulk_insert`: many new pending records into an open SQLite, PostgreSQL or memory
  ledger, in batched transactions, to seed tests at a million rows. It skips the record
  rule's checks: fresh rows only.
"""

from ..ledger import MemoryLedger
from ..ledger._bulk_insert import bulk_insert
from ._pending_record import pending_record

__all__ = ["MemoryLedger", "bulk_insert", "pending_record"]
