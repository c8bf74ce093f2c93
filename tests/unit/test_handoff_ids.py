"""Handoff ids: the published shape, unguessable, and ordered by creation time, so that
the ledger's indexes keyed by them take new entries at their end."""

from __future__ import annotations

import base64
import re
import time

from handshake_obs._tokens import HANDOFF_ID_PATTERN, looks_like_handoff_id, new_handoff_id
from handshake_obs.ledger._pending_counts import POSTGRES_SHARDS, shard_of

IDS = 20_000


def created_at_millis(handoff_id: str) -> int:
    """The creation time an id starts with (its first 8 characters, in base64's order)."""
    sorted_alphabet = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    urlsafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    body = handoff_id.removeprefix("ho_").translate(str.maketrans(sorted_alphabet, urlsafe))
    return int.from_bytes(base64.urlsafe_b64decode(body)[:6], "big")


def test_ids_have_the_published_shape() -> None:
    pattern = re.compile(HANDOFF_ID_PATTERN)
    for _ in range(1000):
        handoff_id = new_handoff_id()
        assert pattern.fullmatch(handoff_id), handoff_id
        assert looks_like_handoff_id(handoff_id)


def test_an_id_of_the_earlier_shape_is_still_accepted() -> None:
    assert looks_like_handoff_id("ho_bwAo8ROPZZ-21qbz2FX6pWDg")


def test_ids_start_with_their_creation_time_and_sort_by_it() -> None:
    before = time.time_ns() // 1_000_000
    first = new_handoff_id()
    time.sleep(0.003)
    second = new_handoff_id()
    after = time.time_ns() // 1_000_000
    assert before <= created_at_millis(first) < created_at_millis(second) <= after
    assert first < second


def test_ids_made_in_one_millisecond_differ_in_their_96_random_bits() -> None:
    ids = [new_handoff_id() for _ in range(IDS)]
    assert len(set(ids)) == IDS
    tails = {handoff_id[-16:] for handoff_id in ids}
    assert len(tails) == IDS
    # Every character of the alphabet turns up in every random place (not a counter).
    for place in range(-16, 0):
        assert len({handoff_id[place] for handoff_id in ids}) == 64


def test_the_last_character_spreads_ids_evenly_over_the_count_shards() -> None:
    counts = [0] * POSTGRES_SHARDS
    for _ in range(IDS):
        counts[shard_of(new_handoff_id(), POSTGRES_SHARDS)] += 1
    assert min(counts) > 0.8 * IDS / POSTGRES_SHARDS


def test_a_value_of_another_shape_is_not_a_handoff_id() -> None:
    body = "bwAo8ROPZZ-21qbz2FX6pWDg"
    for value in ("", "ho_", f"hx_{body}", f"ho_{body}x", f"ho_{body[:-1]}", f"ho_{body[:-1]}é"):
        assert not looks_like_handoff_id(value), value
