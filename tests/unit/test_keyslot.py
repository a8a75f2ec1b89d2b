"""Redis Cluster hash slots (dynredis.core.keyslot)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core.keyslot import SLOTS, hash_tag, key_slot


@pytest.mark.parametrize(
    ("key", "slot"),
    [
        (b"foo", 12182),
        (b"bar", 5061),
        (b"123456789", 12739),  # CRC16-XMODEM check value 0x31C3 mod 16384
        (b"", 0),
    ],
)
def test_known_slots(key, slot):
    assert key_slot(key) == slot


def test_hash_tags_share_a_slot():
    a = key_slot(b"{user1000}.following")
    b = key_slot(b"{user1000}.followers")
    assert a == b == key_slot(b"user1000")


@pytest.mark.parametrize(
    ("key", "hashed"),
    [
        (b"foo{}{bar}", b"foo{}{bar}"),  # empty first tag: the whole key
        (b"foo{{bar}}zap", b"{bar"),  # from the first { to the first } after it
        (b"foo{bar}{zap}", b"bar"),  # only the first tag counts
        (b"{user1000}.following", b"user1000"),
        (b"no tag", b"no tag"),
        (b"open{only", b"open{only"),
        (b"close}only{", b"close}only{"),
        (b"}{x}", b"x"),
        (b"{}", b"{}"),
        (b"{a}", b"a"),
    ],
)
def test_hash_tag_rules(key, hashed):
    assert hash_tag(key) == hashed
    assert key_slot(key) == key_slot(hashed)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_slots_in_range(key):
    assert 0 <= key_slot(key) < SLOTS


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=8),
    st.binary(min_size=1, max_size=12).filter(lambda t: b"}" not in t),
    st.binary(max_size=8),
)
def test_tagged_keys_hash_their_tag(prefix, tag, suffix):
    if b"{" in prefix:
        return
    key = prefix + b"{" + tag + b"}" + suffix
    assert hash_tag(key) == tag
    assert key_slot(key) == key_slot(tag)
