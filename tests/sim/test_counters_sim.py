"""Counters under faults: after heal and convergence every replica agrees, and each
counter lies between the sum of its acknowledged increments and the sum attempted."""

from __future__ import annotations

import random

import pytest

from dynredis.core import obj as objmod
from dynredis.core.node import Config

from .harness import NetConfig, SimCluster

SEEDS = range(60)
KEYS = [b"ctr0", b"ctr1", b"ctr2"]


def run_counters(seed: int) -> None:
    rng = random.Random(seed)
    n_nodes = rng.randint(3, 5)
    net = NetConfig(loss_p=rng.choice([0.0, 0.02, 0.05]), dup_p=rng.choice([0.0, 0.03]),
                    reorder_p=rng.choice([0.0, 0.1]))
    durability = [rng.choice(["fsync", "buffered", "none"]) for _ in range(n_nodes)]
    sim = SimCluster(n_nodes, seed=seed, config=Config(q=16, ae_interval_ms=50, timeout_ms=500),
                     net=net, durability=durability, strict=False)
    names = sim.names
    acked = dict.fromkeys(KEYS, 0)
    attempted = dict.fromkeys(KEYS, 0)

    def incr(key: bytes, delta: int, via: str) -> None:
        def done(result: tuple) -> None:
            if result[0] is None:
                acked[key] += delta

        if sim.on_node(via, lambda node: node.incr(key, delta, done)):
            attempted[key] += delta

    t0 = sim.now
    for _ in range(rng.randint(60, 200)):
        sim.at(t0 + rng.random() * 4000, incr, rng.choice(KEYS), rng.randint(1, 5),
               rng.choice(names))
    # Faults: a partition and a crash-restart somewhere in the first seconds.
    cut_at = t0 + rng.random() * 2000
    side = rng.sample(names, k=max(1, n_nodes // 2))
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
    for key in KEYS:
        p, primaries = sim.primaries(key)
        encs = {sim.stored(name, key) for name in primaries}
        assert len(encs) == 1, f"seed {seed}: replicas of {key!r} differ"
        (enc,) = encs
        value = 0
        if enc is not None:
            sib = objmod.read_value(objmod.decode(enc), sim.node_now(sim.sn[primaries[0]]))
            value = int(sib[2]) if sib is not None else 0
        assert acked[key] <= value <= attempted[key], (
            f"seed {seed}: {key!r} = {value}, acknowledged {acked[key]}, "
            f"attempted {attempted[key]}")


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_counters_never_lose_or_invent_increments(seed: int) -> None:
    run_counters(seed)
