"""RENAME under faults, and GETCTX of a collection after a partition, in the simulator.

RENAME (README: three steps, each where its key lives) runs again and again, moving a
set from `src` to a fresh key each time, while other clients add members to `src`
through random nodes, the network loses, duplicates and reorders messages and a
partition comes and heals. A rename may fail (its error says which step); whatever
happens, once the partition has healed and anti-entropy has run:

- no acknowledged addition is lost: each member is in `src` or in one of the keys it
  was renamed to (a rename deletes from the source only what it read and copied);
- nothing is invented, and every node answers the same members for every key.

GETCTX: a field written on both sides of a partition is merged by last writer wins,
and GETCTX of the hash counts and names it.
"""

from __future__ import annotations

import random
from typing import Any

import hiredis
import pytest

from dynredis.commands import collection
from dynredis.core.node import Config

from .harness import NetConfig, SimCluster

SEEDS = range(20)


def parse(data: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(data)
    return reader.gets()


def step(sim: SimCluster, via: str, args: list[bytes], done: Any, r: int | None = None,
         w: int | None = None) -> None:
    """One plan step (or command) through `via`, as its own event."""
    def go() -> None:
        if not sim.on_node(via, lambda node: collection.run_step(node, args, 2, done, r, w)):
            done(("node down", None))

    sim.at(sim.now, go)


def plan(sim: SimCluster, via: str, words: list[bytes], done: Any) -> None:
    built = collection.PLANS[words[0].decode().lower()](words, 2)
    assert not isinstance(built, bytes)
    collection.drive(built, lambda args, cb: step(sim, via, args, cb), done)


def call(sim: SimCluster, via: str, args: list[bytes], r: int | None = None) -> Any:
    """A read through `via`, retried as a client would; its parsed reply."""
    for _ in range(10):
        box: list[Any] = []
        step(sim, via, args, box.append, r)
        waited = 0
        while not box and waited < 5000:
            sim.run(5)
            waited += 5
        if box and box[0][0] is None:
            result = box[0][1]
            return parse(result) if isinstance(result, bytes) else result
    raise AssertionError(f"{args!r} through {via} failed ten times")


def run_renames(seed: int) -> None:
    rng = random.Random(seed)
    n_nodes = rng.randint(3, 5)
    net = NetConfig(loss_p=rng.choice([0.0, 0.02]), dup_p=rng.choice([0.0, 0.03]),
                    reorder_p=rng.choice([0.0, 0.1]))
    sim = SimCluster(n_nodes, seed=seed, config=Config(q=16, ae_interval_ms=50,
                                                       timeout_ms=500),
                     net=net, strict=False)
    names = sim.names
    acked: set[bytes] = set()
    sent: set[bytes] = set()
    dsts: list[bytes] = []
    outcomes: list[bytes] = []

    def add(member: bytes, via: str) -> None:
        sent.add(member)

        def done(result: tuple) -> None:
            if result[0] is None:
                acked.add(member)

        step(sim, via, [b"SADD", b"src", member], done)

    def rename(i: int, via: str) -> None:
        dst = b"dst%d" % i
        dsts.append(dst)
        plan(sim, via, [b"RENAME", b"src", dst], outcomes.append)

    t0 = sim.now
    for i in range(rng.randint(60, 150)):
        sim.at(t0 + rng.random() * 4000, add, b"m%d" % i, rng.choice(names))
    for i in range(rng.randint(4, 10)):
        sim.at(t0 + 200 + i * 400 + rng.random() * 300, rename, i, rng.choice(names))
    cut_at = t0 + rng.random() * 2500
    side = rng.sample(names, k=max(1, n_nodes // 2))
    sim.at(cut_at, sim.cut_groups, side, [x for x in names if x not in side])
    sim.at(cut_at + 500 + rng.random() * 1500, sim.heal)
    sim.run(5000)
    sim.heal()
    sim.run(20_000)
    assert not sim.errors, sim.errors[:1]
    assert any(o == b"+OK\r\n" for o in outcomes), f"seed {seed}: no rename succeeded"

    found: set[bytes] = set()
    for key in [b"src", *dsts]:
        views = {via: sorted(call(sim, via, [b"SMEMBERS", key])) for via in names}
        assert len({tuple(v) for v in views.values()}) == 1, f"seed {seed}: {key!r} {views}"
        found |= set(next(iter(views.values())))
    assert found <= sent, f"seed {seed}: invented {found - sent}"
    assert acked <= found, f"seed {seed}: lost {sorted(acked - found)} (renames: {outcomes})"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_renames_under_faults_never_lose_an_acknowledged_addition(seed: int) -> None:
    run_renames(seed)


def test_getctx_names_a_field_written_on_both_sides_of_a_partition() -> None:
    sim = SimCluster(3, seed=7, config=Config(q=16, ae_interval_ms=10**9, timeout_ms=500))
    a, b, c = sim.names
    assert call(sim, a, [b"HSET", b"h", b"f", b"0", b"g", b"0"]) == 2
    sim.run(100)
    sim.cut_groups([a], [b, c])
    box: list[Any] = []
    step(sim, a, [b"HSET", b"h", b"f", b"from-a"], box.append, 1, 1)  # a alone
    sim.run(50)
    step(sim, b, [b"HSET", b"h", b"f", b"from-b"], box.append)  # b and c
    sim.run(500)
    assert [r[0] for r in box] == [None, None]
    sim.heal()
    ctx, kind, info = call(sim, c, [b"dyn.getctx", b"h"], r=3)  # a sync with all three
    info = dict(zip(info[::2], info[1::2], strict=True))
    assert kind == b"hash" and info[b"elements"] == 2
    assert info[b"concurrent"] == 1 and info[b"sample"] == [b"f"]
    assert call(sim, a, [b"HGET", b"h", b"f"], r=3) == b"from-b"  # the later write
    assert call(sim, b, [b"HSET", b"h", b"f", b"resolved"], r=3) == 0
    _, _, info = call(sim, c, [b"dyn.getctx", b"h"], r=3)
    assert dict(zip(info[::2], info[1::2], strict=True))[b"concurrent"] == 0
