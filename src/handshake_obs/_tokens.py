"""Task tokens are bearer credentials: this module is the only place that looks at one.

Everything else identifies a token by its fingerprint (for people: logs, spans, the page) or
its digest (for the ledger's lookups), and a handoff by an unguessable handoff id that can be
given to an external system instead of the token.
"""

from __future__ import annotations

import hashlib
import secrets

from ._token_scrubbing import remember_token

#: Hex digits of SHA-256 shown as the fingerprint: enough to tell tokens apart in an
#: incident, far too few to recover or forge one.
FINGERPRINT_LENGTH = 12

_HANDOFF_ID_PREFIX = "ho_"
#: 144 random bits, URL-safe.
_HANDOFF_ID_BYTES = 18


def token_digest(task_token: bytes) -> bytes:
    """The SHA-256 digest the ledger indexes tokens by."""
    remember_token(task_token)  # every token the product handles is digested: scrub it
    return hashlib.sha256(task_token).digest()


def token_fingerprint(task_token: bytes) -> str:
    """A short, stable, non-secret name for a task token."""
    remember_token(task_token)
    return hashlib.sha256(task_token).hexdigest()[:FINGERPRINT_LENGTH]


def new_handoff_id() -> str:
    """A fresh unguessable handoff id (144 random bits)."""
    return _HANDOFF_ID_PREFIX + secrets.token_urlsafe(_HANDOFF_ID_BYTES)


def looks_like_handoff_id(value: str) -> bool:
    """Whether ``value`` has the shape of a handoff id (cheap input validation)."""
    body = value.removeprefix(_HANDOFF_ID_PREFIX)
    return (
        value.startswith(_HANDOFF_ID_PREFIX)
        and len(body) == 24
        and all(c.isalnum() or c in "-_" for c in body)
    )
