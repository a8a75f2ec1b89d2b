"""Sets under faults (README: add-wins observed-remove sets): SADD and SREM through random
nodes while the network partitions, drops, duplicates and reorders messages and a node
crashes and restarts. After the heal and anti-entropy:

- every node answers the same SMEMBERS, and every replica holds the same element records;
- nothing is invented: every member was added by some SADD;
- nothing acknowledged is lost: a member whose acknowledged SADD was sent after every
  SREM of it had been acknowledged, with no SREM sent later, is in the set (an SREM
  removes only the additions it observed; a later addition wins).
"""

from __future__ import annotations

import random
from typing import Any

import hiredis
import pytest

from dynredis.commands import collection
from dynredis.core import records as rec
from dynredis.core.node import Config

from .harness import NetConfig, SimCluster

SEEDS = range(40)
KEYS = [b"set0", b"set1"]
MEMBERS = [b"m%d" % i for i in range(12)]


def command(sim: SimCluster, via: str, args: list[bytes],
            done: Any) -> bool:
    built = collection.BUILDERS[args[0].decode().lower()](args, 2)
    assert not isinstance(built, bytes), built
    key, op = built
    return sim.on_node(via, lambda node: node.coll.run(key, op, done, (args, 2)))


def members_via(sim: SimCluster, via: str, key: bytes) -> list[bytes]:
    """SMEMBERS through `via`, retried as a client would (the network still loses
    messages, so one read may time out)."""
    for _ in range(10):
        box: list[Any] = []
        assert command(sim, via, [b"SMEMBERS", key], box.append)
        waited = 0
        while not box and waited < 5000:
            sim.run(5)
            waited += 5
        if box and box[0][0] is None:
            reader = hiredis.Reader()
            reader.feed(box[0][1])
            return sorted(reader.gets())
    raise AssertionError(f"SMEMBERS through {via} failed ten times: {box}")


def run_sets(seed: int) -> None:
    rng = random.Random(seed)
    n_nodes = rng.randint(3, 5)
    net = NetConfig(loss_p=rng.choice([0.0, 0.02, 0.05]), dup_p=rng.choice([0.0, 0.03]),
                    reorder_p=rng.choice([0.0, 0.1]))
    durability = [rng.choice(["fsync", "buffered"]) for _ in range(n_nodes)]
    sim = SimCluster(n_nodes, seed=seed, config=Config(q=16, ae_interval_ms=50, timeout_ms=500),
                     net=net, durability=durability, strict=False)
    names = sim.names
    # Per (key, member): events in the order they were sent and answered.
    adds: dict[tuple[bytes, bytes], list[dict]] = {}
    rems: dict[tuple[bytes, bytes], list[dict]] = {}

    def send(kind: str, key: bytes, member: bytes, via: str) -> None:
        ev = {"sent": sim.now, "acked": None}
        book = adds if kind == "SADD" else rems

        def done(result: tuple) -> None:
            if result[0] is None:
                ev["acked"] = sim.now

        if command(sim, via, [kind.encode(), key, member], done):
            book.setdefault((key, member), []).append(ev)

    t0 = sim.now
    for _ in range(rng.randint(80, 200)):
        kind = "SADD" if rng.random() < 0.65 else "SREM"
        sim.at(t0 + rng.random() * 4000, send, kind, rng.choice(KEYS), rng.choice(MEMBERS),
               rng.choice(names))
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
        views = {via: members_via(sim, via, key) for via in names}
        assert len({tuple(v) for v in views.values()}) == 1, f"seed {seed}: {views}"
        final = set(next(iter(views.values())))
        added = {m for (k, m) in adds if k == key}
        assert final <= added, f"seed {seed}: {key!r} invented {final - added}"
        for (k, m), evs in adds.items():
            if k != key:
                continue
            removals = rems.get((k, m), [])
            for ev in evs:
                if ev["acked"] is None:
                    continue
                if all(r["acked"] is not None and r["acked"] < ev["sent"] for r in removals):
                    assert m in final, (
                        f"seed {seed}: {key!r} lost {m!r} (acknowledged SADD at {ev['sent']}, "
                        f"removals {removals})")
        # Replicas converged: the same element records on every primary.
        p, primaries = sim.primaries(key)
        stored = [dict(sim.sn[name].engine.scan_prefix(rec.elem_partition(p), rec.prefix(key)))
                  for name in primaries]
        assert all(s == stored[0] for s in stored), f"seed {seed}: replicas of {key!r} differ"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_sets_converge_and_never_lose_an_acknowledged_addition(seed: int) -> None:
    run_sets(seed)


def test_removed_members_are_reaped_after_the_grace_period() -> None:
    """SREM leaves a removed member's record dead (a tombstone version); DEL leaves the
    records stripped to their clocks and a removal record. After the grace period the
    reaper removes the dead records from every replica (the removal record stays), and
    the set works on: what was removed stays gone, what is added again is there."""
    sim = SimCluster(3, seed=7, config=Config(q=16, ae_interval_ms=50, timeout_ms=500,
                                              tombstone_grace_ms=2000,
                                              sweep_interval_ms=100))
    via = sim.names

    def do(i: int, *args: bytes) -> None:
        box: list[Any] = []
        assert command(sim, via[i % 3], list(args), box.append)
        sim.run(200)
        assert box and box[0][0] is None, box

    p, primaries = sim.primaries(b"s")

    def records() -> list[list[bytes]]:
        out = [sorted(k for k, _ in sim.sn[name].engine.scan_prefix(
            rec.elem_partition(p), rec.prefix(b"s"))) for name in primaries]
        assert all(r == out[0] for r in out), out
        return out[0]

    do(0, b"SADD", b"s", *[b"m%d" % i for i in range(10)])
    do(1, b"SREM", b"s", *[b"m%d" % i for i in range(8)])
    assert len(records()) == 10
    sim.run(6000)
    assert records() == [rec.record_key(b"s", rec.SET, b"m%d" % i) for i in (8, 9)]
    assert members_via(sim, via[2], b"s") == [b"m8", b"m9"]
    do(2, b"SADD", b"s", b"m3")
    assert members_via(sim, via[0], b"s") == [b"m3", b"m8", b"m9"]
    do(0, b"SADD", b"t", b"x")  # (another key, not the one deleted)
    box: list[Any] = []
    assert sim.on_node(via[1], lambda node: node.put(b"s", None, None, 0, box.append))
    sim.run(200)
    assert box and box[0][0] is None, box
    assert len(records()) == 4  # three stripped records and the removal record
    sim.run(6000)
    assert records() == [rec.removal_key(b"s")]
    assert members_via(sim, via[1], b"s") == []
    do(1, b"SADD", b"s", b"m9")
    assert members_via(sim, via[2], b"s") == [b"m9"]
