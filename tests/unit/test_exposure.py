"""Secure defaults: off loopback, ``serve`` needs every token or the explicit opt-out, and
every endpoint group served without a token is logged as a warning."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from handshake_obs import ConfigurationError, HandshakeConfig
from handshake_obs.config import SidecarSettings
from handshake_obs.sidecar._exposure import check_exposure, is_loopback

ALL_TOKENS: dict[str, Any] = {
    "completion_token": "c" * 16,
    "operator_token": "o" * 16,
    "inventory_token": "i" * 16,
}


@pytest.mark.parametrize("address", ["0.0.0.0:9464", "[::]:9464", "10.1.2.3:9464", "sidecar:1"])
def test_off_loopback_a_missing_token_refuses_to_start(address: str) -> None:
    config = HandshakeConfig(listen_address=address)
    for missing in ALL_TOKENS:
        tokens = {k: v for k, v in ALL_TOKENS.items() if k != missing}
        with pytest.raises(ConfigurationError, match="refusing to serve") as refused:
            check_exposure(config, SidecarSettings(**tokens))
        assert missing.removesuffix("_token") in str(refused.value)
    check_exposure(config, SidecarSettings(**ALL_TOKENS))  # every token: starts


def test_the_opt_out_starts_and_warns_for_each_group_without_a_token() -> None:
    config = HandshakeConfig(listen_address="0.0.0.0:9464")
    with capture_logs() as logs:
        check_exposure(config, SidecarSettings(allow_unauthenticated=True))
    warned = {line["endpoints"]: line for line in logs if line["log_level"] == "warning"}
    assert set(warned) == {"completion", "operator", "inventory"}
    assert warned["inventory"]["effect"] == "open to anyone who reaches the address"
    assert warned["completion"]["effect"] == "refuses every request"


@pytest.mark.parametrize("address", ["127.0.0.1:9464", "localhost:9464", "[::1]:9464"])
def test_on_loopback_a_missing_token_is_a_warning(address: str) -> None:
    with capture_logs() as logs:
        check_exposure(HandshakeConfig(listen_address=address), SidecarSettings())
    assert len([line for line in logs if line["log_level"] == "warning"]) == 3
    assert is_loopback(address.rpartition(":")[0].strip("[]"))
