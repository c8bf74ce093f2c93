"""The public names of ``handshake_obs``: pinned, so that adding or dropping one is a
decision, and each resolves lazily to the object its module defines."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

import handshake_obs

#: The public API. Changing this list is changing the API: say so in the CHANGELOG.
PUBLIC_NAMES = [
    "DEADLINE_EXCEEDED_TYPE",
    "OPERATOR_FAILURE_TYPE",
    "ActivityAlreadyClosedError",
    "CallResult",
    "Completer",
    "CompletionError",
    "CompletionRejectedError",
    "ConfigurationError",
    "DeadlineInPastError",
    "ErrorType",
    "Handoff",
    "DeadlinePastTemporalTimeoutError",
    "HandoffAlreadyFinishedError",
    "HandoffRecord",
    "Handshake",
    "HandshakeConfig",
    "HandshakeError",
    "HandshakeInterceptor",
    "HandshakePlugin",
    "HeartbeatResult",
    "InvalidTaskTokenError",
    "LedgerError",
    "MissingExtraError",
    "NotInActivityError",
    "Operation",
    "Outcome",
    "ReapResult",
    "ReapStatus",
    "Reaper",
    "RetryPolicy",
    "State",
    "TargetPolicy",
    "TemporalConnectionError",
    "TemporalUnavailableError",
    "TracingConfig",
    "UnknownHandoffError",
    "__version__",
    "configure_logging",
    "configure_tracing",
    "flush_logs",
    "handoff",
    "shutdown_tracing",
    "token_fingerprint",
]


def test_the_public_names_are_exactly_the_pinned_ones() -> None:
    assert sorted(handshake_obs.__all__) == sorted(PUBLIC_NAMES)
    assert sorted(dir(handshake_obs)) == sorted(PUBLIC_NAMES)


def test_every_public_name_resolves() -> None:
    for name in PUBLIC_NAMES:
        assert getattr(handshake_obs, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = handshake_obs.NoSuchThing


def test_the_version_is_the_installed_distributions() -> None:
    assert handshake_obs.__version__ == version("handshake-obs")


def test_importing_the_package_imports_nothing_heavy() -> None:
    """``import handshake_obs`` (and so the CLI's ``--help``) loads no SDK or web stack."""
    heavy = ("temporalio", "fastapi", "uvicorn", "httpx", "prometheus_client", "psycopg")
    probe = f"import sys, handshake_obs; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == []
