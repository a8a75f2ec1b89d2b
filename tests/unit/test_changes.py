"""The claimant (core/changes.py) in a fault-free simulated cluster: admin requests
through any node, a commit spread to all, confirmed transfers, the flip, a node that
left stopping, and transfers rerouted when their source dies."""

from __future__ import annotations

from dynredis.core.config import Config
from dynredis.core.ring import Ring
from tests.sim.harness import SimCluster


def admin(sim: SimCluster, via: str, op: str, *args: str) -> tuple:
    box: list = []
    sim.on_node(via, lambda node: node.admin(op, list(args), box.append), catch=False)
    waited = 0
    while not box and waited < 5000:
        sim.run(5)
        waited += 5
    assert box, f"{op} got no answer"
    return box[0]


def newest(sim: SimCluster) -> Ring:
    """The ring of the highest version a live node holds (spares keep their own)."""
    return max((n.ring for n in sim.nodes.values()), key=lambda r: r.version)


def settle(sim: SimCluster, ms: int = 30000) -> None:
    waited = 0
    while waited < ms:
        sim.run(100)
        waited += 100
        ring = newest(sim)
        if not ring.next and all(sim.nodes[x].ring == ring for x in ring.members
                                 if x in sim.nodes):
            return
    raise AssertionError("the change did not settle")


def cluster() -> SimCluster:
    cfg = Config(q=16, drop_delay_ms=500, transfer_batch=3)
    sim = SimCluster(5, seed=1, config=cfg, spares=2)
    sim.run(500)
    for i in range(40):
        assert sim.put(sim.names[i % 3], b"k%d" % i, b"v%d" % i)[0] is None
    return sim


def test_a_join_then_a_leave_through_any_node_move_the_data_and_the_leaver_stops():
    sim = cluster()
    a, b, c, d, _ = sim.names
    assert admin(sim, b, "join", d) == (None, [f"staged: join {d}"])
    err, lines = admin(sim, c, "plan")
    assert err is None and lines[0].startswith("transfers: ")
    assert admin(sim, b, "commit")[1][0] == "committed"
    settle(sim)
    ring = newest(sim)
    assert set(ring.members) == {a, b, c, d}
    for i in range(40):
        key = b"k%d" % i
        p = ring.partition_of(key)
        held = [x for x in ring.preference_list(p, 3) if sim.sn[x].engine.get(p, key)]
        assert len(held) == 3, (key, held)
    assert admin(sim, d, "leave", b)[0] is None
    assert admin(sim, d, "commit")[0] is None
    settle(sim)
    sim.run(3000)
    assert b in sim.departed  # it dropped its data and stopped
    assert set(newest(sim).members) == {a, c, d}
    for i in range(40):
        assert sim.get(a, b"k%d" % i)[1] is not None


def test_refusals_and_a_dead_source_rerouted():
    sim = cluster()
    a, b, c, d, e = sim.names
    assert admin(sim, a, "commit")[0] == "no changes staged"
    assert admin(sim, a, "leave", e)[0] == f"{e} is not a member"
    assert admin(sim, a, "move", a)[0].startswith("unknown admin request")
    assert admin(sim, a, "join", d)[0] is None
    assert admin(sim, a, "commit")[0] is None
    assert admin(sim, a, "join", e)[0] is None
    assert admin(sim, a, "commit")[0].startswith("a change is in progress")
    assert admin(sim, a, "clear")[0] is None
    # a source dies for good: its transfers come from the other replicas instead
    ring = newest(sim)
    source = next(s for _, _, s in ring.pending if s != a)
    sim.depart(source)
    assert admin(sim, a, "remove", source)[0] is None
    assert admin(sim, a, "commit")[0] is None
    settle(sim)
    for i in range(40):
        assert sim.get(a, b"k%d" % i)[1] is not None


def test_a_node_that_left_serves_its_clients_until_it_stops():
    """Between the flip and its stop (drop_delay_ms), a node that left still has
    clients: it is no replica of anything and forwards their requests. The members
    forgot it and send it no heartbeats, so it must not count them down for that (it
    answered NOQUORUM to everything until it stopped)."""
    cfg = Config(q=16, drop_delay_ms=8000, transfer_batch=3)
    sim = SimCluster(4, seed=3, config=cfg)
    sim.run(500)
    a, b, c, d = sim.names
    for i in range(20):
        assert sim.put(a, b"k%d" % i, b"v%d" % i)[0] is None
    assert admin(sim, a, "leave", b)[0] is None
    assert admin(sim, a, "commit")[0] is None
    settle(sim)
    sim.run(4000)  # well past the detector's verdict on silent peers
    assert b not in sim.departed and sim.nodes[b].membership.left
    assert sim.nodes[b].membership.down == set()
    for i in range(20):
        assert sim.get(b, b"k%d" % i)[0] is None
        assert sim.put(b, b"k%d" % i, b"w%d" % i)[0] is None
    sim.run(6000)
    assert b in sim.departed
    for i in range(20):
        err, got = sim.get(a, b"k%d" % i)
        assert err is None and got is not None
