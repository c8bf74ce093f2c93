"""The proxy's settings: which activity types hand off, and bad input refused clearly."""

from __future__ import annotations

import pytest

from handshake_obs import ConfigurationError
from handshake_obs.config import AsyncActivity, ProxySettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Approve", AsyncActivity("Approve")),
        ("Approve=approval", AsyncActivity("Approve", "approval")),
        ("orders/Approve", AsyncActivity("Approve", None, "orders")),
        (" orders/Approve = approval ", AsyncActivity("Approve", "approval", "orders")),
    ],
)
def test_an_async_activity_is_written_queue_type_target(text: str, expected: AsyncActivity) -> None:
    assert AsyncActivity.parse(text) == expected


@pytest.mark.parametrize("text", ["", "=approval", "orders/", "/Approve", "Approve=", "a/b/=t"])
def test_a_malformed_async_activity_is_refused_with_its_text(text: str) -> None:
    with pytest.raises(ConfigurationError, match="activity_type"):
        AsyncActivity.parse(text)


def test_a_task_queue_rule_wins_over_the_general_one_and_others_are_not_handoffs() -> None:
    settings = ProxySettings(
        async_activities=(
            AsyncActivity("Approve", "general"),
            AsyncActivity("Approve", "orders-target", "orders"),
        )
    )
    assert settings.async_rule("Approve", "orders") == AsyncActivity(
        "Approve", "orders-target", "orders"
    )
    assert settings.async_rule("Approve", "billing") == AsyncActivity("Approve", "general")
    assert settings.async_rule("Charge", "orders") is None


def test_a_rule_only_for_one_queue_leaves_other_queues_untouched() -> None:
    settings = ProxySettings(async_activities=(AsyncActivity("Approve", None, "orders"),))
    assert settings.async_rule("Approve", "billing") is None


def test_a_listed_twice_rule_and_a_bad_address_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="listed twice"):
        ProxySettings(async_activities=(AsyncActivity("A"), AsyncActivity("A", "t")))
    with pytest.raises(ConfigurationError, match="host:port"):
        ProxySettings(listen_address="7234")
