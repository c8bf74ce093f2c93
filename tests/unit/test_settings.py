"""The settings: every variable and file key, precedence argument > environment > file >
default, lists, and clear errors naming the variable or the file and key."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handshake_obs import ConfigurationError
from handshake_obs.cli._parser import build_parser, setting_arguments
from handshake_obs.config import (
    CONFIG_FILE_VARIABLE,
    AsyncActivity,
    HandshakeConfig,
    ProxySettings,
    Settings,
    SidecarSettings,
    TargetPolicy,
    TracingConfig,
    load_settings,
    read_settings,
    setting_names,
    variable_name,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

Read = Callable[[Settings], Any]

#: A token key as the settings take it (base64 of 32 bytes).
KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def _missing_keys_file(settings: Settings) -> bool:
    """Whether the keys file the settings name is looked for (and found missing)."""
    with pytest.raises(ConfigurationError) as raised:
        settings.handshake_config()
    return "/nonexistent/keys" in str(raised.value) and "does not exist" in str(raised.value)


#: setting -> (environment text, TOML value, what it sets, expected value). Every setting.
EVERY_SETTING: dict[str, tuple[str, str, Read, Any]] = {
    "ledger_url": (
        "sqlite:///x.db", '"sqlite:///x.db"',
        lambda s: s.handshake_config().ledger_url, "sqlite:///x.db",
    ),
    "temporal_address": (
        "temporal:7233", '"temporal:7233"',
        lambda s: s.handshake_config().temporal_address, "temporal:7233",
    ),
    "temporal_namespace": (
        "prod", '"prod"', lambda s: s.handshake_config().temporal_namespace, "prod"
    ),
    "listen_address": (
        "0.0.0.0:9999", '"0.0.0.0:9999"',
        lambda s: s.handshake_config().listen_address, "0.0.0.0:9999",
    ),
    "targets": (
        "agent,billing", '["agent", "billing"]',
        lambda s: s.handshake_config().targets, ("agent", "billing"),
    ),
    "default_target": (
        "main", '"main"', lambda s: s.handshake_config().default_target, "main"
    ),
    "rpc_timeout_seconds": (
        "2.5", "2.5", lambda s: s.handshake_config().rpc_timeout, timedelta(seconds=2.5)
    ),
    "rpc_max_attempts": (
        "7", "7", lambda s: s.handshake_config().rpc_retry.max_attempts, 7
    ),
    "ledger_call_timeout_seconds": (
        "0.25", "0.25",
        lambda s: s.handshake_config().ledger_call_timeout, timedelta(seconds=0.25),
    ),
    "metrics_refresh_seconds": (
        "0.5", "0.5",
        lambda s: s.handshake_config().metrics_refresh_interval, timedelta(seconds=0.5),
    ),
    "metrics_scrape_refresh_timeout_seconds": (
        "0.2", "0.2",
        lambda s: s.handshake_config().metrics_scrape_refresh_timeout, timedelta(seconds=0.2),
    ),
    "reaper_interval_seconds": (
        "2", "2", lambda s: s.handshake_config().reaper_interval, timedelta(seconds=2)
    ),
    "reaper_batch_size": ("50", "50", lambda s: s.handshake_config().reaper_batch_size, 50),
    "reaper_lease_seconds": (
        "90", "90", lambda s: s.handshake_config().reaper_lease, timedelta(seconds=90)
    ),
    "reaper_concurrency": ("3", "3", lambda s: s.handshake_config().reaper_concurrency, 3),
    "ledger_retention_seconds": (
        "86400", "86400", lambda s: s.handshake_config().ledger_retention, timedelta(days=1)
    ),
    "ledger_prune_batch_size": (
        "40", "40", lambda s: s.handshake_config().ledger_prune_batch_size, 40
    ),
    "token_keys": (
        f"k2:{KEY},k1:{KEY}", f'"k2:{KEY},k1:{KEY}"',
        lambda s: repr(s.handshake_config().token_keys),
        "TokenKeys(current='k2', ids=('k2', 'k1'))",
    ),
    "token_keys_file": (
        "/nonexistent/keys", '"/nonexistent/keys"', _missing_keys_file, True
    ),
    "reconcile_enabled": (
        "false", "false", lambda s: s.handshake_config().reconcile_enabled, False
    ),
    "reconcile_calls_per_second": (
        "2.5", "2.5", lambda s: s.handshake_config().reconcile_calls_per_second, 2.5
    ),
    "reconcile_interval_seconds": (
        "3", "3", lambda s: s.handshake_config().reconcile_interval, timedelta(seconds=3)
    ),
    "reconcile_first_check_seconds": (
        "7", "7", lambda s: s.handshake_config().reconcile_first_check, timedelta(seconds=7)
    ),
    "reconcile_max_check_interval_seconds": (
        "600", "600",
        lambda s: s.handshake_config().reconcile_max_check_interval, timedelta(seconds=600),
    ),
    "completion_token": (
        "c-secret", '"c-secret"', lambda s: s.sidecar_settings().completion_token, "c-secret"
    ),
    "operator_token": (
        "o-secret", '"o-secret"',
        lambda s: (s.sidecar_settings().operator_token, s.sidecar_endpoint().operator_token),
        ("o-secret", "o-secret"),
    ),
    "inventory_token": (
        "i-secret", '"i-secret"',
        lambda s: (s.sidecar_settings().inventory_token, s.sidecar_endpoint().inventory_token),
        ("i-secret", "i-secret"),
    ),
    "task_queue": ("q", '"q"', lambda s: s.sidecar_settings().task_queue, "q"),
    "public_url": (
        "https://hs.example", '"https://hs.example"',
        lambda s: s.sidecar_settings().public_url, "https://hs.example",
    ),
    "max_body_bytes": ("4096", "4096", lambda s: s.sidecar_settings().max_body_bytes, 4096),
    "temporal_ui_url": (
        "http://ui:8080", '"http://ui:8080"',
        lambda s: s.sidecar_settings().temporal_ui_url, "http://ui:8080",
    ),
    "trace_url_template": (
        "http://j/{trace_id}", '"http://j/{trace_id}"',
        lambda s: s.sidecar_settings().trace_url_template, "http://j/{trace_id}",
    ),
    "runbook_url": (
        "http://wiki/runbook", '"http://wiki/runbook"',
        lambda s: s.sidecar_settings().runbook_url, "http://wiki/runbook",
    ),
    "dashboard_url": (
        "http://grafana:3000/d/hs", '"http://grafana:3000/d/hs"',
        lambda s: s.sidecar_settings().dashboard_url, "http://grafana:3000/d/hs",
    ),
    "prometheus_url": (
        "http://prom:9090", '"http://prom:9090"',
        lambda s: s.sidecar_settings().prometheus_url, "http://prom:9090",
    ),
    "url": (
        "http://hs:9464/", '"http://hs:9464/"', lambda s: s.sidecar_endpoint().url,
        "http://hs:9464",
    ),
    "proxy_listen_address": (
        "0.0.0.0:7299", '"0.0.0.0:7299"',
        lambda s: s.proxy_settings().listen_address, "0.0.0.0:7299",
    ),
    "proxy_metrics_address": (
        "127.0.0.1:9499", '"127.0.0.1:9499"',
        lambda s: s.proxy_settings().metrics_address, "127.0.0.1:9499",
    ),
    "proxy_async_activities": (
        "Approve=approval, orders/Run", '["Approve=approval", "orders/Run"]',
        lambda s: s.proxy_settings().async_activities,
        (AsyncActivity("Approve", "approval"), AsyncActivity("Run", None, "orders")),
    ),
    "body_timeout_seconds": (
        "2.5", "2.5", lambda s: s.sidecar_settings().body_timeout, timedelta(seconds=2.5),
    ),
    "max_connections": ("64", "64", lambda s: s.sidecar_settings().max_connections, 64),
    "allow_unauthenticated": (
        "true", "true", lambda s: s.sidecar_settings().allow_unauthenticated, True,
    ),
    "log_level": ("WARNING", '"warning"', lambda s: s.log_level, "warning"),
    "log_json": ("false", "false", lambda s: s.log_json, False),
}  # fmt: skip


def config_file(tmp_path: Path, text: str) -> dict[str, str]:
    """An environment naming a config file that holds ``text``."""
    path = tmp_path / "handshake.toml"
    path.write_text(text)
    return {CONFIG_FILE_VARIABLE: str(path)}


def test_the_table_above_covers_every_setting() -> None:
    assert set(EVERY_SETTING) == set(setting_names())


@pytest.mark.parametrize("setting", sorted(EVERY_SETTING))
def test_every_setting_is_read_from_its_variable(setting: str) -> None:
    text, _, read, expected = EVERY_SETTING[setting]
    assert read(read_settings({variable_name(setting): text})) == expected


@pytest.mark.parametrize("setting", sorted(EVERY_SETTING))
def test_every_setting_is_read_from_its_file_key(setting: str, tmp_path: Path) -> None:
    _, toml_value, read, expected = EVERY_SETTING[setting]
    assert read(read_settings(config_file(tmp_path, f"{setting} = {toml_value}\n"))) == expected


@pytest.mark.parametrize("setting", sorted(EVERY_SETTING))
def test_variable_names_are_the_setting_names_with_the_prefix(setting: str) -> None:
    assert variable_name(setting) == "HANDSHAKE_" + setting.upper()


def test_nothing_given_leaves_every_default_of_the_configuration_classes() -> None:
    settings = read_settings({})
    assert settings.handshake_config() == HandshakeConfig()
    assert settings.sidecar_settings() == SidecarSettings()
    assert settings.tracing_config() == TracingConfig()
    assert settings.proxy_settings() == ProxySettings()
    assert settings.log_level == "info"
    assert settings.log_json is None


# -- precedence -------------------------------------------------------------------------------

#: setting -> (file value, environment text, argument, what it sets, [file, env, argument]
#: as read, default).
PRECEDENCE: dict[str, tuple[str, str, Any, Read, list[Any], Any]] = {
    "ledger_url": (
        '"sqlite:///file.db"', "sqlite:///env.db", "sqlite:///arg.db",
        lambda s: s.handshake_config().ledger_url,
        ["sqlite:///file.db", "sqlite:///env.db", "sqlite:///arg.db"], "sqlite:///handshake.db",
    ),
    "rpc_timeout_seconds": (
        "3", "4", 5.0, lambda s: s.handshake_config().rpc_timeout.total_seconds(),
        [3, 4, 5], 10,
    ),
    "task_queue": (
        '"file-q"', "env-q", "arg-q", lambda s: s.sidecar_settings().task_queue,
        ["file-q", "env-q", "arg-q"], "handshake-obs",
    ),
    "url": (
        '"http://file:1"', "http://env:2", "http://arg:3", lambda s: s.sidecar_endpoint().url,
        ["http://file:1", "http://env:2", "http://arg:3"], "http://127.0.0.1:9464",
    ),
    "log_level": (
        '"error"', "warning", "debug", lambda s: s.log_level,
        ["error", "warning", "debug"], "info",
    ),
    "targets": (
        '["f1", "f2"]', "e1", ("a1",), lambda s: s.handshake_config().targets,
        [("f1", "f2"), ("e1",), ("a1",)], (),
    ),
}  # fmt: skip


@pytest.mark.parametrize("setting", sorted(PRECEDENCE))
def test_argument_beats_environment_beats_file_beats_default(setting: str, tmp_path: Path) -> None:
    file_value, env_text, argument, read, (from_file, from_env, from_arg), default = PRECEDENCE[
        setting
    ]
    with_file = config_file(tmp_path, f"{setting} = {file_value}\n")
    with_env = {**with_file, variable_name(setting): env_text}
    assert read(read_settings({})) == default
    assert read(read_settings(with_file)) == from_file
    assert read(read_settings(with_env)) == from_env
    assert read(read_settings(with_env, **{setting: argument})) == from_arg
    assert read(read_settings(with_env, **{setting: None})) == from_env  # None: not given


def test_configuration_fields_given_as_arguments_win_over_every_setting(tmp_path: Path) -> None:
    env = {
        **config_file(tmp_path, "rpc_timeout_seconds = 3\nreaper_batch_size = 9\n"),
        "HANDSHAKE_RPC_TIMEOUT_SECONDS": "4",
    }
    config = HandshakeConfig.from_env(env, rpc_timeout=timedelta(seconds=1))
    assert config.rpc_timeout == timedelta(seconds=1)
    assert config.reaper_batch_size == 9
    config, sidecar = load_settings(env, task_queue="mine", reaper_batch_size=2)
    assert (config.reaper_batch_size, config.rpc_timeout) == (2, timedelta(seconds=4))
    assert sidecar.task_queue == "mine"


def test_command_line_options_are_the_arguments_of_the_settings(tmp_path: Path) -> None:
    env = {
        **config_file(tmp_path, 'ledger_url = "sqlite:///file.db"\nlog_level = "error"\n'),
        "HANDSHAKE_TEMPORAL_ADDRESS": "env:7233",
        "HANDSHAKE_OPERATOR_TOKEN": "env-token",
    }
    parser = build_parser()
    args = parser.parse_args(["--log-level", "debug", "reap", "--ledger-url", "sqlite:///a.db"])
    settings = read_settings(env, **setting_arguments(args))
    assert settings.log_level == "debug"
    assert settings.handshake_config().ledger_url == "sqlite:///a.db"
    assert settings.handshake_config().temporal_address == "env:7233"
    args = parser.parse_args(["fail", "ho_x", "--reason", "r", "--token", "arg-token"])
    assert read_settings(env, **setting_arguments(args)).sidecar_endpoint().operator_token == (
        "arg-token"
    )
    args = parser.parse_args(["pending", "--token", "inv"])
    endpoint = read_settings(env, **setting_arguments(args)).sidecar_endpoint()
    assert (endpoint.inventory_token, endpoint.operator_token) == ("inv", "env-token")


# -- the config file's targets: the reap defect -------------------------------------------------

TARGETS_FILE = """\
[[targets]]
name = "billing"
url = "http://billing:8080/h"
deadline_seconds = 3600
retryable = true
heartbeat_extends_by_seconds = 60
"""


def test_reap_and_serve_read_the_same_target_policies(tmp_path: Path) -> None:
    env = config_file(tmp_path, TARGETS_FILE)
    parser = build_parser()
    reap = read_settings(env, **setting_arguments(parser.parse_args(["reap", "--once"])))
    serve, _ = load_settings(env)
    assert reap.handshake_config().policy("billing").retryable
    assert reap.handshake_config().target_policies == serve.target_policies


def test_target_tables_leave_out_what_keeps_the_default_policy(tmp_path: Path) -> None:
    config = HandshakeConfig.from_env(config_file(tmp_path, '[[targets]]\nname = "a"\n'))
    assert config.policy("a") == TargetPolicy()
    assert "a" in config.known_targets


# -- lists -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "targets"),
    [("a", ("a",)), ("a,b", ("a", "b")), (" a , b ,", ("a", "b")), (",,", ())],
)
def test_comma_separated_lists_from_the_environment(text: str, targets: tuple[str]) -> None:
    assert read_settings({"HANDSHAKE_TARGETS": text}).handshake_config().targets == targets


@pytest.mark.parametrize(
    ("toml", "targets", "policies"),
    [
        ('targets = ["a", "b"]', ("a", "b"), set()),
        ('targets = "a, b"', ("a", "b"), set()),
        ('targets = ["a", {name = "b", retryable = true}]', ("a",), {"b"}),
        ('[[targets]]\nname = "b"', (), {"b"}),
    ],
)
def test_the_file_lists_targets_by_name_or_as_tables(
    toml: str, targets: tuple[str], policies: set[str], tmp_path: Path
) -> None:
    config = read_settings(config_file(tmp_path, toml + "\n")).handshake_config()
    assert config.targets == targets
    assert set(config.target_policies) == policies


def test_environment_target_names_replace_the_files_but_its_tables_still_apply(
    tmp_path: Path,
) -> None:
    env = {
        **config_file(tmp_path, 'targets = ["a", {name = "b", retryable = true}]\n'),
        "HANDSHAKE_TARGETS": "c",
    }
    config = read_settings(env).handshake_config()
    assert config.targets == ("c",)
    assert config.known_targets == {"b", "c", "default"}
    assert config.policy("b").retryable


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "text", "problem"),
    [
        ("HANDSHAKE_RPC_TIMEOUT_SECONDS", "soon", "is not a number"),
        ("HANDSHAKE_RPC_TIMEOUT_SECONDS", "-1", "must be positive"),
        ("HANDSHAKE_REAPER_LEASE_SECONDS", "0", "must be positive"),
        ("HANDSHAKE_REAPER_INTERVAL_SECONDS", "inf", "is not a finite number"),
        ("HANDSHAKE_METRICS_REFRESH_SECONDS", "1e20", "must be at most"),
        ("HANDSHAKE_REAPER_BATCH_SIZE", "2.5", "is not a whole number"),
        ("HANDSHAKE_RPC_MAX_ATTEMPTS", "0", "must be positive"),
        ("HANDSHAKE_MAX_BODY_BYTES", "12k", "is not a whole number"),
        ("HANDSHAKE_LOG_LEVEL", "loud", "is not one of debug, info, warning, error"),
        ("HANDSHAKE_LOG_JSON", "maybe", "is not true or false"),
    ],
)
def test_bad_environment_values_name_the_variable_and_the_value(
    variable: str, text: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"{variable}: {text!r} {problem}")):
        read_settings({variable: text})


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        read_settings({"HANDSHAKE_REAPER_BATCH_SIZE": "x", "HANDSHAKE_RPC_TIMEOUT_SECONDS": "y"})
    assert "HANDSHAKE_REAPER_BATCH_SIZE" in str(raised.value)
    assert "HANDSHAKE_RPC_TIMEOUT_SECONDS" in str(raised.value)


def test_empty_variables_are_not_given() -> None:
    assert read_settings({"HANDSHAKE_LEDGER_URL": ""}).handshake_config() == HandshakeConfig()


def test_bad_arguments_are_named_as_arguments() -> None:
    with pytest.raises(ConfigurationError, match="argument rpc_timeout_seconds: 'soon'"):
        read_settings({}, rpc_timeout_seconds="soon")
    with pytest.raises(ConfigurationError, match=r"unknown settings: \['colour'\]"):
        read_settings({}, colour="red")
    with pytest.raises(ConfigurationError, match="unknown configuration fields"):
        load_settings({}, colour="red")


def test_checks_across_fields_still_apply() -> None:
    env = {"HANDSHAKE_REAPER_LEASE_SECONDS": "5", "HANDSHAKE_RPC_TIMEOUT_SECONDS": "10"}
    with pytest.raises(ConfigurationError, match="reaper_lease must be longer than rpc_timeout"):
        read_settings(env).handshake_config()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("ledger_url = \n", "config file {path}: "),
        ("colour = 'red'\n", "config file {path}: unknown keys ['colour']"),
        ("config_file = 'x.toml'\n", "unknown keys ['config_file']"),
        ("rpc_timeout_seconds = 'soon'\n", "{path}: rpc_timeout_seconds: 'soon' is not a number"),
        ("rpc_timeout_seconds = true\n", "rpc_timeout_seconds: True is not a number"),
        ("reaper_batch_size = 2.5\n", "reaper_batch_size: 2.5 is not a whole number"),
        ("ledger_url = 5\n", "ledger_url: 5 is not a string"),
        ("task_queue = ''\n", "task_queue: '' must not be empty"),
        ("targets = 5\n", "targets must be a list of names or tables"),
        ("targets = ['a', '']\n", "config file {path}: targets[1]: '' must not be empty"),
        ("targets = [5]\n", "config file {path}, targets[0]: 5 is not a table"),
        ("[[targets]]\nurl = 'http://x'\n", "config file {path}, targets[0]: needs a name"),
        (
            "[[targets]]\nname = 'a'\nretryable = 'yes'\n",
            "targets[0]: retryable: 'yes' is not true or false",
        ),
        (
            "[[targets]]\nname = 'a'\ndeadline_seconds = -1\n",
            "targets[0]: deadline_seconds: -1 must be positive",
        ),
        ("[[targets]]\nname = 'a'\ncolour = 'red'\n", "targets[0]: unknown keys ['colour']"),
        (
            "[[targets]]\nname = 'a'\n[[targets]]\nname = 'a'\n",
            "targets[1]: target 'a' is listed twice",
        ),
        ("completion_token = 5\n", "completion_token: the value is not a string"),
    ],
)
def test_bad_config_files_name_the_file_and_the_key(
    toml: str, message: str, tmp_path: Path
) -> None:
    env = config_file(tmp_path, toml)
    expected = message.format(path=tmp_path / "handshake.toml")
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        read_settings(env)


def test_a_missing_config_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=rf"\({CONFIG_FILE_VARIABLE}\) does not exist"):
        read_settings({CONFIG_FILE_VARIABLE: str(tmp_path / "nope.toml")})


def test_tokens_never_appear_in_a_repr() -> None:
    env = {f"HANDSHAKE_{name}_TOKEN": f"{name}-secret" for name in ("COMPLETION", "OPERATOR")}
    settings = read_settings({**env, "HANDSHAKE_INVENTORY_TOKEN": "inventory-secret"})
    for shown in (settings, settings.sidecar_settings(), settings.sidecar_endpoint()):
        assert "secret" not in repr(shown)


# -- the inventory commands' sidecar -------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("127.0.0.1:9999", "http://127.0.0.1:9999"),
        ("0.0.0.0:9464", "http://127.0.0.1:9464"),
        ("[::]:9464", "http://[::1]:9464"),
        ("sidecar.internal:80", "http://sidecar.internal:80"),
    ],
)
def test_the_sidecar_url_defaults_to_the_listen_address(listen: str, url: str) -> None:
    settings = read_settings({"HANDSHAKE_LISTEN_ADDRESS": listen})
    assert settings.sidecar_endpoint().url == url


# -- OTEL_* ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, TracingConfig()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " http://c:4317 "}, TracingConfig(endpoint="http://c:4317")),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, TracingConfig()),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/v1/traces"}, TracingConfig(traces_endpoint="http://t/v1/traces")),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, TracingConfig(protocol="http/protobuf")),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
             "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            TracingConfig(protocol="http/protobuf"),
        ),
        ({"OTEL_SDK_DISABLED": "TRUE"}, TracingConfig(enabled=False)),
        ({"OTEL_SDK_DISABLED": "false"}, TracingConfig()),
        ({"OTEL_TRACES_EXPORTER": "None"}, TracingConfig(enabled=False)),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, TracingConfig()),
    ],
)  # fmt: skip
def test_every_otel_variable_read(env: dict[str, str], expected: TracingConfig) -> None:
    assert read_settings(env).tracing_config() == expected
    assert TracingConfig.from_env(env) == expected


def test_tracing_arguments_win_over_otel_variables() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}
    assert TracingConfig.from_env(env, endpoint="http://mine:4317").endpoint == "http://mine:4317"


# -- docs ----------------------------------------------------------------------------------------


def test_docs_name_every_variable_and_file_key() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [
        name
        for setting in setting_names()
        for name in (variable_name(setting), setting)
        if f"`{name}`" not in text
    ]
    otel = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        CONFIG_FILE_VARIABLE,
    ]
    missing += [name for name in otel if f"`{name}" not in text]
    assert missing == []
