"""Ledger URLs: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``."""

from __future__ import annotations

from urllib.parse import urlsplit

from .._errors import ConfigurationError
from ._base import Ledger
from ._sqlite import SqliteLedger


def ledger_from_url(url: str) -> Ledger:
    """The (unopened) ledger a URL names."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # Same convention as SQLAlchemy: three slashes for a relative path, four for absolute.
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path or parts.query or parts.fragment:
            raise ConfigurationError(
                f"invalid SQLite ledger URL {url!r}: expected sqlite:///path/to/file.db"
            )
        return SqliteLedger(path)
    raise ConfigurationError(
        f"unsupported ledger URL scheme {parts.scheme!r} in {_redact(url)!r}: use sqlite:///..."
    )


def _redact(url: str) -> str:
    """The URL without a password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
