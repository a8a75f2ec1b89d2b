"""ZUNION, ZINTER and ZDIFF of big sorted sets: combined a slice a loop turn, their result
sorted as runs of a slice each and merged while the reply is written over loop turns
(ZINTER of two million-member keys held a node's loop 7 s in one turn), the reply what
one sort of the whole gives."""

from __future__ import annotations

import hiredis
import pytest

from dynredis.commands import collection, zsetplans
from dynredis.resp import bulks
from tests.collharness import LocalRunner


def parse(data: bytes) -> object:
    r = hiredis.Reader()
    r.feed(data)
    return r.gets()


def run_plan(r: LocalRunner, *words: bytes, proto: int) -> tuple[object, int]:
    """The plan's reply as a client reads it (a SlicedReply required) and the loop
    turns its steps took."""
    plan = collection.PLANS[words[0].decode().lower()](list(words), proto)
    assert not isinstance(plan, bytes)
    out: list[object] = []
    turns = 0

    def step(args, cb):  # type: ignore[no-untyped-def]
        nonlocal turns
        turns += args == collection.TURN
        cb((None, r.step(args, proto)))

    collection.drive(plan, step, out.append)
    reply = out[0]
    assert isinstance(reply, bulks.SlicedReply)
    data = [reply.before]
    while (part := reply.next_slice()) is not None:
        data.append(part)
    return parse(b"".join(data)), turns


@pytest.mark.parametrize("proto", [2, 3])
def test_big_unions_intersections_and_differences_go_a_slice_a_turn(monkeypatch,
                                                                    proto: int) -> None:
    monkeypatch.setattr(zsetplans, "SLICE", 16)
    monkeypatch.setattr(bulks, "STREAM_ROWS", 20)
    r = LocalRunner()
    a = {b"m%03d" % i: float(i % 7) for i in range(100)}
    b = {b"m%03d" % i: float(i % 5) for i in range(50, 170)}
    r.run(b"ZADD", b"a", *[w for m, s in a.items() for w in (b"%d" % s, m)])
    r.run(b"ZADD", b"b", *[w for m, s in b.items() for w in (b"%d" % s, m)])
    union = {m: a.get(m, 0.0) + b.get(m, 0.0) for m in {*a, *b}}
    expected = {
        b"ZUNION": union,
        b"ZINTER": {m: s for m, s in union.items() if m in a and m in b},
        b"ZDIFF": {m: s for m, s in a.items() if m not in b},
    }
    for command, want in expected.items():
        got, turns = run_plan(r, command, b"2", b"a", b"b", b"WITHSCORES", proto=proto)
        assert isinstance(got, list)
        pairs = got if proto == 3 else list(zip(got[::2], got[1::2], strict=True))
        assert [(m, float(s)) for m, s in pairs] == sorted(want.items(),
                                                            key=lambda p: (p[1], p[0]))
        assert turns >= len(want) // 16 + 100 // 16
        members, _ = run_plan(r, command, b"2", b"a", b"b", proto=proto)
        assert members == [m for m, _ in pairs]


def test_small_unions_intersections_and_differences_take_no_loop_turn() -> None:
    """Inputs under a slice, however many, are combined and sorted in the command's own
    turn: a turn each of the steps added loop turns to every small ZUNION."""
    r = LocalRunner()
    for key in (b"a", b"b", b"c"):
        r.run(b"ZADD", key, b"1", b"x", b"2", key, b"3", b"y")
    for command in (b"ZUNION", b"ZINTER", b"ZDIFF"):
        plan = collection.PLANS[command.decode().lower()]([command, b"3", b"a", b"b", b"c"], 2)
        assert not isinstance(plan, bytes)
        turns = 0
        out: list[object] = []

        def step(args, cb):  # type: ignore[no-untyped-def]
            nonlocal turns
            turns += args == collection.TURN
            cb((None, r.step(args, 2)))

        collection.drive(plan, step, out.append)
        assert turns == 0, command
        assert out and out[0]
