"""The one parser of ``handshake-obs``: every subcommand runs a function of the dispatch
table, nothing heavy is imported to build it, one duration format, one table renderer."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from dataclasses import fields

import pytest

import handshake_obs
from handshake_obs.cli import main
from handshake_obs.cli._inventory import format_table
from handshake_obs.cli._parser import (
    COMMANDS,
    SETTING_OPTIONS,
    build_parser,
    command,
    setting_arguments,
)
from handshake_obs.cli._table import render_table
from handshake_obs.cli._time import format_duration, parse_duration, parse_instant
from handshake_obs.config import AsyncActivity, read_settings, setting_names

#: What building the parser must not import: each takes a noticeable part of a second.
HEAVY = frozenset(
    {
        "temporalio",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "prometheus_client",
        "pydantic",
        "pydantic_settings",
        "opentelemetry",
        "structlog",
        "psycopg",
    }
)


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_every_subcommand_has_one_entry_in_the_dispatch_table() -> None:
    assert subcommands(build_parser()) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_entry_of_the_dispatch_table_resolves_to_a_callable(name: str) -> None:
    module, _, function = COMMANDS[name].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert callable(command(name))


def test_options_that_are_settings_carry_the_settings_names() -> None:
    assert set(SETTING_OPTIONS) <= set(setting_names())


def test_dev_options_are_the_fields_of_the_dev_options() -> None:
    from handshake_obs.dev._stack import DevOptions  # noqa: PLC0415 - heavy: this test only

    parsed = vars(build_parser().parse_args(["dev"]))
    dev_options = set(parsed) - {"command", "log_level", "log_json"}
    assert dev_options == {f.name for f in fields(DevOptions)}
    assert all(parsed[name] is None for name in dev_options)  # left out: DevOptions' defaults


def test_dev_durations_read_like_every_other_duration() -> None:
    args = build_parser().parse_args(["dev", "--activity-timeout", "2m", "--no-prometheus"])
    assert args.activity_timeout_seconds == 120
    assert args.with_prometheus is False


def test_the_token_option_is_the_token_the_subcommand_sends() -> None:
    parser = build_parser()
    assert parser.parse_args(["show", "ho_x", "--token", "t"]).inventory_token == "t"
    assert parser.parse_args(["extend", "ho_x", "--by", "1h", "--token", "t"]).operator_token == (
        "t"
    )


def test_serve_and_reap_take_the_same_ledger_and_temporal_options() -> None:
    parser = build_parser()
    for argv in (["serve"], ["reap", "--once"]):
        args = parser.parse_args(
            [*argv, "--ledger-url", "sqlite:///x.db", "--temporal-address", "t:1"]
        )
        assert (args.ledger_url, args.temporal_address) == ("sqlite:///x.db", "t:1")


def test_proxy_options_are_the_proxy_settings() -> None:
    args = build_parser().parse_args(
        ["proxy", "--listen-address", "0.0.0.0:7299", "--metrics-address", "127.0.0.1:9",
         "--async-activity", "A=approval", "--async-activity", "q/B", "--ledger-url", "x"]
    )  # fmt: skip
    settings = read_settings({}, **setting_arguments(args)).proxy_settings()
    assert settings.listen_address == "0.0.0.0:7299"
    assert settings.metrics_address == "127.0.0.1:9"
    assert settings.async_activities == (
        AsyncActivity("A", "approval"),
        AsyncActivity("B", None, "q"),
    )


@pytest.mark.parametrize("argv", [["--version"], ["--version", "pending"]])
def test_version_prints_the_package_version(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"handshake-obs {handshake_obs.__version__}\n"


def test_log_level_is_one_of_four(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["--log-level", "warning", "serve"]).log_level == "warning"
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--log-level", "loud", "serve"])
    assert exited.value.code == 2
    assert "invalid choice: 'loud'" in capsys.readouterr().err


def test_a_bad_setting_is_one_line_and_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HANDSHAKE_CONFIG_FILE", raising=False)
    monkeypatch.setenv("HANDSHAKE_RPC_TIMEOUT_SECONDS", "soon")
    assert main(["pending"]) == 2
    assert capsys.readouterr().err == (
        "handshake-obs: HANDSHAKE_RPC_TIMEOUT_SECONDS: 'soon' is not a number\n"
    )


def test_building_the_parser_and_help_import_nothing_heavy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = sys.modules.copy()
    try:
        for name in list(sys.modules):
            if name.split(".")[0] in HEAVY | {"handshake_obs"}:
                del sys.modules[name]
        fresh_main = importlib.import_module("handshake_obs.cli").main
        with pytest.raises(SystemExit):
            fresh_main(["--help"])
        for name in COMMANDS:
            with pytest.raises(SystemExit):
                fresh_main([name, "--help"])
        imported = {name.split(".")[0] for name in sys.modules} & HEAVY
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
    assert "usage: handshake-obs" in capsys.readouterr().out
    assert imported == set()


# -- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("45", 45),
     ("2.5m", 150), ("12m05s", 725), (" 2H ", 7200)],
)  # fmt: skip
def test_durations_read_as_an_operator_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2x", "h", "1h 30m", "-5", "nan", "inf", "1.5.2h", "1h-2m"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (-3, "0s"), (0.4, "0s"), (42, "42s"), (59.6, "1m00s"), (725, "12m05s"),
     (3599, "59m59s"), (3600, "1h00m"), (3 * 3600 + 7 * 60 + 9, "3h07m"),
     (2 * 86400 + 4 * 3600 + 5, "2d04h"), (400 * 86400, "400d00h")],
)  # fmt: skip
def test_durations_are_written_in_the_two_largest_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["0s", "42s", "1m00s", "12m05s", "3h07m", "23h59m", "2d04h"])
def test_a_written_duration_reads_back_and_writes_the_same(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("seconds", [0, 1, 59, 61, 725, 3599, 3661, 86399, 90061, 10**7 + 7])
def test_reading_back_a_written_duration_drops_only_the_smaller_units(seconds: int) -> None:
    unit = 1 if seconds < 3600 else 60 if seconds < 86400 else 3600
    assert parse_duration(format_duration(seconds)) == seconds - seconds % unit


def test_instants_need_a_timezone() -> None:
    assert parse_instant("2026-11-23T12:00:00Z").utcoffset() is not None
    with pytest.raises(argparse.ArgumentTypeError, match="needs a timezone"):
        parse_instant("2026-11-23T12:00:00")


# -- tables ------------------------------------------------------------------------------------


def test_tables_align_columns_two_spaces_apart_without_trailing_spaces() -> None:
    lines = render_table([("ho_1", "12m05s", ""), ("ho_22", "1s", "x")], header=("A", "AGE", "Z"))
    assert lines == ["A      AGE     Z", "ho_1   12m05s", "ho_22  1s      x"]
    assert render_table([]) == []


def test_the_pending_table_writes_ages_and_deadlines_in_the_one_duration_format() -> None:
    item = {
        "handoff_id": "ho_1",
        "workflow_id": "wf 1",
        "target": "billing",
        "age_seconds": 725.2,
        "deadline": "2026-11-23T10:12:00Z",
        "started_at": "2026-11-23T10:00:00Z",
        "state": "pending",
        "outcome": None,
    }
    header, row = format_table([item])
    assert header.split() == ["HANDOFF", "WORKFLOW", "TARGET", "AGE", "DEADLINE", "STATE"]
    cells = re.split(r"\s{2,}", row)
    assert cells == [
        "ho_1", "wf 1", "billing", "12m05s", "2026-11-23 10:12:00Z (overdue 5s)", "pending"
    ]  # fmt: skip


def test_serve_reap_and_dev_take_the_log_level_after_their_name_too() -> None:
    for argv in (["serve"], ["reap", "--once"], ["dev"]):
        after = build_parser().parse_args([*argv, "--log-level", "debug"])
        assert after.log_level == "debug"
        # Given before the name and not after, the earlier one is kept.
        assert build_parser().parse_args(["--log-level", "error", *argv]).log_level == "error"
