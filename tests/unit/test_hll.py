"""The HyperLogLog codec (commands/hll.py): Redis' format, its two encodings, and the
register-wise merge that makes concurrent versions of an HLL converge.

Byte-for-byte agreement with a real redis-server is checked in
tests/integration/test_hll_redis.py; here the codec is checked on its own."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands import hll
from dynredis.commands.hll import Hll

# What redis-server 7.0 stores after `PFADD k a b c` (read with GET).
REDIS_ABC = bytes.fromhex("48594c4c01000000000000000000008060f38050b1844bfb80425a")


def build(elements: list[bytes], start: bytes | None = None) -> Hll:
    h = Hll(start if start is not None else hll.empty())
    for e in elements:
        assert h.add(e) >= 0
    h.invalidate()
    return h


def registers(h: Hll) -> bytearray:
    raw = h.registers()
    assert raw is not None
    return raw


def union(*hs: Hll) -> bytearray:
    raw = bytearray(hll.REGISTERS)
    for h in hs:
        assert h.merge_registers(raw)
    return raw


elements = st.lists(st.binary(max_size=6), max_size=60)
# Enough distinct elements to pass the sparse limit and promote to dense.
many = st.integers(0, 3000).map(lambda n: [b"el:%d" % i for i in range(n)])
element_sets = elements | many


def test_redis_bytes_for_three_elements() -> None:
    h = build([b"a", b"b", b"c"])
    assert h.encode() == REDIS_ABC
    assert h.count() == 3
    assert Hll(REDIS_ABC).encode() == REDIS_ABC


def test_a_new_hll_is_redis_empty_sparse_one() -> None:
    e = hll.empty()
    assert e == b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xff"
    assert hll.is_valid(e) and hll.cached_card(e) == 0 and Hll(e).count() == 0


def test_each_element_lands_where_redis_put_it() -> None:
    """The register and run length that MurmurHash64A gives each element are the ones
    the three VAL opcodes of REDIS_ABC hold."""
    raw = registers(Hll(REDIS_ABC))
    for e in (b"a", b"b", b"c"):
        index, count = hll.pattern(e)
        assert raw[index] == count
    assert sum(1 for v in raw if v) == 3


@given(st.integers(0, 2**32), st.sampled_from([1, 4, 32, 64]))
@settings(max_examples=30, deadline=None)
def test_dense_packing_round_trips_and_is_redis_layout(seed: int, top: int) -> None:
    rng = random.Random(seed)
    raw = bytes(rng.randrange(top) for _ in range(hll.REGISTERS))
    packed = hll.pack_dense(raw)
    assert len(packed) == hll.DENSE_BYTES
    assert hll.unpack_dense(packed) == raw
    for i in (0, 1, 2, 3, 4, 5, 1000, hll.REGISTERS - 1):  # HLL_DENSE_GET_REGISTER
        byte, fb = i * 6 // 8, i * 6 & 7
        b1 = packed[byte + 1] if byte + 1 < len(packed) else 0
        assert ((packed[byte] >> fb) | (b1 << (8 - fb))) & 63 == raw[i]


@given(st.integers(0, 2**32), st.sampled_from([1, 2, 33, 64]), st.integers(1, 4))
@settings(max_examples=30, deadline=None)
def test_register_maxima_packed_and_unpacked_agree(seed: int, top: int, n: int) -> None:
    rng = random.Random(seed)
    blocks = [bytes(rng.randrange(top) for _ in range(hll.REGISTERS)) for _ in range(n)]
    want = bytes(map(max, *blocks)) if n > 1 else blocks[0]
    acc = blocks[0]
    for b in blocks[1:]:
        acc = hll.max_registers(acc, b)
    assert acc == want
    assert hll.max_packed(*(hll.pack_dense(b) for b in blocks)) == hll.pack_dense(want)


@given(element_sets)
@settings(max_examples=60, deadline=None)
def test_encoding_round_trips_and_sparse_stays_under_its_limit(els: list[bytes]) -> None:
    h = build(els)
    data = h.encode()
    assert hll.is_valid(data)
    assert Hll(data).encode() == data
    if h.dense:
        assert len(data) == hll.DENSE_SIZE
    else:
        assert len(data) <= hll.SPARSE_MAX_BYTES


@given(element_sets)
@settings(max_examples=60, deadline=None)
def test_sparse_to_dense_keeps_registers_and_count(els: list[bytes]) -> None:
    h = build(els)
    before, count = registers(h), h.count()
    assert h.to_dense() and h.dense
    assert registers(h) == before and h.count() == count
    again = Hll(h.encode())
    assert again.dense and registers(again) == before


@given(elements, elements)
@settings(deadline=None)
def test_pfadd_reports_a_change_exactly_when_a_register_grows(a: list[bytes],
                                                              b: list[bytes]) -> None:
    h = build(a)
    for e in b:
        before = registers(h)
        changed = h.add(e)
        after = registers(h)
        assert changed == (1 if after != before else 0)
        assert all(x >= y for x, y in zip(after, before, strict=True))


@given(element_sets, element_sets, element_sets)
@settings(max_examples=40, deadline=None)
def test_merge_is_commutative_associative_idempotent(a: list[bytes], b: list[bytes],
                                                     c: list[bytes]) -> None:
    ha, hb, hc = build(a), build(b), build(c)
    assert union(ha, hb) == union(hb, ha)
    ab = build([], hll.empty())
    hll.merge_into(ab, union(ha, hb))
    bc = build([], hll.empty())
    hll.merge_into(bc, union(hb, hc))
    assert union(ab, hc) == union(ha, bc)
    assert union(ha, ha) == registers(ha)


@given(element_sets, element_sets)
@settings(max_examples=40, deadline=None)
def test_merged_hll_is_the_hll_of_the_union(a: list[bytes], b: list[bytes]) -> None:
    """No element of either side is lost: merging equals adding both lists."""
    for dense_first in (False, True):
        dest = build(a)
        if dense_first:
            assert dest.to_dense()
        hll.merge_into(dest, registers(build(b)))
        assert registers(dest) == registers(build(a + b))
        assert dest.count() == build(a + b).count()
        assert Hll(dest.encode()).encode() == dest.encode()


def test_estimates_stay_within_two_percent() -> None:
    for n in (10, 100, 1000, 10_000, 50_000):
        h = build([b"item:%d" % i for i in range(n)])
        count = h.count()
        assert count is not None and abs(count - n) <= max(1, n * 0.02), (n, count)


def test_cached_cardinality_and_its_stale_flag() -> None:
    data = build([b"x", b"y"]).encode()
    assert hll.cached_card(data) is None  # PFADD marks it stale
    stored = hll.with_card(data, 2)
    assert hll.cached_card(stored) == 2 and stored[16:] == data[16:]
    h = Hll(stored)
    h.invalidate()
    assert hll.cached_card(h.encode()) is None


def test_validity_is_redis_check() -> None:
    good = hll.empty()
    assert hll.is_valid(good)
    assert not hll.is_valid(b"HYLL")  # shorter than the header
    assert not hll.is_valid(b"HYLX" + good[4:])
    assert not hll.is_valid(good[:4] + b"\x02" + good[5:])  # unknown encoding
    dense = build([b"a"])
    assert dense.to_dense()
    data = dense.encode()
    assert hll.is_valid(data) and not hll.is_valid(data[:-1]) and not hll.is_valid(data + b"\0")
    assert hll.is_valid(good[:16])  # a sparse body is only checked when read


def test_corrupt_sparse_bodies_are_detected() -> None:
    header = hll.empty()[:16]
    short = Hll(header + b"\x7f\xfe")  # XZERO of 16383: one register missing
    assert short.registers() is None and short.count() is None
    assert not short.to_dense()
    long = Hll(header + b"\x7f\xff\x00")  # one register too many
    assert long.registers() is None
    assert Hll(header).add(b"a") == -1  # no runs at all
    index, count = next(hll.pattern(b"k%d" % i) for i in range(100_000)
                        if hll.pattern(b"k%d" % i)[0] == hll.REGISTERS - 1)
    assert short.set(index, count) == -1  # past the last run
    assert short.set(5, 1) == 1  # inside the runs: Redis updates it all the same


def test_a_register_above_32_promotes_to_dense() -> None:
    h = Hll(hll.empty())
    assert h.set(7, 33) == 1 and h.dense
    assert registers(h)[7] == 33 and sum(registers(h)) == 33
