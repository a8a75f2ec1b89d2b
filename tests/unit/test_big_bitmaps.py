"""Bitmap commands on a large value in the simulated cluster: they read only the bytes
they concern, in place, never the value whole (a copy out of the store and one decoding
it held a node's loop 65-100 ms per 100 MB), and answer as on a small value.

The commands run through their real handlers (commands/bitmaps.py) on a client of one
node (`Client`: what of commands/context.Context they use); their replies are compared
with bitops.py's over the bytes themselves, the path of a small value."""

from __future__ import annotations

import os
from typing import Any

import pytest

from dynredis.commands import bitmaps, bitops, storedbits
from dynredis.core import obj as objmod
from dynredis.core import pieces
from dynredis.resp import encode as resp
from tests.sim.harness import SimCluster


class _Slot:
    def __init__(self, box: list[bytes]) -> None:
        self.box = box

    def set(self, reply: bytes) -> None:
        assert not self.box, "answered twice"
        self.box.append(reply)


class _PubSub:
    flags = 0


class Client:
    """A client connection of node `via`, as far as the bitmap commands use it."""

    nil = b"$-1\r\n"
    r = None
    w = None
    pubsub = _PubSub()

    def __init__(self, sim: SimCluster, via: str) -> None:
        self.sim = sim
        self.via = via
        self.box: list[bytes] = []

    @property
    def node(self) -> Any:
        return self.sim.sn[self.via].node

    def defer(self) -> _Slot:
        return _Slot(self.box)

    def put(self, key: bytes, ctx: Any, data: Any, expire_at: int, cb: Any,
            w: int | None = None) -> None:
        self.node.put(key, ctx, data, expire_at, cb, w)

    def start(self, *args: bytes) -> None:
        """Run a bitmap command (its reply: `wait`)."""
        self.box.clear()
        handler = getattr(bitmaps, "cmd_" + args[0].decode().lower())

        def run(node: Any) -> None:
            reply = handler(self, list(args))
            if reply is not None:
                self.box.append(reply)

        assert self.sim.on_node(self.via, run, catch=False)

    def wait(self) -> bytes:
        waited = 0
        while not self.box and waited < 3000:
            self.sim.run(1)
            waited += 1
        assert self.box, "no answer"
        return self.box[0]

    def run(self, *args: bytes) -> bytes:
        """The command's reply, waited for."""
        self.start(*args)
        return self.wait()


def _spy(sim: SimCluster, key: bytes) -> tuple[list[str], list[int]]:
    """The nodes that read `key`'s stored value whole from then on (engine.get), and
    the sizes of the ranges of it read in place (Node.stored_range)."""
    whole: list[str] = []
    ranges: list[int] = []
    for name in sim.names:
        engine = sim.sn[name].node.local.engine

        def get(p: int, k: bytes, get: Any = engine.get, name: str = name) -> bytes | None:
            if k == key:
                whole.append(name)
            return get(p, k)

        def read(p: int, k: bytes, reader: Any, read: Any = engine.read) -> Any:
            got = read(p, k, reader)
            if k == key and type(got) is bytes:
                ranges.append(len(got))
            return got

        engine.get = get
        engine.read = read
        sim.sn[name].node.local.rebind()
    return whole, ranges


def _holding(value: bytes, seed: int = 3, **kw: Any
             ) -> tuple[SimCluster, list[str], list[int]]:
    sim = SimCluster(3, seed=seed, **kw)
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)  # keeps nothing over 8 KB
    assert sim.put(sim.names[0], b"big", value)[0] is None
    sim.run(100)
    return (sim, *_spy(sim, b"big"))


def _everywhere(sim: SimCluster) -> set[bytes | None]:
    """The value every node reads for b"big" (reading it whole)."""
    out = set()
    for via in sim.names:
        err, obj = sim.get(via, b"big")
        assert err is None
        sib = objmod.read_value(obj, 0)
        out.add(sib[2] if sib else None)
    return out


def _reply(words: list[bytes], data: bytes) -> bytes:
    """The reply of the command over `data` as a small value's path computes it
    (bitops over the bytes)."""
    name = words[0].lower()
    try:
        if name == b"setbit":
            offset, on = bitops.setbit_args(words[1], words[2])
            return resp.integer(bitops.setbit(data, offset, on)[0])
        if name == b"getbit":
            return resp.integer(bitops.getbit(data, bitops.bit_offset(words[1])))
        if name == b"bitcount":
            return resp.integer(bitops.bitcount(data, words[1:]))
        if name == b"bitpos":
            return resp.integer(bitops.bitpos(data, bitops.bitpos_bit(words[1]), words[2:]))
        ops = bitops.bitfield_ops(words[1:])
        if name == b"bitfield_ro" and any(op.opcode != bitops.GET for op in ops):
            return resp.error(bitops.ERR_BITFIELD_RO)
        replies = bitops.bitfield_run(data, ops)[0]
        return resp.array([Client.nil if r is None else resp.integer(r) for r in replies])
    except bitops.BitError as e:
        return resp.error(str(e))


def _big() -> bytes:
    """200 KB of random bytes, but all-ones bytes at 13 and at the end (BITPOS 0)."""
    value = bytearray(os.urandom(200_000))
    value[13] = value[-3] = value[-2] = value[-1] = 0xFF
    return bytes(value)


BIG = _big()
N = len(BIG)
READS = [
    [b"GETBIT", b"5"], [b"GETBIT", b"%d" % (8 * N - 1)], [b"GETBIT", b"%d" % (8 * N)],
    [b"BITCOUNT", b"0", b"9"], [b"BITCOUNT", b"-10", b"-3"], [b"BITCOUNT", b"5", b"2"],
    [b"BITCOUNT", b"3", b"70", b"BIT"], [b"BITCOUNT", b"-77", b"-9", b"bit"],
    [b"BITCOUNT", b"-3", b"-5"], [b"BITCOUNT", b"0"], [b"BITCOUNT", b"0", b"1", b"nibble"],
    [b"BITPOS", b"1", b"0", b"9"], [b"BITPOS", b"0", b"-3"], [b"BITPOS", b"0", b"-3", b"-1"],
    [b"BITPOS", b"1", b"3", b"77", b"BIT"], [b"BITPOS", b"0", b"104", b"111", b"bit"],
    [b"BITPOS", b"0", b"13", b"13"], [b"BITPOS", b"2"], [b"BITPOS", b"1", b"1", b"2", b"3", b"4"],
    [b"BITFIELD_RO", b"GET", b"u8", b"0", b"GET", b"i13", b"#7"],
    [b"BITFIELD_RO", b"GET", b"i64", b"%d" % (8 * N - 20)],
    [b"BITFIELD_RO", b"SET", b"u8", b"0", b"1"],
    [b"BITFIELD", b"GET", b"u63", b"%d" % (8 * N + 99)],
]


def test_a_read_of_a_few_bits_of_a_large_value_reads_only_them() -> None:
    """GETBIT, BITCOUNT and BITPOS with a range, BITFIELD_RO, through every node: the
    replies of a small value's path (errors included), and no node reads it whole."""
    sim, whole, ranges = _holding(BIG)
    for words in READS:
        want = _reply(words, BIG)
        for via in sim.names:
            assert Client(sim, via).run(words[0], b"big", *words[1:]) == want, words
    assert whole == []
    assert ranges and max(ranges) <= 16, ranges


WRITES = [
    [b"SETBIT", b"5", b"1"], [b"SETBIT", b"5", b"0"], [b"SETBIT", b"5", b"0"],
    [b"SETBIT", b"%d" % (8 * N - 1), b"1"], [b"SETBIT", b"%d" % (8 * N + 20), b"0"],
    [b"BITFIELD", b"SET", b"u8", b"0", b"255", b"GET", b"u4", b"2"],
    [b"BITFIELD", b"INCRBY", b"i5", b"100", b"30", b"OVERFLOW", b"FAIL",
     b"INCRBY", b"u2", b"#7", b"9", b"OVERFLOW", b"SAT", b"INCRBY", b"i16", b"7", b"-70000"],
    [b"BITFIELD", b"OVERFLOW", b"FAIL", b"INCRBY", b"u2", b"9", b"5"],
    [b"BITFIELD", b"SET", b"i16", b"%d" % (8 * N + 210), b"-2", b"GET", b"u8", b"7"],
    [b"BITFIELD", b"OVERFLOW", b"FAIL", b"SET", b"u2", b"%d" % (8 * N + 700), b"9"],
    [b"BITFIELD"], [b"SETBIT", b"7", b"2"], [b"BITFIELD", b"INCRBY", b"u64", b"0", b"1"],
]


def test_a_write_of_a_few_bits_of_a_large_value_writes_them_over_it() -> None:
    """SETBIT and BITFIELD read the bytes they change and write them over the value in
    the store (past its end with zeros between, as Redis, even where every write of a
    BITFIELD failed): the replies and the value every node then holds are those of a
    small value's path, its expiry is kept, and no node reads the old value whole."""
    sim = SimCluster(3, seed=11)
    a, b, c = sim.names
    for name in sim.names:
        sim.sn[name].node.local.cache.resize(64 << 10)
    at = sim.sn[a].node.now + 500_000
    assert sim.put(a, b"big", BIG, expire_at=at)[0] is None
    sim.run(100)
    whole, ranges = _spy(sim, b"big")
    want = BIG
    for i, words in enumerate(WRITES):
        reply = _reply(words, want)
        new = None
        if reply.startswith(b"-"):
            pass
        elif words[0] == b"SETBIT":
            new = pieces.whole(bitops.setbit(want, *bitops.setbit_args(words[1], words[2]))[1])
        else:
            new = bitops.bitfield_run(want, bitops.bitfield_ops(words[1:]))[1]
        assert Client(sim, sim.names[i % 3]).run(words[0], b"big", *words[1:]) == reply, words
        sim.run(100)
        assert whole == []
        want = new if new is not None else want
        stored = {sim.stored(name, b"big") for name in sim.names}
        assert len(stored) == 1
        enc = stored.pop()
        assert enc is not None and objmod.encode(objmod.decode(enc)) == enc
        assert objmod.read_value(objmod.decode(enc), 0)[1:] == (at, want), words
        whole.clear()
    assert len(want) > N + 80
    assert ranges and max(ranges) <= 16, ranges


def test_a_count_or_search_over_a_whole_large_value_reads_a_slice_per_loop_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """BITCOUNT, and BITPOS over a long range, read the value in place a slice per loop
    turn (other clients' requests run in between), never whole, and answer as a small
    value's path."""
    monkeypatch.setattr(storedbits, "SLICE", 16 << 10)
    value = bytes(150_000) + b"\x10" + os.urandom(49_999)
    sim, whole, ranges = _holding(value, sliced_walks=True)
    a = sim.names[0]
    turns: list[float] = []
    node = sim.sn[a].node
    later = node.coll.later
    node.coll.later = lambda cb: (turns.append(sim.now), later(cb))  # type: ignore[method-assign]
    for words in ([b"BITCOUNT"], [b"BITCOUNT", b"7", b"-9"], [b"BITCOUNT", b"9", b"-77", b"BIT"],
                  [b"BITPOS", b"1"], [b"BITPOS", b"1", b"1000", b"-1000"],
                  [b"BITPOS", b"0", b"150000"], [b"BITPOS", b"1", b"-1", b"-1"]):
        turns.clear()
        ranges.clear()
        assert Client(sim, a).run(words[0], b"big", *words[1:]) == _reply(words, value), words
        assert whole == []
        assert max(ranges) <= 16 << 10 and len(turns) == len(ranges) - 1, words
    assert Client(sim, a).run(b"BITCOUNT", b"big") == _reply([b"BITCOUNT"], value)
    assert len(turns) == 12  # 200,000 bytes: 13 slices


def test_a_scan_of_a_value_replaced_meanwhile_answers_for_the_new_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice of another object is never counted: once the key holds a new value, the
    count starts again on it, read whole (where a read found the value gone, the
    command once wrote a tombstone and answered nothing: compiled, common.READ_WHOLE
    lost its identity)."""
    monkeypatch.setattr(storedbits, "SLICE", 1 << 10)
    sim, whole, ranges = _holding(BIG, sliced_walks=True)
    a = sim.names[0]
    other = os.urandom(150_000)
    for replace_after in (0, 1):  # before the first slice is read, or after it
        client = Client(sim, a)
        client.start(b"BITCOUNT", b"big")
        while len(ranges) < replace_after:
            sim.run(0.01)
        assert not client.box
        assert sim.put(a, b"big", other)[0] is None
        assert client.wait() == resp.integer(bitops.bitcount(other, []))
        assert a in whole
        assert _everywhere(sim) == {other}
        other = BIG
        ranges.clear()


@pytest.mark.parametrize("words", [[b"SETBIT", b"9", b"1"], [b"SETBIT", b"9", b"0"],
                                   [b"BITFIELD", b"INCRBY", b"u8", b"4", b"3"]])
def test_a_write_on_a_value_replaced_meanwhile_is_made_on_the_new_value(
        words: list[bytes]) -> None:
    """SETBIT and BITFIELD never write their bytes over a value the key no longer
    holds: read after the key was written again, they run on the new value, read whole
    (no reply lost, no tombstone written)."""
    sim, whole, ranges = _holding(BIG, seed=5)
    a = sim.names[0]
    other = bytes(x ^ 0xFF for x in BIG[:150_000])
    client = Client(sim, a)
    client.start(words[0], b"big", *words[1:])
    assert sim.put(a, b"big", other)[0] is None
    assert client.wait() == _reply(words, other)
    assert a in whole  # (read again whole)
    if words[0] == b"SETBIT":
        want = pieces.whole(bitops.setbit(other, *bitops.setbit_args(words[1], words[2]))[1]) or other
    else:
        want = bitops.bitfield_run(other, bitops.bitfield_ops(words[1:]))[1]
    sim.run(100)
    assert _everywhere(sim) == {want}


def test_bitop_reads_large_sources_in_place_and_writes_what_small_ones_give(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """BITOP of large values (and a small one, a missing key) through every node reads
    the large ones where they are stored (pinned while the result is made, a slice a
    loop turn), never whole, nor the large value its destination held: every node then
    holds the result a small value's path computes. Where a value cannot be pinned, all
    are read whole."""
    monkeypatch.setattr(bitmaps, "BITOP_SLICE", 16 << 10)
    other = os.urandom(150_000)
    sim, whole, _ = _holding(BIG, sliced_walks=True)
    turns: list[str] = []
    for name in sim.names:
        coll = sim.sn[name].node.coll
        coll.later = lambda cb, later=coll.later, name=name: (turns.append(name), later(cb))
    assert sim.put(sim.names[0], b"other", other)[0] is None
    assert sim.put(sim.names[0], b"small", b"\xf0\x0f")[0] is None
    assert sim.put(sim.names[0], b"dest", BIG)[0] is None
    sim.run(100)
    more, _ = _spy(sim, b"other")
    dest, _ = _spy(sim, b"dest")
    cases = [(b"AND", [b"big", b"other"]), (b"OR", [b"other", b"big", b"small"]),
             (b"XOR", [b"small", b"missing", b"big"]), (b"NOT", [b"big"]),
             (b"and", [b"big", b"small"])]
    for i, (op, keys) in enumerate(cases):
        values = [{b"big": BIG, b"other": other, b"small": b"\xf0\x0f"}.get(k, b"")
                  for k in keys]
        want = bitops.bitop_pure(op.lower(), values)
        via = sim.names[i % 3]
        turns.clear()
        assert Client(sim, via).run(b"BITOP", op, b"dest", *keys) == resp.integer(len(want))
        # (made a slice a loop turn when built: else at once)
        assert turns == ([via] * (len(want) // (16 << 10)) if bitops._NativeJob else []), op
        sim.run(100)
        assert whole == [] and more == [] and dest == [], op
        got = {objmod.read_value(sim.get(name, b"dest")[1], 0)[2] for name in sim.names}
        assert got == {want}, op
        dest.clear()
    local = sim.sn[sim.names[0]].node.local
    monkeypatch.setattr(local.engine, "pin", lambda p, key: None)
    local.rebind()
    want = bitops.bitop_pure(b"xor", [BIG, other])
    assert Client(sim, sim.names[0]).run(b"BITOP", b"XOR", b"dest", b"big", b"other") \
        == resp.integer(len(want))
    assert sim.names[0] in whole and sim.names[0] in more
