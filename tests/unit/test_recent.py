"""RecentMap (the node's bounded caches) against a model: the keys in order of first
insertion, the oldest dropped beyond the size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.graveyard import SLICE, Graveyard
from dynredis.core.localstore import LocalStore
from dynredis.core.recent import ENTRY_OVERHEAD, RecentBytes, RecentMap
from dynredis.storage import open_engine


def plain(value: bytes) -> bytes:
    """A plain write's stored object holding `value` (the store reads what each object
    it writes reads as: keycounts.py)."""
    return objmod.encode(dvv.overwrite(None, b"a", (1, 0, value)))

KEYS = st.integers(0, 40)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, st.integers(1, 1000)),
        st.tuples(st.just("get"), KEYS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("clear")),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 24), ops=OPS)
def test_recent_map_is_a_bounded_fifo_that_never_answers_stale(size: int, ops: list) -> None:
    m = RecentMap(size)
    order: list[int] = []  # the model: keys by first insertion, and their last values
    values: dict[int, int] = {}
    for op in ops:
        if op[0] == "set":
            _, k, v = op
            if k not in values:
                order.append(k)
            values[k] = v
            m.set(k, v)
            if len(order) > size:
                del values[order.pop(0)]
        elif op[0] == "get":
            assert m.get(op[1]) == values.get(op[1])
        elif op[0] == "pop":
            m.pop(op[1])
            if values.pop(op[1], None) is not None:
                order.remove(op[1])
            assert op[1] not in m
        else:
            m.clear()
            order.clear()
            values.clear()
        assert len(m) == len(values) <= size
        assert all(m.get(k) == v for k, v in values.items())


BYTE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, st.integers(0, 3000), st.booleans()),
        st.tuples(st.just("get"), KEYS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("resize"), st.integers(0, 12_000)),
        st.tuples(st.just("clear")),
    ),
    max_size=300,
)


def cost(key: bytes, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 24), max_bytes=st.integers(0, 12_000), ops=BYTE_OPS)
def test_the_object_cache_is_a_fifo_bounded_by_count_and_bytes_that_never_answers_stale(
        size: int, max_bytes: int, ops: list) -> None:
    m = RecentBytes(size, max_bytes)
    values: dict[bytes, bytes] = {}  # the model, in FIFO order (a dict keeps it)
    limit = max_bytes

    def shrink() -> None:
        while values and (len(values) > size
                          or (limit and sum(cost(k, v) for k, v in values.items()) > limit)):
            del values[next(iter(values))]

    for op in ops:
        if op[0] == "set":
            k, v = b"k%d" % op[1], b"v" * op[2]
            # What the caller read before: the cached value, else the store's (some
            # older value not cached) or nothing.
            old = values.get(k, b"stored" if op[3] else None)
            if limit and cost(k, v) > limit >> 3:
                values.pop(k, None)  # too big to keep: never served stale either
            else:
                values[k] = v
            m.set(k, v, old)
            shrink()
        elif op[0] == "get":
            k = b"k%d" % op[1]
            assert m.get(k) == values.get(k)
        elif op[0] == "pop":
            m.pop(b"k%d" % op[1])
            values.pop(b"k%d" % op[1], None)
        elif op[0] == "resize":
            largest = limit >> 3 if limit else 1 << 60
            limit = op[1]
            m.resize(limit)
            held = sum(cost(k, v) for k, v in values.items())
            if (limit and held > limit) or (limit and limit >> 3 < largest):
                values.clear()  # a bound they may not fit in empties the cache
        else:
            m.clear()
            values.clear()
        assert list(m.entries.items()) == list(values.items())
        assert m.held == sum(cost(k, v) for k, v in values.items())
        assert len(m) <= size and (not limit or m.held <= limit)


def test_the_object_cache_forgets_in_order_and_stays_small_through_many_pops() -> None:
    """Keys forgotten and set again thousands of times: the oldest live entry is still
    the one evicted, and the order kept beside the entries stays within twice their
    count plus a constant (it is rebuilt, not left to grow with every pop)."""
    m = RecentBytes(8)
    values: dict[bytes, bytes] = {}  # the model, in FIFO order
    for i in range(20_000):
        k = b"k%d" % (i % 11)
        if i % 3 == 0:
            m.pop(k)
            values.pop(k, None)
        else:
            v = b"v%d" % i
            old = values.get(k)
            values[k] = v
            m.set(k, v, old)
            while len(values) > 8:
                del values[next(iter(values))]
        assert list(m.entries.items()) == list(values.items())
        assert len(m.order) <= 2 * len(m) + 1025
    assert m.held == sum(cost(k, v) for k, v in values.items())


def test_a_bound_the_entries_may_not_fit_in_gives_them_to_the_graveyard_whole() -> None:
    """CONFIG SET object-cache-max-memory 1 over 100,000 cached objects evicted them one
    at a time, each first tested against the new largest size: 52 ms of a node's loop.
    Such a bound empties the cache in one move, the graveyard freeing the entries a
    slice a turn; a larger bound keeps what is cached."""
    m = RecentBytes(100_000, 64 << 20)
    for i in range(50_000):
        m.set(b"k%d" % i, b"v" * 64, None)
    yard = Graveyard()
    woken: list[int] = []
    yard.wake = lambda: woken.append(1)
    m.resize(1, yard.bury)
    assert (len(m), m.held, woken) == (0, 0, [1])
    steps = 1
    while yard.step():
        steps += 1
    assert steps >= 50_000 // SLICE
    m.resize(64 << 20, yard.bury)
    m.set(b"kept", b"v", None)
    m.resize(128 << 20, yard.bury)
    assert m.get(b"kept") == b"v" and len(yard) == 0


def test_recent_map_rejects_a_size_below_one() -> None:
    with pytest.raises(ValueError):
        RecentMap(0)


def test_recent_map_stays_bounded_over_many_keys() -> None:
    m = RecentMap(1000)
    for i in range(100_000):
        m.set(i, i + 1)
    assert len(m) == 1000
    assert all(m.get(i) == i + 1 for i in range(99_000, 100_000))
    assert m.get(98_999) is None


def test_local_store_serves_every_key_when_it_holds_more_than_its_cache(tmp_path) -> None:
    """Keys beyond the cache come back from the engine, with their latest bytes."""
    engine = open_engine("lmdb", str(tmp_path), "none")
    store = LocalStore(engine, cache_size=16)
    for rnd in range(2):
        for i in range(200):
            key = b"k%d" % i
            store.put(i % 7, key, plain(b"v%d-%d" % (i, rnd)), store.get_enc(i % 7, key))
        if rnd == 0:
            engine.commit(False)
    assert len(store.cache) == 16  # exactly its size: the oldest keys went
    for i in range(200):
        assert store.get_enc(i % 7, b"k%d" % i) == plain(b"v%d-1" % i)
    store.delete(3, b"k3")
    assert store.get_enc(3, b"k3") is None
    engine.close()
