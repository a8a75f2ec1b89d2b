"""The node state machine in a simulated cluster: quorum paths a user would notice."""

from __future__ import annotations

import os

from dynredis.core import clock as dvv
from dynredis.core import header as hdr
from dynredis.core import messages as m
from dynredis.core import obj as objmod
from dynredis.core import pieces
from dynredis.core.hints import HINT_PARTITION
from dynredis.core.node import Config, Node
from dynredis.core.shape import Spliced, Unread
from dynredis.core.writes import NOT_AN_INTEGER, STALE_READ, TOO_MANY_SIBLINGS
from tests.sim.harness import SimCluster


def live(result) -> list[bytes]:
    err, obj = result
    assert err is None, err
    return [s[2] for s in objmod.live_siblings(obj, 0)]


def value(result) -> bytes | None:
    err, obj = result
    assert err is None, err
    sib = objmod.read_value(obj, 0)
    return sib[2] if sib else None


def test_write_through_one_node_reads_through_every_node() -> None:
    sim = SimCluster(3, seed=1)
    a, b, c = sim.names
    assert sim.put(a, b"k", b"v1")[0] is None
    for via in (a, b, c):
        assert value(sim.get(via, b"k")) == b"v1"


def test_take_outbox_hands_over_every_queued_message_and_counts_from_zero_again() -> None:
    sim = SimCluster(3, seed=1)
    a, b, c = sim.names
    node = sim.sn[a].node
    node.take_outbox()
    node.send(b, ("hb",))
    node.send(c, ("hb",))
    node.send(b, ("x",))
    assert node.outbox_msgs == 3
    assert node.take_outbox() == {b: [("hb",), ("x",)], c: [("hb",)]}
    assert (node.outbox, node.outbox_msgs) == ({}, 0)


def test_replica_put_acks_to_a_peer_share_one_message_and_all_count() -> None:
    """Acks queued back to back for a coordinator travel as one ("pas", [reqids]);
    another message in between starts a new one, and the coordinator counts every
    ack of the batch (here: three writes reach W=3 from the two replicas' batches)."""
    sim = SimCluster(3, seed=1)
    a, b, c = sim.names
    node = sim.sn[b].node
    node.take_outbox()
    node.batch_for(a, "pas").append(7)
    node.batch_for(a, "pas").append(8)
    node.send(a, ("hb",))
    node.batch_for(a, "pas").append(9)
    node.batch_for(c, "pas").append(1)
    assert node.outbox_msgs == 5
    assert node.take_outbox() == {a: [("pas", [7, 8]), ("hb",), ("pas", [9])],
                                  c: [("pas", [1])]}

    coord = sim.sn[a].node
    for i in range(3):
        coord.put(b"k%d" % i, None, b"v", 0, lambda result: None, 3)
    replies = _deliver(sim, a, coord.take_outbox())
    assert [m[0] for m in replies[b]] == ["pas"] and len(replies[b][0][1]) == 3
    coord.done.clear()
    for msg in replies[b]:
        coord.on_message(b, msg)
    assert coord.done == []  # W=3: c's acks still missing
    for msg in replies[c]:
        coord.on_message(c, msg)
    assert len(coord.done) == 3 and all(result[0] is None for _cb, result in coord.done)


def test_replica_get_answers_to_a_peer_share_one_message_and_all_count() -> None:
    sim = SimCluster(3, seed=1)
    a, b, c = sim.names
    for i in range(3):
        assert sim.put(a, b"k%d" % i, b"v%d" % i)[0] is None
    sim.run(100)
    coord = sim.sn[a].node
    coord.take_outbox()
    got: dict[bytes, bytes | None] = {}
    for i in range(3):
        key = b"k%d" % i
        coord.get(key, lambda result, key=key: got.__setitem__(key, value(result)), 3)
    replies = _deliver(sim, a, coord.take_outbox())
    for peer in (b, c):
        (msg,) = replies[peer]
        assert msg[0] == "gas" and len(msg[1]) == 6  # three (reqid, bytes) pairs
    for peer in (b, c):
        for msg in replies[peer]:
            coord.on_message(peer, msg)
    for cb, result in coord.done:
        cb(result)
    assert got == {b"k0": b"v0", b"k1": b"v1", b"k2": b"v2"}


def _deliver(sim: SimCluster, src: str, sent: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Hand `src`'s queued messages to each peer; what each peer queued back to `src`."""
    back = {}
    for peer, msgs in sent.items():
        node = sim.sn[peer].node
        node.take_outbox()
        for msg in msgs:
            node.on_message(src, msg)
        back[peer] = node.take_outbox().get(src, [])
    return back


def test_sequential_writes_through_different_nodes_make_no_siblings() -> None:
    sim = SimCluster(3, seed=2)
    for i, via in enumerate(sim.names * 3):
        assert sim.put(via, b"k", b"v%d" % i)[0] is None
        sim.run(20)
    assert live(sim.get(sim.names[0], b"k")) == [b"v8"]


def test_concurrent_writes_with_the_same_context_become_siblings_and_merge() -> None:
    sim = SimCluster(3, seed=3)
    a, b, c = sim.names
    sim.put(a, b"k", b"base")
    sim.run(20)
    _, obj = sim.get(a, b"k")
    ctx = dvv.join(obj)
    assert sim.put(b, b"k", b"left", ctx)[0] is None
    assert sim.put(c, b"k", b"right", ctx)[0] is None
    sim.run(50)
    siblings = live(sim.get(a, b"k"))
    assert sorted(siblings) == [b"left", b"right"]
    # Plain GET: the newest sibling.
    assert value(sim.get(a, b"k")) == b"right"
    _, merged = sim.get(a, b"k")
    assert sim.put(a, b"k", b"both", dvv.join(merged))[0] is None
    sim.run(50)
    for via in sim.names:
        assert live(sim.get(via, b"k")) == [b"both"]


def test_read_repair_brings_a_stale_replica_up_to_date() -> None:
    sim = SimCluster(3, seed=4)
    a, b, c = sim.names
    sim.partition(a, c)
    assert sim.put(a, b"k", b"v")[0] is None  # W=2: a and b
    sim.run(50)
    sim.heal()
    assert sim.nodes[c].local.get_enc(sim.nodes[c].partition(b"k"), b"k") is None
    assert value(sim.get(a, b"k")) == b"v"
    sim.run(50)  # all three answered: c is repaired
    p = sim.nodes[c].partition(b"k")
    assert sim.nodes[c].local.get_enc(p, b"k") == sim.nodes[a].local.get_enc(p, b"k")
    assert sim.nodes[a].stats.read_repairs >= 1


def test_write_fails_with_noquorum_when_replicas_are_down_and_says_what_it_got() -> None:
    sim = SimCluster(3, seed=5, config=Config(timeout_ms=200))
    a, b, c = sim.names
    sim.stop(b)
    sim.stop(c)
    err, _ = sim.put(a, b"k", b"v")
    assert err is not None and err.startswith("NOQUORUM") and "got 1" in err


def test_down_peer_is_skipped_when_known_down() -> None:
    sim = SimCluster(3, seed=6, config=Config(timeout_ms=200))
    a, b, c = sim.names
    sim.stop(c)
    sim.nodes[a].peer_down(c)
    err, _ = sim.put(a, b"k", b"v")
    assert err is None
    sim.nodes[a].peer_down(b)
    err, _ = sim.put(a, b"k", b"v2")
    assert err is not None and "needed 2" in err


def test_node_outside_the_preference_list_forwards() -> None:
    sim = SimCluster(5, seed=7)
    ring = sim.nodes[sim.names[0]].ring
    key = b"forward-me"
    pref = ring.preference_list(ring.partition_of(key), 3)
    outsider = next(n for n in sim.names if n not in pref)
    assert sim.put(outsider, key, b"v")[0] is None
    assert sim.nodes[outsider].stats.forwarded == 1
    for via in sim.names:
        assert value(sim.get(via, key)) == b"v"
    # The outsider stores nothing for the key.
    node = sim.nodes[outsider]
    assert node.local.get_enc(node.partition(key), key) is None


def test_tombstone_hides_the_value_everywhere() -> None:
    sim = SimCluster(3, seed=8)
    a, b, c = sim.names
    sim.put(a, b"k", b"v")
    sim.run(20)
    _, obj = sim.get(b, b"k")
    assert sim.put(b, b"k", None, dvv.join(obj))[0] is None
    sim.run(20)
    for via in sim.names:
        assert value(sim.get(via, b"k")) is None
        assert live(sim.get(via, b"k")) == []


def test_fresh_nodes_joining_through_a_seed_agree_on_one_ring() -> None:
    sim = SimCluster(4, seed=9, preformed=False)
    sim.run(5000)
    rings = {sim.nodes[n].ring.version for n in sim.names}
    assert len(rings) == 1
    for n in sim.names:
        assert set(sim.nodes[n].ring.members) == set(sim.names)
        assert sim.nodes[n].members == set(sim.names)
    # and placement is identical everywhere
    owners = {sim.nodes[n].ring.owners for n in sim.names}
    assert len(owners) == 1


def test_timed_out_read_reports_noquorum() -> None:
    sim = SimCluster(3, seed=10, config=Config(timeout_ms=100))
    a, b, c = sim.names
    sim.put(a, b"k", b"v")
    sim.run(20)
    sim.stop(b)
    sim.stop(c)
    err, _ = sim.get(a, b"k")
    assert err is not None and err.startswith("NOQUORUM") and "timeout" in err


def test_sloppy_quorum_keeps_writing_and_hands_hints_off_to_the_owner() -> None:
    sim = SimCluster(5, seed=11, config=Config(timeout_ms=300))
    ring = sim.nodes[sim.names[0]].ring
    key = b"hinted"
    pref = ring.preference_list(ring.partition_of(key), 3)
    down = pref[1]
    coordinator = pref[0]
    sim.stop(down)
    sim.run(5000)  # the others' detectors notice
    assert down in sim.nodes[coordinator].down
    err, _ = sim.put(coordinator, key, b"v1")
    assert err is None
    holders = [n for n in sim.names if n != down and sim.nodes[n].hints]
    assert holders, "a fallback should hold a hint for the down primary"
    fallback = holders[0]
    assert fallback not in pref
    # Reads consult the fallback too.
    assert value(sim.get(coordinator, key)) == b"v1"
    sim.start(down)
    sim.run(5000)  # heartbeats resume, hints are handed off and dropped
    node = sim.nodes[down]
    p = node.partition(key)
    assert node.local.get_enc(p, key) is not None
    assert sim.nodes[fallback].hints == 0
    assert sim.nodes[fallback].stats.hints_delivered == 1


# Anti-entropy off: whatever reaches a returning node comes by handoff.
NO_AE = 10**12


def test_in_a_cluster_of_exactly_n_the_coordinator_keeps_the_hint_and_hands_it_off() -> None:
    """Three nodes, N=3: no fallback exists for a down primary, so each write's
    coordinator keeps the down primary's copy as a hint (durable, in the hint
    partition), and the primary holds every write soon after it is back, without
    anti-entropy or reads."""
    sim = SimCluster(3, seed=21, config=Config(timeout_ms=300, ae_interval_ms=NO_AE))
    a, b, c = sim.names
    sim.stop(c)
    sim.run(5000)
    assert c in sim.nodes[a].down and c in sim.nodes[b].down
    keys = [b"k%d" % i for i in range(300)]
    for i, key in enumerate(keys):
        err, _ = sim.put(a if i % 2 else b, key, b"v%d" % i)
        assert err is None
    assert sim.hints_held() == {a: 150, b: 150, c: 0}
    assert all(sim.stored(c, key) is None for key in keys)
    sim.crash(a)  # hints are durable: a keeps them across a crash
    sim.restart(a)
    sim.start(c)
    sim.run(5000)
    assert [sim.stored(c, key) for key in keys] == [sim.stored(a, key) for key in keys]
    assert all(sim.stored(c, key) is not None for key in keys)
    assert sim.hints_held() == {a: 0, b: 0, c: 0}
    assert sim.nodes[b].stats.hints_delivered == 150


def test_a_coordinator_sends_nothing_to_a_stopped_replica_and_waits_on_nothing() -> None:
    """A replica stopped (as SIGSTOP does: its links stay, nothing answers) and seen
    down: the coordinator's reads and writes go to the replicas it needs only, each is
    over (nothing left pending) once they answered, and the handoff rounds never read
    the hints piling up for the stopped replica."""
    sim = SimCluster(3, seed=25, config=Config(timeout_ms=300, ae_interval_ms=NO_AE))
    a, b, c = sim.names
    sim.stop(c)
    sim.run(5000)
    assert c in sim.nodes[a].down
    sent: dict[tuple[str, str], int] = {}
    send = sim._send

    def counting(src: str, dst: str, msg: tuple) -> None:
        sent[(dst, msg[0])] = sent.get((dst, msg[0]), 0) + 1
        send(src, dst, msg)

    sim._send = counting  # type: ignore[method-assign]
    engine = sim.sn[a].engine
    read: list[bytes] = []
    scan, scan_prefix = engine.scan, engine.scan_prefix

    def counted(part, it):
        for hk, enc in it:
            if part == HINT_PARTITION:
                read.append(hk)
            yield hk, enc

    engine.scan = lambda part, head=0: counted(part, scan(part, head))  # type: ignore
    engine.scan_prefix = lambda part, pre, head=0: counted(  # type: ignore
        part, scan_prefix(part, pre, head))
    keys = [b"w%d" % i for i in range(200)]
    for key in keys:
        assert sim.put(a, key, b"v")[0] is None
        assert value(sim.get(a, key)) == b"v"
        node = sim.nodes[a]
        assert (len(node.writes.pending), len(node.reads.pending)) == (0, 0)
    sim.run(3000)  # handoff rounds, while c is still down
    assert read == []
    assert sim.hints_held()[a] == len(keys)
    to_c = {kind: n for (dst, kind), n in sent.items() if dst == c}
    assert set(to_c) <= {"hb", "gs"}, to_c  # heartbeats and gossip only
    assert sent[(b, m.REPLICA_PUTS)] == len(keys) and sent[(b, "g")] == len(keys)
    sim.start(c)
    sim.run(5000)
    assert sim.hints_held()[a] == 0
    assert all(sim.stored(c, key) == sim.stored(a, key) for key in keys)


def test_a_hint_rewritten_while_its_owner_is_down_holds_the_latest_write() -> None:
    """Each write of a key through the same coordinator replaces the hint its previous
    write left (the new version covers it): one hint per key, the latest value, which
    the owner holds once it is back."""
    sim = SimCluster(3, seed=26, config=Config(timeout_ms=300, ae_interval_ms=NO_AE))
    a, b, c = sim.names
    sim.stop(c)
    sim.run(5000)
    for i in range(5):
        assert sim.put(a, b"k", b"v%d" % i)[0] is None
    assert sim.put(b, b"k", b"from-b")[0] is None  # a hint on b; a's copy is behind
    assert sim.put(a, b"k", b"v5")[0] is None
    assert sim.hints_held() == {a: 1, b: 1, c: 0}
    p = sim.nodes[a].partition(b"k")
    assert sim.nodes[a].handoff.held(c, p, b"k") == sim.stored(a, b"k")
    assert sim.nodes[a].stats.hints_created == 1
    sim.start(c)
    sim.run(5000)
    assert sim.hints_held() == {a: 0, b: 0, c: 0}
    assert value(sim.get(c, b"k")) == b"v5"
    assert sim.stored(c, b"k") == sim.stored(a, b"k")


def test_flushall_drops_the_hints_with_the_data_and_the_count_follows() -> None:
    """FLUSHALL wipes the hint partition too: the node says it holds no hint, and the
    owner, once back, gets none of the flushed writes."""
    sim = SimCluster(3, seed=27, config=Config(timeout_ms=300, ae_interval_ms=NO_AE))
    a, b, c = sim.names
    sim.stop(c)
    sim.run(5000)
    keys = [b"f%d" % i for i in range(10)]
    for key in keys:
        assert sim.put(a, key, b"v")[0] is None
    assert sim.nodes[a].hints == len(keys)
    sim.call(a, "flush_all")
    assert sim.nodes[a].hints == 0 == sim.hints_held()[a]
    sim.start(c)
    sim.run(5000)
    assert all(sim.stored(c, key) is None for key in keys)
    assert sim.nodes[a].stats.hints_delivered == 0


def test_a_backlog_of_hints_streams_in_windows_not_one_batch_a_round() -> None:
    """Thousands of hints reach their owner within a few handoff rounds: the window of
    unacknowledged hints is topped up as acknowledgements return."""
    cfg = Config(timeout_ms=300, ae_interval_ms=NO_AE, handoff_batch=100)
    sim = SimCluster(3, seed=22, config=cfg)
    a, b, c = sim.names
    sim.stop(c)
    sim.run(5000)
    keys = [b"s%d" % i for i in range(2000)]
    for key in keys:
        assert sim.put(a, key, b"v")[0] is None
    assert sim.hints_held()[a] == 2000
    sim.start(c)
    sim.run(2 * cfg.handoff_interval_ms + 3000)  # c is seen up, then a few rounds
    # One batch a round would have moved at most a few hundred.
    assert sim.hints_held()[a] == 0
    assert all(sim.stored(c, key) is not None for key in keys)


def test_a_replica_that_misses_an_acknowledged_write_gets_it_by_hint() -> None:
    """A replica cut off silently, before its peers' detectors notice: the writes still
    reach W and are acknowledged; the coordinator waits for the third replica until the
    request timeout and then keeps a hint for it, handed off once it is reachable."""
    sim = SimCluster(3, seed=24, config=Config(timeout_ms=300, ae_interval_ms=NO_AE))
    a, b, c = sim.names
    sim.run(2000)
    sim.partition(a, c)
    keys = [b"m%d" % i for i in range(20)]
    for key in keys:
        assert sim.put(a, key, b"v")[0] is None
    sim.run(1000)  # past the timeout: every write c never acknowledged is hinted
    assert sim.hints_held()[a] == len(keys)
    assert all(sim.stored(c, key) is None for key in keys)
    sim.heal()
    sim.run(5000)
    assert all(sim.stored(c, key) is not None for key in keys)
    assert sim.hints_held() == {a: 0, b: 0, c: 0}


def test_large_hints_go_one_at_a_time_each_read_once_a_send_and_acked_by_header() -> None:
    """Hints of large values go to their owner one at a time (handoff_window_bytes), a
    hint in flight is sent again only past the request timeout and the time its bytes
    take (config.ms_per_mb), and is not read out of the store again by each round
    meanwhile (a 512 MB hint sent again every 2 s while it crossed the link, read a
    tick, overflowed the link's limit and got it cut, again and again); the owner's
    acknowledgement is checked against the hint's header, not the value read whole."""
    sim = SimCluster(3, seed=24, config=Config(
        timeout_ms=300, ae_interval_ms=NO_AE, handoff_interval_ms=50, ms_per_mb=5000,
        handoff_window_bytes=100_000))  # 200 KB: 300 + 953 ms before it goes again
    a, b, c = sim.names
    sim.run(2000)
    sim.partition(a, c)
    keys = [b"big1", b"big2"]
    for key in keys:
        assert sim.put(a, key, os.urandom(200_000))[0] is None
    sim.run(3000)  # past the timeouts: c's copies are hints on a
    assert sim.hints_held()[a] == 2
    node = sim.nodes[a]
    engine = node.local.engine
    whole: list[bytes] = []

    def get(p: int, k: bytes, get=engine.get) -> bytes | None:
        got = get(p, k)
        if p == HINT_PARTITION and got is not None and len(got) > 1000:
            whole.append(k)
        return got

    def scan_prefix(p: int, pre: bytes, head: int = 0, scan=engine.scan_prefix):
        for k, v in scan(p, pre, head):
            if p == HINT_PARTITION and len(v) > 1000:
                whole.append(k)
            yield k, v

    engine.get = get  # type: ignore[method-assign]
    engine.scan_prefix = scan_prefix  # type: ignore[method-assign]
    sim.heal()
    sim.partition(a, c, both=False)  # a hears c's heartbeats; a's messages to c are lost
    sent = node.stats.handoffs_sent
    for _ in range(20):  # rounds every 50 ms
        sim.run(50)
        assert len(node.handoff.inflight) <= 1
    assert node.stats.handoffs_sent - sent == 1  # one hint, not sent again yet
    assert len(whole) == 1
    sim.heal()
    sim.run(5000)
    assert sim.hints_held()[a] == 0
    assert all(sim.stored(c, key) == sim.stored(a, key) for key in keys)
    assert len(whole) == node.stats.handoffs_sent - sent  # the acks read no value whole


def test_anti_entropy_sends_no_large_value_a_write_is_bringing_the_peer() -> None:
    """While a write of a large value is on its way to a replica (not acknowledged, not
    failed), anti-entropy does not queue a second copy of it behind it (a 512 MB copy
    queued so overflowed the link's limit: cut, and the write failed); a smaller value
    (under config.no_second_copy_from) and one no write is bringing still go."""
    sim = SimCluster(3, seed=24, config=Config(timeout_ms=300, ae_interval_ms=NO_AE,
                                               ms_per_mb=50_000, no_second_copy_from=150_000))
    a, b, c = sim.names
    sim.run(2000)
    sim.partition(a, c, both=False)  # a's messages to c are lost: the write waits on c
    assert sim.put(a, b"big", os.urandom(200_000))[0] is None
    assert sim.put(a, b"small", os.urandom(100_000))[0] is None
    node = sim.nodes[a]
    assert node.writes.sending(b"big", c)
    node.outbox.clear()
    for key in (b"big", b"small"):
        assert node.anti_entropy.send_copy(c, node.partition(key), key, True)
        assert node.anti_entropy.send_copy(b, node.partition(key), key, True)
    sent = {peer: [msg[1] for msg in msgs if msg[0] == m.READ_REPAIR]
            for peer, msgs in node.outbox.items()}
    assert sent == {b: [b"big", b"small"], c: [b"small"]}


def test_a_key_is_not_reaped_while_a_write_of_it_waits_on_a_replica() -> None:
    """The write's coordinator says no to reaping the key while a replica has not
    answered: if that replica fails it, the write becomes a hint, which would bring an
    older value back to replicas that had reaped the key."""
    sim = SimCluster(3, seed=25, config=Config(timeout_ms=3000, ae_interval_ms=NO_AE))
    a, b, c = sim.names
    sim.run(2000)
    sim.partition(a, c, both=False)  # a's messages to c are lost; c still heartbeats a
    key = b"waiting"
    assert sim.put(a, key, b"v")[0] is None  # acknowledged by a and b
    p = sim.primaries(key)[0]
    digest = objmod.digest(sim.stored(a, key))
    node = sim.nodes[a]
    assert node.member_status(c) == "up"
    assert not node.reaper.may_reap(key, p, digest)
    sim.heal()
    sim.run(6000)  # the write timed out on c: its hint was handed off
    assert sim.stored(c, key) is not None and sim.hints_held()[a] == 0
    assert node.reaper.may_reap(key, p, digest)


def test_with_a_fallback_available_the_coordinator_keeps_no_hint() -> None:
    sim = SimCluster(4, seed=23, config=Config(timeout_ms=300, ae_interval_ms=NO_AE))
    ring = sim.nodes[sim.names[0]].ring
    key = b"hinted"
    pref = ring.preference_list(ring.partition_of(key), 3)
    coordinator, down = pref[0], pref[1]
    sim.stop(down)
    sim.run(5000)
    assert sim.put(coordinator, key, b"v")[0] is None
    held = {n: h for n, h in sim.hints_held().items() if h}
    assert list(held) != [coordinator] and len(held) == 1  # the fallback's only


def test_failure_detector_marks_a_silent_peer_down_and_back_up() -> None:
    sim = SimCluster(3, seed=12)
    a, b, c = sim.names
    sim.run(3000)
    assert sim.nodes[a].member_status(b) == "up"
    sim.stop(b)
    sim.run(4000)
    assert sim.nodes[a].member_status(b) == "down"
    assert b in sim.nodes[a].down
    sim.start(b)
    sim.run(2000)
    assert sim.nodes[a].member_status(b) == "up"
    assert b not in sim.nodes[a].down


def _held(sim: SimCluster, node: str, key: bytes) -> bytes | None:
    n = sim.nodes[node]
    return n.local.get_enc(n.partition(key), key)


def test_tombstones_are_reaped_after_the_grace_period_everywhere() -> None:
    sim = SimCluster(3, seed=13, config=Config(tombstone_grace_ms=1000))
    a, b, c = sim.names
    sim.put(a, b"k", b"v")
    sim.run(50)
    _, obj = sim.get(a, b"k")
    assert sim.put(a, b"k", None, dvv.join(obj))[0] is None
    sim.run(200)
    assert all(_held(sim, n, b"k") is not None for n in sim.names)  # tombstones, kept
    sim.run(5000)
    assert all(_held(sim, n, b"k") is None for n in sim.names)
    assert value(sim.get(b, b"k")) is None


def test_the_sweep_and_anti_entropy_decide_about_a_large_value_by_its_header_alone() -> None:
    """A sweep once decoded every value each second (a 100 MB one took nodes to 80% CPU).
    Here every replica's copy of a large expiring value keeps its header but has its
    value replaced by garbage that no decoder takes: anti-entropy still compares it,
    and the key is still reaped everywhere once expired (the simulator raises if a
    node fails on it)."""
    sim = SimCluster(3, seed=19, config=Config(q=16, tombstone_grace_ms=1000,
                                                ae_interval_ms=20))
    a, b, c = sim.names
    expire_at = sim.nodes[a].now + 1000
    assert sim.put(a, b"k", b"v" * 100_000, expire_at=expire_at)[0] is None
    sim.run(100)
    for name in sim.names:
        node = sim.nodes[name]
        p = node.partition(b"k")
        enc = node.local.get_enc(p, b"k")
        assert enc is not None and hdr.is_headed(enc)
        garbage = enc[:hdr.SIZE] + b"\xc1" * (len(enc) - hdr.SIZE)
        sim.sn[name].engine.base.put(p, b"k", garbage)
        node.local.cache.set(b"k", garbage, enc)
    exchanges = sum(sim.nodes[n].stats.ae_exchanges for n in sim.names)
    sim.run(6000)
    assert sum(sim.nodes[n].stats.ae_exchanges for n in sim.names) > exchanges
    assert all(_held(sim, n, b"k") is None for n in sim.names)
    assert sum(sim.nodes[n].stats.reaped for n in sim.names) == 3


def test_a_replica_that_missed_the_delete_blocks_reaping_until_it_has_the_tombstone() -> None:
    sim = SimCluster(3, seed=14, config=Config(tombstone_grace_ms=1000, timeout_ms=300))
    a, b, c = sim.names
    sim.put(a, b"k", b"v")
    sim.run(50)
    sim.stop(c)
    _, obj = sim.get(a, b"k")
    assert sim.put(a, b"k", None, dvv.join(obj))[0] is None
    sim.run(5000)
    # c is down: nobody may reap.
    assert _held(sim, a, b"k") is not None and _held(sim, b, b"k") is not None
    sim.start(c)
    sim.run(3000)
    # c still holds the live value, so reaping still waits ...
    assert value(sim.get(c, b"k")) is None  # ... and a read repairs c with the tombstone
    sim.run(5000)
    assert all(_held(sim, n, b"k") is None for n in sim.names)
    assert value(sim.get(c, b"k")) is None


def _missed_by_the_third(sim: SimCluster, prefix: bytes, count: int) -> list[bytes]:
    """Keys written through the first node while the third was cut off from the others
    (it holds none of them), the partition healed: anti-entropy's work."""
    a, b, c = sim.names
    sim.partition(a, c)
    sim.partition(b, c)
    keys = [prefix + b"-%d" % i for i in range(count)]
    for key in keys:
        assert sim.put(a, key, b"v-" + key)[0] is None
    assert all(_held(sim, c, k) is None for k in keys)
    sim.heal()
    return keys


def _agree(sim: SimCluster, keys: list[bytes]) -> None:
    """Every replica holds the same version of each key."""
    a, b, c = sim.names
    for key in keys:
        assert _held(sim, c, key) == _held(sim, a, key) == _held(sim, b, key)


def test_anti_entropy_repairs_a_replica_that_missed_writes_without_any_read() -> None:
    sim = SimCluster(3, seed=15, config=Config(q=16, ae_interval_ms=50))
    keys = _missed_by_the_third(sim, b"ae", 60)
    sim.run(10_000)
    _agree(sim, keys)
    stats = [sim.nodes[n].stats for n in sim.names]
    assert sum(s.ae_keys_repaired for s in stats) >= len(keys)
    # Only the differing keys were exchanged: nothing more is repaired once converged.
    before = sum(s.ae_keys_repaired for s in stats)
    sim.run(5_000)
    assert sum(s.ae_keys_repaired for s in stats) == before


def test_anti_entropy_brings_concurrent_siblings_to_every_replica() -> None:
    sim = SimCluster(3, seed=16, config=Config(q=16, ae_interval_ms=50, w=1, r=1))
    a, b, c = sim.names
    sim.put(a, b"k", b"base")
    sim.run(100)
    sim.partition(a, b)
    sim.partition(a, c)
    sim.put(a, b"k", b"left")
    sim.put(b, b"k", b"right")
    sim.heal()
    sim.run(10_000)
    encs = {_held(sim, n, b"k") for n in sim.names}
    assert len(encs) == 1
    node = sim.nodes[a]
    obj = objmod.decode(encs.pop())
    assert sorted(s[2] for s in objmod.live_siblings(obj, 0)) == [b"left", b"right"]
    assert node.stats.ae_exchanges > 0


def test_a_large_write_waits_longer_for_its_replicas_and_holds_up_no_other_timeout() -> None:
    """A 64 MB value cannot cross in a 2 s timeout on every network: a write waits
    timeout_ms plus ms_per_mb per MB. A small write started after it still times out
    at its own deadline."""
    cfg = Config(timeout_ms=500, ms_per_mb=100)
    sim = SimCluster(3, seed=20, config=cfg)
    a, b, c = sim.names
    sim.stop(b)
    sim.stop(c)  # up for a's detector a while longer, but they answer nothing
    results: dict[str, tuple] = {}
    node = sim.nodes[a]
    sim.on_node(a, lambda n: n.put(b"big", None, b"v" * (4 << 20), 0,
                                   lambda r: results.setdefault("big", r)))
    sim.run(100)
    sim.on_node(a, lambda n: n.put(b"small", None, b"v", 0,
                                   lambda r: results.setdefault("small", r)))
    sim.run(cfg.timeout_ms + 50)
    assert "small" in results and results["small"][0].startswith("NOQUORUM")
    assert "big" not in results  # 4 MB: 400 ms more
    sim.run(4 * cfg.ms_per_mb)
    assert results["big"][0].startswith("NOQUORUM")
    assert node.stats.timeouts >= 2


def test_time_the_node_could_not_run_is_given_back_to_requests_in_flight() -> None:
    """A coordinator busy for a second (a large value encoded, a long command) could not
    read its replicas' answers meanwhile: a stall turned writes they acknowledged in
    time into NOQUORUM. The driver tells the node how long it could not run
    (Node.stalled); requests in flight get that time back, and still time out once it
    has passed with no answer."""
    cfg = Config(timeout_ms=500)
    sim = SimCluster(3, seed=22, config=cfg)
    a, b, c = sim.names
    sim.stop(b)
    sim.stop(c)  # they answer nothing
    results: dict[str, tuple] = {}
    node = sim.nodes[a]
    for kind in ("put", "get"):
        if kind == "put":
            sim.on_node(a, lambda n: n.put(b"k", None, b"v", 0,
                                           lambda r: results.setdefault("put", r)))
        else:
            sim.on_node(a, lambda n: n.get(b"k", lambda r: results.setdefault("get", r)))
    sim.run(400)
    sim.on_node(a, lambda n: n.stalled(1000))
    sim.run(cfg.timeout_ms)  # past the first deadlines
    assert results == {}
    sim.run(1000)
    assert results["put"][0].startswith("NOQUORUM")
    assert results["get"][0].startswith("NOQUORUM")
    assert node.stats.timeouts >= 2


def _answers_since(sim: SimCluster, t0: float, to: str) -> dict[str, list]:
    """What each replica answered `to`'s replica gets since `t0`, by replica."""
    out: dict[str, list] = {}
    for when, tag, src, dst, msg in sim.trace:
        if when >= t0 and tag == ">" and dst == to and msg[0] == "gas":
            out.setdefault(src, []).extend(msg[1][1::2])
    return out


def test_replicas_holding_the_coordinators_large_copy_answer_a_read_without_it() -> None:
    """A GET of a large value once moved it from every replica to the coordinator, which
    held it already: 1,000 pipelined GETs of 1 MB moved 2 GB. A replica holding the same
    copy (by its digest) answers True; one holding another sends its own, and is
    repaired."""
    sim = SimCluster(3, seed=21, config=Config(q=16, w=2, r=3))
    a, b, c = sim.names
    old, new = b"o" * 100_000, b"n" * 100_000
    assert sim.put(a, b"k", old)[0] is None
    sim.run(200)
    t0 = sim.now
    assert value(sim.get(a, b"k")) == old
    assert _answers_since(sim, t0, a) == {b: [True], c: [True]}
    sim.partition(a, c)
    assert sim.put(a, b"k", new)[0] is None
    sim.heal()
    t1 = sim.now
    assert value(sim.get(a, b"k")) == new
    answers = _answers_since(sim, t1, a)
    assert answers[b] == [True] and isinstance(answers[c][0], bytes)  # c's old copy
    sim.run(500)
    t2 = sim.now
    assert value(sim.get(a, b"k")) == new
    assert _answers_since(sim, t2, a) == {b: [True], c: [True]}  # repaired


def test_siblings_made_apart_all_survive_the_merge_past_the_cap() -> None:
    """Both sides of a partition fill a key to near the cap; when they meet, every
    acknowledged value is kept on every replica (more than the cap: merges never drop
    or refuse), the next write that adds a sibling is refused, and a write whose
    context covers them resolves the key."""
    sim = SimCluster(3, seed=18, config=Config(q=16, ae_interval_ms=50, w=1, r=1))
    a, b, c = sim.names
    sim.cut_groups([a], [b, c])
    side = objmod.SIBLING_MAX * 3 // 4
    written = []
    for i in range(side):
        for via in (a, b):
            v = b"%s-%03d" % (via[-1:].encode(), i)
            assert sim.put(via, b"k", v, ctx=())[0] is None
            written.append(v)
    sim.heal()
    sim.run(10_000)
    encs = {_held(sim, n, b"k") for n in sim.names}
    assert len(encs) == 1
    assert sorted(s[2] for s in objmod.live_siblings(objmod.decode(encs.pop()), 0)) \
        == sorted(written)
    for via in sim.names:
        assert sim.put(via, b"k", b"more", ctx=())[0] == TOO_MANY_SIBLINGS
    err, obj = sim.get(c, b"k")
    assert err is None
    assert sim.put(c, b"k", b"resolved", ctx=dvv.join(obj))[0] is None
    sim.run(1000)
    assert live(sim.get(a, b"k")) == [b"resolved"]
    assert sim.put(b, b"k", b"more", ctx=())[0] is None


def _incr(sim: SimCluster, via: str, key: bytes, delta: int):
    return sim.call(via, "incr", key, delta)


def test_concurrent_increments_on_both_sides_of_a_partition_all_count() -> None:
    sim = SimCluster(3, seed=17, config=Config(q=16, ae_interval_ms=50, w=1, r=1))
    a, b, c = sim.names
    assert _incr(sim, a, b"n", 5)[0] is None
    sim.run(100)
    sim.partition(a, b)
    sim.partition(a, c)
    for _ in range(7):
        assert _incr(sim, a, b"n", 1)[0] is None
    for _ in range(4):
        assert _incr(sim, b, b"n", 1)[0] is None
    assert _incr(sim, c, b"n", -2)[0] is None
    sim.heal()
    sim.run(10_000)
    for via in sim.names:
        assert value(sim.get(via, b"n")) == b"14"


def test_increment_starts_from_a_string_integer_and_set_replaces_the_counter() -> None:
    sim = SimCluster(3, seed=18)
    a, b, c = sim.names
    sim.put(a, b"k", b"41")
    sim.run(50)
    _incr(sim, b, b"k", 1)
    sim.run(50)
    assert value(sim.get(c, b"k")) == b"42"
    sim.put(c, b"k", b"7")
    sim.run(50)
    _incr(sim, a, b"k", 1)
    sim.run(50)
    assert value(sim.get(b, b"k")) == b"8"
    sim.put(a, b"k", b"word")
    sim.run(50)
    err, _ = _incr(sim, a, b"k", 1)
    assert err == NOT_AN_INTEGER  # the Redis face words it (commands/counters.py)


def test_duplicated_anti_entropy_answers_are_ignored() -> None:
    """Found by simulation seed 2: a duplicated tree-level answer arrived after the walk
    had finished and raised inside the node."""
    sim = SimCluster(3, seed=2, config=Config(q=16, ae_interval_ms=20))
    a, b, c = sim.names
    for other in (b, c):  # only a drives exchanges, so it sees every answer
        sim.nodes[other].cfg.ae_interval_ms = 10**9
    sim.partition(a, c)
    sim.partition(b, c)
    sim.put(a, b"k", b"v")
    sim.heal()
    sim.deliver_twice = {"aelr", "aebr"}
    sim.run(3000)
    assert _held(sim, c, b"k") == _held(sim, a, b"k")


def test_a_context_from_before_a_reap_does_not_bring_back_the_old_life_of_the_key() -> None:
    """Found by simulation seed 37: a client's context from before the key was reaped
    put the old life's counters back into the clock, and a later write through the same
    node reused one of its dots. A write now supersedes only what its coordinator knows."""
    sim = SimCluster(3, seed=19, config=Config(tombstone_grace_ms=500))
    a, b, c = sim.names
    for i in range(3):
        sim.put(a, b"k", b"old%d" % i)
        sim.run(20)
    _, obj = sim.get(a, b"k")
    stale_ctx = dvv.join(obj)
    sim.put(a, b"k", None, stale_ctx)
    sim.run(5000)
    assert all(_held(sim, n, b"k") is None for n in sim.names)  # reaped
    assert sim.put(a, b"k", b"new", stale_ctx)[0] is None
    sim.run(50)
    assert sim.put(a, b"k", b"newer")[0] is None
    sim.run(50)
    _, now_obj = sim.get(b, b"k")
    old_actors = {actor for actor, _ in stale_ctx}
    assert not old_actors & {actor for actor, _ in dvv.join(now_obj)}
    assert value(sim.get(c, b"k")) == b"newer"


def test_an_expired_value_is_not_brought_back_by_anti_entropy_or_handoff() -> None:
    sim = SimCluster(4, seed=20, config=Config(q=16, ae_interval_ms=50, timeout_ms=300))
    ring = sim.nodes[sim.names[0]].ring
    key = b"ephemeral"
    pref = ring.preference_list(ring.partition_of(key), 3)
    lagging = pref[2]
    sim.stop(lagging)  # misses the write; a fallback keeps a hint for it
    sim.run(5000)
    expire_at = sim.nodes[pref[0]].now + 300
    assert sim.put(pref[0], key, b"short-lived", expire_at=expire_at)[0] is None
    sim.run(1000)  # expired everywhere it was written
    sim.start(lagging)
    sim.run(8000)  # handoff and anti-entropy run
    for via in sim.names:
        err, obj = sim.get(via, key)
        assert err is None
        assert objmod.read_value(obj, sim.nodes[via].now) is None
    node = sim.nodes[lagging]
    held = node.local.get_enc(node.partition(key), key)
    assert held is None or objmod.read_value(objmod.decode(held), node.now) is None


def test_held_by_counts_the_replicas_holding_a_write_or_a_later_one() -> None:
    """WAIT's question: a replica cut off during the write does not hold it until
    repaired; a later write still counts as holding the earlier one."""
    sim = SimCluster(3, seed=12, config=Config(timeout_ms=200))
    a, b, c = sim.names
    sim.partition(a, c)
    err, first = sim.put(a, b"k", b"v1")
    assert err is None
    sim.run(50)
    assert sim.call(a, "held_by", b"k", first) == 2  # c never answers: not counted
    assert sim.call(b, "held_by", b"k", first) == 2  # b asks all three: c lacks it
    sim.heal()
    assert value(sim.get(a, b"k")) == b"v1"  # read repair reaches c
    sim.run(50)
    assert sim.call(b, "held_by", b"k", first) == 3
    err, _ = sim.put(b, b"k", b"v2")
    assert err is None
    sim.run(50)
    assert sim.call(c, "held_by", b"k", first) == 3


def test_a_replica_in_step_takes_a_write_as_sent_and_one_out_of_step_merges_it() -> None:
    """Replica puts carry the identity of the version the coordinator built on. A replica
    holding exactly that version stores the new bytes as they are; a replica holding
    anything else merges, so a write the coordinator never saw stays a sibling."""
    sim = SimCluster(3, seed=3, config=Config(ae_interval_ms=10**9))
    a, b, c = sim.names
    for v in (b"v1", b"v2"):
        sim.put(a, b"k", v)
        sim.run(100)
        assert _held(sim, a, b"k") == _held(sim, b, b"k") == _held(sim, c, b"k")
    sim.partition(a, c)
    assert sim.put(c, b"k", b"vc")[0] is None  # reaches b, not a
    sim.run(100)
    assert sim.put(a, b"k", b"v3")[0] is None  # built on v2: b holds something else
    sim.run(100)
    held = _held(sim, b, b"k")
    assert held is not None
    assert sorted(s[2] for s in objmod.live_siblings(objmod.decode(held), 0)) == [b"v3", b"vc"]


def test_a_large_value_is_read_whole_only_by_the_coordinator_of_a_get() -> None:
    """A GET of a 100 MB value made every replica read it to say it held the same, and
    a DEL made the coordinator and every replica read it: a replica answers a GET and
    takes a DEL from the value's header, and a plain SET or DEL decodes only the clock
    of what it supersedes (read in place). Everyone ends with the same answer."""
    sim = SimCluster(3, seed=1)
    a, b, c = sim.names
    big = os.urandom(300_000)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)  # keeps nothing over 8 KB
    assert sim.put(a, b"big", big)[0] is None
    sim.run(100)
    whole: list[str] = []
    for name in sim.names:
        engine = sim.sn[name].node.local.engine

        def get(p: int, key: bytes, get=engine.get, name=name) -> bytes | None:
            if key == b"big":
                whole.append(name)
            return get(p, key)

        engine.get = get
        sim.sn[name].node.local.rebind()
    assert value(sim.get(a, b"big")) == big
    assert whole == [a]  # the coordinator's own copy, which it answers with
    whole.clear()
    assert sim.put(a, b"big", b"small now")[0] is None  # a plain SET over it
    sim.run(100)
    assert whole == []
    assert sim.put(b, b"big", big)[0] is None
    sim.run(100)
    whole.clear()
    assert sim.put(c, b"big", None)[0] is None  # DEL
    sim.run(100)
    assert whole == []
    for via in sim.names:
        assert value(sim.get(via, b"big")) is None
    assert [sim.stored(name, b"big") for name in (b, c)] == [sim.stored(a, b"big")] * 2


# Writes to a replica not yet counted down wait on it until their deadline while it is
# not silent either (Config.silent_ms): what the next tests follow.
NEVER_SILENT = 10**9


def test_writes_timing_out_for_a_replica_not_yet_seen_down_are_hinted_a_slice_a_tick() -> None:
    """A replica stopped (SIGSTOP: no answer, its links stay) but not yet counted down:
    the writes sent to it meanwhile time out together later, each owing it a hint.
    Storing all of them in one tick held the loop for every client (the GET run after a
    paused replica's SET run); they are stored HINTS_PER_TICK a tick, oldest first, and
    none is forgotten. A write whose client is still waiting times out at once."""
    from dynredis.core.writes import HINTS_PER_TICK

    sim = SimCluster(3, seed=26, config=Config(timeout_ms=60_000, ae_interval_ms=NO_AE,
                                              silent_ms=NEVER_SILENT))
    a, b, c = sim.names
    sim.stop(c)
    keys = [b"s%d" % i for i in range(3 * HINTS_PER_TICK + 10)]
    for key in keys:
        assert sim.put(a, key, b"v")[0] is None  # a and b: W=2
    node = sim.nodes[a]
    assert c not in node.down
    waiting = len(node.writes.pending)
    assert waiting >= len(keys) - 5  # (a few may name c as no replica)
    assert sim.hints_held()[a] == 0
    # One more write, whose client still waits: b stops too, so W=2 cannot be met.
    sim.stop(b)
    def late(result) -> None:
        pass

    node.put(b"late", None, b"v", 0, late)
    later = node.now + 120_000
    node.writes.expire(later)
    replies = [result for cb, result in node.done if cb is late]
    assert replies and replies[0][0] is not None  # NOQUORUM now, not after the backlog
    assert sim.hints_held()[a] == HINTS_PER_TICK + 1 or \
        sim.hints_held()[a] == HINTS_PER_TICK + 2  # the slice, and the late write's
    rounds = 1
    while node.writes.owing:
        node.writes.expire(later)
        rounds += 1
        assert rounds < 10
    assert rounds == -(-waiting // HINTS_PER_TICK)
    assert not node.writes.pending
    hinted = {hk for hk, _ in sim.sn[a].engine.scan(HINT_PARTITION)}
    assert len(hinted) >= waiting


def test_writes_owing_hints_leave_the_overdue_walk_and_a_late_ack_settles_them() -> None:
    """The writes a paused replica did not acknowledge leave `pending` at their deadline
    for `owing` (every tick walks `pending` for overdue writes: a backlog of tens of
    thousands in it made each tick hold the loop for 5-12 ms while it drained), and
    writes of a later turn still time out on time behind them. A replica that answers
    late (resumed before its hint was stored) settles its write: no hint, none lost."""
    from dynredis.core import messages as m
    from dynredis.core.writes import HINTS_PER_TICK

    sim = SimCluster(3, seed=26, config=Config(timeout_ms=60_000, ae_interval_ms=NO_AE,
                                              silent_ms=NEVER_SILENT))
    a, b, c = sim.names
    sim.stop(c)
    keys = [b"o%d" % i for i in range(4 * HINTS_PER_TICK)]
    for key in keys:
        assert sim.put(a, key, b"v")[0] is None
    node = sim.nodes[a]
    owed = [op.reqid for op in node.writes.pending.values()
            if any(x == c for x, _ in op.targets)]
    assert len(owed) >= len(keys) - 5
    later = node.now + 120_000
    node.writes.expire(later)
    assert not node.writes.pending  # none left for the next ticks' walk
    assert len(node.writes.owing) == len(owed) - HINTS_PER_TICK
    # A write of a later turn, its client still waiting (b stops too): it times out at
    # its own deadline, whatever backlog is owed before it.
    sim.stop(b)
    replies = []
    node.put(b"late", None, b"v", 0, replies.append)
    node.writes.expire(later + 120_000)
    results = [result for cb, result in node.done if cb == replies.append]
    assert results and results[0][0] is not None
    # c resumes and acknowledges the writes still owed: they are settled, not hinted.
    held = sim.hints_held()[a]
    late = list(node.writes.owing)
    node.on_message(c, m.put_acks(late))
    assert not node.writes.owing
    node.writes.expire(later + 240_000)
    assert sim.hints_held()[a] == held
    assert not node.writes.pending and not node.writes.owing


def test_an_answered_write_waiting_for_a_paused_replica_lets_its_callback_go() -> None:
    """A write answered after W acknowledgements stays until the last replica answers
    (for its hint): it keeps what the hint needs, not the client's callback (a
    connection's reply slot) nor the version's clock, which a paused replica would
    otherwise keep for the request timeout, tens of thousands of them under load."""
    import gc
    import weakref

    class Reply:
        def __init__(self) -> None:
            self.results: list = []

        def __call__(self, result) -> None:
            self.results.append(result)

    sim = SimCluster(3, seed=26, config=Config(timeout_ms=60_000, ae_interval_ms=NO_AE,
                                              silent_ms=NEVER_SILENT))
    a, b, c = sim.names
    sim.stop(c)
    node = sim.nodes[a]
    reply = Reply()
    gone = weakref.ref(reply)
    node.put(b"k", None, b"v", 0, reply)
    sim.run(100)
    assert reply.results and reply.results[0][0] is None  # W=2: answered
    op = next(op for op in node.writes.pending.values() if op.key == b"k")
    del reply
    node.done.clear()
    gc.collect()
    assert gone() is None
    assert op.enc is not None  # what the hint is made of stays
    node.writes.expire(node.now + 120_000)
    node.writes.expire(node.now + 120_000)
    from dynredis.core.hints import parse_hint_key

    hinted = [parse_hint_key(hk) for hk, _ in sim.sn[a].engine.scan(HINT_PARTITION)]
    assert [(owner, key) for owner, _, key in hinted] == [(c, b"k")]


def test_an_overwrite_named_by_an_earlier_build_still_lands_on_every_replica() -> None:
    """A 1 KB object is named (obj.identity) by XXH3; an earlier build named it by
    blake2b. A replica sent a write built on its copy under either name ends with the
    coordinator's version exactly (under the old name: by merging, not by the name)."""
    from hashlib import blake2b

    for earlier in (False, True):
        sim = SimCluster(3, seed=5)
        a, b, c = sim.names
        assert sim.put(a, b"k", b"1" * 1024)[0] is None
        sim.run(20)
        coord = sim.sn[a].node
        p = coord.partition(b"k")
        base = coord.local.get_enc(p, b"k")
        assert base is not None and objmod.INLINE_IDENTITY < len(base) < hdr.HEADED_FROM
        coord.take_outbox()
        coord.put(b"k", None, b"2" * 1024, 0, lambda result: None)
        sent = coord.take_outbox()
        puts = [msg[1] for msgs in sent.values() for msg in msgs
                if msg[0] == m.REPLICA_PUTS]
        assert len(puts) == 2 and all(len(items) == m.PUT_FIELDS for items in puts)
        for items in puts:
            if earlier:
                items[5] = blake2b(base, digest_size=16).digest()  # (its base)
        _deliver(sim, a, sent)
        want = coord.local.get_enc(p, b"k")
        for replica in (b, c):
            assert sim.sn[replica].node.local.get_enc(p, b"k") == want


def _read_heads(sim: SimCluster, via: str, key: bytes):
    """A quorum read that needs no large value (DEL's, EXISTS', TTL's: whole=False)."""
    box: list = []
    assert sim.on_node(via, lambda n: n.get(key, box.append, None, False), catch=False)
    while not box:
        sim.run(5)
    return box[0]


def _spy_whole_reads(sim: SimCluster, key: bytes) -> list[str]:
    """The nodes that read `key`'s stored value whole from then on (engine.get)."""
    whole: list[str] = []
    for name in sim.names:
        engine = sim.sn[name].node.local.engine

        def get(p: int, k: bytes, get=engine.get, name=name) -> bytes | None:
            if k == key:
                whole.append(name)
            return get(p, k)

        engine.get = get
        sim.sn[name].node.local.rebind()
    return whole


def _holding_a_large_value(seed: int) -> tuple[SimCluster, bytes, list[str]]:
    """A cluster whose key b"big" holds 300 KB (past any node's cache), that value, and
    the list of its nodes' reads of it whole from now on (_spy_whole_reads)."""
    sim = SimCluster(3, seed=seed)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)  # keeps nothing over 8 KB
    big = os.urandom(300_000)
    assert sim.put(sim.names[0], b"big", big)[0] is None
    sim.run(100)
    return sim, big, _spy_whole_reads(sim, b"big")


def test_a_delete_of_a_large_value_reads_no_value_anywhere() -> None:
    """DEL reads the key to count it, then writes a tombstone with the context it read:
    the coordinator copied a 100 MB value out and decoded it twice (a 0.5-0.7 s stall).
    Its read and its write now see the value's presence and length only; every node
    then reads nil."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a, b, c = sim.names
    err, obj = _read_heads(sim, a, b"big")
    assert err is None
    sib = objmod.read_value(obj, 0)
    assert type(sib[2]) is Unread and sib[2].size == len(big)
    assert sim.put(a, b"big", None, ctx=dvv.join(obj))[0] is None
    sim.run(100)
    assert whole == []
    for via in sim.names:
        assert value(sim.get(via, b"big")) is None
    assert _read_heads(sim, b, b"big") == (None, _read_heads(sim, c, b"big")[1])


def test_an_expiry_written_on_a_large_value_keeps_it_without_reading_it_whole() -> None:
    """EXPIRE and PERSIST write the value they read back as it is: a read that leaves it
    in the store (shape.Unread) and a write that copies it from there into the new
    version (LocalStore.encoding_in_place) give every replica the same bytes as writing
    the value itself, and no node reads it whole (a copy out of the store and one
    decoding it: 100 ms of the coordinator's loop per 100 MB)."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a, b, c = sim.names
    at = sim.sn[a].node.now + 100_000
    for expire_at in (at, 0):  # EXPIRE, then PERSIST
        err, obj = _read_heads(sim, a, b"big")
        assert err is None
        sib = objmod.read_value(obj, 0)
        assert type(sib[2]) is Unread
        assert sim.put(a, b"big", sib[2], ctx=dvv.join(obj), expire_at=expire_at)[0] is None
        sim.run(100)
        assert whole == []
        stored = {sim.stored(name, b"big") for name in sim.names}
        assert len(stored) == 1
        enc = stored.pop()
        assert enc is not None and objmod.encode(objmod.decode(enc)) == enc
        assert live((None, objmod.decode(enc))) == [big]
        assert objmod.read_value(objmod.decode(enc), 0)[1] == expire_at
        whole.clear()  # (sim.stored reads it whole)
    for via in sim.names:
        assert value(sim.get(via, b"big")) == big


def test_an_append_or_setrange_on_a_large_value_copies_it_from_the_store_once() -> None:
    """APPEND and SETRANGE of a few bytes on a large value write the value left in the
    store with the bytes over or after it (shape.Spliced; past its end with zeros
    between, as Redis): every replica holds the new value, in the same canonical bytes
    as writing it whole, its expiry kept, and no node reads the old value whole."""
    sim = SimCluster(3, seed=7)
    a, b, _ = sim.names
    big = os.urandom(150_000)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)
    at = sim.sn[a].node.now + 500_000
    assert sim.put(a, b"k", big, expire_at=at)[0] is None
    sim.run(100)
    whole = _spy_whole_reads(sim, b"k")
    want = big
    for where, data in ((None, b"x"), (None, b"yz" * 40_000), (10, b"MID"),
                        (len(big) - 2, b"over the end"), (300_000, b"far")):
        err, obj = _read_heads(sim, b, b"k")
        sib = objmod.read_value(obj, 0)
        assert err is None and type(sib[2]) is Unread and sib[2].size == len(want)
        offset = len(want) if where is None else where
        assert sim.put(b, b"k", Spliced(sib[2], offset, data), ctx=dvv.join(obj),
                       expire_at=sib[1])[0] is None
        sim.run(100)
        assert whole == []
        want = want.ljust(offset, b"\0")
        want = want[:offset] + data + want[offset + len(data):]
        stored = {sim.stored(name, b"k") for name in sim.names}
        assert len(stored) == 1
        enc = stored.pop()
        assert enc is not None and objmod.encode(objmod.decode(enc)) == enc
        assert objmod.read_value(objmod.decode(enc), 0)[1:] == (at, want)
        whole.clear()


def test_a_large_value_written_in_pieces_is_stored_as_its_bytes() -> None:
    """SETRANGE, SETBIT and APPEND that make a large value hand the write a
    pieces.Joined (the old value, zeros, the new bytes: copied once, into the encoding):
    every replica holds the canonical bytes of the whole value, also where the write is
    forwarded (a node outside the key's replicas) or replaces a collection."""
    sim = SimCluster(5, seed=7)
    ring = sim.nodes[sim.names[0]].ring
    old = os.urandom(70_000)
    want = old[:5] + b"new" + old[8:] + bytes(30_000) + b"end"
    for key in (b"fresh", b"forwarded", b"was-a-set"):
        pref = ring.preference_list(ring.partition_of(key), 3)
        via = next(n for n in sim.names if n not in pref) if key == b"forwarded" else pref[0]
        if key == b"was-a-set":
            sim.sn[via].node.coll.store.known.add(key)  # (as a collection key is known)
        joined = pieces.splice(old, 5, b"new", 1 << 10)
        joined = pieces.Joined([*joined.parts, bytes(30_000), b"end"])
        assert sim.put(via, key, joined, ctx=dvv.join(dvv.EMPTY))[0] is None
        sim.run(100)
        for name in pref:
            enc = sim.stored(name, key)
            assert enc is not None and objmod.encode(objmod.decode(enc)) == enc
            assert objmod.read_value(objmod.decode(enc), 0)[2] == want
        for name in sim.names:
            assert value(sim.get(name, key)) == want


def test_a_large_value_left_unread_is_not_written_once_the_key_holds_another() -> None:
    """A value read as an Unread and written back after another write replaced it is
    refused (STALE_READ: the command reads the key whole and runs again), never written
    from the wrong bytes; the other write stands."""
    sim = SimCluster(3, seed=6)
    a, b, _ = sim.names
    first, other = os.urandom(200_000), os.urandom(210_000)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)
    assert sim.put(a, b"k", first)[0] is None
    sim.run(100)
    err, seen = _read_heads(sim, a, b"k")
    sib = objmod.read_value(seen, 0)
    assert err is None and type(sib[2]) is Unread
    assert sim.put(b, b"k", other)[0] is None
    sim.run(100)
    assert sim.put(a, b"k", sib[2], ctx=dvv.join(seen), expire_at=0)[0] == STALE_READ
    assert sim.put(a, b"k", sib[2], ctx=None)[0] == STALE_READ
    sim.run(100)
    for via in sim.names:
        assert live(sim.get(via, b"k")) == [other]


def test_a_replica_brought_up_to_date_on_a_large_value_reads_neither_copy_whole() -> None:
    """A replica that missed a write of a large value gets it later (a hint, read
    repair or anti-entropy), without the coordinator's base: whether it replaces our
    copy is told by the two clocks, read in place (copying ours out of the store and
    decoding both held a replica's loop 275-610 ms per 100 MB). A repair with the older
    version changes nothing; a concurrent one is merged, both values kept."""
    sim, big, whole = _holding_a_large_value(seed=7)
    a, b, c = sim.names
    old = sim.stored(c, b"big")
    assert old is not None
    sim.stop(c)
    newer = os.urandom(310_000)
    assert sim.put(a, b"big", newer)[0] is None
    sim.run(100)
    whole.clear()
    sim.start(c)
    sim.run(3000)
    assert whole == []
    assert sim.stored(c, b"big") == sim.stored(a, b"big")
    node = sim.nodes[a]
    p = node.partition(b"big")
    held = sim.stored(a, b"big")
    whole.clear()
    node.replica.apply(b"big", old, p)  # the version it replaced, from a late repair
    assert whole == [] and sim.stored(a, b"big") == held
    other = os.urandom(300_001)
    past = objmod.decode(old)
    concurrent = dvv.update(dvv.new_with_context(dvv.join(past), objmod.sibling(1, other)),
                            past, b"X")
    node.replica.apply(b"big", objmod.encode(concurrent), p)
    assert sorted(live((None, objmod.decode(sim.stored(a, b"big"))))) == sorted([newer, other])


def test_a_delete_keeps_a_large_sibling_its_context_did_not_see() -> None:
    """A write with a context keeps what the context does not cover: a large sibling
    written concurrently is then read whole and kept, byte-exact."""
    sim = SimCluster(3, seed=5)
    a, b, _ = sim.names
    first, other = os.urandom(200_000), os.urandom(250_000)
    assert sim.put(a, b"k", first)[0] is None
    sim.run(100)
    err, seen = _read_heads(sim, a, b"k")
    assert err is None
    assert sim.put(b, b"k", other, ctx=())[0] is None  # concurrent: a sibling
    sim.run(100)
    assert sim.put(a, b"k", None, ctx=dvv.join(seen))[0] is None  # DEL of what it saw
    sim.run(100)
    for via in sim.names:
        assert live(sim.get(via, b"k")) == [other]


def test_a_read_needing_no_value_reads_it_whole_when_a_replica_holds_a_concurrent_copy(
        ) -> None:
    """Replicas that hold the coordinator's large copy answer by its digest; one that
    answers a copy the coordinator's does not supersede (a concurrent write) makes the
    coordinator read its own whole, merge, answer both values and repair, as a GET
    does."""
    sim = SimCluster(3, seed=22, config=Config(q=16, w=1, r=3))
    a, b, c = sim.names
    old, new, other = os.urandom(100_000), os.urandom(120_000), os.urandom(110_000)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)  # keeps nothing over 8 KB
    assert sim.put(a, b"k", old)[0] is None
    sim.run(200)
    sim.cut_groups([a, b], [c])
    assert sim.put(a, b"k", new)[0] is None
    assert sim.put(c, b"k", other)[0] is None  # concurrent, on c alone (w=1)
    sim.run(100)
    sim.heal()
    err, obj = _read_heads(sim, a, b"k")
    assert err is None
    assert sorted(live((None, obj))) == sorted([new, other])  # read whole and merged
    sim.run(500)
    assert sim.stored(c, b"k") == sim.stored(a, b"k")


def test_anti_entropy_repairs_a_bounded_number_of_keys_per_exchange(monkeypatch) -> None:
    """A DEL or a bulk removal of a big collection is stripped by each replica at its own
    pace, so every record of it differs for a while: one exchange repairing them all made
    the peers send and merge 200,000 records in one turn (1.2-1.4 s). An exchange repairs
    at most AE_KEYS_MAX keys; the next ones repair the rest, and the replicas converge."""
    from dynredis.core import antientropy

    monkeypatch.setattr(antientropy, "AE_KEYS_MAX", 8)
    sim = SimCluster(3, seed=15, config=Config(q=4, ae_interval_ms=50))
    keys = _missed_by_the_third(sim, b"aeb", 200)  # ~50 a partition
    stats = [sim.nodes[n].stats for n in sim.names]
    most = 0
    for _ in range(400):
        before = [s.ae_keys_repaired for s in stats]
        sim.run(25)
        most = max(most, *(s.ae_keys_repaired - x for s, x in zip(stats, before,
                                                                  strict=True)))
    _agree(sim, keys)
    assert 0 < most <= 2 * 8  # (two exchanges may end in one step)


def test_anti_entropy_asks_for_fewer_buckets_of_a_big_partition(monkeypatch) -> None:
    """A partition holding a million-element collection's records has ~1,000 entries a
    bucket: 64 of them listed, sorted and sent held the answering peer 60-100 ms. An
    exchange asks for as many buckets as hold about AE_ENTRIES_MAX entries (one at
    least), and the replicas still converge."""
    from dynredis.core import antientropy

    monkeypatch.setattr(antientropy, "AE_ENTRIES_MAX", 0)  # one bucket an exchange
    sim = SimCluster(3, seed=17, config=Config(q=4, ae_interval_ms=50))
    keys = _missed_by_the_third(sim, b"aen", 200)
    asked: list[int] = []
    send = sim._send

    def spy(src: str, dst: str, msg: tuple) -> None:
        if msg[0] == m.AE_BUCKETS:
            asked.append(len(msg[3]))
        send(src, dst, msg)

    monkeypatch.setattr(sim, "_send", spy)
    sim.run(20_000)
    _agree(sim, keys)
    assert asked and max(asked) == 1


def test_anti_entropy_folds_a_bounded_number_of_writes_per_exchange(monkeypatch) -> None:
    """A walk stripping a big collection leaves 200,000 unfolded records in one partition;
    an exchange reaching it folded them all into the tree in one turn (ticks of 110-170
    ms). An exchange folds at most AE_FOLD_MAX (a partition with more is not exchanged
    until the ticks folded them), and the replicas still converge."""
    from dynredis.core import antientropy

    monkeypatch.setattr(antientropy, "AE_FOLD_MAX", 4)
    sim = SimCluster(3, seed=16, config=Config(q=4, ae_interval_ms=50))
    a = sim.names[0]
    keys = _missed_by_the_third(sim, b"aef", 200)
    sim.run(20_000)
    _agree(sim, keys)
    node = sim.nodes[a]
    local = node.local
    p = next(p for p in range(4) if a in node.ring.preference_list(p, 3))
    for i in range(10):  # a backlog past AE_FOLD_MAX: no exchange of p this round
        local.dirty[p][b"x%d" % i] = None
    ae = node.anti_entropy
    ae.cursor = p
    started = node.stats.ae_exchanges
    ae.start()
    assert node.stats.ae_exchanges == started and local.backlog(p) == 10
    local.tree_within(p, 4)  # at most `most` folded now, the rest left to the ticks
    assert local.backlog(p) == 6


def test_a_read_needing_no_value_takes_a_replica_behind_as_ours_without_reading_it_whole(
        ) -> None:
    """A replica still holding an older copy of a large value (it missed the last write,
    or the write is still on its way) answers a read that needs no value (EXPIRE's,
    TTL's) with its whole old copy. The coordinator merged it with its own copy read
    whole and sent the merge back: an EXPIRE right after a SET of 100 MB held three
    nodes for seconds. Now the answer counts as the coordinator's (its clock says it is
    superseded): no node but that replica reads the value whole, the replica is sent
    the coordinator's stored copy when no write of it is on its way there, and the
    read sees the newer copy."""
    sim = SimCluster(3, seed=31)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)  # keeps nothing over 8 KB
    a, b, c = sim.names
    old, new = os.urandom(300_000), os.urandom(300_000)
    assert sim.put(a, b"big", old)[0] is None
    sim.run(100)
    send = sim._send

    def lose_writes_to_c(src: str, dst: str, msg: tuple) -> None:
        if not (dst == c and msg[0] == m.REPLICA_PUTS):
            send(src, dst, msg)

    sim._send = lose_writes_to_c  # type: ignore[method-assign]
    assert sim.put(a, b"big", new)[0] is None  # c misses it: a's write fails there
    sim.run(2100)  # (past the write's timeout: a hint, not yet handed off)
    sim._send = send  # type: ignore[method-assign]
    whole = _spy_whole_reads(sim, b"big")
    t0 = sim.now
    err, obj = _read_heads(sim, a, b"big")
    assert err is None
    sib = objmod.read_value(obj, 0)
    assert type(sib[2]) is Unread and sib[2].size == len(new)
    sim.run(50)
    # c read its copy to answer with it; a read its own once, as stored, to send it
    assert whole.count(a) == 1 and b not in whole
    repairs = [msg for when, tag, src, dst, msg in sim.trace
               if when >= t0 and tag == ">" and src == a and dst == c
               and msg[0] == m.READ_REPAIR]
    assert len(repairs) == 1 and repairs[0][2] == sim.stored(a, b"big")
    sim.run(500)
    assert sim.stored(c, b"big") == sim.stored(a, b"big")
    assert value(sim.get(c, b"big")) == new


def test_a_replica_behind_whose_write_is_on_its_way_is_not_repaired() -> None:
    """As above, while the coordinator's write to the replica is still unacknowledged
    (its link out of the coordinator cut, so the replica answers with its old copy):
    the read repairs nothing (the write, or its hint, brings the copy), and no node but
    that replica reads the value whole."""
    sim = SimCluster(3, seed=32)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)
    a, b, c = sim.names
    old, new = os.urandom(300_000), os.urandom(300_000)
    assert sim.put(a, b"big", old)[0] is None
    sim.run(100)
    sim.partition(a, c, both=False)  # the write to c is lost: a waits on it (timeout)
    assert sim.put(a, b"big", new)[0] is None  # (w=2: a and b)
    sim.heal()
    whole = _spy_whole_reads(sim, b"big")
    t0 = sim.now
    err, obj = _read_heads(sim, a, b"big")
    assert err is None and objmod.read_value(obj, 0)[2].size == len(new)
    sim.run(50)
    answered = _answers_since(sim, t0, a)
    assert isinstance(answered[c][0], bytes)  # c's old copy
    assert a not in whole and b not in whole
    assert not [msg for when, tag, src, dst, msg in sim.trace
                if when >= t0 and tag == ">" and src == a and msg[0] == m.READ_REPAIR]
    sim.run(5000)  # the write times out at c: a hint, handed off
    assert sim.stored(c, b"big") == sim.stored(a, b"big")


def test_an_exchange_under_way_when_its_node_is_wiped_ends_quietly() -> None:
    """FLUSHALL in the middle of an anti-entropy exchange: the walk held the wiped tree
    (its sums given to the graveyard), and the peer's answer to the next level raised
    IndexError in the peer link's reader. The wipe ends the exchanges under way; later
    ones run on the new trees and the nodes agree."""
    sim = SimCluster(3, seed=31, config=Config(ae_interval_ms=NO_AE, timeout_ms=300))
    a, b, c = sim.names
    for i in range(200):
        assert sim.put(a, b"w%d" % i, b"v")[0] is None
    sim.stop(a)
    for i in range(200):  # a's trees differ from b's: the walk goes down to the buckets
        assert sim.put(b, b"w%d" % i, b"v2")[0] is None
    sim.start(a)
    sim.run(100)  # (the hints not handed off yet)
    node = sim.sn[a].node
    def start(n: Node) -> None:
        n.anti_entropy.exchange(n.ring.partition_of(b"w0"), b)

    assert sim.on_node(a, start, catch=False)
    assert node.anti_entropy.pending
    assert sim.on_node(a, lambda n: n.wipe(), catch=False)  # (before the answer lands)
    assert not node.anti_entropy.pending
    sim.run(500)
    assert sim.errors == []


def test_every_new_key_gets_its_own_actor_suffix_and_an_old_key_keeps_its_actor() -> None:
    """A key written for the first time (or again after it was reaped) is stamped with
    the node's identity and fresh random bytes (Writes.actor_for, drawn from a pool):
    thousands of new keys, past a pool's refill, all get distinct actors; a key this
    node wrote before keeps the actor it had."""
    sim = SimCluster(1, seed=3, config=Config(n=1, r=1, w=1))
    (a,) = sim.names
    node = sim.sn[a].node
    seen = set()
    for _ in range(2_500):
        actor = node.writes.actor_for(None)
        assert actor.startswith(node.actor) and len(actor) == len(node.actor) + 4
        seen.add(actor)
    assert len(seen) == 2_500
    assert sim.put(a, b"k", b"v1")[0] is None
    err, obj = sim.get(a, b"k")
    first = obj[0][0][0]
    assert first.startswith(node.actor)
    assert sim.put(a, b"k", b"v2", ctx=dvv.join(obj))[0] is None
    err, obj = sim.get(a, b"k")
    assert [entry[0] for entry in obj[0]] == [first]
