"""A coordinator's quorum outcomes, as a client sees them, in a simulated cluster: requests
fail as soon as quorum is impossible (not at their timeout), a read that times out still
repairs the replicas that answered, and a key is not reaped under a read in flight."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.node import Config, Node
from tests.sim.harness import SimCluster

TIMEOUT = 2000


def start(sim: SimCluster, via: str, request: Callable[[Node, Callable], Any]) -> list:
    """Hand node `via` one request (called with the node and the callback); its result
    lands in the returned list."""
    box: list = []
    assert sim.on_node(via, lambda node: request(node, box.append), catch=False)
    return box


def test_a_write_fails_as_soon_as_a_replica_it_waits_on_is_lost() -> None:
    sim = SimCluster(3, seed=21, config=Config(timeout_ms=TIMEOUT))
    a, b, c = sim.names
    sim.partition(a, c)  # c's acknowledgement never comes
    box = start(sim, a, lambda node, cb: node.put(b"k", None, b"v", 0, cb, 3))  # W=3
    sim.run(50)
    assert box == []  # a and b acknowledged: waiting for c
    began = sim.now
    sim.on_node(a, lambda node: node.peer_down(c))  # the link to c breaks
    assert box == [("NOQUORUM write needed 3 of 3 replicas, got 2", None)]
    assert sim.now == began  # at once, not at the timeout
    writes = sim.nodes[a].writes  # (an anti-entropy exchange may be under way meanwhile)
    assert (writes.pending, writes.owing) == ({}, {})


def test_a_read_fails_as_soon_as_a_replica_it_waits_on_is_lost() -> None:
    sim = SimCluster(3, seed=22, config=Config(timeout_ms=TIMEOUT))
    a, b, c = sim.names
    assert sim.put(a, b"k", b"v")[0] is None
    sim.run(50)
    sim.partition(a, c)
    box = start(sim, a, lambda node, cb: node.get(b"k", cb, 3))  # R=3
    sim.run(50)
    assert box == []
    sim.on_node(a, lambda node: node.peer_down(c))
    assert box == [("NOQUORUM read needed 3 of 3 replicas, got 2", None)]


def test_a_replica_that_cannot_store_a_write_refuses_it_and_the_write_fails_at_once() -> None:
    sim = SimCluster(3, seed=23, config=Config(timeout_ms=TIMEOUT), strict=False)
    a, b, c = sim.names

    def broken(partition: int, key: bytes, value: bytes) -> None:
        raise OSError("disk full")

    sim.sn[c].engine.put = broken  # type: ignore[method-assign]
    sim.sn[c].node.local.rebind()
    box = start(sim, a, lambda node, cb: node.put(b"k", None, b"v", 0, cb, 3))
    sim.run(50)  # one round trip, far below the timeout
    # got 1 or 2: whether b's acknowledgement came before c's refusal
    assert len(box) == 1 and box[0][1] is None
    assert box[0][0] in ("NOQUORUM write needed 3 of 3 replicas, got 1",
                         "NOQUORUM write needed 3 of 3 replicas, got 2")
    assert any("OSError: disk full" in text for _, _, text, _ in sim.errors)
    assert sim.nodes[c].stats.refused == 1
    assert sim.put(a, b"k", b"v2")[0] is None  # W=2 still works without c


def with_b_behind(seed: int, config: Config) -> SimCluster:
    """Three nodes a, b, c: b holds v1 of b"k", a and c v2 (written while a and b were
    apart), no anti-entropy to bring b up to date."""
    sim = SimCluster(3, seed=seed, config=config)
    a, b, _ = sim.names
    assert sim.put(a, b"k", b"v1")[0] is None
    sim.run(50)
    sim.partition(a, b)
    assert sim.put(a, b"k", b"v2")[0] is None  # a and c
    sim.run(50)
    sim.heal()
    return sim


def test_a_timed_out_read_repairs_the_replicas_that_answered() -> None:
    """N=3, R=2: a and b answer (b behind), c never does. The client is answered at
    once; at the timeout b is repaired (before, only a read all N answered repaired)."""
    sim = with_b_behind(24, Config(timeout_ms=TIMEOUT, ae_interval_ms=10**9))
    a, b, c = sim.names
    before = sim.stored(b, b"k")
    assert before is not None and objmod.read_value(objmod.decode(before), 0)[2] == b"v1"
    sim.partition(a, c)
    box = start(sim, a, lambda node, cb: node.get(b"k", cb))
    sim.run(50)
    assert box and box[0][0] is None and objmod.read_value(box[0][1], 0)[2] == b"v2"
    assert sim.stored(b, b"k") == before  # the read is not over: c may still answer
    sim.run(TIMEOUT)
    assert sim.stored(b, b"k") == sim.stored(a, b"k")
    assert sim.nodes[a].stats.read_repairs == 1


def test_a_key_is_not_reaped_while_a_read_of_it_is_in_flight() -> None:
    """The read's repair could write back what it read: a node coordinating a read of a
    dead key says no to reaping it until the read is over."""
    sim = SimCluster(3, seed=25, config=Config(timeout_ms=TIMEOUT))
    a, b, c = sim.names
    assert sim.put(a, b"k", b"v")[0] is None
    sim.run(50)
    _, obj = sim.get(a, b"k")
    assert sim.put(a, b"k", None, dvv.join(obj))[0] is None  # a tombstone
    sim.run(50)
    node = sim.nodes[a]
    p = node.partition(b"k")
    digest = objmod.digest(node.local.get_enc(p, b"k"))
    assert node.reaper.may_reap(b"k", p, digest)
    sim.partition(a, c)
    box = start(sim, a, lambda node, cb: node.get(b"k", cb))
    sim.run(50)
    assert box and box[0][0] is None  # answered, still waiting for c
    assert not node.reaper.may_reap(b"k", p, digest)
    sim.run(TIMEOUT)
    assert node.reaper.may_reap(b"k", p, digest)


def test_reads_stop_asking_a_replica_silent_since_they_were_sent_it() -> None:
    """A replica that answers nothing (stopped, its links up) for Config.silent_ms
    is not asked while R can come without it, seconds before the failure detector counts it
    down: reads then end with the answers they need instead of each waiting on it
    until its deadline. Once it is heard from again (a heartbeat), it is asked again."""
    sim = SimCluster(3, seed=26, config=Config(timeout_ms=TIMEOUT))
    a, b, c = sim.names
    assert sim.put(a, b"k", b"v")[0] is None
    sim.run(50)
    sim.partition(a, c)
    first = start(sim, a, lambda node, cb: node.get(b"k", cb))
    sim.run(600)
    assert first and first[0][0] is None
    assert sim.nodes[a].member_status(c) != "down"  # the detector has not said so yet
    assert len(sim.nodes[a].reads.pending) == 1  # the first read still waits on c
    asked = sim.nodes[b].stats.replica_gets
    second = start(sim, a, lambda node, cb: node.get(b"k", cb))
    sim.run(50)
    assert second and second[0][0] is None
    assert objmod.read_value(second[0][1], 0)[2] == b"v"
    assert sim.nodes[b].stats.replica_gets == asked + 1
    assert sim.nodes[a].stats.reads_unasked == 1
    assert len(sim.nodes[a].reads.pending) == 1  # only the first: the second is over
    sim.heal()
    sim.run(1000)  # c's heartbeats come through
    before = sim.nodes[c].stats.replica_gets
    third = start(sim, a, lambda node, cb: node.get(b"k", cb))
    sim.run(50)
    assert third and third[0][0] is None
    assert sim.nodes[c].stats.replica_gets == before + 1
    assert len(sim.nodes[a].reads.pending) == 1  # the first (its message to c was lost)


def test_a_write_keeps_a_hint_at_once_for_a_silent_replica_and_hands_it_off() -> None:
    """A write does not wait on a silent replica while W can come without it: its copy
    is a hint at once (not owed at the deadline), handed off once the replica is heard
    from again; W=2 still reached two replicas before the OK."""
    sim = SimCluster(3, seed=27, config=Config(timeout_ms=TIMEOUT))
    a, b, c = sim.names
    sim.partition(a, c)
    assert sim.put(a, b"k1", b"v1")[0] is None  # sent to c: it answers nothing
    sim.run(600)
    assert sim.nodes[a].member_status(c) != "down"
    created = sim.nodes[a].stats.hints_created
    assert sim.put(a, b"k2", b"v2")[0] is None
    assert sim.nodes[a].stats.writes_unsent == 1
    assert sim.nodes[a].stats.hints_created == created + 1  # at once
    assert sim.stored(b, b"k2") is not None and sim.stored(c, b"k2") is None
    sim.heal()
    sim.run(5000)
    held = sim.stored(c, b"k2")
    assert held is not None and objmod.read_value(objmod.decode(held), 0)[2] == b"v2"
