"""What the API accepts as a JSON body, checked before any handler parses it.

Python's parser takes NaN, Infinity, numbers of any size and nesting as deep as its recursion
allows; none of those can be a result Temporal and the external system agree on, and a deep
one costs a stack. Each is refused with its own documented code (400).
"""

from __future__ import annotations

import json
import math

#: Deepest nesting of arrays and objects in a body.
MAX_JSON_DEPTH = 64
#: Most digits of a number (an integer beyond, or a float that overflows, is refused).
MAX_NUMBER_DIGITS = 100


class RefusedJsonError(ValueError):
    """A body the API does not accept: ``code`` and ``message`` are its answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (no recursion, one pass)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _constant(name: str) -> float:
    raise RefusedJsonError("number_out_of_range", f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise RefusedJsonError(
            "number_out_of_range", f"numbers are limited to {MAX_NUMBER_DIGITS} digits"
        )
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or len(text) > MAX_NUMBER_DIGITS + 16:
        raise RefusedJsonError("number_out_of_range", f"{text[:32]} is out of range")
    return value


def check_json_body(body: bytes) -> None:
    """Raise :class:`RefusedJsonError` unless ``body`` is a JSON object the API can take."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RefusedJsonError("malformed_json", "the request body is not UTF-8") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise RefusedJsonError(
            "json_too_deep", f"JSON nesting is limited to {MAX_JSON_DEPTH} levels"
        )
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except json.JSONDecodeError:
        raise RefusedJsonError("malformed_json", "the request body is not valid JSON") from None
    except RecursionError:  # unreachable after the depth check; kept as a guard
        raise RefusedJsonError("json_too_deep", "JSON nesting too deep") from None
    if not isinstance(value, dict):
        raise RefusedJsonError("body_not_an_object", "the request body must be a JSON object")
