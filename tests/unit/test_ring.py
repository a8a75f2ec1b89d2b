"""The ring (dynredis.core.ring): claim balance, placement, movement, sloppy quorum.

Balance bounds. With ring size 256 and up to 16 nodes every node owns at least 16
partitions, so "within 10% of even" is achievable and asserted for both primary
ownership and replica load (how many preference lists a node appears in). With ring
size 64 a node owns as few as 4 partitions and ownership can only be split in whole
partitions: for 11 nodes the even share is 5.8, and the best possible split (5s and
6s) is already 14% off. So for q=64 the primary-ownership assertion is the strongest
one possible (every node owns floor(q/k) or ceil(q/k) partitions) and replica load is
held to N times that (each node's replica load is within N partitions of N*q/k
rounded).
"""

from __future__ import annotations

import random
from collections import Counter

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.core.keyslot import SLOTS, key_slot
from dynredis.core.ring import (
    DEFAULT_Q,
    Ring,
    claim,
    new_ring,
    partition_of_slot,
    slot_range,
)

N = 3
NAMES = [f"127.0.0.1:70{i:02d}" for i in range(20)]
SIZES = range(3, 17)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def primary_counts(ring: Ring) -> Counter:
    return Counter(ring.owners)


def replica_load(ring: Ring, n: int = N) -> Counter:
    return Counter(node for pl in ring.preference_lists(n) for node in pl)


def grown_ring(members: list[str], q: int) -> Ring:
    """The ring a cluster reaches when `members` join one at a time (as node.py does:
    no previous ring while the ring has a single member)."""
    ring = new_ring(members[:1], q)
    for i in range(2, len(members) + 1):
        previous = ring if len(ring.members) > 1 else None
        ring = new_ring(members[:i], q, previous)
    return ring


def assert_primary_balanced(ring: Ring, members: list[str]) -> None:
    """Every member owns floor(q/k) or ceil(q/k) partitions: as even as whole
    partitions allow (which is within 10% of even whenever q >= 10k)."""
    q, k = ring.q, len(members)
    assert set(ring.owners) == set(members)
    prim = primary_counts(ring)
    for node in members:
        assert q // k <= prim[node] <= -(-q // k), (node, prim[node], q / k)


def assert_replicas_balanced(ring: Ring, members: list[str], tolerance: float,
                             n: int = N) -> None:
    """Each member's replica load is within `tolerance` of N*q/k, and within N
    partitions of it where whole partitions make that tolerance unreachable."""
    rep = replica_load(ring, n)
    assert set(rep) == set(members)
    even = n * ring.q / len(members)
    slack = tolerance * even if ring.q >= 10 * len(members) else tolerance * even + n
    for node in members:
        assert abs(rep[node] - even) <= slack, (node, rep[node], even)


def assert_balanced(ring: Ring, members: list[str], n: int = N) -> None:
    """Primary ownership and replica load within 10% of even (q >= 10k), or as even
    as whole partitions allow (see the module docstring)."""
    q, k = ring.q, len(members)
    assert_primary_balanced(ring, members)
    even = q / k
    if q >= 10 * k:
        prim = primary_counts(ring)
        for node in members:
            assert abs(prim[node] - even) <= 0.1 * even, (node, prim[node], even)
        assert_replicas_balanced(ring, members, 0.1, n)
    else:
        rep = replica_load(ring, n)
        assert set(rep) == set(members)
        for node in members:
            assert abs(rep[node] - n * even) <= n, (node, rep[node], n * even)


def assert_pref_lists_valid(ring: Ring, n: int = N) -> None:
    k = len(ring.members)
    for p, pl in enumerate(ring.preference_lists(n)):
        assert len(pl) == min(n, k)
        assert len(set(pl)) == len(pl)
        assert pl[0] == ring.owners[p]
        assert ring.preference_list(p, n) == pl


# --- balance --------------------------------------------------------------------------


@pytest.mark.parametrize("q", [256, 64])
@pytest.mark.parametrize("k", SIZES)
def test_fresh_ring_balanced(k, q):
    members = NAMES[:k]
    ring = new_ring(members, q)
    assert ring.q == q and len(ring.owners) == q
    assert_pref_lists_valid(ring)
    assert_balanced(ring, members)


@pytest.mark.parametrize("q", [256, 64])
@pytest.mark.parametrize("k", SIZES)
def test_grown_ring_balanced(k, q):
    """Nodes joining one at a time still end with a balanced ring."""
    members = NAMES[:k]
    ring = grown_ring(members, q)
    assert_pref_lists_valid(ring)
    assert_balanced(ring, members)


# --- placement is a pure function of the ring ------------------------------------------


@SETTINGS
@given(
    st.integers(3, 16),
    st.sampled_from([256, 64]),
    st.randoms(use_true_random=False),
    st.lists(st.binary(max_size=20), min_size=1, max_size=30),
    st.booleans(),
)
def test_placement_independent_of_member_order(k, q, rnd, keys, grown):
    members = NAMES[:k]
    base = grown_ring(members[:-1], q) if grown and k > 3 else None
    shuffled = list(members)
    rnd.shuffle(shuffled)
    r1 = new_ring(members, q, base)
    r2 = new_ring(shuffled, q, base)
    r3 = Ring.from_wire(msgpack.unpackb(msgpack.packb(r1.to_wire()), use_list=False))
    assert r1.owners == r2.owners == r3.owners
    assert claim(reversed(members), q, base) == r1.owners
    for ring in (r2, r3):
        assert ring.preference_lists(N) == r1.preference_lists(N)
        for key in keys:
            assert ring.partition_of(key) == r1.partition_of(key)


@SETTINGS
@given(st.binary(max_size=40), st.sampled_from([1, 2, 64, 256, 1024, SLOTS]))
def test_partition_of_matches_slot_ranges(key, q):
    ring = Ring(q, tuple(NAMES[p % 3] for p in range(q)))
    p = ring.partition_of(key)
    assert 0 <= p < q
    assert p == partition_of_slot(key_slot(key), q)
    first, last = slot_range(p, q)
    assert first <= key_slot(key) <= last


@pytest.mark.parametrize("q", [1, 64, 256, SLOTS])
def test_slot_ranges_tile_the_slots(q):
    expected_first = 0
    for p in range(q):
        first, last = slot_range(p, q)
        assert first == expected_first and last >= first
        assert partition_of_slot(first, q) == p == partition_of_slot(last, q)
        expected_first = last + 1
    assert expected_first == SLOTS


# --- claim with a previous ring: minimal movement ---------------------------------------


def moved(a: Ring, b: Ring) -> list[int]:
    return [p for p in range(a.q) if a.owners[p] != b.owners[p]]


@pytest.mark.parametrize("q", [256, 64])
@pytest.mark.parametrize("k", range(2, 16))
@pytest.mark.parametrize("grown", [False, True])
def test_adding_a_node_moves_little_and_stays_balanced(k, q, grown):
    members = NAMES[:k]
    before = grown_ring(members, q) if grown else new_ring(members, q)
    after = new_ring(NAMES[: k + 1], q, before)
    assert after.epoch == before.epoch + 1
    m = moved(before, after)
    assert len(m) <= q / (k + 1) + k, (len(m), q / (k + 1))
    # Only the newcomer takes partitions.
    assert all(after.owners[p] == NAMES[k] for p in m)
    assert_pref_lists_valid(after)
    assert_balanced(after, NAMES[: k + 1])


@pytest.mark.parametrize("q", [256, 64])
@pytest.mark.parametrize("k", range(3, 16))
@pytest.mark.parametrize("grown", [False, True])
def test_removing_a_node_moves_only_its_partitions(k, q, grown):
    members = NAMES[: k + 1]
    before = grown_ring(members, q) if grown else new_ring(members, q)
    for gone in (members[0], members[k // 2], members[-1]):
        rest = [x for x in members if x != gone]
        after = new_ring(rest, q, before)
        m = moved(before, after)
        assert set(m) == {p for p in range(q) if before.owners[p] == gone}
        assert_pref_lists_valid(after)
        assert_primary_balanced(after, rest)
        # Looser replica bound: see test_removal_replica_imbalance_is_forced.
        assert_replicas_balanced(after, rest, 0.2)


def test_removal_replica_imbalance_is_forced():
    """Why removal gets a looser replica-load bound than addition.

    Round-robin over A..E (q=256) and remove C: each freed slot sits in "A B _ D E", so
    every remaining node already owns a partition within 2 of it and whoever takes it
    repeats within the preference-list window. Primary balance fixes how many slots
    each node takes (A 12, B, D, E 13 each), and per slot B only ever gains 3 list
    places (4 when it takes the slot) against the even 3.75, so with minimal movement
    B ends near 166 of an even 191 (-13%) whatever the assignment.
    """
    names = ["A", "B", "C", "D", "E"]
    before = new_ring(names, 256)
    rest = ["A", "B", "D", "E"]
    after = new_ring(rest, 256, before)
    assert moved(before, after) == [p for p in range(256) if before.owners[p] == "C"]
    assert_primary_balanced(after, rest)
    rep = replica_load(after)
    assert 160 <= rep["B"] <= 170
    assert_replicas_balanced(after, rest, 0.2)


@SETTINGS
@given(
    st.sampled_from([256, 64]),
    st.lists(st.sampled_from(NAMES[:12]), min_size=1, max_size=12, unique=True),
    st.lists(st.sampled_from(NAMES[:12]), min_size=1, max_size=12, unique=True),
)
def test_claim_any_transition_is_balanced_and_keeps_surviving_owners(q, old, new):
    before = new_ring(old, q)
    after = new_ring(new, q, before)
    assert set(after.owners) == set(new)
    prim = primary_counts(after)
    lo, hi = q // len(new), -(-q // len(new))
    assert all(lo <= prim[x] <= hi for x in new)
    # A partition only moves when its owner left or the owner has more than its share.
    for p in moved(before, after):
        o = before.owners[p]
        assert o not in new or primary_counts(before)[o] > lo
    assert_pref_lists_valid(after)


@SETTINGS
@given(
    st.sampled_from([256, 64]),
    st.lists(st.sampled_from(NAMES[:16]), min_size=3, max_size=8, unique=True),
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(NAMES[:16])), min_size=1, max_size=10
    ),
)
def test_claim_under_churn_keeps_moves_minimal(q, start, changes):
    """Joins and leaves one at a time: each claim moves only the departed node's
    partitions plus the excess of nodes above their new target."""
    members = list(start)
    ring = new_ring(members, q)
    for join, node in changes:
        if join and node not in members and len(members) < 16:
            members.append(node)
        elif not join and node in members and len(members) > 3:
            members.remove(node)
        else:
            continue
        after = new_ring(members, q, ring)
        prev_counts = primary_counts(ring)
        new_counts = primary_counts(after)
        for p in moved(ring, after):
            o = ring.owners[p]
            assert o not in members or prev_counts[o] > new_counts[o]
            assert new_counts[after.owners[p]] > prev_counts[after.owners[p]]
        assert_pref_lists_valid(after)
        assert_primary_balanced(after, members)
        ring = after


def test_claim_needs_members():
    with pytest.raises(ValueError):
        claim([], 64)


def test_claim_with_other_ring_size_starts_fresh():
    before = new_ring(NAMES[:4], 64)
    assert claim(NAMES[:5], 256, before) == new_ring(NAMES[:5], 256).owners


# --- sloppy quorum --------------------------------------------------------------------


@SETTINGS
@given(st.integers(1, 10), st.sampled_from([64, 256]), st.integers(1, 5), st.data())
def test_apl_with_nodes_down(k, q, n, data):
    members = NAMES[:k]
    ring = grown_ring(members, q) if data.draw(st.booleans()) else new_ring(members, q)
    down = set(data.draw(st.lists(st.sampled_from(members), max_size=k, unique=True)))
    up = set(members) - down
    p = data.draw(st.integers(0, q - 1))
    apl = ring.apl(p, n, up)
    primaries = ring.preference_list(p, n)
    nodes = [x for x, _ in apl]
    assert len(set(nodes)) == len(nodes)
    assert all(x in up for x in nodes), "never a down node"
    for x in primaries:
        if x in up:
            assert (x, x) in apl, "an up primary serves for itself"
    for x, owner in apl:
        assert owner in primaries
        if x != owner:
            assert x not in primaries, "fallbacks are not primaries"
            assert owner in down, "only a down primary is replaced"
    assert len({owner for _, owner in apl}) == len(apl)
    assert len(apl) == min(len(primaries), len(up))
    if len(up) >= n and k >= n:
        assert len(apl) == n
    # Fallbacks are the first up non-primaries clockwise, in order.
    order = ring.successors(p)
    fallbacks = [x for x in order if x in up and x not in primaries]
    used = [x for x, owner in apl if x != owner]
    assert used == fallbacks[: len(used)]
    # Without failures the apl is the preference list.
    assert ring.apl(p, n, set(members)) == [(x, x) for x in primaries]


def test_apl_example():
    ring = new_ring(["a", "b", "c", "d", "e"], 64)
    assert ring.preference_list(0, 3) == ("a", "b", "c")
    assert ring.apl(0, 3, {"a", "c", "d", "e"}) == [("a", "a"), ("d", "b"), ("c", "c")]
    assert ring.apl(0, 3, {"c"}) == [("c", "c")]
    assert ring.apl(0, 3, set()) == []


# --- wire format and validation -------------------------------------------------------


@SETTINGS
@given(
    st.sampled_from([1, 2, 64, 256]),
    st.integers(1, 8),
    st.integers(1, 2**40),
    st.sampled_from(["", "127.0.0.1:7000"]),
)
def test_wire_round_trip(q, k, epoch, claimant):
    ring = Ring(q, claim(NAMES[:k], q), epoch, claimant)
    assert Ring.from_wire(ring.to_wire()) == ring
    # Through msgpack, as gossip carries it (strings may come back as bytes).
    for raw in (False, True):
        wire = msgpack.unpackb(msgpack.packb(ring.to_wire()), raw=raw)
        back = Ring.from_wire(wire)
        assert back == ring
        assert back.version == ring.version == (epoch, claimant)
        assert back.preference_lists(N) == ring.preference_lists(N)


@pytest.mark.parametrize("q", [0, -1, -64, 3, 100, 255, 257, 2 * SLOTS, 3 * SLOTS])
def test_invalid_ring_sizes(q):
    with pytest.raises(ValueError):
        Ring(q, tuple("a" for _ in range(max(q, 0))))
    with pytest.raises(ValueError):
        new_ring(["a", "b"], q)


@pytest.mark.parametrize("q", [1, 2, 64, DEFAULT_Q, SLOTS])
def test_valid_ring_sizes(q):
    ring = new_ring(["a", "b"], q)
    assert ring.q == q


def test_owner_count_must_match():
    with pytest.raises(ValueError):
        Ring(64, ("a",) * 63)


def test_new_ring_epochs():
    r1 = new_ring(["a"], 64, claimant="a")
    assert r1.epoch == 1 and r1.claimant == "a" and r1.members == ("a",)
    r2 = new_ring(["a", "b"], 64, r1, claimant="a")
    assert r2.epoch == 2 and r2.version > r1.version
    assert r2.members == ("a", "b")


@pytest.mark.parametrize("k", [3, 7, 16])
def test_random_keys_spread_over_nodes(k):
    ring = new_ring(NAMES[:k], 256)
    rnd = random.Random(k)
    hits = Counter(ring.owners[ring.partition_of(rnd.randbytes(12))] for _ in range(4000))
    assert set(hits) == set(NAMES[:k])
