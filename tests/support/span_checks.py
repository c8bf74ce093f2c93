"""Looking at finished spans: by name, by parent, and for secrets that must not be there."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def token_forms(token: bytes) -> list[str]:
    """The ways a raw task token could show up in text."""
    return [
        repr(token),
        token.hex(),
        base64.b64encode(token).decode(),
        base64.urlsafe_b64encode(token).decode(),
        token.decode("latin-1"),
        json.dumps(token.decode("latin-1"))[1:-1],
    ]


def assert_token_absent(values: Iterable[Any], tokens: Sequence[bytes]) -> None:
    """No token, in any form, inside any of ``values`` (strings, bytes, lists of them)."""
    texts: list[str] = []
    raws: list[bytes] = []

    def collect(value: Any) -> None:
        if isinstance(value, bytes | bytearray):
            raws.append(bytes(value))
            texts.append(bytes(value).decode("latin-1"))
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                collect(key)
                collect(item)
        else:
            texts.append(str(value))

    for value in values:
        collect(value)
    for token in tokens:
        assert not any(token in raw for raw in raws)
        for form in token_forms(token):
            assert not any(form in text for text in texts), form


def span_values(span: ReadableSpan) -> list[Any]:
    """Every string an SDK span carries: name, status, attributes, events, links."""
    values: list[Any] = [span.name, span.status.description or ""]
    values.append(dict(span.attributes or {}))
    for event in span.events:
        values.extend([event.name, dict(event.attributes or {})])
    for link in span.links:
        values.append(dict(link.attributes or {}))
    return values


def one(spans: Iterable[ReadableSpan], name: str) -> ReadableSpan:
    """The one span called ``name``."""
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.span_id


def trace_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id
