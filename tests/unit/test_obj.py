"""Object encoding and identities: the bytes replicas compare, and what a replica put
uses to tell that the replica holds exactly the version the coordinator built on."""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xxhash import xxh3_128_digest

from dynredis.core import clock as dvv
from dynredis.core import header as hdr
from dynredis.core import obj as objmod
from dynredis.core.hlc import LOGICAL_BITS
from dynredis.core.pieces import Joined, pieces, splice, whole
from dynredis.server.wire import BULK_FROM, batch, encode, encode_pieces, unframe

LIMIT = objmod.INLINE_IDENTITY
# Sizes on both sides of the inline limit, so both kinds of identity meet both kinds
# of data. Bytes as objects without a header are (a header names its object by the
# digest it holds: see the header tests below).
sized = st.integers(0, 2 * LIMIT + 2).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)).filter(lambda b: b[:1] != b"\xc1")


@given(sized, sized)
def test_an_identity_matches_exactly_the_object_it_was_made_from(a: bytes, b: bytes) -> None:
    assert objmod.is_identity(a, objmod.identity(a))
    assert objmod.is_identity(b, objmod.identity(a)) == (a == b)


@given(st.binary(min_size=LIMIT + 1, max_size=LIMIT + 64).filter(lambda b: b[0] != 0xC1),
       st.integers(1, LIMIT))
def test_large_objects_differing_in_one_byte_do_not_match(data: bytes, at: int) -> None:
    changed = data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]
    assert not objmod.is_identity(changed, objmod.identity(data))
    assert len(objmod.identity(data)) == 16  # large: sent as a digest, not the bytes


def test_a_large_object_matches_only_its_own_digest() -> None:
    large = b"x" * (LIMIT + 1)
    assert not objmod.is_identity(large, objmod.identity(objmod.digest(b"other")))
    assert objmod.is_identity(large, objmod.identity(large))


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
    assert objmod.pack(value) == expected
    frame = batch([value])
    body = b"\x91" + expected  # a one-element array holding the value
    assert frame == b"$%d\r\n%b\r\n" % (len(body), body)
    assert unframe(body)[0] == msgpack.unpackb(expected, use_list=False)


def test_a_large_value_encodes_as_msgpack_does_after_its_header() -> None:
    clock = (((b"actor-01", 7, ((1_700_000_000_000_123, 0, b"v" * 70_000),)),), ())
    body = msgpack.packb(clock, use_bin_type=True)
    enc = objmod.encode(clock)
    assert enc == enc[:hdr.SIZE] + body and hdr.is_headed(enc)
    assert objmod.decode(enc) == clock
    assert objmod.digest(enc) == xxh3_128_digest(body)


_big_atoms = _atoms | st.integers(1, 3).map(lambda k: bytes(range(256)) * (k * 300))


@given(st.recursive(_big_atoms, lambda inner: st.lists(inner, max_size=20).map(tuple)
                    | st.lists(inner, max_size=20), max_leaves=30),
       st.sampled_from([1, 300, 76_800]))
def test_pieces_join_to_the_encoding(value: object, large: int) -> None:
    """A large value is kept out of its batch's or object's encoding as a piece of its
    own (not copied): the pieces must join to exactly the bytes of the whole."""
    parts = pieces(value, large)
    assert b"".join(parts) == msgpack.Packer(use_bin_type=True).pack(value)
    big = [b for b in _leaves(value) if type(b) is bytes and len(b) >= large]
    assert [p for p in parts if any(p is b for b in big)] == big  # as they are


def _leaves(value: object) -> list:
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


@given(st.lists(st.tuples(st.sampled_from(["p", "gas", "hb"]),
                          st.sampled_from([b"k", b"v" * BULK_FROM, 7, None]),
                          st.lists(st.sampled_from([1, b"x", b"w" * (BULK_FROM + 3)]),
                                   max_size=4)), max_size=4))
def test_a_peer_batch_in_pieces_is_its_encoding(msgs: list[tuple]) -> None:
    body = encode_pieces(msgs)
    assert (body if type(body) is bytes else b"".join(body)) == encode(msgs)


_large = st.integers(0, 2).map(lambda k: bytes(range(256)) * (256 + k) + b"!" * k)
_big_sib = st.tuples(st.integers(1_700_000_000_000 - 5000, 1_700_000_000_000),
                     st.sampled_from([0]), st.none() | st.binary(max_size=8) | _large)


@given(st.lists(st.lists(_big_sib, min_size=1, max_size=3), max_size=3),
       st.lists(_big_sib, max_size=2))
def test_an_object_with_large_values_encodes_as_packing_it_whole_would(lists, anon) -> None:
    """Encoded in pieces (a value of LARGE_VALUE bytes or more is not copied twice),
    an object has the bytes and the header it has packed whole."""
    clock = (tuple((b"A%d" % i, len(vals) + i, tuple(vals)) for i, vals in enumerate(lists)),
             tuple(anon))
    body = msgpack.packb(clock, use_bin_type=True)
    enc = objmod.encode(clock)
    if len(body) < hdr.HEADED_FROM:
        assert enc == body
    else:
        assert enc == hdr.make(*objmod.header_times(clock), body) + body
        assert objmod.digest(enc) == xxh3_128_digest(body)
    assert objmod.decode(enc) == clock


# --- the header of large objects (core/header.py) -------------------------------------

T = 1_700_000_000_000  # wall ms
_times = st.integers(T - 5000, T + 5000)
_data = st.none() | st.binary(max_size=8) | st.integers(0, 3).map(
    lambda k: b"big" * (hdr.HEADED_FROM // 3 * k))
_sib = st.tuples(_times.map(lambda ms: ms << LOGICAL_BITS),
                 st.sampled_from([0]) | _times, _data)
clocks = st.lists(st.lists(_sib, min_size=1, max_size=3), max_size=4).map(
    lambda lists: (tuple((b"A%d" % i, len(vals) + i, tuple(vals))
                         for i, vals in enumerate(lists)), ()))


@given(clocks, _times)
def test_what_the_header_says_is_what_decoding_would_say(clock, now: int) -> None:
    """The sweep, anti-entropy and keyspace walks read a large object's header instead
    of decoding it: it must answer as the decoded object does, at any time, and from
    only the first HEADED_FROM bytes (what a scan of heads reads)."""
    enc = objmod.encode(clock)
    assert hdr.is_headed(enc) == (len(objmod.pack(clock)) >= hdr.HEADED_FROM)
    assert objmod.decode(enc) == clock
    for data in (enc, enc[:hdr.HEADED_FROM] if hdr.is_headed(enc) else enc):
        assert objmod.dead_since_enc(data, now) == objmod.dead_since(clock, now)
        sib = objmod.read_value(clock, now)
        assert objmod.read_expiry(data, now) == (sib[1] if sib is not None else None)
        assert objmod.digest(data) == objmod.digest(enc)
        assert objmod.fingerprint(data) == objmod.fingerprint(enc)


@given(clocks, clocks)
def test_objects_are_the_same_exactly_when_their_bytes_are(a, b) -> None:
    ea, eb = objmod.encode(a), objmod.encode(b)
    assert objmod.same(ea, eb) == (ea == eb)
    assert (objmod.fingerprint(ea) == objmod.fingerprint(eb)) == (ea == eb)
    assert objmod.is_identity(eb, objmod.identity(ea)) == (ea == eb)


@given(clocks, st.sampled_from([b"A0", b"A1", b"Z"]))
def test_a_plain_write_built_on_the_clock_alone_is_the_one_built_on_the_object(
        clock, actor: bytes) -> None:
    """A plain SET or DEL decodes only the clock of what it supersedes (a large value
    not copied out): the version it makes, its timestamp and its actor are the same."""
    enc = objmod.encode(clock)
    skeleton = objmod.decode_clock(enc)
    assert skeleton is not None
    assert objmod.max_ts(skeleton) == objmod.max_ts(clock)
    assert [e[0] for e in skeleton[0]] == [e[0] for e in clock[0]]
    value = objmod.sibling(T << LOGICAL_BITS, b"new")
    assert dvv.overwrite(skeleton, actor, value) == dvv.overwrite(clock, actor, value)
    assert objmod.decode_clock(objmod.encode((clock[0], (value,)))) is None  # anonymous


def test_a_large_objects_header_names_it_as_the_whole_does() -> None:
    clock = (((b"A", 1, ((1, 0, b"v" * 70_000),)),), ())
    enc = objmod.encode(clock)
    assert objmod.identity(enc[:hdr.SIZE]) == objmod.identity(enc) == objmod.digest(enc)


def test_objects_of_other_shapes_encode_as_msgpack_does() -> None:
    """Collections encode clocks without values (a dot set's vector and cloud) through
    obj.encode too: no shape is assumed beyond what a sibling value needs."""
    dot_set = (((b"a", 1), (b"b", 2)), ((b"a", 3),))  # (vector, cloud)
    for value in (dot_set, ((), ()), ((b"a", 1), (2, 3))):
        assert objmod.encode(value) == msgpack.packb(value, use_bin_type=True)


def test_a_value_viewed_in_the_store_or_appended_to_encodes_as_its_bytes() -> None:
    """EXPIRE, PERSIST and APPEND of a large value encode it from a view of the store
    (a memoryview), APPEND's with the tail after it (pieces.Joined): the same canonical
    bytes as the value itself, header and digest included."""
    value = os.urandom(100_000)
    tail = b"tail"

    def obj_of(data: object) -> tuple:
        return (((b"actor", 3, ((7 << 16, 0, data),)),), ((5 << 16, 99, b"small"),))

    want = objmod.encode(obj_of(value + tail))
    assert hdr.is_headed(want)
    assert objmod.encode(obj_of(memoryview(value + tail))) == want
    assert objmod.encode(obj_of(Joined([memoryview(value), tail]))) == want
    assert objmod.decode(want) == obj_of(value + tail)


@given(st.binary(max_size=40), st.integers(0, 60), st.binary(max_size=12), st.integers(1, 80))
def test_a_splice_is_the_value_written_over_and_encodes_as_its_bytes(
        old: bytes, at: int, data: bytes, large: int) -> None:
    """SETRANGE's, SETBIT's and APPEND's new value (pieces.splice): `data` over `old` at
    `at`, zeros between; from `large` bytes on in pieces, never copied on the way, which
    encode to the same canonical bytes as the value itself."""
    want = old.ljust(at, b"\0")
    want = want[:at] + data + want[at + len(data):]
    new = splice(old, at, data, large)
    assert (type(new) is Joined) == (len(want) >= large)
    assert whole(new) == want
    big = old + bytes(objmod.LARGE_VALUE)
    new = splice(big, at, data, objmod.LARGE_VALUE)
    want = big[:at] + data + big[at + len(data):]

    def obj_of(value: object) -> tuple:
        return (((b"actor", 3, ((7 << 16, 0, value),)),), ())

    assert type(new) is Joined and objmod.encode(obj_of(new)) == objmod.encode(obj_of(want))


# --- a plain GET's value read from the bytes (obj.plain_value) -------------------------

_any_data = (st.none() | st.binary(max_size=300) | st.just(b"w" * 70_000)
             | st.just((5, 1, ((b"A0", 3, 1),)))  # a counter
             | st.just(("hash",)))  # a collection's marker
_any_sib = st.tuples(st.integers(0, 2**64 - 1),
                     st.sampled_from([0, 1, 127, 128, 255, 256, 65_536, 2**32, T]),
                     _any_data)


@given(st.lists(st.tuples(st.sampled_from([b"A", b"actor-" * 50, b"Z" * 70_000]), _any_sib),
                min_size=1, max_size=3),
       st.lists(_any_sib, max_size=1),
       st.sampled_from([0, 1, 127, 128, 255, 256, 65_535, 2**32, T, 2**63]))
@settings(max_examples=500, deadline=None)
def test_a_value_read_from_the_bytes_is_what_decoding_reads(writes, anon, now: int) -> None:
    """GET reads the value of the object every plain write makes straight from its bytes
    (no clock decoded): for any object (one value or siblings, tombstones, expiring,
    counters, a collection's marker, large and headed, long actors) it reads what
    decoding and read_value read, or leaves it to them (NOT_PLAIN); a one-value object
    of bytes or a tombstone it always reads."""
    held = None
    for actor, sib in writes:
        one = dvv.overwrite(None, actor, sib)
        held = dvv.sync(held, one) if held else one
    held = (held[0], tuple(anon))
    enc = objmod.encode(held)
    got = objmod.plain_value(enc, now)
    if got is not objmod.NOT_PLAIN:
        assert got == objmod.read_value(objmod.decode(enc), now)
    one = len(held[0]) == 1 and len(held[0][0][2]) == 1 and not anon
    data = held[0][0][2][0][2]
    if one and not hdr.is_headed(enc) and (data is None or type(data) is bytes):
        assert got is not objmod.NOT_PLAIN


def _plain_value_in_c(b: bytes, now: int):
    try:
        from dynredis import _peerframe
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    return _peerframe.plain_value(b, now, objmod.NOT_PLAIN)


_NOWS = st.sampled_from([-5, 0, 1, 127, 128, 255, 256, 65_535, 2**32, T, 2**63, 2**64, 2**70])


@given(st.lists(st.tuples(st.sampled_from([b"A", b"actor-" * 50, b"Z" * 70_000]), _any_sib),
                min_size=1, max_size=2),
       st.lists(_any_sib, max_size=1), _NOWS, st.data())
@settings(max_examples=400, deadline=None)
def test_the_c_plain_value_is_the_python_one(writes, anon, now: int, data) -> None:
    """csrc/peerframe.c's plain_value reads what plain_value_in_python reads, from every object and
    from every cut or flipped copy of its bytes (garbage is NOT_PLAIN, never a crash or
    a read past the end)."""
    held = None
    for actor, sib in writes:
        one = dvv.overwrite(None, actor, sib)
        held = dvv.sync(held, one) if held else one
    enc = objmod.encode((held[0], tuple(anon)))
    assert _plain_value_in_c(enc, now) == objmod.plain_value_in_python(enc, now)
    cut = data.draw(st.integers(0, len(enc)))
    at = data.draw(st.integers(0, max(0, len(enc) - 1)))
    flip = data.draw(st.integers(0, 255))
    for bad in (enc[:cut], enc[:at] + bytes([flip]) + enc[at + 1:]):
        assert _plain_value_in_c(bad, now) == objmod.plain_value_in_python(bad, now)


def test_the_c_plain_value_refuses_what_is_not_bytes() -> None:
    with pytest.raises(TypeError):
        _plain_value_in_c(bytearray(b"\x92\x91\x93"), 0)
    with pytest.raises(TypeError):
        _plain_value_in_c(b"", "now")
