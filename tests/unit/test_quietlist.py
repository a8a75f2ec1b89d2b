"""A collection's big orders stay out of the cyclic collector's walk (core/quietlist.py):
a full collection pass with a million-element sorted set loaded no longer visits its
elements, and the orders behave exactly as SortedLists."""

from __future__ import annotations

import gc
import random

import pytest
from sortedcontainers import SortedList

from dynredis.core import quietlist
from dynredis.core import records as rec
from dynredis.core.collstore import KeyState
from dynredis.core.merkle import MerkleTree
from dynredis.core.quietlist import QuietSortedList
from dynredis.core.scanorder import ScanBuild, sorted_run

pytestmark = pytest.mark.skipif(quietlist._untrack is None, reason="no ctypes")


def tracked_sublists(sl: SortedList) -> int:
    return sum(map(gc.is_tracked, sl._lists))


def test_sublists_made_by_adds_and_updates_are_untracked() -> None:
    sl = QuietSortedList()
    for i in range(10_000):  # splits into many sublists
        sl.add((float(i % 997), b"m%d" % i))
    assert len(sl._lists) > 4
    assert tracked_sublists(sl) == 0
    sl.update([(0.5, b"x%d" % i) for i in range(20_000)])  # rebuilds every sublist
    assert tracked_sublists(sl) == 0
    assert tracked_sublists(QuietSortedList(range(5000))) == 0
    assert tracked_sublists(SortedList(range(5000))) > 0  # what it avoids


def test_it_reads_and_changes_exactly_as_a_sorted_list() -> None:
    rng = random.Random(7)
    quiet, plain = QuietSortedList(), SortedList()
    for _ in range(30_000):
        op = rng.random()
        v = rng.randrange(5000)
        if op < 0.6:
            quiet.add(v)
            plain.add(v)
        elif op < 0.9:
            quiet.discard(v)
            plain.discard(v)
        elif op < 0.95 and plain:
            i = rng.randrange(len(plain))
            assert quiet.pop(i) == plain.pop(i)
        else:
            del quiet[10:60]
            del plain[10:60]
    assert list(quiet) == list(plain)
    assert quiet.bisect_left(2500) == plain.bisect_left(2500)
    assert tracked_sublists(quiet) == 0


def test_a_collection_s_orders_hold_nothing_the_collector_walks() -> None:
    st = KeyState(b"k", 0)
    members = [b"m%d" % i for i in range(20_000)]
    st.add_new(rec.ZSET, members, [float(i) for i in range(20_000)])
    st.add_new(rec.LIST, [b"p%06d" % i for i in range(20_000)], [b"x"] * 20_000)
    for i in range(3000):  # one at a time, as replicated writes land
        st.set_value(rec.ZSET, b"n%d" % i, float(-i))
    assert tracked_sublists(st.zorder) == tracked_sublists(st.lorder) == 0
    gc.collect()  # the (score, member) pairs: untracked once examined, kept
    assert len(st.zorder) == 23_000 and st.zorder[0] == (-2999.0, b"n2999")
    assert not any(map(gc.is_tracked, st.zorder[:100]))


def test_scan_orders_are_untracked_too() -> None:
    members = [b"m%d" % i for i in range(10_000)]
    assert tracked_sublists(sorted_run(members)) == 0
    build = ScanBuild(dict.fromkeys(members, b""))
    while not build.step():
        pass
    assert all(tracked_sublists(run) == 0 for run in build.order.runs)
    assert len(build.order) == 10_000


def test_a_merkle_tree_s_bucket_index_is_out_of_the_collector_s_walk() -> None:
    """A partition's tree lists its keys per bucket (a million for a big collection's
    records): built, added to, and pruned after deletes, no list of them is tracked."""
    for fold in ("fold", "fold_pure"):
        tree = MerkleTree(32, 2, keyed=True)
        getattr(tree, fold)({b"k%d" % i: b"v" for i in range(5000)})
        assert sum(len(tree.bucket(i)) for i in range(tree.segments)) == 5000
        getattr(tree, fold)({b"n%d" % i: b"v" for i in range(3000)})  # appended
        getattr(tree, fold)({b"k%d" % i: None for i in range(4000)})  # pruned on read
        listed = sum(len(tree.bucket(i)) for i in range(tree.segments))
        assert listed == 4000
        assert tree._index and not any(map(gc.is_tracked, tree._index.values()))
