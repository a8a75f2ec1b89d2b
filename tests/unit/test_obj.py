"""Object encoding and identities: the bytes replicas compare, and what a replica put
uses to tell that the replica holds exactly the version the coordinator built on."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from dynredis.core import obj as objmod
from dynredis.server.wire import batch, unframe

LIMIT = objmod.INLINE_IDENTITY
# Sizes on both sides of the inline limit, so both kinds of identity meet both kinds
# of data.
sized = st.integers(0, 2 * LIMIT + 2).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@given(sized, sized)
def test_an_identity_matches_exactly_the_object_it_was_made_from(a: bytes, b: bytes) -> None:
    assert objmod.is_identity(a, objmod.identity(a))
    assert objmod.is_identity(b, objmod.identity(a)) == (a == b)


@given(st.binary(min_size=LIMIT + 1, max_size=LIMIT + 64), st.integers(0, LIMIT))
def test_large_objects_differing_in_one_byte_do_not_match(data: bytes, at: int) -> None:
    changed = data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]
    assert not objmod.is_identity(changed, objmod.identity(data))
    assert len(objmod.identity(data)) == 16  # large: sent as a digest, not the bytes


def test_a_large_object_matches_only_its_own_digest() -> None:
    large = b"x" * (LIMIT + 1)
    assert not objmod.is_identity(large, objmod.identity(objmod.digest(b"other")))
    assert objmod.is_identity(large, objmod.digest(large))


# What objects and peer messages hold: ints of every msgpack width, bytes, str, None,
# bools, and nested tuples/lists (floats and dicts too, for the wider messages).
_atoms = (st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=300) | st.text(max_size=40)
          | st.none() | st.booleans() | st.floats(allow_nan=False))
_values = st.recursive(
    _atoms,
    lambda inner: (st.lists(inner, max_size=20).map(tuple) | st.lists(inner, max_size=20)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=60,
)


@given(_values)
def test_encoding_gives_msgpacks_bytes_exactly(value: object) -> None:
    """Objects are compared as bytes across replicas and against what earlier versions
    stored with msgpack's Packer: the faster encoder must not change a single byte."""
    expected = msgpack.Packer(use_bin_type=True).pack(value)
    assert objmod.encode(value) == expected
    frame = batch([value])
    body = b"\x91" + expected  # a one-element array holding the value
    assert frame == b"$%d\r\n%b\r\n" % (len(body), body)
    assert unframe(body)[0] == msgpack.unpackb(expected, use_list=False)


def test_a_large_value_encodes_as_msgpack_does() -> None:
    clock = (((b"actor-01", 7, ((1_700_000_000_000_123, 0, b"v" * 70_000),)),), ())
    assert objmod.encode(clock) == msgpack.packb(clock, use_bin_type=True)
