"""The last line of defence against a task token in text: scrub every encoding of a known one.

Tokens are redacted where they are logged (field names, bytes values, temporalio's own
records); this module catches what slipped through anyway — a token inside an exception
message, a library's f-string, a traceback — by looking for every way the process's recent
tokens can be written in the final text: the raw bytes, their Python repr, hex, base64
(standard and URL-safe, with and without padding), protobuf text escapes, and each of
those JSON-escaped as a JSON log line writes them.

Every token the product handles passes through :mod:`._tokens` (digest or fingerprint), which
:func:`remember_token` s it here; the most recent :data:`REMEMBERED_TOKENS` are kept. A line is
probed every few characters against a window index of the forms' ends, so the cost grows with
the line's length, not with the number of tokens.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

#: How many of the most recent tokens are scrubbed (each costs ~30 KiB of index).
REMEMBERED_TOKENS = 512
#: What a scrubbed token is replaced with.
REDACTED = "[redacted]"
#: Characters of a form used as an index key, and the distance between two probes of a line.
_WINDOW = 16
_STRIDE = 4
#: Tokens shorter than this are not scrubbed: their forms would match ordinary text.
_MIN_TOKEN_BYTES = 8


#: Text that JSON and repr() both write unchanged (hex, base64 of either alphabet).
_PLAIN = re.compile(r"[A-Za-z0-9+/=_-]*")


def _c_escape(code: int) -> str:
    specials = {10: r"\n", 13: r"\r", 9: r"\t", 34: r"\"", 39: r"\'", 92: r"\\"}
    if code in specials:
        return specials[code]
    return chr(code) if 32 <= code < 127 else f"\\{code:03o}"


#: How protobuf's text format writes each byte of a bytes field (C escapes, octal).
_PROTOBUF_ESCAPES = tuple(_c_escape(code) for code in range(256))


def _protobuf_text(token: bytes, *, as_utf8: bool) -> str:
    """``bytes`` as protobuf's text format writes it; ``as_utf8``: valid UTF-8 beyond ASCII
    is kept as characters (its ``as_utf8`` mode)."""
    if not as_utf8:
        return "".join(map(_PROTOBUF_ESCAPES.__getitem__, token))
    try:
        text = token.decode()
    except UnicodeDecodeError:
        return ""
    return "".join(_PROTOBUF_ESCAPES[ord(c)] if ord(c) < 128 else c for c in text)


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
        if _PLAIN.fullmatch(form):
            continue  # JSON and repr write it as it is (hex, base64): no other form
        as_json = json.dumps(form)[1:-1]
        as_repr = repr(form)[1:-1]  # inside an exception's repr: RuntimeError('...')
        # As a JSON line writes each, and each of those once more (a JSON string in a field,
        # a log shipper's envelope, the repr of an exception in a JSON line).
        forms.update((as_json, as_repr, json.dumps(as_json)[1:-1], json.dumps(as_repr)[1:-1]))
    return frozenset(forms)


class KnownTokens:
    """The recent tokens of this process and a scrubber for every form of them.

    Each form is indexed by its last :data:`_STRIDE` windows of :data:`_WINDOW` characters;
    a line is then probed only every :data:`_STRIDE` characters: any occurrence of a form
    puts one probe on one of those windows.
    """

    def __init__(self, capacity: int = REMEMBERED_TOKENS) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        #: token -> where its forms are in the index (kept to take them out again)
        self._tokens: OrderedDict[bytes, _IndexKeys] = OrderedDict()
        #: window -> {(form, offset of the window in the form): how many tokens have it}
        self._index: dict[str, dict[tuple[str, int], int]] = {}
        #: forms too short to be indexed (a short token's raw bytes): looked for directly
        self._short: dict[str, int] = {}
        #: remembered, not indexed yet (a dict: ordered, and a token repeated is queued once)
        self._pending: dict[bytes, None] = {}

    def remember(self, token: bytes) -> None:
        """Scrub ``token`` from now on (until :data:`REMEMBERED_TOKENS` newer ones push it out).

        Cheap: the token is queued; its forms are indexed by the next :meth:`scrub` (on the
        thread that renders log lines, not the caller's event loop).
        """
        if len(token) >= _MIN_TOKEN_BYTES:
            with self._lock:
                self._pending[token] = None
                if len(self._pending) > self._capacity:  # nothing logged for a long while
                    del self._pending[next(iter(self._pending))]

    def _index_pending(self) -> None:
        # Called with the lock held.
        pending, self._pending = self._pending, {}
        for token in pending:
            self._add(token)

    def _add(self, token: bytes) -> None:
        if token in self._tokens:
            self._tokens.move_to_end(token)
            return
        keys = _index_keys(token_forms(token))
        self._tokens[token] = keys
        index, short = self._index, self._short
        for key, entry in keys.windows:
            bucket = index.get(key)
            if bucket is None:
                index[key] = {entry: 1}
            else:
                bucket[entry] = bucket.get(entry, 0) + 1
        for form in keys.short:
            short[form] = short.get(form, 0) + 1
        while len(self._tokens) > self._capacity:
            _, old = self._tokens.popitem(last=False)
            self._forget(old)

    def _forget(self, keys: _IndexKeys) -> None:
        index, short = self._index, self._short
        for key, entry in keys.windows:
            bucket = index[key]
            left = bucket[entry] - 1
            if left:
                bucket[entry] = left
            elif len(bucket) == 1:
                del index[key]
            else:
                del bucket[entry]
        for form in keys.short:
            left = short[form] - 1
            if left:
                short[form] = left
            else:
                del short[form]

    def scrub(self, text: str) -> str:
        """``text`` with every form of every remembered token replaced by :data:`REDACTED`."""
        if len(text) < _MIN_TOKEN_BYTES:
            return text
        spans: list[tuple[int, int]] = []
        with self._lock:
            if self._pending:
                self._index_pending()
            if not self._tokens:
                return text
            index = self._index
            for probe in range(0, len(text) - _WINDOW + 1, _STRIDE):
                bucket = index.get(text[probe : probe + _WINDOW])
                if bucket is None:
                    continue
                for form, offset in bucket:
                    start = probe - offset
                    if start >= 0 and text.startswith(form, start):
                        spans.append((start, start + len(form)))
            for form in self._short:
                start = text.find(form)
                while start != -1:
                    spans.append((start, start + len(form)))
                    start = text.find(form, start + 1)
        return _replaced(text, spans) if spans else text


@dataclass(frozen=True, slots=True)
class _IndexKeys:
    """Where one token's forms go in the index: (window, (form, offset)) of each long form's
    last :data:`_STRIDE` windows, and the forms too short for a window."""

    windows: tuple[tuple[str, tuple[str, int]], ...]
    short: tuple[str, ...]


def _index_keys(forms: frozenset[str]) -> _IndexKeys:
    # Windows near a form's end: tokens of one namespace share a long prefix, their ends
    # differ. One probe of any occurrence lands on one of these _STRIDE offsets.
    windows: list[tuple[str, tuple[str, int]]] = []
    short: list[str] = []
    for form in forms:
        if len(form) < _WINDOW + _STRIDE - 1:
            short.append(form)
            continue
        last = len(form) - _WINDOW
        windows.extend(
            (form[o : o + _WINDOW], (form, o)) for o in range(last - _STRIDE + 1, last + 1)
        )
    return _IndexKeys(tuple(windows), tuple(short))


def _replaced(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each of ``spans`` (overlapping ones merged) replaced by REDACTED."""
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
