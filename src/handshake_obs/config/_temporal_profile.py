"""The Temporal client profile a process's settings give, read through ``temporalio.envconfig``.

The standard ``TEMPORAL_*`` variables and ``temporal.toml`` profiles are read as the Temporal
CLI and every SDK read them; the deprecated handshake-obs settings that named the connection
(:data:`TEMPORAL_ALIASES`) stand in for their standard variable when it is not set. What
envconfig reads leniently (a missing config file, any ``TEMPORAL_TLS`` value) is checked
first, and TLS material is read and checked here, so that a wrong file is a start-up error
naming it, never showing its content.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .._errors import ConfigurationError
from ._temporal_connection import TemporalTLS

if TYPE_CHECKING:
    from temporalio.envconfig import ClientConfigProfile, DataSource

#: The deprecated settings that name the Temporal connection -> the standard variable each
#: stands in for (read as that variable when it is not set).
TEMPORAL_ALIASES: Final = {
    "temporal_address": "TEMPORAL_ADDRESS",
    "temporal_namespace": "TEMPORAL_NAMESPACE",
}
#: The variable naming the profile of ``temporal.toml`` to use.
PROFILE_VARIABLE: Final = "TEMPORAL_PROFILE"
#: Standard variables checked here before envconfig reads them (it ignores a missing file
#: and reads any TLS value as "on").
_CONFIG_FILE_VARIABLE: Final = "TEMPORAL_CONFIG_FILE"
_TLS_VARIABLE: Final = "TEMPORAL_TLS"
_BOOLEAN_WORDS: Final = frozenset({"true", "false", "1", "0", "yes", "no", "on", "off"})


@dataclass(frozen=True, slots=True)
class TemporalProfile:
    """The Temporal client profile this process's settings give, and what is deprecated."""

    profile: ClientConfigProfile
    #: One message per deprecated setting that was read (or ignored).
    deprecations: tuple[str, ...]

    @classmethod
    def read(
        cls,
        environ: Mapping[str, str],
        aliases: Mapping[str, str | None],
        sources: Mapping[str, str],
    ) -> TemporalProfile:
        """The profile from ``environ``; ``aliases`` are the values of the settings of
        :data:`TEMPORAL_ALIASES`, ``sources`` where each setting came from (an argument
        wins over every variable and profile)."""
        # The SDK's bridge is loaded by what needs a connection, not by --help or pending.
        from temporalio.envconfig import ClientConfigProfile  # noqa: PLC0415

        env = dict(environ)
        deprecations: list[str] = []
        argument: dict[str, str] = {}
        for setting, standard in TEMPORAL_ALIASES.items():
            value = aliases.get(setting)
            source = sources.get(setting, "")
            if value is None:
                continue
            if source.startswith("argument"):
                argument[setting] = value
            elif env.get(standard):
                deprecations.append(
                    f"{source} is deprecated and ignored: {standard} is set; remove it"
                )
            else:
                env[standard] = value
                deprecations.append(f"{source} is deprecated: set {standard} instead")
        _check_temporal_variables(env)
        try:
            profile = ClientConfigProfile.load(override_env_vars=env)
        except Exception as err:  # noqa: BLE001  # the bridge's ConfigError has no Python type
            raise ConfigurationError(
                f"Temporal client configuration ({PROFILE_VARIABLE}, {_CONFIG_FILE_VARIABLE} "
                f"or temporal.toml): {err}"
            ) from None
        if "temporal_address" in argument:
            profile = dataclasses.replace(profile, address=argument["temporal_address"])
        if "temporal_namespace" in argument:
            profile = dataclasses.replace(profile, namespace=argument["temporal_namespace"])
        return cls(profile, tuple(deprecations))


def _check_temporal_variables(env: Mapping[str, str]) -> None:
    if (path := env.get(_CONFIG_FILE_VARIABLE)) and not Path(path).is_file():
        raise ConfigurationError(f"{_CONFIG_FILE_VARIABLE}: {path} does not exist")
    tls = env.get(_TLS_VARIABLE)
    if tls and tls.strip().lower() not in _BOOLEAN_WORDS:
        raise ConfigurationError(f"{_TLS_VARIABLE}: {tls!r} is not true or false")


def tls_of(profile: ClientConfigProfile) -> TemporalTLS | None:
    """TLS as envconfig reads it: on with an API key or any TLS setting, unless disabled."""
    tls = profile.tls
    if tls is None:
        return TemporalTLS() if profile.api_key is not None else None
    if tls.disabled:
        return None
    client_cert = _pem(tls.client_cert, "client certificate", "CLIENT_CERT", "CERTIFICATE")
    client_key = _pem(tls.client_private_key, "client key", "CLIENT_KEY", "PRIVATE KEY")
    if (client_cert is None) != (client_key is None):
        raise ConfigurationError(
            "TLS: a client certificate needs its key and a key its certificate "
            "(TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH, or their _DATA forms)"
        )
    return TemporalTLS(
        server_name=tls.server_name,
        server_root_ca_cert=_pem(
            tls.server_root_ca_cert, "server CA certificate", "SERVER_CA_CERT", "CERTIFICATE"
        ),
        client_cert=client_cert,
        client_private_key=client_key,
    )


def _pem(source: DataSource | None, what: str, variable: str, label: str) -> bytes | None:
    """The PEM bytes of a TLS source: a file's content, or data given inline."""
    where = f"TLS {what} (TEMPORAL_TLS_{variable}_PATH / _DATA, or the profile's [tls])"
    if source is None:
        return None
    if isinstance(source, Path):
        where = f"TLS {what} file {source}"
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise ConfigurationError(f"{where} does not exist") from None
        except OSError as err:
            raise ConfigurationError(f"{where} cannot be read: {err.strerror}") from None
    else:
        data = source.encode() if isinstance(source, str) else source
    # Checked here so that a wrong file is named at start-up; the content is never shown.
    if b"-----BEGIN" not in data or label.encode() not in data:
        raise ConfigurationError(f"{where} is not a PEM {label.lower()}")
    return data
