"""Live-key counts (core/keycounts.py) behind DBSIZE and INFO keyspace: they answer at
once, and after any writes, deletes, expiries, siblings, syncs, hints, restarts and
FLUSHALL they equal a walk of each node's store (cluster/keyscan.py's count_walk)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.cluster.keyscan import KeyScan
from dynredis.commands.databases import storage_key, user_key
from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.keycounts import ASK_BUDGET, KeyCounts, db_of
from dynredis.core.node import Config
from dynredis.core.obj import NEVER as FOREVER
from tests.sim.checker import count_mismatches
from tests.sim.harness import SimCluster

from .test_keyscan import KEYS, call, load

STORED = [storage_key(db, b"k%d" % i) for db in (0, 1, 15) for i in range(4)] + [
    storage_key(0, b"\xfe\xffdb\x01x"), b"\xfe\xffdb"]


def walked(held: dict[tuple[int, bytes], int], parts: list[int], now: int
           ) -> list[tuple[int, int, int, int]]:
    """What a walk of objects reading live until R (held) reports at `now`."""
    figures: dict[int, list[int]] = {}
    for (p, stored), r in held.items():
        if p in parts and r > now:
            f = figures.setdefault(user_key(stored)[0], [0, 0, 0])
            f[0] += 1
            if r != FOREVER:
                f[1] += 1
                f[2] += r - now
    return [(db, *f) for db, f in sorted(figures.items())]  # type: ignore[misc]


moments = st.one_of(st.just(0), st.just(FOREVER), st.integers(1, 60))
steps = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(STORED), moments),
    st.tuples(st.just("ask"), st.integers(-5, 20),
              st.sets(st.integers(0, 2), max_size=3).map(sorted))),
    max_size=80)


@given(steps)
@settings(max_examples=300, deadline=None)
def test_counts_equal_a_walk_at_every_moment_asked(script: list[tuple]) -> None:
    """Objects written with any R (none, forever, a moment that passes or has passed),
    rewritten, asked about at later moments (and earlier: a clock stepped back): the
    figures equal a walk's, or are None when asked before a moment already asked."""
    counts = KeyCounts()
    held: dict[tuple[int, bytes], int] = {}
    now = latest = 0
    for step in script:
        if step[0] == "write":
            _, p, stored, r = step
            counts.change(p, stored, held.get((p, stored), 0), r)
            held[(p, stored)] = r
        else:
            _, dt, parts = step
            now = max(0, now + dt)
            got = counts.figures(parts, now)
            if now >= latest:
                assert got == walked(held, parts, now)
            else:
                assert got in (None, walked(held, parts, now))
            latest = max(latest, now)


sibling = st.tuples(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 127, 128, 300, 2**33]),
                    st.one_of(st.none(), st.binary(max_size=300), st.just(b"w" * 5000)))


@given(st.lists(st.tuples(st.sampled_from([b"a", b"actor-b" * 9, b"c" * 300]), sibling),
                min_size=1, max_size=4), st.sampled_from([0, 1, 127, 128, 299, 300, 2**40]))
@settings(max_examples=400, deadline=None)
def test_reads_until_is_when_a_plain_get_stops_seeing_a_value(
        writes: list[tuple[bytes, tuple]], now: int) -> None:
    """Objects of one or more siblings (tombstones, expiring, large and headed): their
    reads_until, read from their bytes, is past `now` exactly when a GET sees a value;
    reads_of of the object decoded (what writers and merges hand the store) is the same."""
    held = None
    for actor, sib in writes:
        held = dvv.sync(held, dvv.overwrite(None, actor, sib)) if held else \
            dvv.overwrite(None, actor, sib)
    enc = objmod.encode(held)
    expiry = objmod.read_expiry(enc, now)
    r = objmod.reads_until(enc)
    assert objmod.reads_of(held) == r == objmod.reads_of(objmod.decode(enc))
    assert (r > now) == (expiry is not None)
    if expiry is not None:
        assert r == (expiry or FOREVER)


def test_rewritten_expiries_do_not_pile_up() -> None:
    """EXPIRE after EXPIRE of one key to moments far ahead: the moments replaced are
    forgotten, not kept until they pass."""
    counts = KeyCounts()
    was = 0
    for i in range(10_000):
        counts.change(0, b"k", was, 10**9 + i)
        was = 10**9 + i
    assert counts.figures([0], 5) == [(0, 1, 1, 10**9 + 9_999 - 5)]
    assert len(counts.tallies[0][0].heap) < 200


def test_keys_expiring_together_leave_the_counts_over_ticks_not_in_one_ask() -> None:
    """More keys expiring at distinct moments than an ask may take out (a million took
    356 ms in one ask): the ask says it cannot answer (its caller walks, a slice a
    turn), the ticks take them out a slice at a time, and then asks answer again."""
    counts = KeyCounts()
    n = 2 * ASK_BUDGET + 1000
    for i in range(n):
        counts.change(i % 8, b"k%d" % i, 0, 100 + i)
    counts.change(3, b"forever", 0, FOREVER)
    assert counts.figures(range(8), 50) == [(0, n + 1, n, sum(range(50, 50 + n)))]
    assert counts.figures(range(8), 10**6) is None  # (it took out an ask's worth)
    counts.expire_some(10**6, 600)
    assert counts.figures(range(8), 10**6) is None  # still more than an ask's worth
    counts.expire_some(10**6, 400)
    assert counts.figures(range(8), 10**6) == [(0, 1, 0, 0)]
    assert counts.figures(range(8), 99) is None  # a clock stepped back


def test_counts_start_again_from_nothing_after_a_wipe() -> None:
    """FLUSHALL's clear forgets every tally, database 0's (found by a shortcut) too:
    keys written after it are counted from nothing."""
    counts = KeyCounts()
    for stored in STORED:
        counts.change(1, stored, 0, FOREVER)
    counts.clear()
    counts.change(1, b"k", 0, FOREVER)
    counts.change(1, STORED[-2], 0, 50)
    assert counts.figures([1], 10) == [(0, 2, 1, 40)]


def test_database_of_a_stored_key_is_user_keys() -> None:
    for stored in STORED:
        assert db_of(stored) == user_key(stored)[0]


def test_dbsize_and_keyspace_answer_at_once_without_walking() -> None:
    """DBSIZE and INFO keyspace walked every key of every partition (430-490 ms of a
    coordinator's CPU for 259,204 keys): now the local part of the answer comes from
    the store's counts in the turn it is asked, and no walk is queued."""
    sim = SimCluster(3, seed=5, config=Config(n=3, r=2, w=2, q=32))
    woken: list[str] = []
    scans = {name: KeyScan(node, wake=lambda name=name: woken.append(name))
             for name, node in sim.nodes.items()}
    load(sim)
    via = sim.names[0]
    now = sim.nodes[via].now
    assert sim.put(via, KEYS[0], b"v", expire_at=now + 10**9)[0] is None
    assert sim.put(via, storage_key(2, b"x"), b"v")[0] is None
    sim.run(100)
    for own in (False, True):
        box: list = []
        assert sim.on_node(via, lambda node, own=own, box=box: scans[via].keyspace(
            own, box.append), catch=False)
        assert box, "answered in the turn it was asked"
        err, figures = box[0]
        assert err is None and woken == [] and not scans[via].walks
        if not own:
            assert figures[2][0] == 1 and figures[0][:2] == (len(KEYS), 1)
            assert 0 < figures[0][2] <= 10**9
    assert call(sim, scans, via, "dbsize", False) == (None, len(KEYS))
    assert woken == []


def _random_ops(sim: SimCluster, rng: random.Random, rounds: int) -> None:
    """Writes of every kind through random nodes, with crashes, restarts, partitions,
    heals and FLUSHALL among them; after each round every node's counts equal a walk."""
    names = sim.names
    keys = [storage_key(db, b"key%d" % i) for db in (0, 3) for i in range(40)]
    down: set[str] = set()
    for _ in range(rounds):
        for _ in range(12):
            up = [n for n in names if n not in down]
            via = rng.choice(up)
            key = rng.choice(keys)
            now = sim.nodes[via].now
            roll = rng.random()
            box: list[Any] = []
            if roll < 0.35:
                args: tuple = (key, None, b"v", 0)
            elif roll < 0.6:
                args = (key, None, b"t", now + rng.choice((1, 30, 200, 5_000)))
            elif roll < 0.75:
                args = (key, None, None, 0)  # DEL: a tombstone
            elif roll < 0.9:
                args = (key, (), b"s%d" % rng.randrange(9), rng.choice((0, now + 50)))  # sibling
            else:
                args = (key, None, b"x" * 5000, rng.choice((0, now + 80)))  # headed object
            sim.on_node(via, lambda node, a=args, b=box: node.put(*a, b.append))
            sim.run(rng.uniform(0, 20))
        roll = rng.random()
        if roll < 0.15 and len(down) < 1:
            victim = rng.choice(names)
            sim.crash(victim)
            down.add(victim)
        elif roll < 0.35 and down:
            back = down.pop()
            sim.restart(back)
        elif roll < 0.45:
            a, b = rng.sample(names, 2)
            sim.partition(a, b)
        elif roll < 0.55:
            sim.heal()
        elif roll < 0.58:
            via = rng.choice([n for n in names if n not in down])
            sim.on_node(via, lambda node: node.flush_all(lambda _: None))
        sim.run(rng.uniform(10, 400))
        assert count_mismatches(sim) == []


def test_counts_follow_writes_expiries_siblings_syncs_hints_and_restarts() -> None:
    for seed in range(3):
        rng = random.Random(seed)
        sim = SimCluster(4, seed=seed, config=Config(n=3, r=2, w=2, q=16),
                         durability=["fsync", "buffered", "none", "fsync"])
        _random_ops(sim, rng, 40)
        sim.heal()
        for name in sim.names:
            sim.restart(name)
        sim.run(3_000)  # hints handed off, anti-entropy, expiries passed, tombstones reaped
        assert count_mismatches(sim) == []
