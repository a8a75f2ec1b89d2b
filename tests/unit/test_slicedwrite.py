"""A destination written a slice at a time (commands/slicedwrite.py): every item arrives,
a list in its order, with its expiry; a write by another client between two slices
wins as if it came after the whole write; the replies are those of one step."""

from __future__ import annotations

import msgpack
import pytest

from dynredis.commands import collection, slicedwrite
from dynredis.core.viewpin import ViewPin
from tests.collharness import LocalRunner
from tests.integration.test_collection_semantics import parse
from tests.unit.test_keymoves import run_plan


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicedwrite, "SLICE", 3)


def appends(r: LocalRunner, words: list[bytes]) -> tuple[bytes, int]:
    """The plan's reply and how many dyn.append steps it ran."""
    seen: list[bytes] = []
    original = r.step

    def step(args: list[bytes]) -> object:
        seen.append(args[0])
        return original(args)

    r.step = step  # type: ignore[method-assign]
    try:
        return run_plan(r, words), seen.count(b"dyn.append")
    finally:
        r.step = original  # type: ignore[method-assign]


def test_split_gives_every_item_once_in_order():
    items = list(range(10))
    head, rest = slicedwrite.split(items)
    assert list(head) == [0, 1, 2] and [list(s) for s in rest] == [[3, 4, 5], [6, 7, 8], [9]]
    for few in ([], [1, 2, 3]):
        head, rest = slicedwrite.split(few)
        assert head == few and list(rest) == []
    pairs = slicedwrite.Pairs([b"a", b"b", b"c", b"d"], [1, 2, 3, 4])
    head, rest = slicedwrite.split(pairs)
    assert head == [(b"a", 1), (b"b", 2), (b"c", 3)] and list(rest) == [[(b"d", 4)]]


def test_a_renamed_list_keeps_every_item_its_order_and_ttl():
    r = LocalRunner()
    items = [f"i{n}" for n in range(10)] + ["i3"]  # a repeated item too
    r.run("RPUSH", "src", *items)
    r.run("PEXPIRE", "src", "60000")
    assert appends(r, [b"RENAME", b"src", b"dst"]) == (b"+OK\r\n", 3)
    assert parse(r.run("LRANGE", "dst", "0", "-1")) == [i.encode() for i in items]
    assert parse(r.run("PTTL", "dst")) == 60000
    assert r.run("EXISTS", "src") == b":0\r\n"


def test_copies_and_stores_of_every_type_hold_every_item():
    r = LocalRunner()
    r.run("HSET", "h", *[w for n in range(8) for w in (f"f{n}", f"v{n}")])
    r.run("SADD", "s", *[f"m{n}" for n in range(8)])
    r.run("ZADD", "z", *[w for n in range(8) for w in (str(n / 2), f"m{n}")])
    assert appends(r, [b"COPY", b"h", b"h2"]) == (b":1\r\n", 2)
    assert parse(r.run("HGETALL", "h2")) == parse(r.run("HGETALL", "h"))
    assert appends(r, [b"SUNIONSTORE", b"s2", b"s"]) == (b":8\r\n", 2)
    assert sorted(parse(r.run("SMEMBERS", "s2"))) == sorted(parse(r.run("SMEMBERS", "s")))
    assert appends(r, [b"ZUNIONSTORE", b"z2", b"1", b"z"]) == (b":8\r\n", 2)
    assert appends(r, [b"ZRANGESTORE", b"z3", b"z", b"0", b"-1"]) == (b":8\r\n", 2)
    whole = parse(r.run("ZRANGE", "z", "0", "-1", "WITHSCORES"))
    assert parse(r.run("ZRANGE", "z2", "0", "-1", "WITHSCORES")) == whole
    assert parse(r.run("ZRANGE", "z3", "0", "-1", "WITHSCORES")) == whole


def test_one_key_zunionstore_and_zrangestore_read_no_pair_per_member():
    """ZUNIONSTORE of one key (weighted, of a set too) and ZRANGESTORE read the set's own
    (score, member) pairs and turn them a slice a step: the same sets as the union with
    a missing key and ZRANGE give."""
    r = LocalRunner()
    r.run("ZADD", "z", *[w for n in range(8) for w in (str(n / 2 - 1), f"m{n}")])
    r.run("ZADD", "z", "inf", "top")
    r.run("SADD", "s", *[f"m{n}" for n in range(5)])
    reads: list[bytes] = []
    original = r.step
    r.step = lambda args, *more: reads.append(args[0]) or original(args, *more)  # type: ignore
    for src, weight in ((b"z", b"1"), (b"z", b"-2.5"), (b"z", b"0"), (b"s", b"3")):
        reads.clear()
        assert run_plan(r, [b"ZUNIONSTORE", b"d", b"1", src, b"WEIGHTS", weight]) == \
            b":%d\r\n" % (9 if src == b"z" else 5)
        assert reads[0] == b"dyn.zread" and b"dyn.read" not in reads
        run_plan(r, [b"ZUNIONSTORE", b"d2", b"2", src, b"nokey", b"WEIGHTS", weight, b"1"])
        assert parse(r.run("ZRANGE", "d", "0", "-1", "WITHSCORES")) == parse(
            r.run("ZRANGE", "d2", "0", "-1", "WITHSCORES"))
    for span in ([b"1", b"5", b"REV"], [b"(0", b"+inf", b"BYSCORE", b"LIMIT", b"1", b"5"]):
        reads.clear()
        assert run_plan(r, [b"ZRANGESTORE", b"d", b"z", *span]) == b":5\r\n"
        assert reads[0] == b"dyn.zranked"
        got = parse(r.run("ZRANGE", "d", "0", "-1", "WITHSCORES"))
        ranged = parse(r.run("ZRANGE", "z", *span, "WITHSCORES"))
        assert sorted(zip(got[::2], got[1::2], strict=True)) == sorted(
            zip(ranged[::2], ranged[1::2], strict=True))
    r.run("SET", "str", "x")
    assert run_plan(r, [b"ZUNIONSTORE", b"d", b"1", b"str"]).startswith(b"-WRONGTYPE")
    assert run_plan(r, [b"ZUNIONSTORE", b"d", b"1", b"nokey"]) == b":0\r\n"
    assert r.run("EXISTS", "d") == b":0\r\n"


def test_a_store_replaces_what_the_destination_held_and_a_small_one_takes_one_step():
    r = LocalRunner()
    r.run("SADD", "s", "a", "b")
    r.run("RPUSH", "dst", *[f"old{n}" for n in range(7)])
    assert appends(r, [b"SUNIONSTORE", b"dst", b"s"]) == (b":2\r\n", 0)
    assert sorted(parse(r.run("SMEMBERS", "dst"))) == [b"a", b"b"]


def test_a_delete_of_the_destination_between_slices_drops_the_rest():
    r = LocalRunner()
    r.run("SADD", "src", *[f"m{n}" for n in range(10)])
    reply = run_plan(r, [b"RENAME", b"src", b"dst"], {b"dyn.restore": [("DEL", "dst")]})
    assert reply == b"+OK\r\n"  # as RENAME then DEL: both names gone
    assert r.run("EXISTS", "dst") == r.run("EXISTS", "src") == b":0\r\n"


def test_a_string_set_on_the_destination_between_slices_stays():
    r = LocalRunner()
    r.run("RPUSH", "src", *[f"i{n}" for n in range(10)])
    between = {b"dyn.append": [("SET", "dst", "v")]}
    assert run_plan(r, [b"SORT", b"src", b"ALPHA", b"STORE", b"dst"], between) == b":10\r\n"
    assert r.run("GET", "dst") == b"$1\r\nv\r\n"


def test_an_item_pushed_between_slices_lands_among_them():
    r = LocalRunner()
    r.run("RPUSH", "src", *[f"i{n}" for n in range(6)])
    between = {b"dyn.restore": [("RPUSH", "dst", "x")]}
    assert run_plan(r, [b"COPY", b"src", b"dst"], between) == b":1\r\n"
    assert parse(r.run("LRANGE", "dst", "0", "-1")) == [
        b"i0", b"i1", b"i2", b"x", b"i3", b"i4", b"i5"]


def test_renamenx_onto_an_existing_key_writes_no_slice():
    r = LocalRunner()
    r.run("SADD", "src", *[f"m{n}" for n in range(10)])
    r.run("SET", "dst", "v")
    assert appends(r, [b"RENAMENX", b"src", b"dst"]) == (b":0\r\n", 0)
    assert r.run("GET", "dst") == b"$1\r\nv\r\n"
    assert len(parse(r.run("SMEMBERS", "src"))) == 10


def test_a_renamed_hash_keeps_its_counters_as_their_decimals():
    r = LocalRunner()
    r.run("HSET", "src", *[w for n in range(7) for w in (f"f{n}", f"v{n}")])
    r.run("HINCRBY", "src", "n", "5")
    assert appends(r, [b"RENAME", b"src", b"dst"]) == (b"+OK\r\n", 2)
    fields = parse(r.run("HGETALL", "dst"))
    assert dict(zip(fields[::2], fields[1::2], strict=True)) == {
        **{f"f{n}".encode(): f"v{n}".encode() for n in range(7)}, b"n": b"5"}
    assert r.run("HINCRBY", "dst", "n", "2") == b":7\r\n"


@pytest.mark.parametrize("command, reply", [(b"COPY", b":1\r\n"), (b"RENAME", b"+OK\r\n")])
def test_a_long_lists_values_are_taken_a_slice_a_step_as_the_read_saw_them(
        monkeypatch: pytest.MonkeyPatch, command: bytes, reply: bytes) -> None:
    """RENAME/COPY of a long list: its read (dyn.dumpcols) looked up every value in its
    own turn (a million: 45 ms of CPU idle, 79-99 ms at load 8). It copies the positions
    and pins the view: each step looks up its slice's values, and a value changed or
    removed after the read is written as the read saw it."""
    looked: list[int] = []
    values = ViewPin.values

    def counted(self: ViewPin, elements: list[bytes]) -> list[object]:
        looked.append(len(elements))
        return values(self, elements)

    monkeypatch.setattr(ViewPin, "values", counted)
    r = LocalRunner()
    items = [f"i{n}".encode() for n in range(10)]
    r.run("RPUSH", "src", *items)
    changes = [("LSET", "src", "5", "changed"), ("RPOP", "src"), ("LPUSH", "src", "new")]
    assert run_plan(r, [command, b"src", b"dst"], {b"dyn.dumpcols": changes}) == reply
    assert parse(r.run("LRANGE", "dst", "0", "-1")) == items
    assert looked == [3, 3, 3, 1]  # a step's slice each, none in the read's turn
    left = [b"new", *items[:5], b"changed", *items[6:9]]
    # RENAME deletes from the source what the read saw, only (a push or a change
    # since stays)
    assert parse(r.run("LRANGE", "src", "0", "-1")) == (
        left if command == b"COPY" else [b"new", b"changed"])


def test_a_long_lists_read_for_another_nodes_plan_crosses_as_its_values() -> None:
    """The read ran for a plan on another node (collection.run_forwarded): its answer
    crosses the link as plain data, the list's values as the read saw them, and the
    pin is let go."""
    r = LocalRunner()
    items = [f"i{n}".encode() for n in range(10)]
    r.run("RPUSH", "src", *items)
    key, op = collection.BUILDERS["dyn.dumpcols"]([b"dyn.dumpcols", b"src"], 2)
    view = r.view(key)
    dump = op(view)
    view.finish()
    assert isinstance(dump[1], slicedwrite.PinnedList)
    pin = dump[1].pin
    r.run("LSET", "src", "0", "changed")
    crossed = collection._crossing(dump)
    assert crossed[0] == "list" and crossed[1] == items and crossed[2:] == dump[2:]
    assert msgpack.unpackb(msgpack.packb(crossed)) == crossed
    assert pin.unpin is None and not pin.saved  # (released)
