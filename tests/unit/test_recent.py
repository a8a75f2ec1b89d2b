"""RecentMap (the node's bounded caches) against a model: a dict of every key set,
in order of last setting."""

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
        st.tuples(st.just("peek"), KEYS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("clear")),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(2, 24), ops=OPS)
def test_recent_map_never_stale_and_keeps_the_latest_half(size: int, ops: list) -> None:
    m = RecentMap(size)
    latest: dict[int, int] = {}  # the model: key -> last value, in order of last set
    for op in ops:
        if op[0] == "set":
            _, k, v = op
            m.set(k, v)
            latest.pop(k, None)
            latest[k] = v
        elif op[0] == "get":
            got = m.get(op[1])
            # Never a value other than the last one set; None only if forgotten.
            assert got is None or got == latest.get(op[1])
            if got is not None:  # a hit counts as use: the key moves to the newest
                latest[op[1]] = latest.pop(op[1])
        elif op[0] == "peek":
            got = m.peek(op[1])  # no move: the model stays as it is
            assert got is None or got == latest.get(op[1])
        elif op[0] == "pop":
            m.pop(op[1])
            latest.pop(op[1], None)
            assert op[1] not in m
        else:
            m.clear()
            latest.clear()
        assert len(m) <= size
        newest = list(latest)[-(size // 2):]
        for k in newest:
            assert k in m and m.get(k) == latest[k]
            latest[k] = latest.pop(k)


def test_recent_map_rejects_a_size_below_two() -> None:
    with pytest.raises(ValueError):
        RecentMap(1)


def test_recent_map_stays_bounded_over_many_keys() -> None:
    m = RecentMap(1000)
    for i in range(100_000):
        m.set(i, i + 1)
    assert len(m) <= 1000
    assert all(m.get(i) == i + 1 for i in range(99_500, 100_000))
    assert m.get(0) is None


def test_local_store_serves_every_key_when_it_holds_more_than_its_cache(tmp_path) -> None:
    """Keys beyond the cache come back from the engine, with their latest bytes."""
    engine = open_engine("lmdb", str(tmp_path), "none")
    store = LocalStore(engine, cache_size=16)
    for rnd in range(2):
        for i in range(200):
            store.put(i % 7, b"k%d" % i, b"v%d-%d" % (i, rnd))
        if rnd == 0:
            engine.commit(False)
    assert len(store.cache) <= 16
    for i in range(200):
        assert store.get_enc(i % 7, b"k%d" % i) == b"v%d-1" % i
    store.delete(3, b"k3")
    assert store.get_enc(3, b"k3") is None
    engine.close()
