"""Token keys: parsed from ``ID:BASE64KEY`` entries, the first current; every mistake is a
ConfigurationError that names where it came from and the key id, never the key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from handshake_obs import ConfigurationError
from handshake_obs._token_keys import new_token_key, parse_token_keys
from handshake_obs.config import read_settings

KEY = new_token_key()
OTHER = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")


def test_entries_give_the_current_key_first_and_every_key_by_id() -> None:
    keys = parse_token_keys(f" new:{KEY} ,\n# retired soon\nold:{OTHER}\n", where="here")

    assert keys.current == "new"
    assert keys.ids == ("new", "old")
    assert keys.key("new") == base64.b64decode(KEY)
    assert keys.key("old") == bytes(range(32))
    assert keys.key("gone") is None
    assert KEY not in repr(keys)
    assert OTHER not in repr(keys)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no token key given"),
        (f"{KEY}", "entry 1 is not ID:BASE64KEY"),
        (f"a:{KEY},a:{OTHER}", "token key id 'a' is given twice"),
        ("a:not*base64", "token key 'a' is not base64"),
        (f"a:{base64.b64encode(b'short').decode()}", "token key 'a' must be 32 bytes"),
        (f"bad id!:{KEY}", "is not a short name"),
    ],
)
def test_a_mistake_names_where_and_the_key_id_but_never_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^here: ") as raised:
        parse_token_keys(text, where="here")

    assert problem in str(raised.value)
    assert KEY not in str(raised.value)


def test_keys_come_from_the_variable_or_a_file_never_both(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"k1:{KEY}\n")

    from_file = read_settings({"HANDSHAKE_TOKEN_KEYS_FILE": str(keys_file)}).handshake_config()
    from_env = read_settings({"HANDSHAKE_TOKEN_KEYS": f"k2:{KEY}"}).handshake_config()
    both = read_settings(
        {"HANDSHAKE_TOKEN_KEYS": f"k2:{KEY}", "HANDSHAKE_TOKEN_KEYS_FILE": str(keys_file)}
    )
    bad_file = tmp_path / "bad"
    bad_file.write_text(f"k1:{KEY[:-8]}\n")
    bad = read_settings({"HANDSHAKE_TOKEN_KEYS_FILE": str(bad_file)})

    assert from_file.token_keys is not None
    assert from_file.token_keys.current == "k1"
    assert from_env.token_keys is not None
    assert from_env.token_keys.current == "k2"
    assert read_settings({}).handshake_config().token_keys is None
    with pytest.raises(ConfigurationError, match="one way, not both"):
        both.handshake_config()
    with pytest.raises(ConfigurationError, match=f"token keys file {bad_file}") as raised:
        bad.handshake_config()
    assert KEY[:-8] not in str(raised.value)
