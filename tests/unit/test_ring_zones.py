"""Zones in placement: a key's N replicas span distinct zones whenever there are at
least N zones, on a fresh ring and on every ring claim makes from a previous one."""

from __future__ import annotations

from collections import Counter

import msgpack
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dynredis.core.ring import Ring, new_ring

Q = st.sampled_from([8, 16, 64, 256])
N = st.integers(min_value=1, max_value=5)


@st.composite
def zoned_members(draw: st.DrawFn, min_size: int = 1) -> dict[str, str]:
    """Members and their zones ("" for a member without one)."""
    names = draw(st.lists(st.sampled_from([f"10.0.0.{i}:7000" for i in range(1, 25)]),
                          min_size=min_size, max_size=12, unique=True))
    zones = st.sampled_from(["", "rack-a", "rack-b", "rack-c", "dc2", "dc3"])
    return {m: draw(zones) for m in names}


def zone_count(zones: dict[str, str]) -> int:
    return len({z or "\0" + m for m, z in zones.items()})


def assert_spread(ring: Ring, zones: dict[str, str], n: int) -> None:
    members = set(zones)
    want_nodes = min(n, len(members))
    want_zones = min(n, zone_count(zones))
    for p, pref in enumerate(ring.preference_lists(n)):
        assert len(pref) == want_nodes == len(set(pref)), (p, pref)
        assert set(pref) <= members
        assert pref[0] == ring.owners[p]
        spanned = {ring.zone(x) or "\0" + x for x in pref}
        assert len(spanned) == want_zones, (p, pref, [ring.zone(x) for x in pref])


@settings(max_examples=200, deadline=None)
@given(zoned_members(), Q, N)
def test_replicas_span_min_n_zones_on_a_fresh_ring(zones: dict[str, str], q: int,
                                                   n: int) -> None:
    assume(len(zones) <= q)  # every member owns a partition
    ring = new_ring(zones, q, zones=zones)
    assert dict(ring.zones) == {m: z for m, z in zones.items() if z}
    assert_spread(ring, zones, n)


@settings(max_examples=200, deadline=None)
@given(zoned_members(), zoned_members(), Q, N)
def test_every_ring_claim_makes_from_a_previous_one_keeps_the_spread(
        before: dict[str, str], after: dict[str, str], q: int, n: int) -> None:
    """Members join, leave or change zone: the claimant's next ring spreads as well."""
    assume(len(before) <= q and len(after) <= q)
    first = new_ring(before, q, zones=before)
    ring = new_ring(after, q, first, zones=after)
    assert ring.epoch == first.epoch + 1
    assert set(ring.owners) == set(after)
    assert_spread(ring, after, n)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([f"n{i}" for i in range(12)]), min_size=1, max_size=12,
                unique=True), Q, N)
def test_without_zones_the_walk_is_the_plain_one(members: list[str], q: int, n: int) -> None:
    ring = new_ring(members, q)
    for p, pref in enumerate(ring.preference_lists(n)):
        plain: list[str] = []
        for i in range(q):
            node = ring.owners[(p + i) % q]
            if node not in plain and len(plain) < n:
                plain.append(node)
        assert pref == tuple(plain)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2, max_value=4), st.integers(min_value=1, max_value=4),
       st.sampled_from([128, 256]))
def test_with_equal_zones_every_node_holds_an_even_share_of_replicas(
        n_zones: int, per_zone: int, q: int) -> None:
    zones = {f"z{z}-n{i}": f"z{z}" for z in range(n_zones) for i in range(per_zone)}
    ring = new_ring(zones, q, zones=zones)
    n = 3
    held = Counter(x for pref in ring.preference_lists(n) for x in pref)
    ideal = min(n, len(zones)) * q / len(zones)
    assert max(held.values()) <= 1.25 * ideal and min(held.values()) >= 0.75 * ideal


def test_zones_travel_with_the_ring_and_a_ring_saved_without_them_still_loads() -> None:
    zones = {"a:1": "x", "b:1": "y", "c:1": ""}
    ring = new_ring(zones, 16, zones=zones)
    wire = msgpack.unpackb(msgpack.packb(ring.to_wire()), use_list=False)
    assert Ring.from_wire(wire) == ring and Ring.from_wire(wire).zone("a:1") == "x"
    old = Ring.from_wire(wire[:4])
    assert old.zones == () and old.owners == ring.owners


def test_zones_spread_by_gossip_and_the_claimant_places_replicas_across_them() -> None:
    """Six nodes in three zones join through a seed; every node ends with the same ring,
    which records every zone, and each partition's three replicas are in three zones."""
    from tests.sim.harness import SimCluster

    zones = ["a", "b", "c", "a", "b", "c"]
    sim = SimCluster(6, seed=5, preformed=False, zones=zones)
    sim.run(8000)
    ring = sim.ring()
    assert dict(ring.zones) == dict(zip(sim.names, zones, strict=True))
    assert_spread(ring, dict(ring.zones), 3)
    err, _ = sim.put(sim.names[0], b"k", b"v")
    assert err is None
    _, pref = sim.primaries(b"k")
    assert sorted(ring.zone(x) for x in pref) == ["a", "b", "c"]
    assert all(sim.stored(x, b"k") is not None for x in pref)
