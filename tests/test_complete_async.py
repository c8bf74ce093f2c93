"""The one private SDK symbol we depend on still means what we think it means."""

from __future__ import annotations

import pytest
from temporalio import activity

from handshake_obs.worker._complete_async import COMPLETE_ASYNC_ERROR, is_complete_async


def test_raise_complete_async_raises_the_error_we_recognise() -> None:
    with pytest.raises(BaseException) as raised:  # noqa: PT011 - the type is the point
        activity.raise_complete_async()
    assert is_complete_async(raised.value), (
        "temporalio changed how raise_complete_async() signals: update _complete_async.py"
    )
    assert type(raised.value) is COMPLETE_ASYNC_ERROR
    assert not issubclass(COMPLETE_ASYNC_ERROR, Exception), (
        "the signal must stay a BaseException so that `except Exception` in activities "
        "does not swallow it"
    )


def test_ordinary_errors_are_not_mistaken_for_async_completion() -> None:
    assert not is_complete_async(RuntimeError("boom"))
    assert not is_complete_async(KeyboardInterrupt())
