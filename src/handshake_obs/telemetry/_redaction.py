"""Keeping task tokens out of log lines: at the source, and on the rendered line.

Three layers, each enough on its own for what it covers:

1. :func:`redact_secrets` (structlog processor): a ``*token`` field or any bytes value of our
   own lines becomes ``[redacted]``.
2. :class:`RedactTokenArguments` (stdlib filter, before a record is queued): the arguments of
   a foreign record (temporalio's ``"Running activity %s (token %s)"`` and ``"Completing
   activity with completion: %s"``, grpc, ...) are redacted before the message is formatted:
   bytes become ``[redacted]``, a protobuf message is copied with every bytes field named
   ``*token`` replaced.
3. :func:`scrub_rendered` (on the final text, tracebacks included): every encoding of every
   token the process has handled is replaced (:mod:`handshake_obs._token_scrubbing`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from structlog.typing import EventDict, WrappedLogger

from .._token_scrubbing import REDACTED, scrub_tokens

#: Field names that can never be logged, whatever their value.
SECRET_KEYS = frozenset({"task_token", "token", "raw_token", "authorization"})


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace secret fields and raw bytes (a task token is bytes) with a marker."""
    for key, value in list(event_dict.items()):
        if key in SECRET_KEYS or isinstance(value, bytes | bytearray | memoryview):
            event_dict[key] = REDACTED
    return event_dict


def _redacted_message(message: Message) -> Message:
    """A copy of ``message`` whose ``*token`` bytes fields (at any depth) say [redacted]."""
    copy = type(message)()
    copy.CopyFrom(message)
    _redact_fields(copy)
    return copy


def _redact_fields(message: Message) -> None:
    for field, value in message.ListFields():
        if field.message_type is not None:
            values = value if _is_repeated(field) else [value]
            for item in values:
                if isinstance(item, Message):
                    _redact_fields(item)
        elif isinstance(value, bytes) and field.name.endswith("token"):
            setattr(message, field.name, REDACTED.encode())


def _is_repeated(field: Any) -> bool:
    # ``label`` is deprecated in newer protobuf releases; ``is_repeated`` replaces it.
    is_repeated = getattr(field, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


def _redacted_argument(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return REDACTED
    if isinstance(value, Message):
        return _redacted_message(value)
    return value


class RedactTokenArguments(logging.Filter):
    """Redact a stdlib record's arguments before its message is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(record.msg, dict) or not args:
            return True  # one of our own lines (redact_secrets sees it), or nothing to do
        if isinstance(args, Mapping):
            record.args = {key: _redacted_argument(value) for key, value in args.items()}
        else:
            record.args = tuple(_redacted_argument(value) for value in args)
        if isinstance(record.msg, bytes | bytearray | memoryview):
            record.msg = REDACTED
        return True


def scrub_rendered(text: str) -> str:
    """The rendered line without any encoding of a token this process has handled."""
    return scrub_tokens(text)
