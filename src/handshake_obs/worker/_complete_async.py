"""Recognising ``activity.raise_complete_async()``.

The SDK signals asynchronous completion with ``temporalio.activity._CompleteAsyncError``, a
private ``BaseException`` with no public predicate. This is the one place that imports it;
``tests/test_complete_async.py`` fails loudly if an SDK upgrade moves or changes it.
"""

from __future__ import annotations

from temporalio.activity import _CompleteAsyncError

COMPLETE_ASYNC_ERROR: type[BaseException] = _CompleteAsyncError


def is_complete_async(error: BaseException) -> bool:
    """Whether ``error`` is the SDK's "this activity completes asynchronously" signal."""
    return isinstance(error, _CompleteAsyncError)
