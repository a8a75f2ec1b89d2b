"""Two claimants at once (changes.py): while a partition splits the cluster, each side
sees the lowest-named member it can reach as the claimant and can commit a change of
its own. When the sides meet again the ring of the higher version wins and the other
change is gone from the ring, although its commit was answered "committed". The
claimant that committed it notices and submits it again (to the claimant of the day),
so the change is carried out, as the operator asked, without anyone committing again."""

from __future__ import annotations

from dynredis.core.config import Config
from tests.sim.harness import SimCluster
from tests.unit.test_changes import admin, newest, settle


def split_commits(seed: int) -> tuple[SimCluster, list[str]]:
    """Six nodes, two of them spares (E, F); {A, B, E} and {C, D, F} cut apart. The
    left side joins E (and carries it through), the right side commits a leave of D,
    which cannot finish while A and B, to which some of D's partitions go, are away."""
    cfg = Config(q=16, drop_delay_ms=500, transfer_batch=3)
    sim = SimCluster(6, seed=seed, config=cfg, spares=2)
    names = sim.names
    a, b, c, d, e, f = names
    sim.run(500)
    for i in range(64):
        assert sim.put(names[i % 4], b"k%d" % i, b"v%d" % i)[0] is None
    sim.cut_groups([a, b, e], [c, d, f])
    sim.run(6000)  # each side sees the other down
    assert sim.nodes[a].changes.claimant() == a
    assert sim.nodes[c].changes.claimant() == c
    assert admin(sim, a, "join", e)[0] is None
    assert admin(sim, a, "commit")[0] is None
    assert admin(sim, c, "leave", d)[0] is None
    assert admin(sim, c, "commit")[1][0] == "committed"
    sim.run(5000)
    assert not sim.nodes[a].ring.next and e in sim.nodes[a].ring.members
    assert sim.nodes[c].ring.next  # the leave waits for A and B
    sim.heal()
    return sim, names


def test_a_commit_lost_to_a_concurrent_claimant_is_carried_out_after_all():
    sim, (a, b, c, d, e, f) = split_commits(seed=4)
    settle(sim, 60000)
    waited = 0
    while d in newest(sim).all_members and waited < 60000:
        sim.run(500)
        waited += 500
        if not newest(sim).next:
            settle(sim, 60000)
    settle(sim, 60000)
    ring = newest(sim)
    assert d not in ring.all_members, "the leave committed on the right side was lost"
    assert set(ring.members) == {a, b, c, e}
    for i in range(64):
        got = sim.get(a, b"k%d" % i)
        assert got[0] is None and got[1] is not None, (i, got)


def test_two_sides_that_each_flip_a_ring_of_their_own_lose_no_write():
    """Each side of a partition joins a spare and carries its change through (transfers,
    flip, drops) while clients write on both sides; after the heal one ring wins and
    the other side's join is carried out again: every acknowledged write reads back."""
    cfg = Config(q=16, drop_delay_ms=500, transfer_batch=3)
    sim = SimCluster(6, seed=3, config=cfg, spares=2)
    a, b, c, d, e, f = sim.names
    sim.run(500)
    acked: dict[bytes, bytes] = {}

    def write(via: str, key: bytes, value: bytes) -> None:
        if sim.put(via, key, value)[0] is None:
            acked[key] = value  # each write of a key follows the acknowledged one

    for i in range(200):
        write(sim.names[i % 4], b"k%d" % i, b"v0")
    sim.cut_groups([a, b, e], [c, d, f])
    sim.run(6000)
    assert admin(sim, a, "join", e)[0] is None
    assert admin(sim, a, "commit")[0] is None
    assert admin(sim, c, "join", f)[0] is None
    assert admin(sim, c, "commit")[0] is None
    for i in range(200):
        write(a if i % 2 else c, b"k%d" % i, b"v1-%d" % i)
    sim.run(8000)
    assert not sim.nodes[a].ring.next and e in sim.nodes[a].ring.members
    assert not sim.nodes[c].ring.next and f in sim.nodes[c].ring.members
    for i in range(200):
        write(b if i % 2 else d, b"k%d" % i, b"v2-%d" % i)
    sim.heal()
    settle(sim, 60000)
    sim.run(5000)
    settle(sim, 60000)
    ring = newest(sim)
    assert {e, f} <= set(ring.members)
    lost = []
    for key, value in sorted(acked.items()):
        got = sim.get(a, key)
        values = {v[2] for entry in got[1][0] for v in entry[2]} if got[1] else set()
        if value not in values:
            lost.append((key, value, values))
    assert not lost, lost[:5]
