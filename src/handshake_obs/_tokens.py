"""Task tokens are bearer credentials: this module is the only place that looks at one.

Everything else identifies a token by its fingerprint (for people: logs, spans, the page) or
its digest (for the ledger's lookups), and a handoff by an unguessable handoff id that can be
given to an external system instead of the token.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time

from ._token_scrubbing import remember_token

#: Hex digits of SHA-256 shown as the fingerprint: enough to tell tokens apart in an
#: incident, far too few to recover or forge one.
FINGERPRINT_LENGTH = 12

_HANDOFF_ID_PREFIX = "ho_"
#: A handoff id's body: 24 characters of 6 bits, the first 8 its creation time in
#: milliseconds since the epoch (until the year 10889), the other 16 random (96 bits).
_HANDOFF_ID_TIME_BYTES = 6
_HANDOFF_ID_RANDOM_BYTES = 12
#: Base64's 64 characters in ASCII order: a body written with them compares, byte by byte,
#: as its bits do. The same characters as URL-safe base64, so the id's shape is unchanged.
_SORTED_ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_URLSAFE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_SORTED = str.maketrans(_URLSAFE_ALPHABET, _SORTED_ALPHABET)
#: A handoff id's published shape: its prefix and 24 of those characters (the API's schema).
HANDOFF_ID_PATTERN = rf"^{_HANDOFF_ID_PREFIX}[A-Za-z0-9_\-]{{24}}$"
_HANDOFF_ID = re.compile(HANDOFF_ID_PATTERN)


def token_digest(task_token: bytes) -> bytes:
    """The SHA-256 digest the ledger indexes tokens by."""
    remember_token(task_token)  # every token the product handles is digested: scrub it
    return hashlib.sha256(task_token).digest()


def token_fingerprint(task_token: bytes) -> str:
    """A short, stable, non-secret name for a task token."""
    remember_token(task_token)
    return hashlib.sha256(task_token).hexdigest()[:FINGERPRINT_LENGTH]


def new_handoff_id() -> str:
    """A fresh unguessable handoff id: its creation time, then 96 random bits.

    Ids made later sort later, so every index keyed by them (the ledger's rows, each
    handoff's timeline) takes new entries at its end. Wholly random ids put each record's
    entries on a page of their own, which its commit then writes whole: with ordered ids the
    SQLite writer spends a quarter less CPU per record (``bench.ledger_records``)."""
    millis = time.time_ns() // 1_000_000
    raw = millis.to_bytes(_HANDOFF_ID_TIME_BYTES, "big") + secrets.token_bytes(
        _HANDOFF_ID_RANDOM_BYTES
    )
    return _HANDOFF_ID_PREFIX + base64.urlsafe_b64encode(raw).decode().translate(_TO_SORTED)


def looks_like_handoff_id(value: str) -> bool:
    """Whether ``value`` has the shape of a handoff id (cheap input validation)."""
    return _HANDOFF_ID.fullmatch(value) is not None
