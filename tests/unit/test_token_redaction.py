"""The last line of defence scrubs every encoding of a known token; foreign records'
arguments are redacted before their message is formatted."""

from __future__ import annotations

import base64
import json
import logging

from google.protobuf import text_encoding
from temporalio.bridge.proto import ActivityTaskCompletion

from handshake_obs._token_scrubbing import REDACTED, KnownTokens
from handshake_obs.telemetry._redaction import RedactTokenArguments

TOKEN = b"\n$0001-namespace\x12\x07wf-1234\x1a$run-\x00\xff'\"\\ end\x08\x01"


def encodings(token: bytes) -> list[str]:
    b64 = base64.b64encode(token).decode()
    url = base64.urlsafe_b64encode(token).decode()
    plain = [
        token.decode("latin-1"), repr(token), token.hex(), b64, b64.rstrip("="), url,
        url.rstrip("="), text_encoding.CEscape(token, as_utf8=False),
    ]  # fmt: skip
    return plain + [json.dumps(form)[1:-1] for form in plain]


def test_every_encoding_of_a_remembered_token_is_scrubbed_and_other_text_is_kept() -> None:
    known = KnownTokens()
    known.remember(TOKEN)
    for form in encodings(TOKEN):
        line = f'{{"event": "before {form} after", "n": 1}}'
        assert known.scrub(line) == f'{{"event": "before {REDACTED} after", "n": 1}}', form
    text = "nothing secret here, " * 20
    assert known.scrub(text) == text


def test_a_token_pushed_out_by_newer_ones_is_no_longer_indexed() -> None:
    known = KnownTokens(capacity=2)
    tokens = [TOKEN + bytes([i]) * 12 for i in range(3)]
    for token in tokens:
        known.remember(token)
    assert known.scrub(tokens[0].hex()) == tokens[0].hex()
    assert known.scrub(tokens[2].hex()) == REDACTED


def test_the_index_keeps_nothing_of_the_tokens_pushed_out() -> None:
    # Long tokens (indexed by windows) and 8-byte ones (some forms too short for a window).
    tokens = [TOKEN + bytes([i]) * 12 if i % 2 else bytes([i]) * 8 for i in range(10)]
    known = KnownTokens(capacity=3)
    for token in tokens:
        known.remember(token)
        known.scrub("x" * 40)  # indexes what was remembered
    fresh = KnownTokens(capacity=3)
    for token in tokens[-3:]:
        fresh.remember(token)
    fresh.scrub("x" * 40)
    assert known._index == fresh._index  # the index itself is what would leak
    assert known._short == fresh._short
    assert known.scrub(tokens[-1].hex()) == REDACTED


def test_short_values_are_not_treated_as_tokens() -> None:
    known = KnownTokens()
    known.remember(b"abc")
    assert known.scrub("abc 616263 YWJj") == "abc 616263 YWJj"


def test_token_arguments_of_a_foreign_record_are_redacted_before_formatting() -> None:
    completion = ActivityTaskCompletion(task_token=TOKEN)
    record = logging.LogRecord(
        "temporalio.worker._activity", logging.DEBUG, __file__, 1,
        "Running activity %s (token %s) completion: %s", ("act", TOKEN, completion), None,
    )  # fmt: skip
    assert RedactTokenArguments().filter(record)
    message = record.getMessage()
    assert message.startswith(f"Running activity act (token {REDACTED}) completion: ")
    assert f'task_token: "{REDACTED}"' in message
    for form in encodings(TOKEN):
        assert form not in message
    assert completion.task_token == TOKEN  # the SDK's own message is left as it was


def test_an_exception_recorded_on_a_span_is_scrubbed_of_known_tokens() -> None:
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    from handshake_obs._tokens import token_digest  # noqa: PLC0415
    from handshake_obs.telemetry._tracing import _mark_error  # noqa: PLC0415

    token = TOKEN + b"-span"
    token_digest(token)  # handled by the product: from now on a known token
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("call") as span:
        try:
            raise RuntimeError(f"the server said: {token!r}")  # noqa: TRY301
        except RuntimeError as err:
            _mark_error(span, err)
    (finished,) = exporter.get_finished_spans()
    texts = [finished.status.description or ""] + [
        str(value) for event in finished.events for value in (event.attributes or {}).values()
    ]
    assert any(REDACTED in text for text in texts)
    for text in texts:
        for form in encodings(token):
            assert form not in text
