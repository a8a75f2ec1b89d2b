"""Sorted-set scores (core/score.py): replicas converge, no increment is lost, and a
history without concurrency reads exactly as Redis' sequential doubles."""

from __future__ import annotations

import math
import random
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import obj as objmod
from dynredis.core import records as rec
from dynredis.core import score
from dynredis.core.collview import KeyView
from tests.collharness import _RING, LocalRunner

ACTORS = [b"A", b"B", b"C"]


def dominated(x: tuple, y: tuple) -> bool:
    """True if y's writer saw x's write (every actor's write count in x is in y)."""
    ny = {a: n for a, _, _, n in y[2]}
    return x != y and all(ny.get(a, 0) >= n for a, _, _, n in x[2])


def join(*sets: list[tuple]) -> list[tuple]:
    """The siblings a replica keeps after merging: every version no other one saw."""
    union = list(dict.fromkeys(s for sibs in sets for s in sibs))
    return [x for x in union if not any(dominated(x, y) for y in union)]


def read(sibs: list[tuple]) -> tuple:
    return score.merged(sibs[0], sibs)


class Cluster:
    """Replicas of one member's score: a write reads its replica's merged state and
    replaces every sibling it saw; a sync joins two replicas' siblings."""

    def __init__(self, base: float) -> None:
        first = score.start(base, 7)
        self.replicas = {a: [first] for a in ACTORS}
        self.deltas: list[float] = []
        self.events = dict.fromkeys(ACTORS, 0)  # each actor's writes, numbered

    def incr(self, actor: bytes, delta: float) -> float | None:
        state = read(self.replicas[actor])
        if math.isnan(score.value(state) + delta):
            return None  # refused, as ZINCRBY refuses a NaN result
        self.events[actor] += 1
        new = score.incremented(state, actor, delta, self.events[actor])
        self.replicas[actor] = [new]
        self.deltas.append(delta)
        return score.value(new)

    def sync(self, dst: bytes, src: bytes) -> None:
        self.replicas[dst] = join(self.replicas[dst], self.replicas[src])

    def heal(self, order: list[bytes]) -> None:
        for dst in order:
            for src in order:
                self.sync(dst, src)


actor = st.sampled_from(ACTORS)
small_int = st.integers(-1000, 1000).map(float)
any_float = st.floats(allow_nan=False, allow_infinity=True, width=64)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
op = st.one_of(st.tuples(st.just("incr"), actor, small_int),
               st.tuples(st.just("sync"), actor, actor))
float_op = st.one_of(st.tuples(st.just("incr"), actor, finite),
                     st.tuples(st.just("sync"), actor, actor))


def run(c: Cluster, ops: list) -> None:
    for kind, a, x in ops:
        if kind == "incr":
            c.incr(a, x)
        else:
            c.sync(a, x)


@settings(max_examples=300)
@given(st.lists(op, max_size=30), st.permutations(ACTORS), st.permutations(ACTORS))
def test_replicas_converge_and_no_increment_is_lost(ops, order1, order2):
    c = Cluster(5.0)
    run(c, ops)
    siblings = join(*c.replicas.values())
    c.heal(list(order1))
    values = {score.value(read(sibs)) for sibs in c.replicas.values()}
    assert len(values) == 1
    # Integer deltas are exact in doubles: the converged score counts every one.
    assert values == {5.0 + sum(c.deltas)}
    # The read is a function of the set of siblings: order, duplicates and the
    # grouping of merges do not matter.
    shuffled = list(siblings)
    random.Random(len(ops)).shuffle(shuffled)
    assert read(shuffled) == read(siblings) == read(siblings + shuffled)
    c2 = Cluster(5.0)
    run(c2, ops)
    c2.heal(list(order2))
    assert {score.value(read(s)) for s in c2.replicas.values()} == values


@settings(max_examples=300)
@given(st.lists(float_op, max_size=30), st.permutations(ACTORS))
def test_merge_is_commutative_associative_and_idempotent(ops, order):
    c = Cluster(0.1)
    run(c, ops)
    a, b, cc = (c.replicas[x] for x in ACTORS)
    left = read(join(join(a, b), cc))
    right = read(join(a, join(b, cc)))
    assert left == right == read(join(cc, b, a)) == read(join(a, a, b, cc, cc))
    c.heal(list(order))
    assert len({read(s) for s in c.replicas.values()}) == 1


@settings(max_examples=300)
@given(any_float, st.lists(st.tuples(actor, any_float), max_size=20))
def test_a_history_without_concurrency_is_redis_own_arithmetic(base, writes):
    """Each write goes through any node, after that node caught up with the last one
    (what a coordinator's sync with a read quorum gives): every step rounds as Redis."""
    c = Cluster(base)
    expected = score.stored(base)
    last = ACTORS[0]
    for a, delta in writes:
        c.sync(a, last)
        if math.isnan(expected + delta):
            assert c.incr(a, delta) is None
            continue
        expected = score.stored(expected + delta)
        assert c.incr(a, delta) == expected
        last = a
    for a in ACTORS:
        c.sync(a, last)
        assert score.value(read(c.replicas[a])) == expected


@settings(max_examples=200)
@given(st.lists(float_op, max_size=20), st.lists(st.tuples(actor, finite), max_size=10))
def test_after_concurrent_increments_merge_the_next_ones_are_exact_again(ops, writes):
    c = Cluster(1.1)
    run(c, ops)
    c.heal(ACTORS)
    merged = score.value(read(c.replicas[ACTORS[0]]))
    last = ACTORS[0]
    for a, delta in writes:
        c.sync(a, last)
        c.incr(a, delta)
        last = a
    c.heal(ACTORS)
    want = reduce(lambda x, d: score.stored(x + d), [d for _, d in writes], merged)
    assert score.value(read(c.replicas[ACTORS[1]])) == want


def test_sequential_increments_round_at_every_step_as_redis_does():
    c = Cluster(0.1)
    c.incr(b"A", 0.2)
    c.sync(b"B", b"A")
    assert c.incr(b"B", 0.3) == (0.1 + 0.2) + 0.3 == 0.6000000000000001
    assert 0.1 + (0.2 + 0.3) == 0.6  # what summing the entries would give


def test_concurrent_increments_all_count():
    c = Cluster(0.0)
    c.incr(b"A", 1.5)
    c.incr(b"B", 2.0)
    c.incr(b"C", -0.25)
    c.heal(ACTORS)
    assert score.value(read(c.replicas[b"A"])) == 3.25


def test_other_lineages_are_ignored_and_minus_zero_is_stored_as_zero():
    a = score.start(1.0, 1)
    b = score.incremented(score.start(9.0, 2), b"B", 1.0, 1)
    assert score.value(score.merged(a, [a, b])) == 1.0
    assert score.value(score.merged(b, [a, b])) == 10.0
    z = score.start(-0.0, 3)
    assert math.copysign(1.0, score.value(z)) == 1.0
    assert math.copysign(1.0, score.value(score.incremented(z, b"A", -0.0, 1))) == 1.0


def test_merged_infinities_that_cancel_read_as_zero():
    c = Cluster(0.0)
    c.incr(b"A", math.inf)
    c.incr(b"B", -math.inf)
    c.heal(ACTORS)
    assert score.value(read(c.replicas[b"C"])) == 0.0


# --- through the collection store: element records written by two coordinators -----------


class Node:
    """One replica of a key and the coordinator of its own commands (tests/collharness
    LocalRunner, with its own actor), whose element records can be merged into another's."""

    def __init__(self, actor: bytes, clock: list[int]) -> None:
        self.runner = LocalRunner()
        self.actor = actor
        self.clock = clock  # shared, so timestamps order writes across the two nodes
        self.runner.stamp = self.stamp  # type: ignore[method-assign]
        self.runner.view = self.view  # type: ignore[method-assign]

    def stamp(self, obj) -> int:
        self.clock[0] += 1
        if obj is not None:
            self.clock[0] = max(self.clock[0], objmod.max_ts(obj) + 1)
        return self.clock[0]

    def view(self, key: bytes) -> KeyView:
        r = self.runner
        p = _RING.partition_of(key)
        return KeyView(r.store, p, key, r.now, r._header(p, key),
                       lambda data, exp: r._write_header(p, key, data, exp), self.actor,
                       lambda: b"\x00\x00\x00\x01", self.stamp)

    def run(self, *args: str) -> bytes:
        return self.runner.run(*args)

    def send_to(self, other: Node) -> None:
        """Merge every element record (and removal record) of this node into `other`."""
        for part in self.runner.engine.partitions():
            if rec.is_elem_partition(part):
                for rkey, enc in self.runner.engine.scan(part):
                    other.runner.store.merge(part, rkey, enc)


def pair() -> tuple[Node, Node]:
    clock = [0]
    return Node(b"n1", clock), Node(b"n2", clock)


def test_concurrent_first_increments_of_a_member_all_count():
    a, b = pair()
    a.run("ZINCRBY", "z", "1.5", "m")
    b.run("ZINCRBY", "z", "2", "m")
    a.send_to(b)
    b.send_to(a)
    assert a.run("ZSCORE", "z", "m") == b.run("ZSCORE", "z", "m") == b"$3\r\n3.5\r\n"


def test_concurrent_zadds_keep_the_later_score_and_increments_after_them_count():
    a, b = pair()
    a.run("ZADD", "z", "10", "m")
    b.run("ZADD", "z", "20", "m")  # later
    a.send_to(b)
    b.send_to(a)
    assert a.run("ZSCORE", "z", "m") == b"$2\r\n20\r\n"
    a.run("ZINCRBY", "z", "0.1", "m")
    b.run("ZINCRBY", "z", "0.2", "m")
    a.send_to(b)
    b.send_to(a)
    assert a.run("ZSCORE", "z", "m") == b.run("ZSCORE", "z", "m") == \
        b"$18\r\n20.300000000000001\r\n"


def test_an_increment_concurrent_with_a_removal_survives_it_and_what_it_saw_is_gone():
    a, b = pair()
    a.run("ZINCRBY", "z", "5", "m")
    a.send_to(b)
    b.run("ZINCRBY", "z", "1", "m")  # concurrent with a's ZREM: add wins
    a.run("ZREM", "z", "m")
    a.run("ZINCRBY", "z", "2", "m")  # a new count at a, after its removal of the 5
    a.send_to(b)
    b.send_to(a)
    assert a.run("ZSCORE", "z", "m") == b.run("ZSCORE", "z", "m") == b"$1\r\n3\r\n"
