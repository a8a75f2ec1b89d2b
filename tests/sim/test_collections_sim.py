"""Hashes, sorted sets and lists under faults, checked against the README's semantics.

Commands go through random nodes while the network partitions, drops, duplicates and
reorders messages and a node crashes and restarts; after the heal and anti-entropy
every node must answer the same, every replica must hold the same element records, and
each type's rules must hold (README, "Semantics under concurrent writes"):

- hashes: HINCRBY fields are counters: the final value lies between the sum of the
  acknowledged increments and the sum attempted; an HSET field holds a value some HSET
  wrote (last writer wins, nothing invented), and is present if an acknowledged HSET of
  it came after every HDEL of it was acknowledged;
- sorted sets: ZINCRBY members are counters likewise (every increment counts); a ZADD
  member's score is one some ZADD wrote;
- lists: pushed items are never invented or duplicated, and an acknowledged push is in
  the list unless a pop may have taken it (each pop takes at most one item).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import hiredis
import pytest

from dynredis.commands import collection
from dynredis.core import records as rec
from dynredis.core.node import Config

from .harness import NetConfig, SimCluster

SEEDS = range(25)


def command(sim: SimCluster, via: str, args: list[bytes], done: Callable[[Any], None]) -> bool:
    built = collection.BUILDERS[args[0].decode().lower()](args, 2)
    assert not isinstance(built, bytes), built
    key, op = built
    return sim.on_node(via, lambda node: node.coll.run(key, op, done, (args, 2)))


def read_via(sim: SimCluster, via: str, args: list[bytes]) -> Any:
    """A read through `via`, retried as a client would (messages are still lost)."""
    box: list[Any] = []
    for _ in range(10):
        box = []
        assert command(sim, via, args, box.append)
        waited = 0
        while not box and waited < 5000:
            sim.run(5)
            waited += 5
        if box and box[0][0] is None:
            reader = hiredis.Reader()
            reader.feed(box[0][1])
            return reader.gets()
    raise AssertionError(f"{args!r} through {via} failed ten times: {box}")


class Run:
    """One seed's cluster and the record of what was sent and acknowledged."""

    def __init__(self, seed: int, sliced_walks: bool = False) -> None:
        self.seed = seed
        self.rng = rng = random.Random(seed)
        n_nodes = rng.randint(3, 5)
        net = NetConfig(loss_p=rng.choice([0.0, 0.02, 0.05]), dup_p=rng.choice([0.0, 0.03]),
                        reorder_p=rng.choice([0.0, 0.1]))
        durability = [rng.choice(["fsync", "buffered"]) for _ in range(n_nodes)]
        self.sim = SimCluster(n_nodes, seed=seed,
                              config=Config(q=16, ae_interval_ms=50, timeout_ms=500),
                              net=net, durability=durability, strict=False,
                              sliced_walks=sliced_walks)
        self.names = self.sim.names
        self.sent: list[dict] = []  # {args, sent, acked, reply}

    def send(self, args: list[bytes]) -> None:
        via = self.rng.choice(self.names)
        ev: dict = {"args": args, "sent": self.sim.now, "acked": None, "reply": None,
                    "answered": False, "via": via, "crashes": self.sim.sn[via].crashes}

        def done(result: tuple) -> None:
            ev["answered"] = True
            if result[0] is None:
                ev["acked"] = self.sim.now
                if type(result[1]) is not bytes:  # an internal step's value
                    ev["reply"] = result[1]
                    return
                reader = hiredis.Reader()
                reader.feed(result[1])
                ev["reply"] = reader.gets()

        if command(self.sim, via, args, done):
            self.sent.append(ev)

    def schedule(self, make: Callable[[random.Random], list[bytes]], count: int) -> None:
        sim, rng = self.sim, self.rng
        t0 = sim.now
        for _ in range(count):
            sim.at(t0 + rng.random() * 4000, self.send, make(rng))
        names = self.names
        cut_at = t0 + rng.random() * 2000
        side = rng.sample(names, k=max(1, len(names) // 2))
        sim.at(cut_at, sim.cut_groups, side, [x for x in names if x not in side])
        sim.at(cut_at + 1000 + rng.random() * 1500, sim.heal)
        victim = rng.choice(names)
        crash_at = t0 + rng.random() * 3000
        sim.at(crash_at, sim.crash, victim)
        sim.at(crash_at + 200 + rng.random() * 800, sim.restart, victim)
        sim.run(4500)
        sim.heal()
        sim.run(20_000)
        assert not sim.errors, sim.errors[:1]

    def same_everywhere(self, args: list[bytes]) -> Any:
        """The reply of `args` through every node (they must agree)."""
        views = [read_via(self.sim, via, args) for via in self.names]
        if args[0] == b"HGETALL":  # (in no particular order)
            views = [sorted(zip(v[::2], v[1::2], strict=True)) for v in views]
        assert all(v == views[0] for v in views), f"seed {self.seed}: {args!r}: {views}"
        p, primaries = self.sim.primaries(args[1])
        stored = [dict(self.sim.sn[name].engine.scan_prefix(rec.elem_partition(p),
                                                               rec.prefix(args[1])))
                  for name in primaries]
        assert all(s == stored[0] for s in stored), \
            f"seed {self.seed}: replicas of {args[1]!r} differ"
        return views[0]

    def events(self, name: bytes, key: bytes, element: bytes | None = None) -> list[dict]:
        return [e for e in self.sent if e["args"][0] == name and e["args"][1] == key
                and (element is None or e["args"][2] == element)]


def hashes_case(
        seed_range: range = SEEDS) -> None:
    for seed in seed_range:
        run = Run(seed)
        fields = [b"f0", b"f1", b"f2"]
        counters = [b"c0", b"c1"]
        serial = iter(range(10**6))

        def make(rng: random.Random, fields: list[bytes] = fields,
                 counters: list[bytes] = counters, serial: Any = serial) -> list[bytes]:
            roll = rng.random()
            if roll < 0.45:
                return [b"HSET", b"h", rng.choice(fields), b"v%d" % next(serial)]
            if roll < 0.6:
                return [b"HDEL", b"h", rng.choice(fields)]
            return [b"HINCRBY", b"h", rng.choice(counters), b"%d" % rng.randint(1, 5)]

        run.schedule(make, run.rng.randint(80, 200))
        final = dict(run.same_everywhere([b"HGETALL", b"h"]))
        for c in counters:
            incs = run.events(b"HINCRBY", b"h", c)
            acked = sum(int(e["args"][3]) for e in incs if e["acked"] is not None)
            tried = sum(int(e["args"][3]) for e in incs)
            value = int(final.get(c, b"0"))
            assert acked <= value <= tried, (
                f"seed {seed}: {c!r} = {value}, acknowledged {acked}, attempted {tried}")
        for f in fields:
            sets = run.events(b"HSET", b"h", f)
            dels = run.events(b"HDEL", b"h", f)
            if f in final:
                assert final[f] in {e["args"][3] for e in sets}, f"seed {seed}: {f!r} invented"
            if any(e["acked"] is not None and all(
                    d["acked"] is not None and d["acked"] < e["sent"] for d in dels)
                    for e in sets):
                assert f in final, f"seed {seed}: acknowledged HSET of {f!r} lost"


def sorted_sets_case(seed_range: range = SEEDS) -> None:
    for seed in seed_range:
        run = Run(seed)
        adds = [b"a0", b"a1"]
        incs = [b"i0", b"i1"]
        serial = iter(range(1, 10**6))

        def make(rng: random.Random, adds: list[bytes] = adds, incs: list[bytes] = incs,
                 serial: Any = serial) -> list[bytes]:
            if rng.random() < 0.4:
                return [b"ZADD", b"z", b"%d" % next(serial), rng.choice(adds)]
            return [b"ZINCRBY", b"z", b"%d" % rng.randint(1, 5), rng.choice(incs)]

        run.schedule(make, run.rng.randint(80, 200))
        flat = run.same_everywhere([b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"])
        final = {m: float(s) for m, s in zip(flat[::2], flat[1::2], strict=True)}
        for m in incs:
            evs = [e for e in run.sent if e["args"][0] == b"ZINCRBY" and e["args"][3] == m]
            acked = sum(int(e["args"][2]) for e in evs if e["acked"] is not None)
            tried = sum(int(e["args"][2]) for e in evs)
            assert acked <= final.get(m, 0) <= tried, (
                f"seed {seed}: {m!r} = {final.get(m)}, acknowledged {acked}, tried {tried}")
            if acked:
                assert m in final, f"seed {seed}: {m!r} lost"
        for m in adds:
            evs = [e for e in run.sent if e["args"][0] == b"ZADD" and e["args"][3] == m]
            if m in final:
                assert final[m] in {float(e["args"][2]) for e in evs}, \
                    f"seed {seed}: score of {m!r} invented"
            if any(e["acked"] is not None for e in evs):
                assert m in final, f"seed {seed}: acknowledged ZADD of {m!r} lost"


def lists_case(seed_range: range = SEEDS) -> None:
    for seed in seed_range:
        run = Run(seed)
        serial = iter(range(10**6))

        def make(rng: random.Random, serial: Any = serial) -> list[bytes]:
            roll = rng.random()
            if roll < 0.4:
                return [b"RPUSH", b"l", b"x%d" % next(serial)]
            if roll < 0.7:
                return [b"LPUSH", b"l", b"x%d" % next(serial)]
            return [b"LPOP" if roll < 0.85 else b"RPOP", b"l"]

        run.schedule(make, run.rng.randint(80, 200))
        final = run.same_everywhere([b"LRANGE", b"l", b"0", b"-1"])
        pushed = {e["args"][2] for e in run.sent if e["args"][0] in (b"RPUSH", b"LPUSH")}
        assert len(final) == len(set(final)), f"seed {seed}: an item twice: {final}"
        assert set(final) <= pushed, f"seed {seed}: invented {set(final) - pushed}"
        acked = {e["args"][2] for e in run.sent
                 if e["args"][0] in (b"RPUSH", b"LPUSH") and e["acked"] is not None}
        pops = [e for e in run.sent if e["args"][0] in (b"LPOP", b"RPOP")]
        popped = {e["reply"] for e in pops if e["acked"] is not None and e["reply"]}
        unknown = sum(1 for e in pops if e["acked"] is None)  # may have taken one each
        missing = acked - set(final) - popped
        assert len(missing) <= unknown, (
            f"seed {seed}: acknowledged pushes lost: {sorted(missing)} "
            f"({unknown} pops without an answer)")


def trims_case(seed_range: range = SEEDS) -> None:
    """Lists pushed, trimmed, popped by counts and deleted, with the nodes walking
    collection records a few at a time between events (as servers do between clients)
    and removals of most of a list taking the bulk way (KeyView.remove): commands that
    wait for a walk all get their answer, and the list is the same everywhere, with no
    item invented or twice."""
    import dynredis.core.collstore as collstore
    import dynredis.core.collview as collview

    saved = collstore.SLICE, collview.BULK_MIN
    collstore.SLICE, collview.BULK_MIN = 3, 2
    try:
        for seed in seed_range:
            run = Run(seed, sliced_walks=True)
            serial = iter(range(10**6))

            def make(rng: random.Random, serial: Any = serial) -> list[bytes]:
                roll = rng.random()
                if roll < 0.55:
                    return [b"RPUSH", b"l"] + [b"x%d" % next(serial) for _ in range(4)]
                if roll < 0.75:
                    return [b"LTRIM", b"l", b"0", b"%d" % rng.randint(0, 6)]
                if roll < 0.9:
                    return [b"LPOP", b"l", b"%d" % rng.randint(1, 8)]
                if roll < 0.95:  # DEL, as a collection step
                    return [b"dyn.store", b"l", b"none", b"\x90"]
                return [b"LRANGE", b"l", b"0", b"-1"]

            run.schedule(make, run.rng.randint(80, 200))
            final = run.same_everywhere([b"LRANGE", b"l", b"0", b"-1"])
            pushed = {x for e in run.sent if e["args"][0] == b"RPUSH" for x in e["args"][2:]}
            assert len(final) == len(set(final)), f"seed {seed}: an item twice: {final}"
            assert set(final) <= pushed, f"seed {seed}: invented {set(final) - pushed}"
            stuck = [e["args"] for e in run.sent if not e["answered"]
                     and run.sim.sn[e["via"]].crashes == e["crashes"]]
            assert not stuck, f"seed {seed}: never answered: {stuck[:3]}"
            assert all(not n.coll.store.walks and not n.coll.store.waited
                       for n in run.sim.nodes.values()), f"seed {seed}: walks left"
    finally:
        collstore.SLICE, collview.BULK_MIN = saved


@pytest.mark.parametrize("test", [
    hashes_case,
    sorted_sets_case,
    lists_case,
    trims_case,
], ids=["hashes", "sorted-sets", "lists", "trims"])
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_collections_under_faults(test: Callable[..., None], seed: int) -> None:
    test(range(seed, seed + 1))


def test_a_command_handed_to_a_replica_that_goes_down_fails_when_it_is_counted_down() -> None:
    """A node that is not a replica of the key hands the command to one and waits for
    its answer longer than a request's timeout (the replica may first wait for the
    key's records to be walked, then take two quorums); when that replica is counted
    down the command fails then, not at that longer deadline."""
    from dynredis.core import collcoord

    sim = SimCluster(5, seed=3, config=Config(q=16, timeout_ms=2000))
    sim.run(3000)
    key = b"handed"
    _, replicas = sim.primaries(key)
    via = next(name for name in sim.names if name not in replicas)
    target = replicas[0]
    got: list[Any] = []
    sim.stop(target)
    t0 = sim.now
    assert command(sim, via, [b"HSET", key, b"f", b"v"], got.append)
    while not got and sim.now - t0 < 20_000:
        sim.run(50)
    assert got and got[0][0] is not None and "TIMEOUT" in got[0][0], got
    assert sim.nodes[via].member_status(target) == "down"
    assert sim.now - t0 < collcoord.FORWARD_TIMEOUTS * 2000
