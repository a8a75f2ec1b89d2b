"""RecentMap (the node's bounded caches) against a model: the keys in order of first
insertion, the oldest dropped beyond the size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core.localstore import LocalStore
from dynredis.core.recent import RecentMap
from dynredis.storage import open_engine

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
            store.put(i % 7, b"k%d" % i, b"v%d-%d" % (i, rnd))
        if rnd == 0:
            engine.commit(False)
    assert len(store.cache) == 16  # exactly its size: the oldest keys went
    for i in range(200):
        assert store.get_enc(i % 7, b"k%d" % i) == b"v%d-1" % i
    store.delete(3, b"k3")
    assert store.get_enc(3, b"k3") is None
    engine.close()
