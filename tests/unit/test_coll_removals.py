"""A command that removes part of a big collection (SPOP, LPOP, ZPOPMIN with a count,
LTRIM, ZREMRANGEBYRANK) makes its removal records a turn's worth at a time (issue 12:
SPOP s 500000 of a million members froze every node for seconds in one loop turn)."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core import records as rec
from dynredis.core.collview import TURN_REMOVALS, KeyView
from tests.sim.harness import SimCluster
from tests.unit.test_collcoord import run
from tests.unit.test_collview import Coordinator

SIZE = 3 * TURN_REMOVALS  # elements the collection holds
TAKEN = 2 * TURN_REMOVALS + 100  # elements the command removes: most survive
LEFT = SIZE - TAKEN


def parse(reply: bytes) -> Any:
    r = hiredis.Reader()
    r.feed(reply)
    return r.gets()

FILL = {
    b"SPOP": [b"SADD", b"k"] + [b"m%d" % i for i in range(SIZE)],
    b"LPOP": [b"RPUSH", b"k"] + [b"i%d" % i for i in range(SIZE)],
    b"LTRIM": [b"RPUSH", b"k"] + [b"i%d" % i for i in range(SIZE)],
    b"ZPOPMIN": [b"ZADD", b"k"] + [x for i in range(SIZE) for x in (b"%d" % i, b"m%d" % i)],
    b"ZREMRANGEBYRANK": [b"ZADD", b"k"] + [x for i in range(SIZE)
                                         for x in (b"%d" % i, b"m%d" % i)],
}
REMOVE = {
    b"SPOP": [b"SPOP", b"k", b"%d" % TAKEN],
    b"LPOP": [b"LPOP", b"k", b"%d" % TAKEN],
    b"LTRIM": [b"LTRIM", b"k", b"%d" % TAKEN, b"-1"],
    b"ZPOPMIN": [b"ZPOPMIN", b"k", b"%d" % TAKEN],
    b"ZREMRANGEBYRANK": [b"ZREMRANGEBYRANK", b"k", b"0", b"%d" % (TAKEN - 1)],
}
COUNT = {b"SPOP": b"SCARD", b"LPOP": b"LLEN", b"LTRIM": b"LLEN", b"ZPOPMIN": b"ZCARD",
         b"ZREMRANGEBYRANK": b"ZCARD"}


def filled(command: bytes) -> tuple[SimCluster, str]:
    """A 3-node cluster holding the collection `command` removes from, and the node
    that filled it."""
    sim = SimCluster(3, seed=5, sliced_walks=True)
    a = sim.names[0]
    box: list[Any] = []
    run(sim, a, box, *FILL[command])
    sim.run(500)
    assert box and box[0][0] is None
    return sim, a


@pytest.mark.parametrize("command", list(REMOVE))
def test_a_partial_removal_is_sent_in_parts_and_the_next_command_sees_all_of_it(
        command: bytes) -> None:
    """Each write message holds at most a turn's records, so each replica applies
    them a part per turn; the reply is whole, a command pipelined behind it on the
    key runs after its last part, and every replica ends with what is left."""
    sim, a = filled(command)
    sizes: list[int] = []
    send = sim._send

    def counting(src: str, dst: str, msg: tuple) -> None:
        if msg[0] == "cw":
            sizes.append(len(msg[6]))
        send(src, dst, msg)

    sim._send = counting  # type: ignore[method-assign]
    removed: list[Any] = []
    after: list[Any] = []
    run(sim, a, removed, *REMOVE[command])
    run(sim, a, after, COUNT[command], b"k")
    sim.run(2_000)
    assert sim.errors == []
    assert len(removed) == 1 and removed[0][0] is None
    reply = removed[0][1]
    if command == b"SPOP":  # distinct members of the set
        popped = parse(reply)
        assert len(set(popped)) == len(popped) == TAKEN
        assert set(popped) <= set(FILL[command][2:])
    elif command == b"LPOP":  # the head items, in order
        assert parse(reply) == [b"i%d" % i for i in range(TAKEN)]
    elif command == b"ZPOPMIN":  # the lowest members, with their scores
        assert parse(reply) == [x for i in range(TAKEN) for x in (b"m%d" % i, b"%d" % i)]
    elif command == b"LTRIM":
        assert reply == b"+OK\r\n"
    else:
        assert reply == b":%d\r\n" % TAKEN
    assert after == [(None, b":%d\r\n" % LEFT)]
    assert sizes and max(sizes) <= TURN_REMOVALS
    assert len(sizes) >= 2 * 3  # (each part to both other replicas)
    kind = {b"SPOP": rec.SET, b"LPOP": rec.LIST, b"LTRIM": rec.LIST}.get(command, rec.ZSET)
    for name in sim.names:
        node = sim.sn[name].node
        assert node is not None
        assert node.coll.store.state(node.partition(b"k"), b"k").count(kind) == LEFT, name


def test_a_version_merged_between_the_turns_of_a_removal_stays() -> None:
    """A removal made in later turns removes only the versions the command saw: a
    member added again elsewhere, merged here before its removal record is made,
    survives it, as it would had it been merged after (an addition beats a concurrent
    removal)."""
    c = Coordinator()
    members = [b"m%d" % i for i in range(SIZE)]
    c.run(lambda v: v.put_many(rec.SET, [(m, b"") for m in members]))
    doomed = members[:TAKEN]
    view = KeyView(c.store, 3, b"k", c.now, c.header(), c.write_header, b"node",
                   lambda: b"\x00\x00\x00\x01", c.stamp)
    view.remove(rec.SET, list(doomed))
    assert view.removing()
    view.finish()
    again = doomed[-1]  # among the records left for a later turn
    ep = rec.elem_partition(3)
    rkey = rec.record_key(b"k", rec.SET, again)
    seen = objmod.decode(c.engine.get(ep, rkey))
    elsewhere = dvv.overwrite_at(seen, b"other\x00\x00\x00\x09", 1, (c.stamp(seen), 0, b""))
    c.store.merge(ep, rkey, objmod.encode(elsewhere))
    while view.remove_step():
        view.finish()
    view.finish()
    left = c.run(lambda v: sorted(v.members(rec.SET)))[0]
    assert left == sorted(members[TAKEN:] + [again])


def test_a_removal_is_acknowledged_only_once_replicas_hold_every_part() -> None:
    """The second part of a removal is lost on its way to both other replicas: they
    acknowledge the other parts, and the command, short of W replicas holding all of
    it, fails as a write that timed out would, not answered as written."""
    sim, a = filled(b"LPOP")
    send = sim._send

    def losing(src: str, dst: str, msg: tuple) -> None:
        if msg[0] == "cw" and msg[7] == 1:
            return
        send(src, dst, msg)

    sim._send = losing  # type: ignore[method-assign]
    removed: list[Any] = []
    run(sim, a, removed, *REMOVE[b"LPOP"])
    sim.run(5_000)
    assert len(removed) == 1 and removed[0][0] is not None
    assert removed[0][0].startswith("NOQUORUM write"), removed


def test_a_removal_over_turns_tells_its_client_and_those_queued_behind_it_it_is_working(
        ) -> None:
    """A client's reply missing for a minute with no step of its command is taken for
    lost (server/client.py's unstick): a removal made and acknowledged over many turns
    must count as steps, for its own client and for a command waiting behind it on the
    key. SPOP of 500,000 at load 12 was answered "the reply to this command was lost"
    after 61 s although every part was on its way."""
    sim, a = filled(b"SPOP")
    steps = {"spop": 0, "scard": 0}
    boxes: dict[str, list[Any]] = {"spop": [], "scard": []}

    def moved(name: str) -> Any:
        return lambda: steps.__setitem__(name, steps[name] + 1)

    run(sim, a, boxes["spop"], *REMOVE[b"SPOP"], progress=moved("spop"))
    run(sim, a, boxes["scard"], b"SCARD", b"k", progress=moved("scard"))
    sim.run(2_000)
    assert sim.errors == []
    assert boxes["spop"] and boxes["spop"][0][0] is None
    assert boxes["scard"] and boxes["scard"][0] == (None, b":%d\r\n" % LEFT)
    # its parts made over turns and acknowledged part by part; SCARD waited meanwhile
    assert steps["spop"] >= 3
    assert steps["scard"] >= 1


def test_a_removal_over_turns_makes_no_record_in_the_commands_own_turn() -> None:
    """The command's turn holds its read and its reply: every removal record of a
    removal too big for one turn is made in later turns, a turn's worth each (SPOP s
    250000 of a million members: its read, reply and first 4,096 records made one
    piece of ~100 ms)."""
    c = Coordinator()
    members = [b"m%d" % i for i in range(SIZE)]
    c.run(lambda v: v.put_many(rec.SET, [(m, b"") for m in members]))
    view = KeyView(c.store, 3, b"k", c.now, c.header(), c.write_header, b"node",
                   lambda: b"\x00\x00\x00\x01", c.stamp)
    view.remove(rec.SET, members[:TAKEN])
    assert view.removing() and view.wrote()
    deltas, _ = view.finish()
    assert deltas == []  # nothing made yet
    assert view.count(rec.SET) == SIZE
    parts = []
    while view.remove_step():
        parts.append(len(view.finish()[0]))
    assert parts == [TURN_REMOVALS, TURN_REMOVALS, TAKEN - 2 * TURN_REMOVALS]
    assert view.count(rec.SET) == LEFT


def test_spop_gathers_its_picks_as_its_reply_and_its_records_read_them(monkeypatch) -> None:
    """SPOP of a count most of the set survives: the picks are positions in a copy of
    the members' references, the members gathered a slice at a time by the reply and by
    each turn's removal records (sets.Gathered), none in the command's turn (250,000
    picks of a million gathered there held it ~70 ms)."""
    from dynredis.commands import collection
    from dynredis.resp import bulks
    from tests.collharness import LocalRunner

    monkeypatch.setattr(bulks, "STREAM_ROWS", 100)
    r = LocalRunner()
    r.run(*FILL[b"SPOP"])
    key, op = collection.BUILDERS["spop"](REMOVE[b"SPOP"], 2)
    view = r.view(key)
    reply = op(view)
    assert isinstance(reply, bulks.SlicedReply)
    later = view._later
    assert later is not None and not isinstance(later.names, list)  # nothing gathered
    assert view.finish()[0] == []
    while view.remove_step():
        view.finish()
    data = [reply.before]
    while (part := reply.next_slice()) is not None:
        data.append(part)
    popped = parse(b"".join(data))
    assert len(set(popped)) == len(popped) == TAKEN
    left = set(view.members(rec.SET))
    assert len(left) == LEFT and not left & set(popped)
    assert left | set(popped) == set(FILL[b"SPOP"][2:])
