"""A plain GET's read (Node.get_value) reads what a read of the object (Node.get) does:
the value the merge of the replicas' answers reads as (obj.read_value), whether the
replicas agree (read from the coordinator's bytes, undecoded) or not (siblings made
apart, a replica behind, counters, deletes, expiry), and it repairs as that read does."""

from __future__ import annotations

import random
from typing import Any

from dynredis.core import obj as objmod
from dynredis.core.node import Config, Node
from tests.sim.harness import SimCluster

from .test_coordinator import with_b_behind

KEYS = [b"k%d" % i for i in range(6)]


def both(sim: SimCluster, via: str, key: bytes, r: int | None = None) -> tuple[Any, Any]:
    """get's and get_value's results of `key` through `via`, started in one event (the
    same state read), each waited for."""
    got: list = []
    valued: list = []

    def start(node: Node) -> None:
        node.get(key, got.append, r)
        node.get_value(key, valued.append, r)

    assert sim.on_node(via, start, catch=False)
    waited = 0
    while not (got and valued) and waited < 3000:
        sim.run(5)
        waited += 5
    assert got and valued
    return got[0], valued[0]


def same_read(sim: SimCluster, via: str, key: bytes, r: int | None = None) -> Any:
    """get_value's result, checked against read_value of get's merge."""
    (e, obj), (e2, sib) = both(sim, via, key, r)
    assert e == e2
    assert sib == (objmod.read_value(obj, sim.nodes[via].now) if e is None else None)
    return sib


def test_a_plain_value_reads_from_the_bytes_as_from_the_object() -> None:
    sim = SimCluster(3, seed=31)
    a, b, c = sim.names
    assert sim.put(a, b"k", b"v")[0] is None
    sim.run(50)
    sib = same_read(sim, b, b"k")
    assert sib is not None and sib[2] == b"v"
    assert same_read(sim, c, b"missing") is None


def test_siblings_made_apart_read_as_the_merge_does() -> None:
    """Both sides of a partition wrote: replicas differ, the merge holds siblings (the
    later one is read), and the replica behind is repaired as a read of the object
    repairs it."""
    sim = SimCluster(3, seed=32, config=Config(ae_interval_ms=10**9))
    a, b, c = sim.names
    assert sim.put(a, b"k", b"old")[0] is None
    sim.run(50)
    sim.cut_groups([a, b], [c])
    assert sim.put(a, b"k", b"left")[0] is None
    sim.run(10)
    sim.put(c, b"k", b"right")  # (NOQUORUM: c alone stores it)
    sim.heal()
    sim.run(2000)  # the nodes see each other again
    sib = same_read(sim, c, b"k", 3)
    assert sib is not None and sib[2] == b"right"  # the later of two siblings
    sim.run(100)
    assert sim.stored(a, b"k") == sim.stored(b, b"k") == sim.stored(c, b"k")


def test_a_replica_behind_is_repaired_after_a_plain_read() -> None:
    sim = with_b_behind(33, Config(ae_interval_ms=10**9))
    a, b, _ = sim.names
    sim.run(2000)  # the nodes see each other again
    before = sim.nodes[a].stats.read_repairs
    box: list = []
    assert sim.on_node(a, lambda node: node.get_value(b"k", box.append, 3), catch=False)
    sim.run(100)
    assert box and box[0][0] is None and box[0][1][2] == b"v2"
    assert sim.nodes[a].stats.read_repairs == before + 1
    assert sim.stored(b, b"k") == sim.stored(a, b"k")


def test_random_histories_read_alike() -> None:
    """Writes, deletes, counters and expiring values through every node, partitions
    coming and going: at every step each node's plain read reads what its read of the
    object does."""
    sim = SimCluster(3, seed=34, config=Config(ae_interval_ms=10**9))
    rng = random.Random(34)
    names = sim.names
    for _ in range(120):
        via = rng.choice(names)
        key = rng.choice(KEYS)
        step = rng.random()
        if step < 0.35:
            value = rng.choice([b"", b"x" * rng.randint(1, 300), b"big" * 2000])
            expire = sim.nodes[via].now + rng.choice([3, 10_000]) if rng.random() < 0.3 else 0
            sim.on_node(via, lambda node, k=key, v=value, x=expire:
                        node.put(k, None, v, x, lambda _: None))
        elif step < 0.45:
            sim.on_node(via, lambda node, k=key: node.put(k, None, None, 0, lambda _: None))
        elif step < 0.55:
            sim.on_node(via, lambda node, k=key: node.incr(k, 1, lambda _: None))
        elif step < 0.65:
            x, y = rng.sample(names, 2)
            sim.partition(x, y)
        elif step < 0.7:
            sim.heal()
        else:
            same_read(sim, via, key, rng.choice([None, 1, 3]))
        sim.run(rng.choice([1, 5, 20]))
    sim.heal()
    for key in KEYS:
        for via in names:
            same_read(sim, via, key)


def test_a_cluster_of_one_node_reads_alike() -> None:
    """N=1: the node's copy is the answer, no op made."""
    sim = SimCluster(1, seed=35, config=Config(n=1, r=1, w=1))
    (a,) = sim.names
    assert sim.put(a, b"k", b"v")[0] is None
    assert same_read(sim, a, b"k")[2] == b"v"
    assert sim.put(a, b"k", None)[0] is None  # deleted
    assert same_read(sim, a, b"k") is None
    sim.on_node(a, lambda node: node.incr(b"n", 5, lambda _: None))
    sim.run(10)
    assert same_read(sim, a, b"n")[2] == b"5"


def test_a_forwarded_read_reads_alike() -> None:
    """A node outside the key's preference list forwards the read: its answer is the
    object, whose value the plain read gives."""
    sim = SimCluster(5, seed=36, config=Config(n=3, r=2, w=2))
    _, prefs = sim.primaries(b"k")
    outside = next(name for name in sim.names if name not in prefs)
    assert sim.put(prefs[0], b"k", b"v")[0] is None
    sim.run(50)
    assert same_read(sim, outside, b"k")[2] == b"v"
