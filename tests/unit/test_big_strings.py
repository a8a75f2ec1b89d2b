"""String commands of a few bytes about a large value, run through a node of a simulated
cluster as a client's would be (issue 12: GETEX, SET NX/XX/GET, GETSET, SETNX, MSETNX,
the INCR family, MEMORY USAGE, SUBSTR): their replies are the ones the whole value
gives, and no node reads the value whole (a copy out of the store and one decoding it
held a 100 MB value's coordinator 100-350 ms)."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.cluster import affinity
from dynredis.commands import lookup
from dynredis.commands.server import KEY_OVERHEAD
from dynredis.core import obj as objmod
from dynredis.core.node import Node
from dynredis.resp import encode as resp
from tests.sim.harness import SimCluster
from tests.unit.test_node import _holding_a_large_value, value

ERR_NOT_INT = resp.error("ERR value is not an integer or out of range")
ERR_NOT_FLOAT = resp.error("ERR value is not a valid float")


class _Slot:
    def __init__(self, box: list[bytes]) -> None:
        self.box = box

    def set(self, reply: bytes) -> None:
        self.box.append(reply)


class _Face:
    """The part of a client connection (commands/context.Context) these commands use:
    a reply sent from the store is read from its pin when the command answers (after
    its write), as the connection's first slice is."""

    r = None
    w = None
    proto = 2
    nil = resp.NIL2

    def __init__(self, node: Node, box: list[bytes]) -> None:
        self.node = node
        self.box = box
        self.pubsub = type("Subs", (), {"flags": 0})()

    def defer(self) -> _Slot:
        return _Slot(self.box)

    def put(self, key: bytes, ctx: Any, data: Any, expire_at: int, cb: Any,
            w: int | None = None) -> None:
        self.node.put(key, ctx, data, expire_at, cb, w)

    def put_ok(self, key: bytes, data: bytes, expire_at: int) -> None:
        slot = self.defer()
        self.put(key, None, data, expire_at,
                 lambda r: slot.set(resp.error(r[0]) if r[0] else resp.OK))

    def incr(self, key: bytes, delta: int, cb: Any, w: int | None = None) -> None:
        self.node.incr(key, delta, cb, w)

    def send_pinned(self, slot: _Slot, pinned: tuple[Any, Any], before: bytes,
                    after: bytes) -> bool:
        slot.set(before + bytes(pinned[0]) + after)
        pinned[1].release()
        return True

    def send_stored(self, slot: _Slot, key: bytes, stored: Any, before: bytes,
                    after: bytes, span: tuple[int, int] | None = None) -> bool:
        pinned = self.node.pin_value(key, stored)
        if pinned is None:
            return False
        if span is not None:
            pinned = (memoryview(pinned[0])[span[0]:span[1]], pinned[1])
        return self.send_pinned(slot, pinned, before, after)


def run(sim: SimCluster, via: str, *args: bytes, face: Any = _Face) -> bytes:
    """The reply of one command through node `via` (its client connection `face`)."""
    box: list[bytes] = []

    def start(node: Node) -> None:
        cmd = lookup(args[0])
        assert cmd is not None
        reply = cmd.handler(face(node, box), list(args))
        if reply is not None:
            box.append(reply)

    assert sim.on_node(via, start, catch=False)
    waited = 0
    while not box and waited < 3000:
        sim.run(5)
        waited += 5
    sim.run(100)  # the write reaches every replica
    assert len(box) == 1, box
    return box[0]


def _expiries(sim: SimCluster, key: bytes) -> set[int]:
    """The expiry of the value every node stores for `key` (reading it whole)."""
    return {objmod.read_value(objmod.decode(sim.stored(name, key)), 0)[1]
            for name in sim.names}


@pytest.mark.parametrize("via", [0, 2])
def test_getex_keeps_a_large_value_as_stored_and_replies_with_it_from_the_store(
        via: int) -> None:
    """GETEX with each option writes the value it read back as it is (as EXPIRE does)
    and sends it from the store, pinned before the write replaced it; through the
    coordinator or another of the key's replicas."""
    sim, big, whole = _holding_a_large_value(seed=4)
    node = sim.names[via]
    at = sim.node_now(sim.sn[node]) + 60_000  # the absolute times
    for args, expiry in [((), 0), ((b"EX", b"100"), 100_000), ((b"PX", b"5000"), 5000),
                         ((b"PERSIST",), 0), ((b"EXAT", b"%d" % (at // 1000)), at // 1000 * 1000),
                         ((b"PERSIST",), 0), ((b"PXAT", b"%d" % at), at), ((), at)]:
        now = sim.node_now(sim.sn[node])
        assert run(sim, node, b"GETEX", b"big", *args) == resp.bulk(big), args
        assert whole == [], args
        got = _expiries(sim, b"big")
        assert len(got) == 1, args
        if args[:1] in ((b"EX",), (b"PX",)):  # from when the read was answered
            assert now <= got.pop() - expiry <= now + 50, args
        else:
            assert got == {expiry}, args
        whole.clear()  # (_expiries read it whole)
    assert run(sim, node, b"GETEX", b"big", b"EX", b"soon") == ERR_NOT_INT
    assert run(sim, node, b"GETEX", b"big", b"PX", b"0") == resp.error(
        "ERR invalid expire time in 'getex' command")
    assert run(sim, node, b"GETEX", b"big", b"PXAT", b"1") == resp.bulk(big)  # deletes it
    for name in sim.names:
        assert value(sim.get(name, b"big")) is None
    assert run(sim, node, b"GETEX", b"big", b"EX", b"10") == resp.NIL2
    assert sim.errors == []


def test_set_get_and_getset_reply_with_a_large_value_sent_from_the_store() -> None:
    """SET ... GET and GETSET answer with the value they replace: a large one is pinned
    before the write and sent from there, never read whole; with NX the key is kept."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a = sim.names[0]
    assert run(sim, a, b"SET", b"big", b"v", b"NX", b"GET") == resp.bulk(big)
    assert run(sim, a, b"SET", b"big", b"v", b"XX", b"GET", b"KEEPTTL") == resp.bulk(big)
    assert whole == []
    assert [value(sim.get(name, b"big")) for name in sim.names] == [b"v"] * 3
    for args in ([b"SET", b"big", b"w", b"GET"], [b"GETSET", b"big", b"w"]):
        assert sim.put(a, b"big", big)[0] is None
        sim.run(100)
        whole.clear()
        assert run(sim, a, *args) == resp.bulk(big), args
        assert whole == [], args
        assert [value(sim.get(name, b"big")) for name in sim.names] == [b"w"] * 3
    assert sim.errors == []


def test_existence_checks_of_set_nx_xx_setnx_msetnx_read_no_large_value() -> None:
    """SET NX/XX, SETNX and MSETNX need only whether the key is there (and SET KEEPTTL
    its expiry): a large value is neither read nor changed when they write nothing,
    and replaced without being read when they do."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a, b, _ = sim.names
    assert run(sim, a, b"SET", b"big", b"v", b"NX") == resp.NIL2
    assert run(sim, b, b"SETNX", b"big", b"v") == resp.ZERO
    assert run(sim, a, b"MSETNX", b"other", b"1", b"big", b"2") == resp.ZERO
    assert run(sim, a, b"EXPIRE", b"big", b"100") == resp.ONE
    assert whole == []
    assert value(sim.get(a, b"big")) == big and value(sim.get(a, b"other")) is None
    whole.clear()
    assert run(sim, a, b"SET", b"big", b"small", b"XX", b"KEEPTTL") == resp.OK
    assert whole == []
    expiry = _expiries(sim, b"big")
    assert len(expiry) == 1 and expiry.pop() > sim.sn[a].node.now
    assert [value(sim.get(name, b"big")) for name in sim.names] == [b"small"] * 3
    assert sim.errors == []


def test_the_incr_family_answers_a_large_value_is_no_number_without_reading_it() -> None:
    """A value of LARGE_VALUE bytes is never an integer nor a float: INCR's coordinator
    and INCRBYFLOAT say so from its length (Redis' errors), and the value stays."""
    sim, big, whole = _holding_a_large_value(seed=4)
    for via in sim.names:
        for args in ([b"INCR", b"big"], [b"DECR", b"big"], [b"INCRBY", b"big", b"5"],
                     [b"DECRBY", b"big", b"5"]):
            assert run(sim, via, *args) == ERR_NOT_INT, args
        assert run(sim, via, b"INCRBYFLOAT", b"big", b"1.5") == ERR_NOT_FLOAT
    assert whole == []
    assert [value(sim.get(name, b"big")) for name in sim.names] == [big] * 3
    assert sim.errors == []


def test_memory_usage_and_substr_of_a_large_value_read_only_what_they_answer() -> None:
    """MEMORY USAGE counts the stored object without reading its large value (the same
    figure as before: key, encoded object, overhead); SUBSTR, GETRANGE's old name, reads
    only its range in place."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a, b, _ = sim.names
    got = [run(sim, via, b"MEMORY", b"USAGE", b"big") for via in sim.names]
    assert [run(sim, b, b"SUBSTR", b"big", *r) for r in ([b"5", b"9"], [b"-3", b"-1"])] \
        == [resp.bulk(big[5:10]), resp.bulk(big[-3:])]
    assert whole == []
    stored = sim.stored(a, b"big")
    assert got == [resp.integer(len(b"big") + len(stored) + KEY_OVERHEAD)] * 3
    assert run(sim, a, b"MEMORY", b"USAGE", b"none") == resp.NIL2
    assert sim.errors == []


def test_a_getex_without_options_is_a_read_run_where_it_is_asked() -> None:
    """Handed to the key's first replica, a GETEX's reply came back whole over a peer
    link (a 100 MB value: 250 ms of the asked node's CPU); without options it writes
    nothing and is run where it is asked, as GET; with one it is handed on, as every
    read-then-write."""
    assert affinity.routed_key("getex", [b"getex", b"k"]) is None
    assert affinity.routed_key("getex", [b"getex", b"k", b"PERSIST"]) == b"k"
    assert affinity.routed_key("getdel", [b"getdel", b"k"]) == b"k"


def test_an_incr_over_a_number_beside_a_large_concurrent_value_does_not_read_it() -> None:
    """A key whose newest value is a number, with a large value written concurrently
    beside it (siblings): INCR counts from the number and supersedes both, as before,
    without reading the large one."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a, b, _ = sim.names
    assert sim.put(a, b"big", b"41", ctx=())[0] is None  # a context of nothing: beside it
    sim.run(100)
    err, obj = sim.get(a, b"big")
    assert err is None and len(objmod.live_siblings(obj, 0)) == 2
    whole.clear()
    assert run(sim, b, b"INCR", b"big") == resp.integer(42)
    assert whole == []
    for name in sim.names:
        err, obj = sim.get(name, b"big")
        assert err is None and [s[2] for s in objmod.live_siblings(obj, 0)] == [b"42"]
    assert sim.errors == []


def test_a_large_value_that_cannot_be_pinned_is_read_whole_to_reply() -> None:
    """Where the store cannot hold the value for the reply (the engine pins no more now:
    Node.pin_value gives None), GETEX, GETSET and GETDEL read the key whole and run again: the
    same replies and writes (READ_WHOLE, which compiled code gave as a new tuple: the
    reply was empty)."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a = sim.names[0]
    node = sim.sn[a].node
    node.local.engine.pin = lambda p, key: None
    assert run(sim, a, b"GETEX", b"big", b"EX", b"100") == resp.bulk(big)
    assert whole == [a]
    got = _expiries(sim, b"big")
    assert len(got) == 1 and got.pop() > node.now
    assert run(sim, a, b"GETSET", b"big", b"small") == resp.bulk(big)
    assert [value(sim.get(name, b"big")) for name in sim.names] == [b"small"] * 3
    assert sim.put(a, b"big", big)[0] is None
    sim.run(100)
    assert run(sim, a, b"GETDEL", b"big") == resp.bulk(big)
    assert [value(sim.get(name, b"big")) for name in sim.names] == [None] * 3
    assert sim.errors == []


class _Watchers:
    def wrote(self, cmd: Any, words: list[bytes]) -> None:
        pass


class _TxFace(_Face):
    """A client connection in EXEC: its own slot may take a reply written over turns
    (`streams`), which it writes out whole at once, releasing its pins, as the
    connection does over loop turns."""

    tx_failed = False
    watch = None
    db = 0
    cluster_view = False
    watchers = _Watchers()

    def __init__(self, node: Node, box: list[bytes], streams: bool) -> None:
        super().__init__(node, box)
        self.streams = streams
        self.streamed = 0
        self.tx: list[Any] | None = None

    def monitor_feed(self, cmd: Any, words: list[bytes]) -> None:
        pass

    def may_stream(self, slot: Any) -> bool:
        return self.streams and type(slot) is _Slot

    def send_streamed(self, slot: Any, reply: Any) -> bool:
        if not self.may_stream(slot):
            return False
        out = [reply.before]
        while (chunk := reply.next_slice()) is not None:
            out.append(chunk)
        assert reply.done()
        reply.release()
        self.streamed += 1
        slot.set(b"".join([*out, reply.after]))
        return True


def _exec(sim: SimCluster, via: str, face_streams: bool, *cmds: list[bytes]) -> tuple[bytes, int]:
    """EXEC's reply of `cmds` queued through node `via`, and the replies streamed."""
    faces: list[_TxFace] = []

    def face(node: Node, box: list[bytes]) -> _TxFace:
        faces.append(_TxFace(node, box, face_streams))
        faces[0].tx = [(lookup(args[0]), list(args)) for args in cmds]
        return faces[0]

    return run(sim, via, b"EXEC", face=face), faces[0].streamed


@pytest.mark.parametrize("streams", [True, False])
def test_a_transaction_sends_a_large_value_from_the_store(streams: bool) -> None:
    """GET and MGET of a large value in EXEC (redis-py's default pipeline) answer from the
    store as outside it, the value pinned and written with EXEC's reply (streamed
    .ChainReply) between the other replies; where EXEC's reply cannot be written over
    turns, they read it whole, as before. The same reply either way."""
    sim, big, whole = _holding_a_large_value(seed=4)
    a = sim.names[0]
    reply, streamed = _exec(sim, a, streams, [b"SET", b"small", b"s"], [b"GET", b"big"],
                            [b"STRLEN", b"small"], [b"MGET", b"big", b"missing", b"small"],
                            [b"GET", b"small"])
    assert reply == resp.array([resp.OK, resp.bulk(big), resp.integer(1),
                                resp.array([resp.bulk(big), resp.NIL2, resp.bulk(b"s")]),
                                resp.bulk(b"s")])
    assert streamed == (1 if streams else 0)
    assert (whole == []) is streams, whole
    assert sim.errors == []
