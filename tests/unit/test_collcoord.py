"""The collection coordinator (core/collcoord.py) on simulated clusters: cases a seed of
the blocking simulation found."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.commands import collection
from dynredis.core import driver
from dynredis.core import obj as objmod
from dynredis.core import records as rec
from dynredis.core.node import Config
from tests.sim.harness import SimCluster


def run(sim: SimCluster, via: str, box: list[Any], *args: bytes,
        progress: Any = None) -> None:
    built = collection.BUILDERS[args[0].decode().lower()](list(args), 2)
    assert not isinstance(built, bytes)
    key, op = built
    assert sim.on_node(via, lambda node: node.coll.run(key, op, box.append, (list(args), 2),
                                                       progress=progress), catch=False)


@pytest.mark.parametrize("second_args, reply", [
    ((b"RPUSH", b"k", b"x"), b":1\r\n"),  # it writes: its write got a new deadline
    ((b"LLEN", b"k"), b":0\r\n"),  # it only reads: done, no longer pending
])
def test_a_command_whose_sync_times_out_releases_the_next_one_queued_on_its_key(
        second_args: tuple[bytes, ...], reply: bytes) -> None:
    """Two commands on one key, started together: the first's sync is lost, the second's
    completes but waits behind it. At their common deadline the first's timeout runs
    the second, which the same timeout sweep must then leave alone (it timed out the
    write just started, or raised KeyError for a read and stopped the node's tick)."""
    sim = SimCluster(3, seed=1, config=Config(q=16, timeout_ms=300))
    a, b, c = sim.names
    first: list[Any] = []
    second: list[Any] = []
    sim.partition(a, b)
    sim.partition(a, c)
    run(sim, a, first, b"LPOP", b"k")
    sim.heal()
    run(sim, a, second, *second_args)
    sim.run(400)
    assert sim.errors == []
    assert first and first[0][0].startswith("NOQUORUM read")
    assert second == [(None, reply)]


def test_a_plan_waiting_for_a_turn_goes_on_after_the_second_walk_step() -> None:
    """CollCoordinator.later: with a driver stepping walks (the server's loop turns), a
    plan's TURN step is answered in the second step from now, after the loop polled for
    input; without one, at once."""
    sim = SimCluster(3, seed=3, sliced_walks=True)
    a = sim.names[0]
    box: list[Any] = []

    def plan() -> Any:
        got = yield collection.TURN
        return (b"after a turn", got)

    assert sim.on_node(a, lambda node: collection.drive(
        plan(), lambda step, cb: collection.run_step(node, step, 2, cb, None, None),
        box.append), catch=False)
    assert box == []
    node = sim.sn[a].node
    assert node is not None and node.coll.turns
    assert node.coll.step() is True and box == [] and node.coll.due
    sim.run(100)
    assert box == [(b"after a turn", None)]
    assert not node.coll.turns and not node.coll.due
    unstepped = SimCluster(3, seed=3)
    assert unstepped.on_node(unstepped.names[0], lambda node: collection.drive(
        plan(), lambda step, cb: collection.run_step(node, step, 2, cb, None, None),
        box.append), catch=False)
    assert box[1:] == [(b"after a turn", None)]


def test_a_command_synced_behind_one_waiting_for_the_views_does_not_time_out() -> None:
    """Two commands on a big list whose views are not in memory: the first waits for
    them to load (local work, over loop turns), the second's sync completes and it waits
    behind the first. Neither times out meanwhile (the second answered "NOQUORUM read
    needed 2 of 3 replicas, got 3 before timeout"); both answer once the views are in."""
    sim = SimCluster(3, seed=1, config=Config(q=16, timeout_ms=300), sliced_walks=True)
    a = sim.names[0]
    stepping = _evict_list(sim, a)
    store = sim.sn[a].node.coll.store
    first: list[Any] = []
    second: list[Any] = []
    run(sim, a, first, b"LLEN", b"k")
    run(sim, a, second, b"LINDEX", b"k", b"-1")
    sim.run(1_000)
    assert (sim.errors, first, second) == ([], [], [])
    store.wake = stepping
    node = sim.sn[a].node
    while node.coll.step():
        pass
    sim.run(500)
    assert first == [(None, b":20000\r\n")]
    assert second == [(None, b"$6\r\ni19999\r\n")]


def _evict_list(sim: SimCluster, a: str) -> Any:
    """A 20,000-item list `k` written through `a`, then `a` restarted: its views are not
    in memory there, and its store's walks make no progress until the test gives back
    its `wake` (returned)."""
    filled: list[Any] = []
    run(sim, a, filled, b"RPUSH", b"k", *[b"i%d" % i for i in range(20_000)])
    sim.run(500)
    assert filled == [(None, b":20000\r\n")]
    sim.crash(a)
    sim.restart(a)
    sim.run(2_000)
    store = sim.sn[a].node.coll.store
    stepping = store.wake
    store.wake = lambda: None
    return stepping


def _evicted_list(sim: SimCluster, a: str) -> Any:
    """`_evict_list`, returning the function that gives back the wake and steps every
    walk."""
    stepping = _evict_list(sim, a)
    node = sim.sn[a].node
    store = node.coll.store

    def walk_all() -> None:
        store.wake = stepping
        while node.coll.step():
            sim.run(10)

    return walk_all


def _length_and_header(sim: SimCluster, a: str) -> tuple[list[Any], Any]:
    """LLEN k through `a`, and the sibling a quorum read of its header gives."""
    got: list[Any] = []
    run(sim, a, got, b"LLEN", b"k")
    head: list[Any] = []
    assert sim.on_node(a, lambda node: node.get(b"k", head.append), catch=False)
    sim.run(500)
    return got, objmod.read_value(head[0][1], 0)


@pytest.mark.parametrize("data, expire_at, length", [
    (None, 0, 0),  # DEL (or a SET of a string)
    (rec.marker("list"), 4_000_000_000_000, 20_000),  # EXPIRE
    (rec.marker("list"), 0, 20_000),  # PERSIST
])
def test_a_delete_or_expire_of_a_big_key_not_in_memory_does_not_wait_for_its_views(
        data: Any, expire_at: int, length: int) -> None:
    """A DEL (or a SET of a string) over a collection reads none of its elements, only the
    events applied: it waited for the views of a big key not in memory to be walked in
    (DEL of four evicted copies of a million elements each: 60 s, its client timed out).
    EXPIRE and PERSIST write only its header (a marker of its type with the new expiry)
    and waited too (an evicted million-member set: 18.5 s). Each is answered with no
    walk stepped; the key is gone, or keeps every element and has the new expiry."""
    sim = SimCluster(3, seed=1, config=Config(q=16, timeout_ms=300), sliced_walks=True)
    a = sim.names[0]
    walk_all = _evicted_list(sim, a)
    store = sim.sn[a].node.coll.store
    done: list[Any] = []
    assert sim.on_node(a, lambda node: node.coll.replace(b"k", data, expire_at,
                                                         done.append), catch=False)
    sim.run(1_000)
    assert sim.errors == [] and len(done) == 1 and done[0][0] is None
    assert store.states[b"k"].viewless and store.loaded_elements == 0
    walk_all()
    got, sib = _length_and_header(sim, a)
    walk_all()
    assert got == [(None, b":%d\r\n" % length)]
    assert (sib is None) if data is None else (sib[1] == expire_at)


def test_an_expire_of_a_collection_deleted_since_its_read_does_not_bring_it_back() -> None:
    """EXPIRE decides from its read of the key; a DEL between that read and its write wins:
    the key stays gone (its header is not written back as a collection's)."""
    sim = SimCluster(3, seed=1, config=Config(q=16, timeout_ms=300), sliced_walks=True)
    a = sim.names[0]
    walk_all = _evicted_list(sim, a)
    done: list[Any] = []
    assert sim.on_node(a, lambda node: node.coll.replace(b"k", None, 0, done.append),
                       catch=False)
    assert sim.on_node(a, lambda node: node.coll.replace(
        b"k", rec.marker("list"), 4_000_000_000_000, done.append), catch=False)
    sim.run(1_000)
    walk_all()
    got, sib = _length_and_header(sim, a)
    assert [r[0] for r in done] == [None, None]
    assert got == [(None, b":0\r\n")] and sib is None


def test_commands_queued_on_a_key_run_one_per_turn_once_the_turn_is_spent() -> None:
    """Commands that waited for a key's views all become ready at once; each may be
    costly (33 pipelined MEMORY USAGE SAMPLES 0 of a 16,000-field hash ran back to back:
    400 ms). Once the driver says its turn is spent (`spent`, always here) the rest go on
    in the next steps, in order, one per step."""
    sim = SimCluster(3, seed=1, config=Config(q=16, timeout_ms=3000), sliced_walks=True)
    a = sim.names[0]
    stepping = _evict_list(sim, a)
    node = sim.sn[a].node
    store = node.coll.store
    boxes: list[list[Any]] = [[] for _ in range(5)]
    for i, box in enumerate(boxes):
        run(sim, a, box, b"LINDEX", b"k", b"%d" % i)
    sim.run(500)
    assert boxes == [[]] * 5
    store.wake = stepping
    node.coll.spent = lambda: True

    def step() -> list[int]:
        node.coll.step()
        driver.settle(node, _raise)  # (the replies' callbacks, as a driver's pump)
        return [len(box) for box in boxes]

    while not boxes[0]:
        assert step() in ([0] * 5, [1, 0, 0, 0, 0])
    assert [len(box) for box in boxes] == [1, 0, 0, 0, 0]
    for n in range(2, 6):
        assert node.coll.deferred == [b"k"]
        assert step() == [1] * n + [0] * (5 - n)
    sim.run(100)
    assert [box for box in boxes] == [[(None, b"$2\r\ni%d\r\n" % i)] for i in range(5)]
    assert node.coll.deferred == []


def _raise(exc: Exception) -> None:
    raise exc
