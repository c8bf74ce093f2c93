"""Sidecar settings: environment and the TOML targets file, with clear errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from handshake_obs import ConfigurationError
from handshake_obs.sidecar import load_settings


def test_targets_file_sets_urls_and_policies_and_environment_sets_the_rest(tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text(
        '[[targets]]\nname = "billing"\nurl = "http://billing:8080/h"\n'
        "deadline_seconds = 3600\nretryable = true\nheartbeat_extends_by_seconds = 60\n"
    )
    config, settings = load_settings(
        {
            "HANDSHAKE_CONFIG_FILE": str(targets),
            "HANDSHAKE_COMPLETION_TOKEN": "completion-secret",
            "HANDSHAKE_TASK_QUEUE": "q",
            "HANDSHAKE_MAX_BODY_BYTES": "4096",
        }
    )
    assert settings.target_urls == {"billing": "http://billing:8080/h"}
    assert settings.completion_token == "completion-secret"
    assert settings.operator_token is None
    assert settings.task_queue == "q"
    assert settings.max_body_bytes == 4096
    policy = config.policy("billing")
    assert policy.deadline == timedelta(hours=1)
    assert policy.retryable
    assert policy.heartbeat_extends_by == timedelta(minutes=1)
    assert config.target_label("billing") == "billing"
    assert "completion-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[targets]]\nurl = 'http://x'\n", "needs a name"),
        ("[[targets]]\nname = 'a'\nurl = 'ftp://x'\n", "must be http"),
        ("[[targets]]\nname = 'a'\ndeadline_seconds = -1\n", "positive"),
        ("[[targets]]\nname = 'a'\ncolour = 'red'\n", "unknown keys"),
        ("[[targets]\n", "config file"),
    ],
)
def test_bad_targets_file_is_a_clear_start_up_error(
    tmp_path: Path, text: str, message: str
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_settings({"HANDSHAKE_CONFIG_FILE": str(targets)})


def test_missing_targets_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="config file"):
        load_settings({"HANDSHAKE_CONFIG_FILE": str(tmp_path / "nope.toml")})
