"""Collections through a membership change (transfers.py, collcoord.py): element writes
acknowledged while a partition moves reach its future replicas, so W of the replicas
after the flip hold every one of them (README: "W of the new replicas hold every
acknowledged write when the ring flips"), and reads through every node see them once
the old owners have dropped the partition.

Anti-entropy is off in these tests: it would repair the replicas later, and what is
checked is that the handoff alone keeps the guarantee."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest

from dynredis.commands import collection
from dynredis.core import records as rec
from dynredis.core.config import Config
from tests.sim.harness import SimCluster
from tests.unit.test_changes import admin, newest, settle

W = 2
N = 3
SETS = [b"set%d" % i for i in range(8)]
HASHES = [b"hash%d" % i for i in range(8)]
LISTS = [b"list%d" % i for i in range(8)]


def command(sim: SimCluster, via: str, args: list[bytes], done: Any) -> bool:
    built = collection.BUILDERS[args[0].decode().lower()](args, 2)
    assert not isinstance(built, bytes), built
    key, op = built
    return sim.on_node(via, lambda node: node.coll.run(key, op, done, (args, 2)),
                       catch=False)


def read(sim: SimCluster, via: str, args: list[bytes]) -> Any:
    box: list[Any] = []
    assert command(sim, via, args, box.append)
    waited = 0
    while not box and waited < 5000:
        sim.run(5)
        waited += 5
    assert box and box[0][0] is None, (args, via, box)
    reader = hiredis.Reader()
    reader.feed(box[0][1])
    return reader.gets()


def cluster(seed: int = 1) -> SimCluster:
    cfg = Config(q=16, drop_delay_ms=500, transfer_batch=3, ae_interval_ms=100_000_000)
    sim = SimCluster(4, seed=seed, config=cfg, spares=1)
    sim.run(500)
    return sim


def run_writes(sim: SimCluster, vias: list[str], writes: list[list[bytes]]) -> list[list[bytes]]:
    """Send `writes` (one event per write, through the nodes in turn); return those
    acknowledged."""
    acked: list[list[bytes]] = []
    answered = [0]

    def done_for(args: list[bytes]) -> Any:
        def done(result: tuple) -> None:
            answered[0] += 1
            if result[0] is None:
                acked.append(args)
        return done

    for i, args in enumerate(writes):
        assert command(sim, vias[i % len(vias)], args, done_for(args))
        sim.run(2)
    waited = 0
    while answered[0] < len(writes) and waited < 10000:
        sim.run(10)
        waited += 10
    return acked


@pytest.mark.parametrize("stale", [False, True], ids=["coordinators-know", "stale-coordinator"])
def test_element_writes_during_a_join_reach_the_new_replicas(stale: bool):
    """With `stale`, the writes go through a node that does not hear of the change
    (gossip to it is lost): the replicas sending the partitions pass them on."""
    sim = cluster()
    a, b, c, d = sim.names
    # Every key exists before the change (its header and a first element move by transfer).
    first = [[b"SADD", k, b"m0"] for k in SETS] + [[b"HSET", k, b"f0", b"v0"] for k in HASHES] \
        + [[b"RPUSH", k, b"i0"] for k in LISTS]
    assert len(run_writes(sim, [a, b, c], first)) == len(first)
    # Writes to come while the partitions move: C misses every element write (a link
    # that loses them), and the targets' acknowledgements of transfer batches are lost
    # meanwhile, so the change stays in progress through all of them.
    send = sim._send

    def lossy(src: str, dst: str, msg: tuple) -> None:
        if lossy.on and (msg[0] == "xba" or (msg[0] == "cw" and dst == c)  # type: ignore[attr-defined]
                         or (stale and msg[0] == "gs" and dst == b)):
            return
        send(src, dst, msg)

    lossy.on = True  # type: ignore[attr-defined]
    sim._send = lossy  # type: ignore[method-assign]
    assert admin(sim, a, "join", d)[0] is None
    assert admin(sim, a, "commit")[0] is None
    sim.run(200)
    assert newest(sim).next, "the change must still be moving during the writes"
    later = []
    for i in range(1, 7):
        later += [[b"SADD", k, b"m%d" % i] for k in SETS]
        later += [[b"HSET", k, b"f%d" % i, b"v%d" % i] for k in HASHES]
        later += [[b"RPUSH", k, b"i%d" % i] for k in LISTS]
    if stale:
        assert not sim.nodes[b].ring.next
    acked = run_writes(sim, [b] if stale else [a, b, d], later)
    assert acked, "no write was acknowledged"
    assert newest(sim).next, "the ring flipped before the writes were done"
    lossy.on = False  # type: ignore[attr-defined]
    settle(sim)
    sim.run(3000)  # the old owners drop what they no longer replicate
    ring = newest(sim)
    assert d in ring.members
    # W of the replicas after the flip hold every acknowledged set member / hash field.
    short = []
    for args in acked:
        kind = {b"SADD": rec.SET, b"HSET": rec.HASH}.get(args[0])
        if kind is None:
            continue
        key = args[1]
        p = ring.partition_of(key)
        rkey = rec.record_key(key, kind, args[2])
        holders = [x for x in ring.preference_list(p, N)
                   if sim.sn[x].engine.get(rec.elem_partition(p), rkey) is not None]
        if len(holders) < W:
            short.append((args, ring.preference_list(p, N), holders))
    assert not short, short
    # And reads through every node see them.
    for via in ring.members:
        for k in SETS:
            got = set(read(sim, via, [b"SMEMBERS", k]))
            want = {x[2] for x in acked + first if x[1] == k}
            assert want <= got, (via, k, want - got)
        for k in HASHES:
            flat = read(sim, via, [b"HGETALL", k])
            got = set(flat[0::2])
            want = {x[2] for x in acked + first if x[1] == k}
            assert want <= got, (via, k, want - got)
        for k in LISTS:
            got = read(sim, via, [b"LRANGE", k, b"0", b"-1"])
            want = [x[2] for x in first + acked if x[1] == k]
            assert sorted(got) == sorted(want), (via, k, got, want)


def test_a_collection_received_by_transfer_answers_syncs_with_its_events():
    """A new replica holds a key's records by transfer: it must also know the events
    they carry, or a coordinator syncing with it (R = 2: itself and the new replica)
    is sent nothing and answers without elements only the new replica holds."""
    sim = cluster(seed=2)
    a, b, c, d = sim.names
    send = sim._send
    lose = [True]

    def lossy(src: str, dst: str, msg: tuple) -> None:
        if lose[0] and msg[0] in ("cw", "cwr") and dst == c:
            return  # C misses every element written before the change
        send(src, dst, msg)

    sim._send = lossy  # type: ignore[method-assign]
    writes = [[b"SADD", k, b"m%d" % i] for k in SETS for i in range(4)]
    acked = run_writes(sim, [a, b], writes)
    assert len(acked) == len(writes)
    lose[0] = False
    assert admin(sim, a, "join", d)[0] is None
    assert admin(sim, a, "commit")[0] is None
    settle(sim)
    sim.run(3000)
    ring = newest(sim)
    checked = 0
    for k in SETS:
        pref = ring.preference_list(ring.partition_of(k), N)
        if c not in pref or d not in pref:
            continue
        other = next(x for x in pref if x not in (c, d))
        sim.cut_groups([c], [other])  # C's sync can reach only the new replica
        got = set(read(sim, c, [b"SMEMBERS", k]))
        sim.heal()
        want = {x[2] for x in acked if x[1] == k}
        assert want <= got, (k, pref, want - got)
        checked += 1
    assert checked, "no key has both C and the new node as replicas"


def held_parts(sim: SimCluster, name: str, p: int) -> dict[str, int]:
    """How many keys node `name`'s engine holds of partition p: objects, element
    records, event summaries."""
    engine = sim.sn[name].engine
    return {what: sum(1 for _ in engine.scan(part)) for what, part in (
        ("objects", p), ("elements", rec.elem_partition(p)),
        ("summaries", rec.local_partition(p)))}


def test_a_partition_handed_off_leaves_nothing_behind_and_comes_back_whole():
    """After a join, a node that is no replica of a partition any more holds none of
    its objects, element records or event summaries; when the new node leaves again
    and the partition comes back to it, every acknowledged element is there, and
    any two of its replicas answer a read with all of them."""
    sim = cluster(seed=3)
    a, b, c, d = sim.names
    writes = [[b"SADD", k, b"m%d" % i] for k in SETS for i in range(3)] \
        + [[b"HSET", k, b"f%d" % i, b"v"] for k in HASHES for i in range(3)]
    acked = run_writes(sim, [a, b, c], writes)
    assert len(acked) == len(writes)
    assert admin(sim, a, "join", d)[0] is None
    assert admin(sim, a, "commit")[0] is None
    settle(sim)
    sim.run(3000)
    ring = newest(sim)
    handed = 0
    for p in range(ring.q):
        pref = ring.preference_list(p, N)
        for x in (a, b, c):
            if x not in pref:
                assert held_parts(sim, x, p) == {"objects": 0, "elements": 0,
                                                 "summaries": 0}, (x, p)
                handed += 1
    assert handed, "the join moved no partition away"
    # nothing of a dropped partition is left in memory either
    for x in (a, b, c):
        store = sim.nodes[x].coll.store
        assert all(x in ring.preference_list(st.p, N) for st in store.states.values())
    # the partitions come back to the first three
    assert admin(sim, b, "leave", d)[0] is None
    assert admin(sim, b, "commit")[0] is None
    settle(sim)
    sim.run(3000)
    ring = newest(sim)
    assert d not in ring.members
    sets = {k: {x[2] for x in acked if x[1] == k} for k in SETS}
    hashes = {k: {x[2] for x in acked if x[1] == k} for k in HASHES}
    for names in ((a, b, c), (a, c, b), (b, c, a)):
        via, peer, cut = names
        sim.cut_groups([via], [cut])  # the read's sync reaches `peer` only
        for k, want in sets.items():
            assert want <= set(read(sim, via, [b"SMEMBERS", k])), (names, k)
        for k, want in hashes.items():
            assert want <= set(read(sim, via, [b"HGETALL", k])[0::2]), (names, k)
        sim.heal()
