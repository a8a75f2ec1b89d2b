"""RENAME and COPY are plans of steps: what a write between the steps and a failed step
leave (the README's promises), SORT's weights, patterns and keys, and what GETCTX of a
collection says of the concurrent updates it merged."""

from __future__ import annotations

import itertools

from dynredis.commands import collection, sortspec
from dynredis.commands.sortspec import ELEMENT, NOTHING
from tests.collharness import LocalRunner
from tests.integration.test_collection_semantics import parse
from tests.unit.test_lists_concurrent import KEY, Replica, sync


def run_plan(r: LocalRunner, words: list[bytes], between: dict[bytes, list[tuple]] | None = None,
             failing: int | None = None, applied_then_failing: int | None = None) -> bytes:
    """Run a plan on `r`: after the step named in `between`, its commands run (as
    another client's through another node would); step number `failing` answers an
    error without running, `applied_then_failing` runs and then answers an error (a
    write that missed its quorum)."""
    steps = itertools.count()
    out: list[bytes] = []

    def run_step(step: list[bytes], cb) -> None:  # type: ignore[no-untyped-def]
        i = next(steps)
        if i == failing:
            cb(("NOQUORUM write needed 2 of 3 replicas, got 1", None))
            return
        result = r.step(step)
        for cmd in (between or {}).get(step[0], []):
            r.run(*cmd)
        if i == applied_then_failing:
            cb(("NOQUORUM write needed 2 of 3 replicas, got 1", None))
        else:
            cb((None, result))

    plan = collection.PLANS[words[0].decode().lower()](words, 2)
    assert not isinstance(plan, bytes)
    collection.drive(plan, run_step, out.append)
    return out[0]


RENAME = [b"RENAME", b"src", b"dst"]


def members(r: LocalRunner, key: str) -> list[bytes]:
    return sorted(parse(r.run("SMEMBERS", key)))  # type: ignore[arg-type]


def test_what_is_written_to_the_source_after_the_read_stays_there():
    r = LocalRunner()
    r.run("SADD", "src", "a", "b")
    late = [("SADD", "src", "late"), ("SADD", "src", "a")]  # a new member, one re-added
    assert run_plan(r, RENAME, {b"dyn.dumpcols": late}) == b"+OK\r\n"
    assert members(r, "dst") == [b"a", b"b"]
    assert members(r, "src") == [b"a", b"late"]  # only what came after the read
    assert r.run("TYPE", "src") == b"+set\r\n"


def test_a_hash_field_changed_after_the_read_stays_in_the_source_with_its_new_value():
    r = LocalRunner()
    r.run("HSET", "src", "f", "1", "g", "2")
    r.run("PEXPIRE", "src", "60000")
    assert run_plan(r, RENAME, {b"dyn.restore": [("HSET", "src", "f", "9")]}) == b"+OK\r\n"
    assert parse(r.run("HGETALL", "dst")) == [b"f", b"1", b"g", b"2"]
    assert parse(r.run("HGETALL", "src")) == [b"f", b"9"]
    assert parse(r.run("PTTL", "dst")) == 60000


def test_a_list_item_pushed_after_the_read_stays_in_the_source():
    r = LocalRunner()
    r.run("RPUSH", "src", "a", "b")
    assert run_plan(r, RENAME, {b"dyn.dumpcols": [("LPUSH", "src", "new")]}) == b"+OK\r\n"
    assert parse(r.run("LRANGE", "dst", "0", "-1")) == [b"a", b"b"]
    assert parse(r.run("LRANGE", "src", "0", "-1")) == [b"new"]


def test_a_string_set_after_the_read_stays_in_the_source():
    r = LocalRunner()
    r.run("SET", "src", "old")
    assert run_plan(r, RENAME, {b"dyn.restore": [("SET", "src", "new")]}) == b"+OK\r\n"
    assert r.run("GET", "dst") == b"$3\r\nold\r\n"
    assert r.run("GET", "src") == b"$3\r\nnew\r\n"


def test_an_expire_of_the_source_after_the_read_does_not_keep_what_was_moved():
    r = LocalRunner()
    r.run("SADD", "src", "a")
    assert run_plan(r, RENAME, {b"dyn.dumpcols": [("PEXPIRE", "src", "5000")]}) == b"+OK\r\n"
    assert members(r, "dst") == [b"a"] and r.run("EXISTS", "src") == b":0\r\n"


def test_without_writes_between_the_steps_the_source_is_gone():
    for fill in (("SADD", "src", "a"), ("SET", "src", "v"), ("ZADD", "src", "1", "m"),
                 ("RPUSH", "src", "x"), ("HSET", "src", "f", "v")):
        r = LocalRunner()
        r.run(*fill)
        assert run_plan(r, RENAME) == b"+OK\r\n"
        assert r.run("EXISTS", "src") == b":0\r\n" and r.run("EXISTS", "dst") == b":1\r\n"


def test_a_failed_step_leaves_the_value_in_the_source_or_in_both_never_in_neither():
    for failing, dst in ((0, False), (1, False), (2, True)):
        r = LocalRunner()
        r.run("SADD", "src", "a")
        assert run_plan(r, RENAME, failing=failing).startswith(b"-NOQUORUM"), failing
        assert members(r, "src") == [b"a"], failing
        assert r.run("EXISTS", "dst") == (b":1\r\n" if dst else b":0\r\n"), failing
    # The destination's write missed its quorum but reached its coordinator: both.
    r = LocalRunner()
    r.run("SADD", "src", "a")
    assert run_plan(r, RENAME, applied_then_failing=1).startswith(b"-NOQUORUM")
    assert members(r, "src") == members(r, "dst") == [b"a"]


def test_renamenx_and_copy_leave_an_existing_destination_alone():
    r = LocalRunner()
    r.run("SADD", "src", "a")
    r.run("SET", "dst", "v")
    assert run_plan(r, [b"RENAMENX", b"src", b"dst"]) == b":0\r\n"
    assert run_plan(r, [b"COPY", b"src", b"dst"]) == b":0\r\n"
    assert r.run("GET", "dst") == b"$1\r\nv\r\n" and members(r, "src") == [b"a"]
    assert run_plan(r, [b"COPY", b"src", b"dst", b"REPLACE"]) == b":1\r\n"
    assert members(r, "dst") == members(r, "src") == [b"a"]


# --- SORT's pieces ---------------------------------------------------------------------------


def test_weights_read_as_sorts_strtod_reads_them():
    """Each as a redis-server 7.0 (glibc) read it, asked one at a time."""
    ok = {b"3": 3.0, b" 2": 2.0, b"1e2": 100.0, b"0x10": 16.0, b"": 0.0, b"-inf": -float("inf"),
          b"5\x00x": 5.0, b"0x1p-1074": 5e-324, b"2.2250738585072014e-308": 2.2250738585072014e-308,
          b"infinity": float("inf"), b"+5": 5.0, b".5": 0.5, b"5.": 5.0, b"\t8": 8.0}
    for raw, value in ok.items():
        assert sortspec.sort_score(raw) == value, raw
    for raw in (b"x", b"5 ", b" ", b"nan", b"1e309", b"1e-400", b"1e-310", b"4.9e-324",
                b"1_0", b"0x1.fffffffffffff8p1023"):
        assert sortspec.sort_score(raw) is None, raw


def test_patterns_name_keys_and_hash_fields_as_redis_does():
    assert sortspec.resolve(b"#", b"e") == ELEMENT
    assert sortspec.resolve(b"#\x00x", b"e") == ELEMENT
    assert sortspec.resolve(b"nostar", b"e") == NOTHING
    assert sortspec.resolve(b"w_*", b"e") == (b"w_e", None)
    assert sortspec.resolve(b"w_*_x*", b"e") == (b"w_e_x*", None)
    assert sortspec.resolve(b"h_*->f", b"e") == (b"h_e", b"f")
    assert sortspec.resolve(b"h_*->f->g", b"e") == (b"h_e", b"f->g")
    assert sortspec.resolve(b"h_*->", b"e") == (b"h_e->", None)  # no field: a key
    assert sortspec.resolve(b"*->*", b"e") == (b"e", b"*")
    assert sortspec.resolve(b"h->_*", b"e") == (b"h->_e", None)  # '->' before the '*'


def test_sort_keys_are_found_as_redis_finds_them():
    def keys(*words: bytes) -> list[bytes]:
        return sortspec.sort_keys([b"SORT", *words])

    assert keys(b"k") == [b"k"]
    assert keys(b"k", b"STORE", b"a", b"store", b"b") == [b"k", b"b"]
    assert keys(b"k", b"LIMIT", b"1", b"STORE", b"b") == [b"k"]  # LIMIT takes two words
    assert keys(b"k", b"GET", b"STORE", b"b") == [b"k"]
    assert keys(b"k", b"BY", b"x", b"STORE") == [b"k"]


# --- GETCTX of a collection: the concurrent updates it merged ------------------------------


def getctx(r: Replica) -> tuple[bytes, bytes, dict]:
    ctx, kind, info = parse(r.step([b"dyn.getctx", KEY]))  # type: ignore[misc]
    return ctx, kind, dict(zip(info[::2], info[1::2], strict=True))


def test_getctx_counts_the_elements_whose_concurrent_versions_were_merged():
    a, b = Replica(b"A"), Replica(b"B")
    a("HSET", KEY, "f", "1", "g", "1", "h", "1")
    sync(a, b)
    _, kind, info = getctx(a)
    assert kind == b"hash" and info[b"elements"] == 3 and info[b"concurrent"] == 0
    a("HSET", KEY, "f", "a")  # the same field through two replicas: the later wins
    b("HSET", KEY, "f", "b")
    a("HDEL", KEY, "g")  # a removal concurrent with a write: the write stays
    b("HSET", KEY, "g", "2")
    sync(a, b)
    h = a("HGETALL", KEY)
    assert sorted(zip(h[::2], h[1::2], strict=True)) == [(b"f", b"b"), (b"g", b"2"),
                                                          (b"h", b"1")]
    _, _, info = getctx(a)
    assert info[b"concurrent"] == 2 and sorted(info[b"sample"]) == [b"f", b"g"]
    assert info[b"concurrent-removed"] == 0 and info[b"header-versions"] == 1
    assert getctx(b)[2] == info  # both replicas hold the same merged records
    a("HSET", KEY, "f", "c")  # a later write through one replica supersedes them
    assert getctx(a)[2][b"concurrent"] == 1


def test_getctx_shows_a_list_item_popped_by_two_clients():
    a, b = Replica(b"A"), Replica(b"B")
    a("RPUSH", KEY, "job1", "job2")
    sync(a, b)
    assert a("LPOP", KEY) == b("LPOP", KEY) == b"job1"  # at-least-once
    sync(a, b)
    _, kind, info = getctx(a)
    assert kind == b"list" and info[b"elements"] == 1
    assert info[b"concurrent"] == 0 and info[b"concurrent-removed"] == 1


def test_a_plan_that_fails_answers_an_error_at_once():
    def broken():  # type: ignore[no-untyped-def]
        yield [b"dyn.type", b"k"]
        raise KeyError("a bug")

    out: list[bytes] = []
    collection.drive(broken(), lambda step, cb: cb((None, [None, 0])), out.append)
    assert out == [b"-ERR internal error running the command\r\n"]


def test_the_copies_a_rename_reads_are_not_walked_by_the_cyclic_collector() -> None:
    """The copies of a collection dyn.dumpcols answers (a set's members, a hash's or
    sorted set's names and values, a long list's positions), which the plan holds across
    its steps, hold bytes and numbers only: taken off the collector's lists, so no young
    pass walks a million of them (collector pauses of 35-53 ms inside a RENAME of a
    million-element key)."""
    import gc

    import pytest

    from dynredis.commands import slicedwrite
    from dynredis.core import quietlist

    if quietlist._untrack is None:
        pytest.skip("no ctypes: lists stay tracked")
    r = LocalRunner()
    n = slicedwrite.SLICE + 10
    r.run("SADD", "s", *[b"m%d" % i for i in range(n)])
    r.run("HSET", "h", *[w for i in range(n) for w in (b"f%d" % i, b"v%d" % i)])
    r.run("ZADD", "z", *[w for i in range(n) for w in (b"%d" % i, b"m%d" % i)])
    r.run("RPUSH", "l", *[b"i%d" % i for i in range(n)])
    for key in ("s", "h", "z", "l"):
        held: list[list[object]] = []  # the lists the dump answered, as the plan got them

        def run_step(step: list[bytes], cb, held=held, key=key) -> None:  # type: ignore[no-untyped-def]
            result = r.step(step)
            if step[0] == b"dyn.dumpcols":
                value = result[1]
                held.extend([value.positions] if key == "l" else value if key in "hz"
                            else [value])
                assert all(len(part) == n for part in held), key
            cb((None, result))

        plan = collection.PLANS["rename"]([b"RENAME", key.encode(), key.encode() + b"2"], 2)
        assert not isinstance(plan, bytes)
        out: list[bytes] = []
        collection.drive(plan, run_step, out.append)
        assert parse(out[0]) == b"OK"
        assert held and not any(map(gc.is_tracked, held)), key
    assert len(members(r, "s2")) == n  # and the copies are whole
    assert len(parse(r.run("HGETALL", "h2"))) == 2 * n  # type: ignore[arg-type]
    assert parse(r.run("ZCARD", "z2")) == n
    assert parse(r.run("LLEN", "l2")) == n
