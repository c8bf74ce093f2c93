"""The one place handshake-obs reads its environment and its config file.

Every setting has one name: ``ledger_url`` is the environment variable
``HANDSHAKE_LEDGER_URL`` and the key ``ledger_url`` of the TOML file that the variable
``HANDSHAKE_CONFIG_FILE`` names. The file also holds the ``[[targets]]`` tables: each
target's name, URL, deadline and retry policy.

For each setting the first source that gives it wins: an argument (a command-line option, a
keyword of :func:`read_settings`), then the environment, then the file. pydantic-settings
orders the sources (:meth:`_SettingValues.settings_customise_sources`), parses and validates
what they give. A setting that no source gives keeps the default of the configuration class
it feeds: :class:`Settings` builds :class:`HandshakeConfig`, :class:`SidecarSettings`,
:class:`SidecarEndpoint` and :class:`TracingConfig` from the settings given and nothing else,
so every default is written once, on its class.

The standard ``OTEL_*`` variables of trace export are read here too, from the environment
only (the OpenTelemetry SDK reads the others itself). So is the Temporal connection: the
standard ``TEMPORAL_*`` variables and ``temporal.toml`` profiles, handed to
``temporalio.envconfig`` with this process's environment (:meth:`Settings.temporal_connection`).
A value that does not parse or validate is a :class:`ConfigurationError` naming the
variable, or the file and the key.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .._errors import ConfigurationError
from .._token_keys import TokenKeys, parse_token_keys
from ._handshake_config import HandshakeConfig, RetryPolicy, TargetPolicy
from ._log_levels import DEFAULT_LOG_LEVEL, LOG_LEVELS
from ._proxy_settings import AsyncActivity, ProxySettings
from ._sidecar_endpoint import SidecarEndpoint
from ._sidecar_settings import SidecarSettings
from ._temporal_connection import TemporalConnection
from ._temporal_profile import PROFILE_VARIABLE, TEMPORAL_ALIASES, TemporalProfile, tls_of
from ._tracing_config import TracingConfig
from ._validation_errors import Location, configuration_error

#: Prefix of every handshake-obs variable: setting ``name`` is the variable ``HANDSHAKE_NAME``.
ENV_PREFIX: Final = "HANDSHAKE_"
#: The variable naming the config file; read from the environment only.
CONFIG_FILE_VARIABLE: Final = ENV_PREFIX + "CONFIG_FILE"
#: The key of the config file that holds the target tables (and target names).
_TARGETS_KEY: Final = "targets"
_MAX_SECONDS: Final = timedelta.max.total_seconds()
#: A listen address on every interface is reached, from this machine, at its loopback.
_WILDCARD_HOSTS: Final = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # noqa: S104


def _not_a_flag(value: object) -> object:
    # pydantic's lax mode reads true as 1: a number of seconds is never a boolean here.
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a number")
    return value


def _within_a_timedelta(seconds: float) -> float:
    if seconds > _MAX_SECONDS:
        raise PydanticCustomError("less_than_equal", "Input is too large", {"le": _MAX_SECONDS})
    return seconds


def _names(value: object) -> object:
    # A list in the file; comma separated in the environment: "a, b ," -> ("a", "b").
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _log_level(value: str) -> str:
    if value not in LOG_LEVELS:
        raise ValueError(f"is not one of {', '.join(LOG_LEVELS)}")
    return value


def _stripped(value: object) -> object:
    # The OTel SDK ignores blank OTEL_* values; so do we.
    if isinstance(value, str):
        return value.strip() or None
    return value


_Text = Annotated[str, Field(min_length=1)]
#: A positive, finite number of seconds that a timedelta holds.
_Seconds = Annotated[
    float,
    BeforeValidator(_not_a_flag),
    Field(gt=0, allow_inf_nan=False),
    AfterValidator(_within_a_timedelta),
]
_Count = Annotated[int, BeforeValidator(_not_a_flag), Field(gt=0)]
#: A positive, finite rate (per second).
_Rate = Annotated[float, BeforeValidator(_not_a_flag), Field(gt=0, allow_inf_nan=False)]
_Names = Annotated[tuple[_Text, ...], NoDecode, BeforeValidator(_names)]
_LogLevel = Annotated[str, BeforeValidator(_lower), AfterValidator(_log_level)]
_OtelText = Annotated[str | None, BeforeValidator(_stripped)]


class _SettingValues(BaseSettings):
    """Every ``HANDSHAKE_*`` setting as the sources give it (None: none gives it).

    Each field's comment names the configuration field it fills; its meaning, its default
    and its checks across fields are there.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid", frozen=True
    )

    ledger_url: _Text | None = None  # HandshakeConfig.ledger_url
    temporal_address: _Text | None = None  # HandshakeConfig.temporal_address
    temporal_namespace: _Text | None = None  # HandshakeConfig.temporal_namespace
    listen_address: _Text | None = None  # HandshakeConfig.listen_address
    targets: _Names | None = None  # HandshakeConfig.targets
    default_target: _Text | None = None  # HandshakeConfig.default_target
    rpc_timeout_seconds: _Seconds | None = None  # HandshakeConfig.rpc_timeout
    rpc_max_attempts: _Count | None = None  # HandshakeConfig.rpc_retry.max_attempts
    ledger_call_timeout_seconds: _Seconds | None = None  # HandshakeConfig.ledger_call_timeout
    metrics_refresh_seconds: _Seconds | None = None  # HandshakeConfig.metrics_refresh_interval
    # HandshakeConfig.metrics_scrape_refresh_timeout
    metrics_scrape_refresh_timeout_seconds: _Seconds | None = None
    reaper_interval_seconds: _Seconds | None = None  # HandshakeConfig.reaper_interval
    reaper_batch_size: _Count | None = None  # HandshakeConfig.reaper_batch_size
    reaper_concurrency: _Count | None = None  # HandshakeConfig.reaper_concurrency
    reaper_lease_seconds: _Seconds | None = None  # HandshakeConfig.reaper_lease
    ledger_retention_seconds: _Seconds | None = None  # HandshakeConfig.ledger_retention
    ledger_prune_batch_size: _Count | None = None  # HandshakeConfig.ledger_prune_batch_size
    token_keys: _Text | None = Field(default=None, repr=False)  # HandshakeConfig.token_keys
    token_keys_file: _Text | None = None  # HandshakeConfig.token_keys
    reconcile_enabled: bool | None = None  # HandshakeConfig.reconcile_enabled
    reconcile_calls_per_second: _Rate | None = None  # HandshakeConfig.reconcile_calls_per_second
    reconcile_interval_seconds: _Seconds | None = None  # HandshakeConfig.reconcile_interval
    reconcile_first_check_seconds: _Seconds | None = None  # HandshakeConfig.reconcile_first_check
    # HandshakeConfig.reconcile_max_check_interval
    reconcile_max_check_interval_seconds: _Seconds | None = None
    completion_token: _Text | None = Field(default=None, repr=False)  # SidecarSettings
    operator_token: _Text | None = Field(default=None, repr=False)  # SidecarSettings, endpoint
    inventory_token: _Text | None = Field(default=None, repr=False)  # SidecarSettings, endpoint
    task_queue: _Text | None = None  # SidecarSettings.task_queue
    public_url: _Text | None = None  # SidecarSettings.public_url
    max_body_bytes: _Count | None = None  # SidecarSettings.max_body_bytes
    body_timeout_seconds: _Seconds | None = None  # SidecarSettings.body_timeout
    max_connections: _Count | None = None  # SidecarSettings.max_connections
    allow_unauthenticated: bool | None = None  # SidecarSettings.allow_unauthenticated
    temporal_ui_url: _Text | None = None  # SidecarSettings.temporal_ui_url
    trace_url_template: _Text | None = None  # SidecarSettings.trace_url_template
    runbook_url: _Text | None = None  # SidecarSettings.runbook_url
    dashboard_url: _Text | None = None  # SidecarSettings.dashboard_url
    prometheus_url: _Text | None = None  # SidecarSettings.prometheus_url
    url: _Text | None = None  # SidecarEndpoint.url (the inventory commands)
    proxy_listen_address: _Text | None = None  # ProxySettings.listen_address
    proxy_metrics_address: _Text | None = None  # ProxySettings.metrics_address
    proxy_async_activities: _Names | None = None  # ProxySettings.async_activities
    log_level: _LogLevel | None = None  # every command's logging
    log_json: bool | None = None  # every command's logging (None: JSON unless a terminal)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the config file; no ``.env``, no secrets."""
        reading = _READING.get()
        return (
            init_settings,
            _EnvironmentSource(settings_cls, reading.environ),
            _ConfigFileSource(settings_cls, reading.file),
        )


class _OtelValues(BaseSettings):
    """The standard ``OTEL_*`` variables that decide where spans go (None: not set)."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore", frozen=True)

    exporter_otlp_endpoint: _OtelText = None
    exporter_otlp_traces_endpoint: _OtelText = None
    exporter_otlp_protocol: _OtelText = None
    exporter_otlp_traces_protocol: _OtelText = None
    sdk_disabled: _OtelText = None
    traces_exporter: _OtelText = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment only, as the OpenTelemetry SDK reads it."""
        return (_EnvironmentSource(settings_cls, _READING.get().environ),)


class _TargetEntry(BaseModel):
    """One ``[[targets]]`` table of the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Text
    url: _Text | None = None  # SidecarSettings.target_urls
    deadline_seconds: _Seconds | None = None  # TargetPolicy.deadline
    retryable: StrictBool | None = None  # TargetPolicy.retryable
    heartbeat_extends_by_seconds: _Seconds | None = None  # TargetPolicy.heartbeat_extends_by

    def policy(self) -> TargetPolicy:
        """This target's policy; what the table leaves out keeps the policy's default."""
        given: dict[str, Any] = {
            "deadline": _duration(self.deadline_seconds),
            "retryable": self.retryable,
            "heartbeat_extends_by": _duration(self.heartbeat_extends_by_seconds),
        }
        return TargetPolicy(**{name: value for name, value in given.items() if value is not None})


@dataclass(frozen=True, slots=True)
class _ConfigFile:
    """The TOML file ``HANDSHAKE_CONFIG_FILE`` names: its settings and its target tables."""

    path: Path | None = None
    #: Top-level keys, the names listed in ``targets`` included.
    settings: Mapping[str, Any] | None = None
    #: The tables listed in ``targets``, each with its index there.
    tables: tuple[tuple[int, object], ...] = ()

    @classmethod
    def read(cls, path: Path | None) -> _ConfigFile:
        """The file at ``path`` (None: no file, no settings)."""
        if path is None:
            return cls()
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(
                f"config file {path} ({CONFIG_FILE_VARIABLE}) does not exist"
            ) from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ConfigurationError(f"config file {path}: {err}") from err
        listed = document.pop(_TARGETS_KEY, [])
        if isinstance(listed, str):  # names, comma separated, as in the environment
            return cls(path, {**document, _TARGETS_KEY: listed})
        if not isinstance(listed, list):
            raise ConfigurationError(
                f"config file {path}: {_TARGETS_KEY} must be a list of names or tables"
            )
        names = [entry for entry in listed if isinstance(entry, str)]
        tables = tuple((n, entry) for n, entry in enumerate(listed) if not isinstance(entry, str))
        return cls(path, {**document, **({_TARGETS_KEY: names} if names else {})}, tables)

    def where(self, key: str = "") -> str:
        """``config file PATH`` (and ``: KEY``), for messages."""
        return f"config file {self.path}" + (f": {key}" if key else "")

    def targets(self) -> tuple[_TargetEntry, ...]:
        """The target tables, validated; names are unique."""
        entries: list[_TargetEntry] = []
        for n, table in self.tables:
            entry = self._target(n, table)
            if any(seen.name == entry.name for seen in entries):
                raise ConfigurationError(f"{self._table(n)}: target {entry.name!r} is listed twice")
            entries.append(entry)
        return tuple(entries)

    def _target(self, n: int, table: object) -> _TargetEntry:
        container = self._table(n)
        try:
            return _TargetEntry.model_validate(table)
        except PydanticValidationError as err:
            raise configuration_error(
                err,
                place=lambda loc: f"{container}: {_key(loc)}" if loc else container,
                container=container,
            ) from None

    def _table(self, n: int) -> str:
        return f"{self.where()}, {_TARGETS_KEY}[{n}]"


class _EnvironmentSource(EnvSettingsSource):
    """The environment :func:`read_settings` was given (the process's, by default)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # What EnvSettingsSource does with os.environ, with the mapping given instead.
        return {
            name if self.case_sensitive else name.lower(): value
            for name, value in self._environ.items()
            if not (self.env_ignore_empty and value == "")
        }


class _ConfigFileSource(InitSettingsSource):
    """The top-level keys of the config file (its target tables are read apart)."""

    def __init__(self, settings_cls: type[BaseSettings], file: _ConfigFile) -> None:
        super().__init__(settings_cls, init_kwargs=dict(file.settings or {}))


@dataclass(frozen=True, slots=True)
class _Reading:
    """The environment and the file one :func:`read_settings` call reads."""

    environ: Mapping[str, str]
    file: _ConfigFile


# pydantic-settings builds its sources in a classmethod; this is how the environment and the
# file of one read_settings call reach it (a context variable: safe across threads and tasks).
_READING: ContextVar[_Reading] = ContextVar("handshake_obs_settings_reading")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the arguments, the environment and the config file of this process say.

    Validated when read (:func:`read_settings`); each method builds one part's
    configuration from the settings given, its own defaults filling the rest.
    """

    _values: _SettingValues
    _targets: tuple[_TargetEntry, ...]
    _otel: _OtelValues
    #: The environment as read (the ``TEMPORAL_*`` variables go to envconfig from here).
    _environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Where each given setting came from: ``argument``, its variable, or the file and key.
    _sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def log_level(self) -> str:
        """The least severe level a command logs: one of :data:`LOG_LEVELS`."""
        return self._values.log_level or DEFAULT_LOG_LEVEL

    @property
    def log_json(self) -> bool | None:
        """JSON log lines (True), console lines (False), or JSON unless a terminal (None)."""
        return self._values.log_json

    def handshake_config(self, **overrides: Any) -> HandshakeConfig:
        """The library's configuration; ``overrides`` (its fields) win over every setting."""
        v = self._values
        temporal = self._temporal_profile()
        given = {
            "ledger_url": v.ledger_url,
            "temporal_address": temporal.profile.address,
            "temporal_namespace": temporal.profile.namespace,
            "listen_address": v.listen_address,
            "targets": v.targets,
            "default_target": v.default_target,
            "target_policies": {t.name: t.policy() for t in self._targets} or None,
            "rpc_timeout": _duration(v.rpc_timeout_seconds),
            "rpc_retry": (
                None if v.rpc_max_attempts is None else RetryPolicy(max_attempts=v.rpc_max_attempts)
            ),
            "ledger_call_timeout": _duration(v.ledger_call_timeout_seconds),
            "metrics_refresh_interval": _duration(v.metrics_refresh_seconds),
            "metrics_scrape_refresh_timeout": _duration(v.metrics_scrape_refresh_timeout_seconds),
            "reaper_interval": _duration(v.reaper_interval_seconds),
            "reaper_batch_size": v.reaper_batch_size,
            "reaper_concurrency": v.reaper_concurrency,
            "reaper_lease": _duration(v.reaper_lease_seconds),
            "ledger_retention": _duration(v.ledger_retention_seconds),
            "ledger_prune_batch_size": v.ledger_prune_batch_size,
            "token_keys": self._token_keys(),
            "reconcile_enabled": v.reconcile_enabled,
            "reconcile_calls_per_second": v.reconcile_calls_per_second,
            "reconcile_interval": _duration(v.reconcile_interval_seconds),
            "reconcile_first_check": _duration(v.reconcile_first_check_seconds),
            "reconcile_max_check_interval": _duration(v.reconcile_max_check_interval_seconds),
        }
        return _build(HandshakeConfig, given, overrides)

    def _token_keys(self) -> TokenKeys | None:
        """The token keys given inline or in a file (never both)."""
        v = self._values
        if v.token_keys is not None and v.token_keys_file is not None:
            raise ConfigurationError(
                f"{self._sources['token_keys']} and {self._sources['token_keys_file']}: "
                "give the token keys one way, not both"
            )
        if v.token_keys is not None:
            return parse_token_keys(v.token_keys, where=self._sources["token_keys"])
        if v.token_keys_file is None:
            return None
        path = Path(v.token_keys_file)
        where = f"token keys file {path} ({self._sources['token_keys_file']})"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"{where} does not exist") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigurationError(f"{where} cannot be read: {err}") from None
        return parse_token_keys(text, where=where)

    def sidecar_settings(self, **overrides: Any) -> SidecarSettings:
        """The sidecar's settings; ``overrides`` (their fields) win over every setting."""
        v = self._values
        given = {
            "completion_token": v.completion_token,
            "operator_token": v.operator_token,
            "inventory_token": v.inventory_token,
            "task_queue": v.task_queue,
            "public_url": v.public_url,
            "max_body_bytes": v.max_body_bytes,
            "body_timeout": _duration(v.body_timeout_seconds),
            "max_connections": v.max_connections,
            "allow_unauthenticated": v.allow_unauthenticated,
            "temporal_ui_url": v.temporal_ui_url,
            "trace_url_template": v.trace_url_template,
            "runbook_url": v.runbook_url,
            "dashboard_url": v.dashboard_url,
            "prometheus_url": v.prometheus_url,
            "target_urls": {t.name: t.url for t in self._targets if t.url} or None,
        }
        return _build(SidecarSettings, given, overrides)

    def proxy_settings(self, **overrides: Any) -> ProxySettings:
        """The proxy's settings; ``overrides`` (their fields) win over every setting."""
        v = self._values
        rules = v.proxy_async_activities
        given = {
            "listen_address": v.proxy_listen_address,
            "metrics_address": v.proxy_metrics_address,
            "async_activities": None if rules is None else tuple(map(AsyncActivity.parse, rules)),
        }
        return _build(ProxySettings, given, overrides)

    def sidecar_endpoint(self) -> SidecarEndpoint:
        """Where the inventory commands find the sidecar, and the tokens they send."""
        v = self._values
        listen = v.listen_address or HandshakeConfig().listen_address
        host, _, port = listen.rpartition(":")
        url = v.url or f"http://{_WILDCARD_HOSTS.get(host, host)}:{port}"
        return SidecarEndpoint(url.rstrip("/"), v.inventory_token, v.operator_token)

    def _temporal_profile(self) -> TemporalProfile:
        aliases = {setting: getattr(self._values, setting) for setting in TEMPORAL_ALIASES}
        return TemporalProfile.read(self._environ, aliases, self._sources)

    def temporal_connection(self) -> TemporalConnection:
        """How this process connects to Temporal: what every command dials.

        Read by ``temporalio.envconfig`` from this environment, as every Temporal tool reads
        it: the profile ``TEMPORAL_PROFILE`` names (default ``default``) of the
        ``temporal.toml`` that ``TEMPORAL_CONFIG_FILE`` names (default: the user's config
        directory), overridden by ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
        ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS*`` and ``TEMPORAL_GRPC_META_*``. The argument
        ``temporal_address`` (``--temporal-address``) wins over all of them. The deprecated
        setting ``temporal_address`` / ``temporal_namespace`` (``HANDSHAKE_TEMPORAL_*``, or
        the config file's key) is read as ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE`` when
        that variable is not set, with a :class:`DeprecationWarning`.

        Certificates and keys are read now: a missing file or one that is not PEM is a
        :class:`ConfigurationError` naming it (never its content).
        """
        temporal = self._temporal_profile()
        for message in temporal.deprecations:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
        profile = temporal.profile
        given: dict[str, Any] = {
            "address": profile.address,
            "namespace": profile.namespace,
            "api_key": profile.api_key,
            "tls": tls_of(profile),
            "rpc_metadata": dict(profile.grpc_meta) or None,
            "profile": self._environ.get(PROFILE_VARIABLE) or None,
        }
        return TemporalConnection(**{k: v for k, v in given.items() if v is not None})

    def tracing_config(self, **overrides: Any) -> TracingConfig:
        """Where spans go; ``overrides`` (its fields) win over the ``OTEL_*`` variables."""
        o = self._otel
        disabled = (o.sdk_disabled or "").lower() == "true"
        off = disabled or (o.traces_exporter or "").lower() == "none"
        given = {
            "endpoint": o.exporter_otlp_endpoint,
            "traces_endpoint": o.exporter_otlp_traces_endpoint,
            "protocol": o.exporter_otlp_traces_protocol or o.exporter_otlp_protocol,
            "enabled": False if off else None,
        }
        return _build(TracingConfig, given, overrides)


def read_settings(environ: Mapping[str, str] | None = None, **arguments: Any) -> Settings:
    """This process's settings: ``arguments`` > ``environ`` > the config file > defaults.

    ``arguments`` are settings by name (a command line's options; None: not given);
    ``environ`` defaults to the process's environment. Raises :class:`ConfigurationError`
    naming the variable, or the file and key, of every value that is not valid.
    """
    env = os.environ if environ is None else environ
    given = {name: value for name, value in arguments.items() if value is not None}
    if unknown := set(given) - set(_SettingValues.model_fields):
        raise ConfigurationError(f"unknown settings: {sorted(unknown)}")
    file = _ConfigFile.read(Path(path) if (path := env.get(CONFIG_FILE_VARIABLE)) else None)

    def place(loc: Location) -> str:
        name = str(loc[0])
        variable = variable_name(name)
        if name in given:
            where = f"argument {name}"
        elif any(key.upper() == variable and value for key, value in env.items()):
            where = variable
        else:
            where = file.where(name)
        return where + _key(loc[1:], nested=True)

    reading = _READING.set(_Reading(env, file))
    try:
        values = _SettingValues(**given)
        otel = _OtelValues()
    except PydanticValidationError as err:
        raise configuration_error(
            err, place=place, container=file.where(), secrets=_SECRET_SETTINGS
        ) from None
    finally:
        _READING.reset(reading)
    sources = {
        name: place((name,)) for name in _SettingValues.model_fields if getattr(values, name)
    }
    return Settings(values, file.targets(), otel, dict(env), sources)


def load_settings(
    environ: Mapping[str, str] | None = None, **overrides: Any
) -> tuple[HandshakeConfig, SidecarSettings]:
    """The sidecar's configurations, from the settings; ``overrides`` are fields of either
    (``ledger_url=...``, ``task_queue=...``) and win over every setting."""
    config_fields = {f.name for f in fields(HandshakeConfig)}
    sidecar_fields = {f.name for f in fields(SidecarSettings)}
    if unknown := set(overrides) - config_fields - sidecar_fields:
        raise ConfigurationError(f"unknown configuration fields: {sorted(unknown)}")
    settings = read_settings(environ)
    return (
        settings.handshake_config(**{k: v for k, v in overrides.items() if k in config_fields}),
        settings.sidecar_settings(**{k: v for k, v in overrides.items() if k in sidecar_fields}),
    )


def variable_name(setting: str) -> str:
    """The environment variable of a setting: ``url`` -> ``HANDSHAKE_URL``."""
    if setting not in _SettingValues.model_fields:
        raise KeyError(f"no setting {setting!r}")
    return ENV_PREFIX + setting.upper()


def setting_names() -> tuple[str, ...]:
    """Every setting's name (a key of the config file), in the order they are declared."""
    return tuple(_SettingValues.model_fields)


#: Settings whose values are never shown, in a repr or an error message.
_SECRET_SETTINGS = frozenset(
    name for name, field in _SettingValues.model_fields.items() if not field.repr
)

_Config = TypeVar("_Config", HandshakeConfig, SidecarSettings, TracingConfig, ProxySettings)


def _build(cls: type[_Config], given: Mapping[str, Any], overrides: Mapping[str, Any]) -> _Config:
    if unknown := set(overrides) - {f.name for f in fields(cls)}:
        raise ConfigurationError(f"unknown configuration fields: {sorted(unknown)}")
    values = {name: value for name, value in given.items() if value is not None}
    return cls(**{**values, **overrides})


def _duration(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _key(loc: Location, *, nested: bool = False) -> str:
    """``("deadline_seconds",)`` -> ``deadline_seconds``; list positions as ``[n]``."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return text if nested else text.lstrip(".")
