"""The proxy's channel to Temporal's frontend, from the standard Temporal connection.

The same :class:`~handshake_obs.config.TemporalConnection` every handshake-obs process
dials with: TLS (with the server's CA and name), mTLS, an API key (sent as
``authorization: Bearer``, as the SDKs send it) and gRPC metadata added to every call.
"""

from __future__ import annotations

from typing import Final

import grpc

from ..config import TemporalConnection

#: Metadata a client sends that belongs to its own hop (HTTP/2 and gRPC framing): the
#: upstream call sets its own. Everything else is forwarded as it came.
HOP_METADATA: Final = frozenset(
    {"user-agent", "content-type", "te", "host", "grpc-accept-encoding", "grpc-encoding"}
)


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Message-size limits of the proxy's server and its upstream channel alike."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


def upstream_channel(connection: TemporalConnection, *, max_message_bytes: int) -> grpc.aio.Channel:
    """A channel to ``connection.address`` (not connected until the first call)."""
    options: list[tuple[str, str | int]] = [*channel_options(max_message_bytes)]
    tls = connection.tls
    if tls is None:
        # As ``client_connect_arguments``: no TLS settings is plaintext (the settings turn
        # TLS on when an API key is given, as the SDKs do).
        return grpc.aio.insecure_channel(connection.address, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.server_root_ca_cert,
        private_key=tls.client_private_key,
        certificate_chain=tls.client_cert,
    )
    return grpc.aio.secure_channel(connection.address, credentials, options=options)


def upstream_metadata(connection: TemporalConnection) -> dict[str, str]:
    """Metadata the proxy sets on every upstream call, replacing the caller's of the same
    key: the connection's gRPC metadata and its API key."""
    metadata = {key.lower(): value for key, value in connection.rpc_metadata.items()}
    if connection.api_key is not None:
        metadata["authorization"] = f"Bearer {connection.api_key}"
    return metadata
