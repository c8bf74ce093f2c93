"""The last line of defence against a task token in text: scrub every encoding of a known one.

Tokens are redacted where they are logged (field names, bytes values, temporalio's own
records); this module catches what slipped through anyway — a token inside an exception
message, a library's f-string, a traceback — by looking for every way the process's recent
tokens can be written in the final text: the raw bytes, their Python repr, hex, base64
(standard and URL-safe, with and without padding), protobuf text escapes, and each of
those JSON-escaped as a JSON log line writes them.

Every token the product handles passes through :mod:`._tokens` (digest or fingerprint), which
:func:`remember_token` s it here; the most recent :data:`REMEMBERED_TOKENS` are kept. A line is
scanned once with a window index over the forms' last characters, so the cost grows with the
line's length, not with the number of tokens.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict

#: How many of the most recent tokens are scrubbed (each keeps ~35 strings, ~9 KiB).
REMEMBERED_TOKENS = 1024
#: What a scrubbed token is replaced with.
REDACTED = "[redacted]"
#: Characters of a form used as its index key (its last ones: tokens of one namespace share
#: a long prefix, their ends differ).
_WINDOW = 12
#: Tokens shorter than this are not scrubbed: their forms would match ordinary text.
_MIN_TOKEN_BYTES = 8


def _protobuf_text(token: bytes, *, as_utf8: bool) -> str:
    """``bytes`` as protobuf's text format writes it (C escapes, octal for the rest)."""
    out: list[str] = []
    specials = {10: r"\n", 13: r"\r", 9: r"\t", 34: r"\"", 39: r"\'", 92: r"\\"}
    text: str | None = None
    if as_utf8:
        try:
            text = token.decode()
        except UnicodeDecodeError:
            return ""
    if text is not None:
        for char in text:
            code = ord(char)
            if code in specials:
                out.append(specials[code])
            elif code < 32 or code == 127:
                out.append(f"\\{code:03o}")
            else:
                out.append(char)
        return "".join(out)
    for byte in token:
        if byte in specials:
            out.append(specials[byte])
        elif byte < 32 or byte >= 127:
            out.append(f"\\{byte:03o}")
        else:
            out.append(chr(byte))
    return "".join(out)


def token_forms(token: bytes) -> frozenset[str]:
    """Every way ``token`` can appear in a rendered log line, an exception text or a page."""
    b64 = base64.b64encode(token).decode()
    url = base64.urlsafe_b64encode(token).decode()
    raw = token.decode("latin-1")
    base = {
        raw,
        repr(token),
        repr(token)[2:-1],
        token.hex(),
        b64,
        b64.rstrip("="),
        url,
        url.rstrip("="),
        _protobuf_text(token, as_utf8=False),
        _protobuf_text(token, as_utf8=True),
        repr(raw)[1:-1],
    }
    base.discard("")
    forms = set(base)
    for form in base:
        as_json = json.dumps(form)[1:-1]
        as_repr = repr(form)[1:-1]  # inside an exception's repr: RuntimeError('...')
        # As a JSON line writes each, and each of those once more (a JSON string in a field,
        # a log shipper's envelope, the repr of an exception in a JSON line).
        forms.update((as_json, as_repr, json.dumps(as_json)[1:-1], json.dumps(as_repr)[1:-1]))
    return frozenset(forms)


class KnownTokens:
    """The recent tokens of this process and a scrubber for every form of them."""

    def __init__(self, capacity: int = REMEMBERED_TOKENS) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._tokens: OrderedDict[bytes, frozenset[str]] = OrderedDict()
        #: last _WINDOW characters of a form -> the forms ending so (with a reference count
        #: per form: two tokens can share no form, but keep removal exact anyway).
        self._index: dict[str, dict[str, int]] = {}

    def remember(self, token: bytes) -> None:
        """Scrub ``token`` from now on (until :data:`REMEMBERED_TOKENS` newer ones push it out)."""
        if len(token) < _MIN_TOKEN_BYTES:
            return
        with self._lock:
            if token in self._tokens:
                self._tokens.move_to_end(token)
                return
            forms = token_forms(token)
            self._tokens[token] = forms
            for form in forms:
                bucket = self._index.setdefault(form[-_WINDOW:], {})
                bucket[form] = bucket.get(form, 0) + 1
            while len(self._tokens) > self._capacity:
                _, old = self._tokens.popitem(last=False)
                for form in old:
                    key = form[-_WINDOW:]
                    bucket = self._index[key]
                    bucket[form] -= 1
                    if not bucket[form]:
                        del bucket[form]
                    if not bucket:
                        del self._index[key]

    def scrub(self, text: str) -> str:
        """``text`` with every form of every remembered token replaced by :data:`REDACTED`."""
        index = self._index
        if not index or len(text) < _WINDOW:
            return text
        spans: list[tuple[int, int]] = []
        with self._lock:
            for end in range(_WINDOW, len(text) + 1):
                bucket = index.get(text[end - _WINDOW : end])
                if bucket is None:
                    continue
                for form in bucket:
                    start = end - len(form)
                    if start >= 0 and text.startswith(form, start):
                        spans.append((start, end))
        if not spans:
            return text
        spans.sort()
        pieces: list[str] = []
        position = 0
        for start, end in spans:
            if end <= position:
                continue  # inside a longer form already replaced
            if start >= position:  # else it overlaps the one just replaced: extend that
                pieces.append(text[position:start])
                pieces.append(REDACTED)
            position = end
        pieces.append(text[position:])
        return "".join(pieces)


#: The process's tokens (every component of one process shares them).
KNOWN_TOKENS = KnownTokens()


def remember_token(token: bytes) -> None:
    """Scrub ``token`` from logs and texts of this process from now on."""
    KNOWN_TOKENS.remember(token)


def scrub_tokens(text: str) -> str:
    """``text`` without any form of a token this process has handled."""
    return KNOWN_TOKENS.scrub(text)
