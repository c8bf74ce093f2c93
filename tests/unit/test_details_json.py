"""Timeline details are written as the stdlib's compact JSON encoder writes them, anything
not JSON as its string form, by the encoder the ledger builds once; progress a caller
reports is written the same way, and a circular one is refused."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from typing import Any

import pytest

from handshake_obs.ledger._rows import _details_as_json, decode_progress, encode_progress

STDLIB = json.JSONEncoder(default=str, separators=(",", ":")).encode

VALUES: list[Any] = [
    {"attempt": 1, "target": "agent", "deadline": 1765000000.123456},
    {"step": 'ünïcødé ✓ \u2028 \x00 "quoted" \\ back'},
    [1, -0.0, 2.5e-300, 1e300, True, False, None, "x"],
    {"nested": {"list": [{"a": [1, [2, [3]]]}], "tuple": (1, 2)}},
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
    {"when": datetime.datetime(2026, 12, 7, 23, 0, tzinfo=datetime.UTC)},
    {"amount": decimal.Decimal("1.10"), "raw": b"\x00\xff", "set": {1}},
    {"nan": math.nan, "inf": math.inf, "-inf": -math.inf},
    "a bare string",
    42,
    1.5,
    None,
    {},
    [],
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_details_and_progress_are_encoded_as_the_stdlib_encoder_writes_them(value: Any) -> None:
    assert _details_as_json(value) == STDLIB(value)
    assert encode_progress(value) == (None if value is None else STDLIB(value))


def test_progress_reads_back_as_its_json_form() -> None:
    progress = {"phase": "review", "done": 3, "of": 7, "at": 1.25}
    assert decode_progress(encode_progress(progress)) == progress
    assert encode_progress(None) is None


def test_circular_progress_is_refused_with_a_clear_error() -> None:
    progress: dict[str, Any] = {"step": 1}
    progress["self"] = progress
    with pytest.raises(ValueError, match="Circular reference"):
        encode_progress(progress)
