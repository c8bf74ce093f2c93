"""Ledger URLs.

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``
* ``postgresql://user:password@host:5432/dbname?schema=name`` (also ``postgres://``): any
  libpq URL; the optional ``schema`` parameter names the schema holding the ledger's tables
  and is removed before connecting.
* ``memory://``: a fresh in-memory ledger (for tests: nothing survives the process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .._errors import ConfigurationError
from .._token_keys import TokenKeys
from ._interface import Ledger
from .memory import MemoryLedger
from .sqlite import SqliteLedger

if TYPE_CHECKING:
    from .postgres import PostgresLedger

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_MEMORY_SCHEME = "memory"
_MEMORY_URL = f"{_MEMORY_SCHEME}://"


def ledger_from_url(
    url: str, *, create: bool = True, token_keys: TokenKeys | None = None
) -> Ledger:
    """The (unopened) ledger a URL names. ``create=False``: a SQLite file that does not
    exist is refused when opened, never created empty (a command that expects a ledger).
    ``token_keys`` encrypt stored tokens (SQLite and PostgreSQL; the in-memory ledger keeps
    nothing at rest)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # Same convention as SQLAlchemy: three slashes for a relative path, four for absolute.
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path or parts.query or parts.fragment:
            raise ConfigurationError(
                f"invalid SQLite ledger URL {url!r}: expected sqlite:///path/to/file.db"
            )
        return SqliteLedger(path, create=create, token_keys=token_keys)
    if parts.scheme in _POSTGRES_SCHEMES:
        return _postgres_ledger(url, token_keys)
    if parts.scheme == _MEMORY_SCHEME:
        if url != _MEMORY_URL:
            raise ConfigurationError(
                f"invalid in-memory ledger URL {_redact(url)!r}: expected {_MEMORY_URL}"
            )
        return MemoryLedger()
    raise ConfigurationError(
        f"unsupported ledger URL scheme {parts.scheme!r} in {_redact(url)!r}: "
        f"use sqlite:///..., postgresql://... or {_MEMORY_URL}"
    )


def _postgres_ledger(url: str, token_keys: TokenKeys | None) -> PostgresLedger:
    # Imported only for a PostgreSQL URL: psycopg is the 'postgres' extra's, not the core's.
    from .postgres import PostgresLedger  # noqa: PLC0415

    parts = urlsplit(url)
    if parts.fragment:
        raise ConfigurationError(f"invalid PostgreSQL ledger URL {_redact(url)!r}: no # allowed")
    # The other parameters are passed to libpq exactly as written (it decodes them itself).
    kept: list[str] = []
    schemas: list[str] = []
    for item in filter(None, parts.query.split("&")):
        key, _, value = item.partition("=")
        if unquote(key) == "schema":
            schemas.append(unquote(value))
        else:
            kept.append(item)
    if len(schemas) > 1 or (schemas and not schemas[0]):
        raise ConfigurationError(
            f"invalid PostgreSQL ledger URL {_redact(url)!r}: give one non-empty schema"
        )
    base = url.partition("?")[0]  # not geturl(): it would turn postgresql:///db into postgresql:/db
    conninfo = f"{base}?{'&'.join(kept)}" if kept else base
    return PostgresLedger(conninfo, schema=schemas[0] if schemas else None, token_keys=token_keys)


def _redact(url: str) -> str:
    """The URL without a password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
