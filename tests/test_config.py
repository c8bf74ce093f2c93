"""Configuration: precedence argument > environment > file > default, validation, derived
values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from handshake_obs import ConfigurationError, HandshakeConfig, TargetPolicy


def test_arguments_override_environment_which_overrides_defaults() -> None:
    env = {
        "HANDSHAKE_LEDGER_URL": "sqlite:///from-env.db",
        "HANDSHAKE_TARGETS": "agent, approval ,",
        "HANDSHAKE_RPC_TIMEOUT_SECONDS": "2.5",
        "HANDSHAKE_RPC_MAX_ATTEMPTS": "7",
    }
    config = HandshakeConfig.from_env(env, ledger_url="sqlite:///from-arg.db")
    assert config.ledger_url == "sqlite:///from-arg.db"
    assert config.targets == ("agent", "approval")
    assert config.rpc_timeout == timedelta(seconds=2.5)
    assert config.rpc_retry.max_attempts == 7
    assert config.default_target == "default"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HANDSHAKE_RPC_TIMEOUT_SECONDS": "soon"}, "not a number"),
        ({"HANDSHAKE_RPC_TIMEOUT_SECONDS": "-1"}, "must be positive"),
        ({"HANDSHAKE_TARGETS": "agent,other"}, "reserved"),
    ],
)
def test_bad_environment_values_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        HandshakeConfig.from_env(env)


def test_target_policies_come_from_the_config_file(tmp_path: Path) -> None:
    """What ``reap`` (and any worker) is configured with honours HANDSHAKE_CONFIG_FILE, as
    ``serve`` does: a target the file marks ``retryable = true`` is reaped as retryable."""
    targets = tmp_path / "targets.toml"
    targets.write_text(
        '[[targets]]\nname = "billing"\ndeadline_seconds = 3600\nretryable = true\n'
        "heartbeat_extends_by_seconds = 60\n"
    )
    env = {"HANDSHAKE_CONFIG_FILE": str(targets), "HANDSHAKE_TARGETS": "agent"}
    config = HandshakeConfig.from_env(env, ledger_url="sqlite:///from-arg.db")
    assert config.policy("billing") == TargetPolicy(
        deadline=timedelta(hours=1), retryable=True, heartbeat_extends_by=timedelta(minutes=1)
    )
    assert config.known_targets == {"agent", "billing", "default"}
    assert config.ledger_url == "sqlite:///from-arg.db"


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown configuration fields"):
        HandshakeConfig.from_env({}, ledger="x")


def test_unconfigured_targets_share_the_other_label() -> None:
    config = HandshakeConfig(targets=("agent",))
    assert config.target_label("agent") == "agent"
    assert config.target_label("default") == "default"
    assert config.target_label("user-supplied-123") == "other"


def test_deadline_margin_is_a_bounded_share_of_the_timeout() -> None:
    config = HandshakeConfig()
    assert config.deadline_margin(timedelta(hours=24)) == timedelta(minutes=5)
    assert config.deadline_margin(timedelta(minutes=10)) == timedelta(minutes=1)
    assert config.deadline_margin(timedelta(seconds=1)) == timedelta(milliseconds=500)


def test_deadline_margin_leaves_room_for_one_reaper_scan_before_temporal_times_out() -> None:
    config = HandshakeConfig(reaper_interval=timedelta(seconds=5))
    # 10% of 20 s would be 2 s: shorter than a scan interval, so the margin grows to 6 s.
    assert config.deadline_margin(timedelta(seconds=20)) == timedelta(seconds=6)
    # ...but never beyond half the window.
    assert config.deadline_margin(timedelta(seconds=8)) == timedelta(seconds=4)
