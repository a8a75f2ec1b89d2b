"""Redis Cluster hash slots (dynredis.core.keyslot)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core.keyslot import SLOTS, hash_tag, key_slot, key_slot_in_python, slot_partition


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


def _slot_in_c(key) -> int:
    try:
        from dynredis import _keyslot
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    return _keyslot.slot(key)


# Keys made of the bytes that matter to a slot ({, }, and others), any length.
TAGGY = st.lists(st.sampled_from([b"{", b"}", b"a", b"\x00", b"\xff", b"user1000"]),
                 max_size=12).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=80), TAGGY))
def test_the_c_slot_is_the_python_slot(key):
    """csrc/keyslot.c gives key_slot_in_python's slot for every key, hash tags and all,
    from bytes and from other bytes-like keys."""
    want = key_slot_in_python(key)
    assert _slot_in_c(key) == want
    assert _slot_in_c(bytearray(key)) == want
    assert _slot_in_c(memoryview(key)) == want
    assert key_slot(key) == want


@pytest.mark.parametrize(("key", "slot"), [(b"foo", 12182), (b"123456789", 12739),
                                           (b"{user1000}.following", 3443)])
def test_the_c_slot_knows_redis_slots(key, slot):
    assert _slot_in_c(key) == slot == key_slot_in_python(key)


def test_the_c_slot_refuses_what_is_not_bytes():
    with pytest.raises(TypeError):
        _slot_in_c("foo")


def _partition_in_c(key, shift: int) -> int:
    try:
        from dynredis import _keyslot
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    return _keyslot.partition(key, shift)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=80), TAGGY), st.integers(0, 14))
def test_the_c_partition_is_the_slot_shifted(key, shift):
    """csrc/keyslot.c's partition is key_slot_in_python's slot >> shift: a ring's
    partition of the key (core/ring.py's partition_of), whatever the ring's size."""
    assert _partition_in_c(key, shift) == key_slot_in_python(key) >> shift
    assert slot_partition(key, shift) == key_slot_in_python(key) >> shift


def test_the_c_partition_refuses_bad_arguments():
    for args in (("foo", 6), (b"foo", -1), (b"foo", 15), (b"foo", "6"), (bytearray(b"x"), 6)):
        with pytest.raises((TypeError, ValueError)):
            _partition_in_c(*args)
