"""The optional parts of handshake-obs, and the extra that installs what each one imports.

The core install is what runs inside a user's worker and completer: the library, SQLite
ledger, metrics, spans and logs. The sidecar, the PostgreSQL ledger, OTLP export, the proxy and
the local stack are extras (``pyproject.toml``). A part imported without its extra fails at
once, naming the extra and the command that installs it, instead of deep inside with a
bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Final

from ._errors import MissingExtraError

#: Extra -> the top-level modules its part imports (each declared by that extra).
EXTRA_MODULES: Final[Mapping[str, tuple[str, ...]]] = {
    "sidecar": ("fastapi", "starlette", "uvicorn", "httpx"),
    "postgres": ("psycopg", "psycopg_pool"),
    "otlp": ("opentelemetry.exporter.otlp",),
    "export": ("yaml",),
    "encryption": ("cryptography",),
    "proxy": ("grpc",),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def require_extra(extra: str, part: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` is installed."""
    missing = [module for module in EXTRA_MODULES[extra] if not _installed(module)]
    if missing:
        raise MissingExtraError(part, extra, missing)
