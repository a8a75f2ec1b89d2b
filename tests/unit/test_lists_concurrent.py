"""Lists under concurrent updates: replicas that took commands apart converge on the
README's semantics once they exchange what they lack (as a coordinator's sync does).

Each `Replica` runs the list commands' builders on its own store, as a coordinator
would, with its own actor; `sync` brings two replicas together with the records each
lacks (core/collstore.py `missing`) and the key's header merged as a DVV. Commands are
issued "concurrently" by running them on different replicas between syncs.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from tests.collharness import _RING, LocalRunner
from tests.integration.test_collection_semantics import parse

KEY = b"list"
_clock = itertools.count(1)  # one clock for all replicas: a later command, a later stamp


class Replica(LocalRunner):
    def __init__(self, name: bytes) -> None:
        super().__init__()
        self.name = name

    def stamp(self, obj) -> int:
        ts = next(_clock)
        if obj is not None:
            ts = max(ts, objmod.max_ts(obj) + 1)
        return ts

    def _write_header(self, p, key, data, expire_at):
        old = self.engine.get(p, key)
        local = objmod.decode(old) if old is not None else None
        new = dvv.overwrite(local, self.name, (self.stamp(local), expire_at, data))
        enc = objmod.encode(new)
        self.engine.put(p, key, enc)
        return enc, old

    def view(self, key: bytes):
        from dynredis.core.collview import KeyView

        p = _RING.partition_of(key)
        return KeyView(self.store, p, key, self.now, self._header(p, key),
                       lambda data, exp: self._write_header(p, key, data, exp), self.name,
                       lambda: b"\x00\x00\x00\x01", self.stamp)

    def __call__(self, *args: bytes | str):
        return parse(self.run(*args))

    def items(self) -> list[bytes]:
        return self("LRANGE", KEY, "0", "-1")


def _take(dst: Replica, records, all_of) -> None:
    p = _RING.partition_of(KEY)
    for part, rkey, enc in records:
        if enc is None:
            continue
        if part == p:
            local = dst.engine.get(p, rkey)
            merged = enc if local is None else objmod.encode(
                dvv.sync(objmod.decode(local), objmod.decode(enc)))
            dst.engine.put(p, rkey, merged)
        else:
            dst.store.merge(part, rkey, enc)
    dst.store.applied_all(p, KEY, all_of)


def sync(*replicas: Replica) -> None:
    """Every replica takes what each other one has and it lacks."""
    p = _RING.partition_of(KEY)
    for _ in range(2):
        for src in replicas:
            for dst in replicas:
                if src is dst:
                    continue
                theirs = dst.store.summary(p, KEY)
                records, _ = src.store.missing(p, KEY, theirs, 100_000,
                                               lambda s=src: s.engine.get(p, KEY))
                _take(dst, records, src.store.summary(p, KEY))


def pair(*items: str) -> tuple[Replica, Replica]:
    """Two replicas in step, holding a list of `items`."""
    a, b = Replica(b"A"), Replica(b"B")
    if items:
        a("RPUSH", KEY, *items)
    sync(a, b)
    assert a.items() == b.items() == [x.encode() for x in items]
    return a, b


def test_concurrent_pushes_at_both_ends_are_all_kept_in_one_order():
    a, b = pair("m")
    a("LPUSH", KEY, "a1", "a2")
    b("LPUSH", KEY, "b1")
    a("RPUSH", KEY, "a3")
    b("RPUSH", KEY, "b2", "b3")
    sync(a, b)
    merged = a.items()
    assert merged == b.items()
    assert sorted(merged) == sorted([b"a1", b"a2", b"b1", b"m", b"a3", b"b2", b"b3"])
    # Each replica's own pushes keep their order around the item both saw.
    pos = {x: i for i, x in enumerate(merged)}
    assert pos[b"a2"] < pos[b"a1"] < pos[b"m"] < pos[b"a3"]
    assert pos[b"b1"] < pos[b"m"] < pos[b"b2"] < pos[b"b3"]
    assert a("LLEN", KEY) == b("LLEN", KEY) == 7


def test_concurrent_inserts_at_the_same_place_stay_between_its_neighbours():
    a, b = pair("x", "y")
    assert a("LINSERT", KEY, "AFTER", "x", "fromA") == 3
    assert b("LINSERT", KEY, "BEFORE", "y", "fromB") == 3
    sync(a, b)
    merged = a.items()
    assert merged == b.items()
    assert merged[0] == b"x" and merged[-1] == b"y"
    assert sorted(merged[1:3]) == [b"fromA", b"fromB"]
    assert a("LINDEX", KEY, "1") == b("LINDEX", KEY, "1") == merged[1]


def test_two_concurrent_pops_may_return_the_same_item():
    a, b = pair("j1", "j2", "j3")
    assert a("LPOP", KEY) == b"j1"
    assert b("LPOP", KEY) == b"j1"  # at-least-once: both saw j1 at the head
    sync(a, b)
    assert a.items() == b.items() == [b"j2", b"j3"]


def test_lset_concurrent_with_a_pop_keeps_the_item():
    a, b = pair("p", "q")
    assert a("LSET", KEY, "0", "P") == b"OK"
    assert b("LPOP", KEY) == b"p"
    sync(a, b)
    assert a.items() == b.items() == [b"P", b"q"]  # an update wins over its removal


def test_concurrent_lsets_of_one_item_keep_the_later():
    a, b = pair("v", "w")
    a("LSET", KEY, "-1", "early")
    b("LSET", KEY, "-1", "late")
    sync(a, b)
    assert a.items() == b.items() == [b"v", b"late"]


def test_a_delete_removes_only_what_it_saw():
    a, b = pair("old1", "old2")
    assert a("DEL", KEY) == 1
    b("RPUSH", KEY, "new")
    sync(a, b)
    assert a.items() == b.items() == [b"new"]
    assert a("TYPE", KEY) == b("TYPE", KEY) == b"list"


def test_lrem_and_ltrim_remove_only_the_items_they_saw():
    a, b = pair("k", "r", "k", "r")
    assert a("LREM", KEY, "0", "k") == 2
    b("RPUSH", KEY, "k")
    sync(a, b)
    assert a.items() == b.items() == [b"r", b"r", b"k"]
    assert a("LTRIM", KEY, "0", "0") == b"OK"
    b("LPUSH", KEY, "head")
    sync(a, b)
    assert a.items() == b.items() == [b"head", b"r"]


def test_a_rotation_concurrent_with_a_pop_of_the_same_item_delivers_it_twice():
    a, b = pair("t1", "t2", "t3")
    assert a("LMOVE", KEY, KEY, "LEFT", "RIGHT") == b"t1"
    assert b("LPOP", KEY) == b"t1"
    sync(a, b)
    assert a.items() == b.items() == [b"t2", b"t3", b"t1"]  # moved, and popped as well


# --- any concurrent histories converge ---------------------------------------------------

_values = itertools.count()

command = st.one_of(
    st.tuples(st.sampled_from(["LPUSH", "RPUSH"]), st.integers(1, 3)),
    st.tuples(st.sampled_from(["LPOP", "RPOP"]), st.integers(1, 2)),
    st.tuples(st.just("LINSERT"), st.sampled_from(["BEFORE", "AFTER"]), st.integers(0, 8)),
    st.tuples(st.just("LREM"), st.integers(-1, 1), st.integers(0, 8)),
    st.tuples(st.just("LTRIM"), st.integers(-3, 2), st.integers(-3, 6)),
    st.tuples(st.just("LMOVE"), st.sampled_from(["LEFT", "RIGHT"]),
              st.sampled_from(["LEFT", "RIGHT"])),
)


def _apply(r: Replica, cmd: tuple, mine: set[bytes], gone: set[bytes],
           moved: set[bytes]) -> None:
    """Run a drawn command with values unique to this history; note what the replica
    pushed (`mine`), removed (`gone`) and moved (`moved`: a new position)."""
    name = cmd[0]
    items = r.items()
    if name in ("LPUSH", "RPUSH"):
        new = [b"%s%d" % (r.name, next(_values)) for _ in range(cmd[1])]
        mine.update(new)
        r(name, KEY, *new)
    elif name in ("LPOP", "RPOP"):
        gone.update(r(name, KEY, str(cmd[1])) or [])
    elif name == "LINSERT" and items:
        new = b"%s%d" % (r.name, next(_values))
        mine.add(new)
        r(name, KEY, cmd[1], items[cmd[2] % len(items)], new)
    elif name == "LREM" and items:
        target = items[cmd[2] % len(items)]
        if r(name, KEY, str(cmd[1]), target):
            gone.add(target)  # values are unique: it removed that one
    elif name == "LTRIM":
        r(name, KEY, str(cmd[1]), str(cmd[2]))
        gone.update(set(items) - set(r.items()))
    elif name == "LMOVE":
        got = r(name, KEY, KEY, cmd[1], cmd[2])
        if got is not None:
            moved.add(got)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.lists(command, max_size=8), st.lists(command, max_size=8))
def test_concurrent_histories_converge_and_keep_every_unremoved_push(n, left, right):
    a, b = pair(*[f"s{i}" for i in range(n)])
    mine_a: set[bytes] = set()
    mine_b: set[bytes] = set()
    gone: set[bytes] = set()
    moved: set[bytes] = set()
    for cmd in left:
        _apply(a, cmd, mine_a, gone, moved)
    for cmd in right:
        _apply(b, cmd, mine_b, gone, moved)
    seen_a, seen_b = a.items(), b.items()
    sync(a, b)
    merged = a.items()
    assert merged == b.items()
    assert a("LLEN", KEY) == len(merged)
    # An item is there once, unless both sides moved it (each gave it a new position:
    # at-least-once, as for pops).
    still = [x for x in merged if x not in moved]
    assert len(set(still)) == len(still)
    # Nothing pushed is lost unless a replica removed it.
    assert (mine_a | mine_b) - gone <= set(merged)
    # Each side's surviving items keep the order that side saw them in.
    for seen in (seen_a, seen_b):
        kept = [x for x in seen if x in set(still)]
        assert [x for x in still if x in set(kept)] == kept
    # And the merged list takes further commands as one list.
    a("LPUSH", KEY, "after")
    sync(a, b)
    assert b("LINDEX", KEY, "0") == b"after" and b.items() == a.items()


# --- a move between two keys whose step fails ---------------------------------------


def _move_failing_at(failing_step: int) -> tuple[bytes, LocalRunner]:
    """LMOVE src dst on one replica whose `failing_step`-th step answers no quorum."""
    from dynredis.commands import collection

    r = LocalRunner()
    r.run("RPUSH", "src", "j1", "j2")
    steps = itertools.count()

    def run_step(step, cb):
        if next(steps) == failing_step:
            cb(("NOQUORUM write needed 2 of 3 replicas, got 1", None))
        else:
            cb((None, r.step(step)))

    out: list[bytes] = []
    plan = collection.PLANS["lmove"]([b"LMOVE", b"src", b"dst", b"LEFT", b"RIGHT"], 2)
    collection.drive(plan, run_step, out.append)
    return out[0], r


def test_a_move_whose_step_fails_leaves_the_item_in_the_source_or_in_both():
    for failing, src, dst in ((0, [b"j1", b"j2"], []), (1, [b"j1", b"j2"], []),
                              (2, [b"j1", b"j2"], [b"j1"])):
        reply, r = _move_failing_at(failing)
        assert reply.startswith(b"-NOQUORUM"), failing
        assert parse(r.run("LRANGE", "src", "0", "-1")) == src, failing
        assert parse(r.run("LRANGE", "dst", "0", "-1")) == dst, failing
    reply, r = _move_failing_at(3)  # no such step: the move completes
    assert reply == b"$2\r\nj1\r\n"
    assert parse(r.run("LRANGE", "src", "0", "-1")) == [b"j2"]
    assert parse(r.run("LRANGE", "dst", "0", "-1")) == [b"j1"]
