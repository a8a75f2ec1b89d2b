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


@pytest.mark.parametrize("command", [b"ZUNION", b"ZINTER", b"ZDIFF"])
def test_a_big_source_is_read_without_a_pair_made_per_member(monkeypatch,
                                                             command: bytes) -> None:
    """A sorted set's or set's source is read as references (dyn.zread) and turned into
    (member, score) pairs a slice a loop turn: made in the read's own turn they held a
    node ~150 ms for a million-member key. A slice of pairs per turn means at least one
    turn per slice of each source before the combine's and the sort's."""
    monkeypatch.setattr(zsetplans, "SLICE", 16)
    r = LocalRunner()
    r.run(b"ZADD", b"z", *[w for i in range(160) for w in (b"%d" % (i % 9), b"m%03d" % i)])
    r.run(b"SADD", b"s", *[b"m%03d" % i for i in range(0, 320, 2)])
    steps: list[bytes] = []
    plan = collection.PLANS[command.decode().lower()]([command, b"2", b"z", b"s",
                                                       b"WITHSCORES"], 3)
    assert not isinstance(plan, bytes)
    turns = 0
    out: list[object] = []

    def step(args, cb):  # type: ignore[no-untyped-def]
        nonlocal turns
        steps.append(args[0])
        if args == collection.TURN:
            turns += 1
        cb((None, r.step(args, 3)))

    collection.drive(plan, step, out.append)
    assert b"dyn.read" not in steps
    reads = [i for i, s in enumerate(steps) if s == b"dyn.zread"]
    assert len(reads) == 2
    # each source's 160 members: ten turns of pairs after its read, before the next step
    assert steps[reads[0] + 1:reads[1]].count(collection.TURN[0]) >= 160 // 16
    z = {b"m%03d" % i: float(i % 9) for i in range(160)}
    s = {b"m%03d" % i: 1.0 for i in range(0, 320, 2)}
    want = {b"ZUNION": {**s, **{m: z[m] + s.get(m, 0.0) for m in z}},
            b"ZINTER": {m: z[m] + 1.0 for m in z if m in s},
            b"ZDIFF": {m: v for m, v in z.items() if m not in s}}[command]
    reply = out[0]
    data = [reply] if isinstance(reply, bytes) else [reply.before]
    while isinstance(reply, bulks.SlicedReply) and (part := reply.next_slice()) is not None:
        data.append(part)
    got = parse(b"".join(data))
    assert isinstance(got, list)
    assert [(m, float(v)) for m, v in got] == sorted(want.items(), key=lambda p: (p[1], p[0]))


def test_the_lists_a_big_setop_holds_are_not_walked_by_the_cyclic_collector(
        monkeypatch) -> None:
    """The read's references and the pairs made from them are lists of bytes, numbers
    and tuples of them: taken off the collector's lists (a young list of a million was
    walked by each collector pass, 50-60 ms of the turn it fell in)."""
    import gc

    from dynredis.core import quietlist

    if quietlist._untrack is None:
        pytest.skip("no ctypes: lists stay tracked")
    monkeypatch.setattr(zsetplans, "SLICE", 16)
    r = LocalRunner()
    r.run(b"ZADD", b"z", *[w for i in range(100) for w in (b"%d" % i, b"m%03d" % i)])
    _, items = r.step([b"dyn.zread", b"z"], 2)
    assert len(items) == 100 and not gc.is_tracked(items)
    pairs = zsetplans._pairs(items, True)
    try:
        while next(pairs) == collection.TURN:
            pass
    except StopIteration as done:
        out = done.value
    assert len(out) == 100 and not gc.is_tracked(out)


@pytest.mark.parametrize("proto", [2, 3])
def test_a_source_in_order_is_replied_as_it_is_and_a_merge_a_few_rows_a_turn(
        monkeypatch, proto: int) -> None:
    """ZUNION of one key gives the pairs in the order the key holds them: its runs follow
    one another and are read in turn, not merged through a heap (a million members'
    merge and encoding took 84 ms a reply slice). A reply that does merge runs is
    encoded a MERGED_SHARE-th of bulks' rows a turn. Either way the reply is one sort's
    of the whole, ties by member included, and the runs let go of their pairs as the
    rows are taken (held to the end, a million were freed in the last slice's turn)."""
    monkeypatch.setattr(zsetplans, "SLICE", 16)
    monkeypatch.setattr(bulks, "STREAM_ROWS", 32)  # a merge's: 32 // MERGED_SHARE
    r = LocalRunner()
    z = {b"m%03d" % i: float(i % 4) for i in range(100)}  # ties across every run
    r.run(b"ZADD", b"z", *[w for m, s in z.items() for w in (b"%d" % s, m)])
    r.run(b"SADD", b"s", *[b"n%03d" % i for i in range(50)])
    want = sorted(z.items(), key=lambda p: (p[1], p[0]))
    made: list[zsetplans.Merged] = []
    runs_given: list[list[list[object]]] = []
    real = zsetplans.Merged

    def spy(runs):  # type: ignore[no-untyped-def]
        runs_given.append(runs)
        made.append(real(runs))
        return made[-1]

    monkeypatch.setattr(zsetplans, "Merged", spy)
    got, _ = run_plan(r, b"ZUNION", b"1", b"z", b"WITHSCORES", proto=proto)
    assert isinstance(got, list)
    pairs = got if proto == 3 else list(zip(got[::2], got[1::2], strict=True))
    assert [(m, float(s)) for m, s in pairs] == want
    assert made[-1].per_turn == 0  # chained: bulks' own rows a turn
    assert len(runs_given[-1]) > 1 and not any(runs_given[-1])  # each let go as read

    both = {**z, **{b"n%03d" % i: 1.0 for i in range(50)}}
    plan = collection.PLANS["zunion"]([b"ZUNION", b"2", b"s", b"z"], proto)
    assert not isinstance(plan, bytes)
    out: list[object] = []
    collection.drive(plan, lambda args, cb: cb((None, r.step(args, proto))), out.append)
    reply = out[0]
    assert isinstance(reply, bulks.SlicedReply)
    rows = 32 // zsetplans.MERGED_SHARE
    assert made[-1].per_turn == rows
    parts = []
    while (part := reply.next_slice()) is not None:
        parts.append(part)
    assert len(parts) >= 150 // rows
    assert all(part.count(b"\r\n") <= 2 * rows for part in parts)  # (2 lines a member)
    assert not any(runs_given[-1])  # the pairs let go of as the rows were sent
    assert parse(reply.before + b"".join(parts)) == [
        m for m, _ in sorted(both.items(), key=lambda p: (p[1], p[0]))]
