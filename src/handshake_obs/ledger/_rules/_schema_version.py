"""Which stored schema a ledger may open."""

from __future__ import annotations

from ..._errors import LedgerError


def check_schema_version(found: int, known: int) -> None:
    """Refuse a store whose schema is newer than this code knows (a newer handshake-obs
    migrated it): writing it with older rules could break what the newer code relies on.
    An older schema is fine: it is migrated forward."""
    if found > known:
        raise LedgerError(
            f"ledger schema version {found} is newer than this handshake-obs understands ({known})"
        )
