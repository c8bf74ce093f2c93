"""The keys that encrypt stored task tokens at rest: which one writes, which ones read.

Given as ``ID:KEY`` entries, comma or newline separated (``#`` starts a comment in a file):
``KEY`` is 32 random bytes in base64 (standard or URL-safe), ``ID`` a short name stored with
each encrypted row. The first entry is the current key, which encrypts every new token; the
others only decrypt the rows written with them, so keys can rotate: put the new key first,
keep the old ones until no pending handoff uses them. A key never appears in a repr or an
error message, only its id.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ._errors import ConfigurationError

#: Bytes of an AES-256 key.
KEY_BYTES: Final = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")


@dataclass(frozen=True, slots=True)
class TokenKeys:
    """Keys by id; ``current`` encrypts, every one decrypts the rows written with it."""

    current: str
    _keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current not in self._keys:
            raise ConfigurationError(f"token key {self.current!r} is not among the keys given")
        for key_id, key in self._keys.items():
            if not _KEY_ID.match(key_id):
                raise ConfigurationError(f"token key id {key_id[:40]!r} is not a short name")
            if len(key) != KEY_BYTES:
                raise ConfigurationError(
                    f"token key {key_id!r} must be {KEY_BYTES} bytes (base64), not {len(key)}"
                )

    @property
    def ids(self) -> tuple[str, ...]:
        """Every key's id, the current one first."""
        return (self.current, *(k for k in self._keys if k != self.current))

    def key(self, key_id: str) -> bytes | None:
        """The key with this id (None: not configured)."""
        return self._keys.get(key_id)

    def __repr__(self) -> str:
        return f"TokenKeys(current={self.current!r}, ids={self.ids!r})"


def parse_token_keys(text: str, *, where: str) -> TokenKeys:
    """``ID:KEY`` entries (the first is current) as :class:`TokenKeys`; a
    :class:`ConfigurationError` naming ``where`` (never a key) for anything else."""
    keys: dict[str, bytes] = {}
    entries = [
        entry.strip()
        for line in text.splitlines()
        for entry in line.split("#", 1)[0].split(",")
        if entry.strip()
    ]
    if not entries:
        raise ConfigurationError(f"{where}: no token key given (expected ID:BASE64KEY)")
    for n, entry in enumerate(entries):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or not encoded.strip():
            raise ConfigurationError(f"{where}: entry {n + 1} is not ID:BASE64KEY")
        if key_id in keys:
            raise ConfigurationError(f"{where}: token key id {key_id!r} is given twice")
        keys[key_id] = _decode(encoded.strip(), where=where, key_id=key_id)
    try:
        return TokenKeys(next(iter(keys)), keys)
    except ConfigurationError as err:
        raise ConfigurationError(f"{where}: {err}") from None


def _decode(encoded: str, *, where: str, key_id: str) -> bytes:
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        if "-" in encoded or "_" in encoded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{where}: token key {key_id!r} is not base64") from None


def new_token_key() -> str:
    """A fresh key in the form the settings take (base64 of 32 random bytes)."""
    import secrets  # noqa: PLC0415

    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
