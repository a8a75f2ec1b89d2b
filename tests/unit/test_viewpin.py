"""A long LRANGE reply is the list as of the command, whatever is written to the key while
it is being sent a slice at a time (core/viewpin.py, resp/bulks.py SlicedReply)."""

from __future__ import annotations

import gc

import pytest

from dynredis.commands import collection
from dynredis.core import records as rec
from dynredis.resp import bulks
from tests.collharness import LocalRunner

N = bulks.STREAM_ROWS * 2 + 100  # a reply of three slices


def _runner() -> LocalRunner:
    r = LocalRunner()
    items = [b"i%d" % i for i in range(N)]
    for at in range(0, N, 5000):
        r.run("RPUSH", "l", *items[at:at + 5000])
    return r


def _started(r: LocalRunner, *args: str) -> bulks.SlicedReply:
    """The command's reply as its op gives it, before any of it is sent."""
    key, op = collection.BUILDERS[args[0].lower()]([a.encode() for a in args], 2)
    reply = op(r.view(key))
    assert isinstance(reply, bulks.SlicedReply)
    return reply


def _send(reply: bulks.SlicedReply, between: list[tuple[str, ...]], r: LocalRunner) -> bytes:
    """The reply's bytes as a connection writes them, a command of `between` run after
    each slice."""
    out = [reply.before]
    todo = list(between)
    while (chunk := reply.next_slice()) is not None:
        out.append(chunk)
        if todo:
            r.run(*todo.pop(0))
    while todo:
        r.run(*todo.pop(0))
    reply.release()
    return b"".join(out)


def _pins(r: LocalRunner) -> object:
    return r.view(b"l").state.pins


@pytest.mark.parametrize("writes", [
    [("LSET", "l", "0", "changed"), ("LSET", "l", "-1", "again")],
    [("LPOP", "l", "20000"), ("RPUSH", "l", "x", "y")],
    [("LTRIM", "l", "5", "10"), ("LPUSH", "l", "new")],
    [("DEL", "l"), ("RPUSH", "l", "fresh")],
    [("LSET", "l", str(N - 1), "z"), ("DEL", "l"), ("RPUSH", "l", "a")],
])
def test_writes_while_sent_leave_the_reply_as_of_the_command(
        writes: list[tuple[str, ...]]) -> None:
    r = _runner()
    before = bulks.array([b"i%d" % i for i in range(N)])
    reply = _started(r, "LRANGE", "l", "0", "-1")
    assert _send(reply, writes, r) == before
    assert _pins(r) is None  # released: later writes are not kept for it
    after = r.run("LRANGE", "l", "0", "-1")
    assert after != before  # the writes did happen


def test_a_range_of_the_list_and_the_same_reply_whole() -> None:
    r = _runner()
    lo, hi = 1000, N - 7
    wanted = bulks.array([b"i%d" % i for i in range(lo, hi + 1)])
    assert _send(_started(r, "LRANGE", "l", str(lo), str(hi)),
                 [("LSET", "l", str(lo), "x")], r) == wanted
    # EXEC and scripts take it whole: the pin is released then too
    items = [b"i%d" % i for i in range(N)]
    items[lo] = b"x"
    assert _started(r, "LRANGE", "l", "0", "-1").whole() == bulks.array(items)
    assert _pins(r) is None


def test_a_reply_dropped_unsent_stops_keeping_changes() -> None:
    r = _runner()
    reply = _started(r, "LRANGE", "l", "0", "-1")
    r.run("LSET", "l", "0", "changed")
    assert _pins(r)
    del reply
    gc.collect()
    r.run("LSET", "l", "1", "changed")  # (the dead pin is forgotten here)
    assert _pins(r) is None


def test_other_kinds_and_small_ranges_do_not_pin() -> None:
    r = _runner()
    assert r.run("LRANGE", "l", "0", "9") == bulks.array([b"i%d" % i for i in range(10)])
    assert _pins(r) is None
    reply = _started(r, "LRANGE", "l", "0", "-1")
    state = r.view(b"l").state
    state.set_value(rec.HASH, b"f", b"v")  # (another kind of the key: not kept)
    pins = state.pins
    assert pins is not None and not pins[0]().saved  # type: ignore[union-attr]
    reply.release()


def test_a_view_let_go_of_while_pinned_is_freed_by_the_pin() -> None:
    r = _runner()
    reply = _started(r, "LRANGE", "l", "0", "-1")
    pins = _pins(r)
    assert isinstance(pins, list)
    held = pins[0]().view  # the map the key's state let go of at the DEL
    assert _send(reply, [("DEL", "l")], r) == bulks.array([b"i%d" % i for i in range(N)])
    assert held == {}  # given to the graveyard once sent (here: emptied at once)
    assert r.run("EXISTS", "l") == b":0\r\n"


def test_a_whole_list_read_at_once_is_in_list_order_however_it_was_pushed() -> None:
    r = LocalRunner()
    r.run("RPUSH", "l", "a", "b", "c")
    view = r.view(b"l")
    assert view.list_values() == [b"a", b"b", b"c"]  # (the view's own order)
    r.run("LPUSH", "l", "z")
    r.run("LINSERT", "l", "BEFORE", "b", "m")
    r.run("LSET", "l", "-1", "C")
    view = r.view(b"l")
    assert view.list_values() == [b"z", b"a", b"m", b"b", b"C"]
    assert view.list_values() == view.values_at(rec.LIST, view.lorder)
    assert r.run("SORT", "l", "BY", "nosort") == bulks.array([b"z", b"a", b"m", b"b", b"C"])
