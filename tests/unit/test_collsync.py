"""The coordinator's sync before a collection command, and what it pushes back to a
replica that answered with fewer events (collcoord.py `_repair`): only what the
replica lacks of what the coordinator held when it asked, never the writes already on
their way there. Pipelined commands on one key must cost the same per command however
many are in flight (issue 14: cost independent of size)."""

from __future__ import annotations

from typing import Any

from dynredis.commands import collection
from dynredis.core import collcoord, collsync
from dynredis.core import messages as m
from dynredis.core import obj as objmod
from dynredis.core import records as rec
from dynredis.core.node import Config
from tests.sim.harness import NetConfig, SimCluster

KEY = b"s"


def sim_with_sends(ae_interval_ms: int = 10_000_000) -> tuple[SimCluster, list[tuple]]:
    """Three nodes on links that keep order (a fixed latency, as TCP keeps order), no
    anti-entropy during the test; returns the cluster and the log of (src, dst, kind)."""
    sim = SimCluster(3, seed=1, config=Config(q=8, ae_interval_ms=ae_interval_ms),
                     net=NetConfig(latency_ms=(2.0, 2.0)))
    sent: list[tuple] = []
    send = sim._send

    def logged(src: str, dst: str, msg: tuple) -> None:
        sent.append((src, dst, msg[0]))
        send(src, dst, msg)

    sim._send = logged  # type: ignore[method-assign]
    return sim, sent


def run(sim: SimCluster, via: str, commands: list[list[bytes]]) -> list[Any]:
    """Run `commands` on node `via` in one event (a pipeline), wait for every answer."""
    box: list[Any] = []

    def start(node: Any) -> None:
        for args in commands:
            built = collection.BUILDERS[args[0].decode().lower()](args, 2)
            assert not isinstance(built, bytes), built
            key, op = built
            node.coll.run(key, op, box.append, (args, 2))

    assert sim.on_node(via, start, catch=False)
    waited = 0
    while len(box) < len(commands) and waited < 5000:
        sim.run(5)
        waited += 5
    assert len(box) == len(commands), box
    assert all(err is None for err, _ in box), box
    return box


def elements(sim: SimCluster, name: str) -> dict[bytes, bytes]:
    p, _ = sim.primaries(KEY)
    return dict(sim.nodes[name].coll.store.elements(p, KEY))


def test_pipelined_commands_on_one_key_send_no_repairs():
    sim, sent = sim_with_sends()
    via = sim.names[0]
    run(sim, via, [[b"SADD", KEY, b"m%d" % i] for i in range(300)])
    sim.run(50)
    kinds = [k for src, _, k in sent if src == via]
    assert kinds.count(m.COLL_SYNC) == 600 and kinds.count(m.COLL_WRITE) == 600
    # Every replica had every earlier write before it answered a later sync: nothing
    # to push back (the old comparison with the coordinator's current events resent
    # every write in flight with each answer, hundreds of records per command).
    assert kinds.count(m.COLL_REPAIR) == 0
    assert all(len(elements(sim, name)) == 300 for name in sim.names)


def test_a_replica_that_missed_writes_gets_them_with_the_next_command():
    sim, sent = sim_with_sends()
    via, behind, other = sim.names
    run(sim, via, [[b"SADD", KEY, b"a"]])
    sim.partition(via, behind)
    run(sim, via, [[b"SADD", KEY, b"m%d" % i] for i in range(5)])
    assert len(elements(sim, behind)) == 1 and len(elements(sim, via)) == 6
    sim.heal()
    sim.run(50)
    del sent[:]
    run(sim, via, [[b"SADD", KEY, b"last"]])
    sim.run(50)
    # The sync answer showed what `behind` lacked: the five records come with a repair
    # (anti-entropy is off), and the new member with the command's own write.
    assert (via, behind, m.COLL_REPAIR) in sent
    assert elements(sim, behind) == elements(sim, via)
    assert sorted(rec.split(k)[2] for k in elements(sim, behind)) == sorted(
        [b"a", b"last", *(b"m%d" % i for i in range(5))])
    assert len(elements(sim, other)) == 7


def test_a_replica_far_behind_is_sent_the_whole_key_a_slice_per_loop_turn(monkeypatch):
    """A replica back after missing more events than a sync lists one by one coordinates
    a command: each peer reads the whole key into its answer a slice of records per
    loop turn and sends it as a part of its answer, and the replica merges each part as
    it comes (in one turn, a 200,000-element key held all three nodes 120-215 ms); the
    command still sees every element."""
    monkeypatch.setattr(collsync, "SLICE", 64)
    monkeypatch.setattr(collcoord, "SYNC_LIMIT", 4)
    sim = SimCluster(3, seed=1, config=Config(q=8, ae_interval_ms=10_000_000),
                     net=NetConfig(latency_ms=(2.0, 2.0)), sliced_walks=True)
    via, behind, other = sim.names
    sim.partition(via, behind)
    sim.partition(other, behind)
    run(sim, via, [[b"SADD", KEY, *(b"m%d" % j for j in range(i, i + 100))]
                   for i in range(0, 600, 100)])
    sim.heal()
    turns = {name: 0 for name in sim.names}
    merged: list[int] = []
    for name in sim.names:
        coll = sim.sn[name].node.coll
        later = coll.later

        def counted(cb: Any, name: str = name, later: Any = later) -> None:
            turns[name] += 1
            later(cb)

        coll.later = counted
    deliver = sim._deliver

    def delivered(src: str, dst: str, msg: tuple, inc: int) -> None:
        if dst == behind and msg[0] in ("csp", "csa") and msg[2]:
            merged.append(len(msg[2]))  # a part of the answer, merged as it comes
        deliver(src, dst, msg, inc)

    sim._deliver = delivered  # type: ignore[method-assign]
    [(_, reply)] = run(sim, behind, [[b"SCARD", KEY]])
    assert reply == b":600\r\n"
    sim.run(100)
    assert len(elements(sim, behind)) == 600
    assert merged and max(merged) <= 64 and sum(merged) >= 600
    # Each peer read 600 records over ten turns, and sent each turn's as a message of
    # its own, merged as it came.
    assert turns[via] >= 9 and turns[other] >= 9 and len(merged) >= 10


def _sync_answers(sim: SimCluster) -> list[tuple]:
    """The sync answers every node sends from now on (their messages, whole)."""
    answers: list[tuple] = []
    send = sim._send

    def logged(src: str, dst: str, msg: tuple) -> None:
        if msg[0] == m.COLL_SYNC_ANSWER:
            answers.append(msg)
        send(src, dst, msg)

    sim._send = logged  # type: ignore[method-assign]
    return answers


def test_a_large_string_header_is_not_sent_back_to_a_coordinator_that_holds_it():
    """A collection command on a string key of 4 KB or more (OBJECT ENCODING, a type
    check): the replicas holding the object the coordinator holds answer without it
    (33 pipelined OBJECT ENCODING of a 10 MB string moved 660 MB between the nodes and
    timed out); one holding another version still sends its own, which the coordinator
    merges."""
    sim = SimCluster(3, seed=1, config=Config(q=8), net=NetConfig(latency_ms=(2.0, 2.0)))
    key = b"big"
    p, owners = sim.primaries(key)
    via = owners[0]
    value = b"v" * 10_000
    assert sim.put(via, key, value)[0] is None
    sim.run(100)
    answers = _sync_answers(sim)
    box: list[Any] = []

    def objinfo(node: Any) -> None:
        built = collection.BUILDERS["dyn.objinfo"]([b"dyn.objinfo", key], 2)
        assert not isinstance(built, bytes)
        node.coll.run(built[0], built[1], box.append, None)

    assert sim.on_node(via, objinfo, catch=False)
    sim.run(200)
    assert [err for err, _ in box] == [None] and box[0][1][0] == b"raw"
    headers = [r for msg in answers for r in msg[2] if r[0] == p and r[1] == key]
    assert headers and all(enc is None for _, _, enc in headers), headers

    # A replica holding a newer version (the coordinator missed it) sends it.
    behind = via
    sim.partition(behind, owners[1])
    sim.partition(behind, owners[2])
    newer = b"w" * 10_000
    assert sim.put(owners[1], key, newer)[0] is None
    sim.run(100)
    sim.heal()
    answers.clear()
    box.clear()
    assert sim.on_node(behind, objinfo, catch=False)
    sim.run(200)
    assert [err for err, _ in box] == [None]
    sent = [enc for msg in answers for _, rkey, enc in msg[2] if rkey == key]
    assert any(enc is not None for enc in sent), sent
    got = sim.get(behind, key)
    assert got[0] is None
    assert objmod.read_value(got[1], sim.nodes[behind].now)[2] == newer  # type: ignore[index]
