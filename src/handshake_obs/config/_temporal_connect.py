"""Connecting to Temporal, and the one map of why a connection failed.

The SDK reports every connection failure as a ``RuntimeError`` whose text is the Rust core's
(tonic, rustls, hyper). :func:`connection_error` reads that text once, here, and says in
words what is wrong — nothing answers, the server's certificate is not trusted, the client
certificate or key is unusable or refused, the API key is refused, TLS on one side only —
and which variables to look at. The message never holds a secret: the connection's API
key, private key and metadata are scrubbed from the SDK's text as well.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from .._errors import TemporalConnectionError
from ._temporal_connection import TemporalConnection

if TYPE_CHECKING:
    from temporalio.client import Client

#: (what the SDK's text matches, what it means, whether waiting may help). First match wins.
_CAUSES: Final[Sequence[tuple[re.Pattern[str], str, bool]]] = tuple(
    (re.compile(pattern, re.IGNORECASE), meaning, retryable)
    for pattern, meaning, retryable in (
        (
            r"PrivateKeyParseError|InconsistentKeys|KeyMismatch|UnsupportedCertVersion|"
            r"invalid (client )?(certificate|key)",
            "the client certificate or private key cannot be used (not PEM, not matching each "
            "other, or not an X.509 v3 certificate): check TEMPORAL_TLS_CLIENT_CERT_PATH and "
            "TEMPORAL_TLS_CLIENT_KEY_PATH (or their _DATA forms, or the profile's [tls])",
            False,
        ),
        (
            r"UnknownIssuer|NotValidForName|InvalidCertificate|certificate verify failed|"
            r"CertExpired|CertNotValidYet",
            "the server's certificate is not trusted: it is not signed by "
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH (or the system's roots), has expired, or does "
            "not name the server (TEMPORAL_TLS_SERVER_NAME)",
            False,
        ),
        (
            r"BadCertificate|CertificateRequired|UnknownCA|AccessDenied|HandshakeFailure|"
            r"received fatal alert|status: 40[03] |status: 49[56]",
            "the server refused the TLS client certificate, or none was sent "
            "(a TLS-terminating proxy answers HTTP 400 for that): check "
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH",
            False,
        ),
        (
            r"Unauthenticated|PermissionDenied|status: 401 |401 Unauthorized|invalid api key",
            "the server refused the credentials: check the API key (TEMPORAL_API_KEY)",
            False,
        ),
        (
            # A TLS server given a plaintext HTTP/2 preface answers garbage or hangs up before
            # the first frame: which one the client sees first is a race.
            r"FRAME_SIZE_ERROR|InvalidContentType|CorruptMessage|wrong version number|"
            r"http2 error|invalid HTTP|tls handshake eof|InvalidMessage|"
            r'hyper::Error\(Canceled, "connection closed"\)',
            "TLS is on at one end only: set TEMPORAL_TLS=true for a server that speaks TLS "
            "(an API key turns TLS on by itself), or TEMPORAL_TLS=false for one that does not",
            False,
        ),
        (
            r"Namespace .* (is )?not found|NamespaceNotFound",
            "the namespace does not exist on that server (TEMPORAL_NAMESPACE)",
            False,
        ),
        (
            r"tcp connect error|Connection refused|dns error|failed to lookup|timed out|"
            r"Timeout|deadline|Unavailable|ConnectionReset|broken pipe|No route",
            "nothing answers there yet (TEMPORAL_ADDRESS)",
            True,
        ),
    )
)


def connection_error(connection: TemporalConnection, err: BaseException) -> TemporalConnectionError:
    """Our error for an SDK connection failure: what is wrong, where, and no secret."""
    text = scrub(str(err), connection.secrets())
    meaning, retryable = next(
        ((m, r) for pattern, m, r in _CAUSES if pattern.search(text)),
        ("the connection failed", True),
    )
    return TemporalConnectionError(
        f"cannot reach Temporal at {connection.describe()}: {meaning} [{text}]",
        retryable=retryable,
    )


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


async def connect_temporal(connection: TemporalConnection, **options: Any) -> Client:
    """A client connected with ``connection`` (``options``: interceptors, plugins, runtime...).

    Raises :class:`TemporalConnectionError` saying what is wrong; its ``retryable`` tells a
    process that waits for Temporal (``serve``) whether to try again.
    """
    from temporalio.client import Client  # noqa: PLC0415  # only what connects imports the SDK

    try:
        return await Client.connect(**connection.client_connect_arguments(), **options)
    except RuntimeError as err:  # the SDK reports every connection failure as RuntimeError
        raise connection_error(connection, err) from None
