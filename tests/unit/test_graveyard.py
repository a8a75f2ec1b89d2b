"""The graveyard (core/graveyard.py): what a wipe or a delete lets go of is gone from its
container at once and freed a slice per driver step."""

from __future__ import annotations

import gc
import weakref

from sortedcontainers import SortedList

from dynredis.core.graveyard import SLICE, Graveyard
from tests.sim.harness import SimCluster


class Thing:
    """An object whose freeing a weak reference shows."""


def test_a_buried_container_is_freed_a_slice_per_step() -> None:
    yard = Graveyard()
    woken: list[int] = []
    yard.wake = lambda: woken.append(1)
    things = {i: Thing() for i in range(2 * SLICE)}
    listed = [Thing() for _ in range(SLICE + 10)]
    refs = [weakref.ref(t) for t in [*things.values(), *listed]]
    gc.disable()  # only the graveyard's slices may free them
    try:
        yard.bury(things)
        yard.bury(listed)
        assert woken == [1]  # once: a step then comes while graves are left
        del things, listed
        alive = len(refs)
        calls = 0
        more = True
        while more:
            more = yard.step()
            calls += 1
            alive_now = sum(r() is not None for r in refs)
            assert 0 < alive - alive_now <= SLICE
            alive = alive_now
        assert alive == 0 and calls == 4 and len(yard) == 0
    finally:
        gc.enable()


def test_small_containers_wait_their_turn_and_share_the_steps() -> None:
    """Hundreds of containers each under a slice (a wipe's hash trees: a dict of
    entries, a list of sums each) were each cleared when buried, all of them in the
    wipe's own turn. They are freed by the steps, a slice of elements a step in all."""
    yard = Graveyard()
    yard.wake = lambda: None
    small = [{i: Thing() for i in range(SLICE // 8)} for _ in range(24)]
    refs = [weakref.ref(t) for d in small for t in d.values()]
    gc.disable()
    try:
        for d in small:
            yard.bury(d)
        yard.bury({})  # (an empty one is no grave)
        del small, d
        assert len(yard) == 24
        alive = len(refs)
        assert sum(r() is not None for r in refs) == alive  # none freed yet
        while yard.step():
            alive_now = sum(r() is not None for r in refs)
            assert 0 < alive - alive_now <= SLICE
            alive = alive_now
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


def test_a_dict_is_emptied_from_its_end_so_no_step_walks_emptied_slots() -> None:
    """A step took a dict's first keys and popped them: every step then walked over all
    the slots the steps before had emptied (quadratic over a big graveyard). It takes
    the last entries, shortening the dict's table: what is left is always its first
    entries, in their order, with no emptied slot before them."""
    yard = Graveyard()
    yard.wake = lambda: None
    keys = [b"k%07d" % i for i in range(3 * SLICE + 5)]
    held = dict.fromkeys(keys, b"v")
    yard.bury(held)  # (the test keeps a reference only to look)
    left = []
    while yard.step():
        left.append(len(held))
        assert list(held) == keys[:len(held)]
    assert left == [2 * SLICE + 5, SLICE + 5, 5] and not held
    members = set(keys)  # a set's pops go on from where the last step stopped
    yard.bury(members)
    sizes = []
    while yard.step():
        sizes.append(len(members))
    assert sizes == [2 * SLICE + 5, SLICE + 5, 5] and not members


def test_a_sorted_list_goes_a_sublist_at_a_time() -> None:
    yard = Graveyard()
    yard.wake = lambda: None
    scores = SortedList((float(i), b"m%d" % i) for i in range(3 * SLICE))
    yard.bury(scores)
    sizes = []
    while len(yard):
        yard.step()
        sizes.append(len(yard.graves[0]) if yard.graves else 0)
    assert sizes[-1] == 0 and len(sizes) == 3
    assert sizes[0] < 2 * SLICE + 2_000


def test_small_sorted_lists_and_no_driver_free_at_once() -> None:
    """A SortedList is emptied in place (its owner keeps it): a small one at once."""
    yard = Graveyard()
    small = SortedList(range(10))
    yard.wake = lambda: None
    yard.bury(small)
    assert len(small) == 0 and len(yard) == 0
    undriven = Graveyard()
    big = SortedList(range(2 * SLICE))
    undriven.bury(big)
    assert len(big) == 0 and len(undriven) == 0 and undriven.step() is False


def test_flushall_of_big_collections_frees_them_over_steps() -> None:
    """A wipe with big collections loaded: the node's views and trees are empty at once,
    the graveyard drains through the driver's steps (the simulation steps it as the
    server does), and the node serves a write after."""
    sim = SimCluster(3, seed=5, sliced_walks=True)
    a = sim.names[0]
    box: list[object] = []
    from tests.unit.test_collcoord import run  # noqa: PLC0415 (one helper for both)

    for i in range(0, 3 * SLICE, 2_000):
        run(sim, a, box, b"SADD", b"s", *[b"m%d" % j for j in range(i, i + 2_000)])
        sim.run(50)
    assert len(box) == len(range(0, 3 * SLICE, 2_000)) and all(r[0] is None for r in box)
    node = sim.sn[a].node
    assert node is not None
    results: list[object] = []
    assert sim.on_node(a, lambda n: n.flush_all(results.append), catch=False)
    assert len(node.graveyard) > 0
    assert node.coll.store.states == {}
    sim.run(500)
    assert results == [(None, None)]
    for name in sim.names:
        n = sim.sn[name].node
        assert n is not None and len(n.graveyard) == 0
    after: list[object] = []
    run(sim, a, after, b"SCARD", b"s")
    sim.run(100)
    assert after == [(None, b":0\r\n")]


def test_a_sorted_list_is_emptied_in_place_and_usable_at_once() -> None:
    """A command may hold a list's order across the write that empties it (a DEL seen
    in the middle of a push): the same object, empty, takes the next items in order."""
    yard = Graveyard()
    yard.wake = lambda: None
    order = SortedList(range(2 * SLICE))
    yard.bury(order)
    assert len(order) == 0 and list(order) == [] and len(yard) == 1
    order.update([3.5, 1.5, 2.5])
    assert list(order) == [1.5, 2.5, 3.5] and order.bisect_left(2.0) == 1
    while yard.step():
        pass
    assert list(order) == [1.5, 2.5, 3.5] and len(yard) == 0
