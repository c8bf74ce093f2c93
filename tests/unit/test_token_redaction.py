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
