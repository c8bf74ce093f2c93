"""Task tokens encrypted at rest: AES-256-GCM, one key id stored with each row.

Without keys, tokens are stored as given (the default). With keys, a token is stored as a
12-byte random nonce followed by its AES-GCM ciphertext and tag, authenticated together
with the handoff id (a ciphertext copied onto another row does not decrypt), and the row
keeps the id of the key that wrote it (``token_key_id``; NULL: stored as given). Reading a
row needs its key: a key that is not configured, or a wrong one, is a :class:`LedgerError`
that names the key id and the handoff, never a key or a token. A finished row keeps no
token, so it needs no key.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from .._errors import LedgerError
from .._token_keys import TokenKeys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES: Final = 12


class TokenCipher:
    """Encrypts new tokens with the current key; decrypts with the key a row names."""

    def __init__(self, keys: TokenKeys) -> None:
        from .._extras import require_extra  # noqa: PLC0415

        require_extra("encryption", "encrypting task tokens at rest (token_keys)")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        self._keys = keys
        self._ciphers: dict[str, AESGCM] = {}
        for key_id in keys.ids:
            key = keys.key(key_id)
            assert key is not None  # noqa: S101 - ids come from the keys
            self._ciphers[key_id] = AESGCM(key)

    @property
    def current(self) -> str:
        """The id of the key new tokens are encrypted with."""
        return self._keys.current

    def encrypt(self, token: bytes, handoff_id: str) -> bytes:
        """``token`` as stored under the current key."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._ciphers[self.current].encrypt(nonce, token, handoff_id.encode())

    def decrypt(self, stored: bytes, key_id: str, handoff_id: str) -> bytes:
        """The token a row stores under ``key_id``."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise LedgerError(
                f"the task token of handoff {handoff_id} is encrypted with key {key_id!r}, "
                f"which is not configured (token_keys has {', '.join(self._keys.ids)})"
            )
        return _open(cipher, stored, key_id, handoff_id)


def _open(cipher: AESGCM, stored: bytes, key_id: str, handoff_id: str) -> bytes:
    from cryptography.exceptions import InvalidTag  # noqa: PLC0415

    try:
        return cipher.decrypt(stored[:_NONCE_BYTES], stored[_NONCE_BYTES:], handoff_id.encode())
    except (InvalidTag, ValueError):
        raise LedgerError(
            f"the task token of handoff {handoff_id} does not decrypt with key {key_id!r}: "
            "a wrong key under that id, or a damaged row"
        ) from None


def no_key_for(key_id: str, handoff_id: str) -> LedgerError:
    """A row is encrypted but this ledger was given no keys."""
    return LedgerError(
        f"the task token of handoff {handoff_id} is encrypted with key {key_id!r}, but no "
        "token keys are configured (HANDSHAKE_TOKEN_KEYS or HANDSHAKE_TOKEN_KEYS_FILE)"
    )
