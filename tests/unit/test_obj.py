"""Object identities (obj.identity / is_identity): what a replica put uses to tell that
the replica holds exactly the version the coordinator built on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dynredis.core import obj as objmod

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
