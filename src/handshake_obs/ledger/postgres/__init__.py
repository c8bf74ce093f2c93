"""The shared ledger: PostgreSQL, for several replicas."""

from ..._extras import require_extra

require_extra("postgres", "the PostgreSQL ledger (postgresql:// ledger URLs)")

from ._ledger import PostgresLedger  # noqa: E402

__all__ = ["PostgresLedger"]
