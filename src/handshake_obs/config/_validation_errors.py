"""pydantic's validation errors in handshake-obs's words: one clause per problem, naming where
the value came from (a variable, a key of the config file, an argument) and the value."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .._errors import ConfigurationError

#: Location of a value inside what was validated, as pydantic reports it.
Location = tuple[int | str, ...]

#: pydantic error type -> what is wrong with the value.
_PROBLEMS = {
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "int_parsing": "is not a whole number",
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "finite_number": "is not a finite number",
    "bool_parsing": "is not true or false",
    "bool_type": "is not true or false",
    "string_type": "is not a string",
    "string_too_short": "must not be empty",
    "tuple_type": "is not a list",
    "model_type": "is not a table",
    "dict_type": "is not a table",
}


def configuration_error(
    err: ValidationError,
    *,
    place: Callable[[Location], str],
    container: str,
    secrets: frozenset[str] = frozenset(),
) -> ConfigurationError:
    """One :class:`ConfigurationError` saying every problem ``err`` found.

    ``place`` names where the value at a location came from; ``container`` names what holds
    the keys (the config file, one of its tables), for unknown and missing keys. The values
    of the fields in ``secrets`` are never repeated.
    """
    problems: list[str] = []
    unknown: list[str] = []
    for error in err.errors():
        loc = error["loc"]
        if error["type"] == "extra_forbidden":
            unknown.append(str(loc[-1]))
        elif error["type"] == "missing":
            problems.append(f"{container}: needs a {loc[-1]}")
        else:
            value = "the value" if loc and loc[0] in secrets else repr(error["input"])
            problems.append(f"{place(loc)}: {value} {_problem(error)}")
    if unknown:
        problems.append(f"{container}: unknown keys {sorted(unknown)}")
    return ConfigurationError("; ".join(problems))


def _problem(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "greater_than":
        return "must be positive" if ctx["gt"] == 0 else f"must be greater than {ctx['gt']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "value_error":
        return str(ctx["error"])
    if kind in _PROBLEMS:
        return _PROBLEMS[kind]
    message = error["msg"]  # pydantic's own words, for what this list does not foresee
    return message[:1].lower() + message[1:]
