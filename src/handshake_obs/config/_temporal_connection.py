"""How every handshake-obs process connects to Temporal: one typed value, built once.

:meth:`Settings.temporal_connection <handshake_obs.config.Settings.temporal_connection>`
builds it from the standard ``TEMPORAL_*`` variables and ``temporal.toml`` profiles (through
``temporalio.envconfig``, as the Temporal CLI and every SDK read them), so a process is
configured like any other Temporal tool. :meth:`TemporalConnection.client_connect_arguments`
is the one function that turns it into ``Client.connect`` keyword arguments; anything else
that dials Temporal (a proxy's upstream) reads the same fields.

Certificates and keys are held as bytes, read when the settings are read, so that a missing
or unreadable file is a start-up error that names the file and not a failure at the first
connection. Secrets (the API key, the private key, gRPC metadata) never appear in a repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Address and namespace used when no variable, profile or argument gives one.
DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
DEFAULT_TEMPORAL_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class TemporalTLS:
    """TLS towards Temporal: every field None means TLS with the system's trusted roots."""

    #: Name the server's certificate must carry (SNI), when it is not the address's host.
    server_name: str | None = None
    #: PEM of the CA that signed the server's certificate (None: the system's roots).
    server_root_ca_cert: bytes | None = field(default=None, repr=False)
    #: PEM of this client's certificate (mTLS), with :attr:`client_private_key`.
    client_cert: bytes | None = field(default=None, repr=False)
    #: PEM of this client's private key.
    client_private_key: bytes | None = field(default=None, repr=False)

    @property
    def mutual(self) -> bool:
        """Whether a client certificate is presented (mTLS)."""
        return self.client_cert is not None


@dataclass(frozen=True, slots=True)
class TemporalConnection:
    """Where Temporal is and how to authenticate to it."""

    #: ``host:port`` of the frontend. ``TEMPORAL_ADDRESS`` or the profile's ``address``.
    address: str = DEFAULT_TEMPORAL_ADDRESS
    #: ``TEMPORAL_NAMESPACE`` or the profile's ``namespace``.
    namespace: str = DEFAULT_TEMPORAL_NAMESPACE
    #: Bearer API key (Temporal Cloud, or a proxy that checks ``authorization``).
    #: ``TEMPORAL_API_KEY`` or the profile's ``api_key``; setting it turns TLS on.
    api_key: str | None = field(default=None, repr=False)
    #: TLS settings (None: plaintext). ``TEMPORAL_TLS*`` or the profile's ``[tls]``.
    tls: TemporalTLS | None = None
    #: gRPC metadata sent with every call (``TEMPORAL_GRPC_META_*``, ``grpc_meta``).
    rpc_metadata: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: The ``temporal.toml`` profile these came from, for messages.
    profile: str = "default"

    def client_connect_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``temporalio.client.Client.connect`` for this connection.

        Add your own (``interceptors``, ``plugins``, ``runtime``) beside them.
        """
        # The SDK is imported by what connects, not by what reads settings.
        from temporalio.service import TLSConfig  # noqa: PLC0415

        arguments: dict[str, Any] = {"target_host": self.address, "namespace": self.namespace}
        if self.api_key is not None:
            arguments["api_key"] = self.api_key
        if self.tls is None:
            arguments["tls"] = False
        else:
            arguments["tls"] = TLSConfig(
                domain=self.tls.server_name,
                server_root_ca_cert=self.tls.server_root_ca_cert,
                client_cert=self.tls.client_cert,
                client_private_key=self.tls.client_private_key,
            )
        if self.rpc_metadata:
            arguments["rpc_metadata"] = dict(self.rpc_metadata)
        return arguments

    def describe(self) -> str:
        """``host:port (namespace N, TLS with a client certificate, API key)``: no secret."""
        if self.tls is None:
            security = "plaintext"
        elif self.tls.mutual:
            security = "TLS with a client certificate"
        else:
            security = "TLS"
        parts = [f"namespace {self.namespace}", security]
        if self.api_key is not None:
            parts.append("API key")
        if self.profile != "default":
            parts.append(f"profile {self.profile}")
        return f"{self.address} ({', '.join(parts)})"

    def secrets(self) -> tuple[str, ...]:
        """Every secret value of this connection, so a message can be scrubbed of them."""
        values = [self.api_key or "", *self.rpc_metadata.values()]
        if self.tls is not None and self.tls.client_private_key is not None:
            key = self.tls.client_private_key.decode("utf-8", "replace")
            values += [key, *(line for line in key.splitlines() if len(line) >= 16)]
        return tuple(v for v in values if len(v) >= 4)
