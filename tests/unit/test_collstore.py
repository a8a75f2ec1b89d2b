"""Collections at the replica level: element records, deltas between replicas, views,
removals and the events a replica can tell its peers it lacks."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis import native
from dynredis.core import elements
from dynredis.core import obj as objmod
from dynredis.core import records as rec
from dynredis.core.collstore import CollectionStore
from dynredis.core.collwrite import KeyWrite
from dynredis.core.obj import max_ts
from dynredis.storage.memory import MemoryEngine

P = 7
KEY = b"coll"
_clock = itertools.count(1)


def stamp(obj) -> int:
    ts = next(_clock)
    if obj is not None:
        ts = max(ts, max_ts(obj) + 1)
    return ts


class Replica:
    def __init__(self, name: bytes) -> None:
        self.name = name
        self.engine = MemoryEngine()
        self.store = CollectionStore(self.engine)
        self.headers: dict[bytes, bytes] = {}

    def write(self, fn):
        w = KeyWrite(self.store, P, KEY, self.name, lambda: b"\x00\x00\x00\x01", stamp)
        fn(w)
        dots = w.finish()
        return dots, list(w.deltas)

    def apply(self, delta) -> None:
        dots, deltas = delta
        for part, rkey, enc, _base in deltas:
            if part == P:
                self.headers[rkey] = enc
            else:
                self.store.merge(part, rkey, enc)
        self.store.applied(P, KEY, dots, [(d[0], d[1]) for d in deltas])

    def view(self, kind: bytes) -> dict:
        return dict(self.store.state(P, KEY).view(kind))

    def reloaded_view(self, kind: bytes) -> dict:
        """The view rebuilt from storage alone."""
        return dict(CollectionStore(self.engine).state(P, KEY).view(kind))


def sync(a: Replica, b: Replica) -> None:
    """Each replica takes what the other has and it lacks (as a coordinator does)."""
    for src, dst in ((a, b), (b, a)):
        theirs = dst.store.summary(P, KEY)
        records, full = src.store.missing(P, KEY, theirs, 1000, lambda src=src:
                                          src.headers.get(KEY))
        for part, rkey, enc in records:
            if enc is None:
                continue
            if part == P:
                dst.headers[rkey] = enc
            else:
                dst.store.merge(part, rkey, enc)
        dst.store.applied_all(P, KEY, src.store.summary(P, KEY))


def test_a_delta_brings_another_replica_to_the_same_view():
    a, b = Replica(b"A"), Replica(b"B")
    d1 = a.write(lambda w: (w.put(rec.HASH, b"f1", b"v1"), w.put(rec.HASH, b"f2", b"v2")))
    d2 = a.write(lambda w: w.put(rec.HASH, b"f1", b"v1b"))
    b.apply(d1)
    b.apply(d2)
    assert a.view(rec.HASH) == b.view(rec.HASH) == {b"f1": b"v1b", b"f2": b"v2"}
    assert b.reloaded_view(rec.HASH) == a.view(rec.HASH)
    # Every event is applied on both: nothing to ask for either way.
    assert a.store.summary(P, KEY) == b.store.summary(P, KEY)
    assert len(a.store.summary(P, KEY)) == 3  # one event per element version


def test_concurrent_values_last_writer_wins_and_an_addition_beats_a_removal():
    a, b = Replica(b"A"), Replica(b"B")
    base = a.write(lambda w: (w.put(rec.SET, b"m", b""), w.put(rec.HASH, b"f", b"0")))
    b.apply(base)
    # Concurrently: A removes m and sets f; B adds m again and sets f later.
    da = a.write(lambda w: (w.put(rec.SET, b"m", None), w.put(rec.HASH, b"f", b"a")))
    db = b.write(lambda w: (w.put(rec.SET, b"m", b""), w.put(rec.HASH, b"f", b"b")))
    a.apply(db)
    b.apply(da)
    for r in (a, b):
        assert r.view(rec.SET) == {b"m": b""}  # B's addition was concurrent: it wins
        assert r.view(rec.HASH) == {b"f": b"b"}  # the later write
        assert r.reloaded_view(rec.SET) == {b"m": b""}
    # A removal that saw the addition removes it everywhere.
    dr = a.write(lambda w: w.put(rec.SET, b"m", None))
    b.apply(dr)
    assert a.view(rec.SET) == b.view(rec.SET) == {}


def test_concurrent_increments_all_count():
    a, b = Replica(b"A"), Replica(b"B")
    b.apply(a.write(lambda w: w.increment(rec.HASH, b"n", 5, 0)))
    da = a.write(lambda w: w.increment(rec.HASH, b"n", 10, 0))
    db = b.write(lambda w: w.increment(rec.HASH, b"n", -3, 0))
    a.apply(db)
    b.apply(da)
    assert a.view(rec.HASH) == b.view(rec.HASH) == {b"n": 12}
    # A float score counts the same way.
    b.apply(a.write(lambda w: w.increment(rec.ZSET, b"m", 1.5, 0.0)))
    da = a.write(lambda w: w.increment(rec.ZSET, b"m", 0.25, 0.0))
    db = b.write(lambda w: w.increment(rec.ZSET, b"m", 2.0, 0.0))
    a.apply(db)
    b.apply(da)
    assert a.view(rec.ZSET) == b.view(rec.ZSET) == {b"m": 3.75}
    assert list(a.store.state(P, KEY).zorder) == [(3.75, b"m")]


def test_a_delete_removes_what_it_observed_and_a_concurrent_addition_survives():
    a, b = Replica(b"A"), Replica(b"B")
    b.apply(a.write(lambda w: [w.put(rec.SET, b"m%d" % i, b"") for i in range(5)]))
    da = a.write(lambda w: w.remove_observed())  # DEL through A
    db = b.write(lambda w: w.put(rec.SET, b"new", b""))  # SADD through B, concurrently
    assert a.view(rec.SET) == {}
    a.apply(db)
    b.apply(da)
    for r in (a, b):
        assert r.view(rec.SET) == {b"new": b""}
        assert r.reloaded_view(rec.SET) == {b"new": b""}
        # The removed elements' records keep only their causal past (no value), so
        # that a late older version is seen as superseded; they are reaped as dead.
        bare = [objmod.decode(e) for k, e in r.store.elements(P, KEY)
                if k != rec.record_key(KEY, rec.SET, b"new")]
        assert len(bare) == 5 and all(not vals for o in bare for _, _, vals in o[0])
    # A late copy of a removed element (anti-entropy from a replica that missed the
    # delete) is not taken back.
    old = rec.record_key(KEY, rec.SET, b"m1")
    assert not a.store.merge(rec.elem_partition(P), old, _version_of(b"A", 1, b""))


def _version_of(actor: bytes, n: int, data: bytes) -> bytes:
    from dynredis.core import obj as objmod

    return objmod.encode((((actor + b"\x00\x00\x00\x01", n, ((1, 0, data),)),), ()))


def test_missing_events_come_from_the_log_or_as_the_whole_key():
    a, b = Replica(b"A"), Replica(b"B")
    deltas = [a.write(lambda w, i=i: w.put(rec.LIST, b"%03d" % i, b"x%d" % i))
              for i in range(10)]
    for d in deltas[:7]:
        b.apply(d)
    records, full = a.store.missing(P, KEY, b.store.summary(P, KEY), 100, lambda: None)
    assert not full
    assert records[0] == (P, KEY, None)  # the header always comes first
    assert [r[1] for r in records[1:]] == [rec.record_key(KEY, rec.LIST, b"%03d" % i)
                                           for i in (7, 8, 9)]
    # Nothing missing the other way (but the header).
    assert b.store.missing(P, KEY, a.store.summary(P, KEY), 100, lambda: None) == (
        [(P, KEY, None)], False)
    # Over the limit, or after a restart (the log is gone): the whole key.
    assert a.store.missing(P, KEY, b.store.summary(P, KEY), 2, lambda: None)[1]
    restarted = CollectionStore(a.engine)
    records, full = restarted.missing(P, KEY, b.store.summary(P, KEY), 100, lambda: None)
    assert full and len(records) == 11  # the (absent) header and ten elements
    sync(a, b)
    assert a.view(rec.LIST) == b.view(rec.LIST)
    assert list(b.store.state(P, KEY).lorder) == [b"%03d" % i for i in range(10)]


ops = st.lists(st.tuples(st.sampled_from(["a", "b"]),
                         st.sampled_from(["add", "rem", "incr", "del", "sync"]),
                         st.integers(0, 4)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(ops, st.randoms())
def test_replicas_converge_whatever_order_deltas_arrive_in(steps, rnd):
    """Two replicas write concurrently; every delta reaches the other replica in a
    random order (some twice); then they sync. Both end with the same views, equal to
    a third replica that got the deltas in yet another order."""
    a, b, c = Replica(b"A"), Replica(b"B"), Replica(b"C")
    inbox = {a: [], b: []}
    everything = []
    for who, op, i in steps:
        r = a if who == "a" else b
        other = b if r is a else a
        if op == "sync":
            sync(a, b)
            continue
        if op == "add":
            d = r.write(lambda w, i=i: w.put(rec.SET, b"m%d" % i, b""))
        elif op == "rem":
            d = r.write(lambda w, i=i: w.put(rec.SET, b"m%d" % i, None))
        elif op == "incr":
            d = r.write(lambda w, i=i: w.increment(rec.HASH, b"f%d" % i, i + 1, 0))
        else:
            d = r.write(lambda w: w.remove_observed())
        inbox[other].append(d)
        everything.append(d)
        if rnd.random() < 0.3 and inbox[other]:
            other.apply(inbox[other].pop(rnd.randrange(len(inbox[other]))))
    for r, pending in inbox.items():
        rnd.shuffle(pending)
        for d in pending + pending[:2]:
            r.apply(d)
    rnd.shuffle(everything)
    for d in everything:
        c.apply(d)
    sync(a, b)
    for kind in (rec.SET, rec.HASH):
        assert a.view(kind) == b.view(kind) == c.view(kind)
        assert a.reloaded_view(kind) == a.view(kind)


def test_concurrent_first_increments_of_a_missing_field_all_count():
    a, b = Replica(b"A"), Replica(b"B")
    da = a.write(lambda w: w.increment(rec.HASH, b"n", 2, 0))
    db = b.write(lambda w: w.increment(rec.HASH, b"n", 3, 0))
    a.apply(db)
    b.apply(da)
    assert a.view(rec.HASH) == b.view(rec.HASH) == {b"n": 5}


class SlicedReplica(Replica):
    """A replica whose driver walks records a slice at a time (collstrip.py), as a
    server's does: `store.step()` runs only when the test says so."""

    def __init__(self, name: bytes) -> None:
        super().__init__(name)
        self.woken = 0
        self.store.wake = self._woken

    def _woken(self) -> None:
        self.woken += 1


def records_of(r: Replica) -> dict:
    return dict(r.store.elements(P, KEY))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"),
                          st.sampled_from(["add", "rem", "del", "read", "step", "deliver",
                                           "ready"]),
                          st.integers(0, 40)), max_size=60),
       st.integers(1, 64))
def test_records_walked_a_slice_at_a_time_end_as_when_walked_at_once(steps, slice_size):
    """A DEL stripped every element record it covered in its own turn (a 200,000-field
    hash froze each replica ~4.6 s). Walked in slices between other writes, deltas and
    reads, every view read is the one a replica walking at once shows, and once the walks
    end the records are the same too."""
    import dynredis.core.collstore as collstore

    saved = collstore.SLICE
    collstore.SLICE = slice_size
    try:
        worlds = [(Replica(b"A"), Replica(b"B")), (SlicedReplica(b"A"), SlicedReplica(b"B"))]
        clocks = [itertools.count(1), itertools.count(1)]
        inboxes: list[dict] = [{0: [], 1: []}, {0: [], 1: []}]

        def write(k: int, r: Replica, op: str, i: int) -> tuple:
            """The same write in world `k`, with that world's timestamps."""
            ts = clocks[k]

            def stamp_k(obj):
                t = next(ts)
                return t if obj is None else max(t, max_ts(obj) + 1)

            w = KeyWrite(r.store, P, KEY, r.name, lambda: b"\x00\x00\x00\x01", stamp_k)
            if op == "setup":
                for j in range(40):
                    w.put(rec.HASH, b"f%d" % j, b"v")
            elif op == "add":
                w.put(rec.HASH, b"f%d" % i, b"x")
            elif op == "rem":
                w.put(rec.HASH, b"f%d" % i, None)
            else:
                w.remove_observed()
            return w.finish(), list(w.deltas)

        for k in (0, 1):
            a, b = worlds[k]
            b.apply(write(k, a, "setup", 0))
        for who, op, i in steps:
            views = []
            for k in (0, 1):
                a, b = worlds[k]
                r, other = (a, b) if who == "a" else (b, a)
                o = 1 if who == "a" else 0
                if op in ("add", "rem", "del"):
                    inboxes[k][o].append(write(k, r, op, i))
                elif op == "deliver" and inboxes[k][o]:
                    other.apply(inboxes[k][o].pop(0))
                elif op == "step" and k == 1:
                    r.store.step()
                elif op == "read":
                    views.append(r.view(rec.HASH))
                elif op == "ready" and (k == 0 or r.store.ready(P, KEY)):
                    # what a command waiting for `ready` reads (no walk finished for it)
                    if k == 1:
                        assert not r.store.states[KEY].building
                    views.append(dict(r.store.states[KEY].view(rec.HASH)) if k else
                                 r.view(rec.HASH))
            if len(views) == 2:
                assert views[0] == views[1]
        for k in (0, 1):
            a, b = worlds[k]
            for o, r in ((0, a), (1, b)):
                for d in inboxes[k][o]:
                    r.apply(d)
        for r in worlds[1]:
            while r.store.step():
                pass
        for x, y in zip(worlds[0], worlds[1], strict=True):
            assert x.view(rec.HASH) == y.view(rec.HASH) == y.reloaded_view(rec.HASH)
            assert not y.store.walks
            # Every record the removal set covers entirely was stripped. (A record with
            # a version not covered may keep a covered version's value, depending on
            # the order a delta and the walk reached it, as it did before walks; reads
            # judge versions by the removal set.)
            removal = y.store.removal(P, KEY)
            assert sorted(records_of(x)) == sorted(records_of(y))
            for enc in records_of(y).values():
                o = objmod.decode(enc)
                if elements.covered(o, removal):
                    assert o == elements.stripped(o)
    finally:
        collstore.SLICE = saved


def test_a_list_emptied_and_pushed_again_keeps_its_order() -> None:
    """Found by the list differential (seeded): a LPOP that empties a list deletes the
    key, which resets its views; they were replaced by new objects while the next
    LPUSH of two items held the old order, so the second item went after the first."""
    from tests.collharness import LocalRunner

    r = LocalRunner()
    for cmd in ((b"RPUSH", b"l1", b"a"), (b"LPOP", b"l1"), (b"LPUSH", b"l1", b"a"),
                (b"LPOP", b"l1"), (b"LPUSH", b"l1", b"a", b"b")):
        r.run(*cmd, proto=2)
    assert r.run(b"LRANGE", b"l1", b"0", b"-1", proto=2) == b"*2\r\n$1\r\nb\r\n$1\r\na\r\n"
    assert r.run(b"LPOP", b"l1", proto=2) == b"$1\r\nb\r\n"


def _filled(r: Replica, fields: int) -> None:
    r.write(lambda w: [w.put(rec.HASH, b"f%d" % i, b"v") for i in range(fields)])


def test_a_command_on_a_big_key_not_in_memory_waits_for_a_walk_not_a_load() -> None:
    """A read of a 200,000-field hash that was not in memory (evicted, or after a
    restart) loaded every record in its own turn. `ready` loads one slice; the rest is
    walked in later turns, this key's walk first, and the key is named in `built` when
    its views are whole. A small key is ready at once."""
    import dynredis.core.collstore as collstore

    a = Replica(b"A")
    _filled(a, 3 * collstore.SLICE + 5)
    fresh = SlicedReplica(b"A")
    fresh.engine = a.engine
    fresh.store = CollectionStore(a.engine)
    fresh.store.wake = fresh._woken
    other = b"other"
    fresh.store.walks[other] = collstore.Walk(  # an older walk, of records since gone
        P, other, collstore.DotSet(), iter([rec.record_key(other, rec.SET, b"%d" % i)
                                            for i in range(10 * collstore.SLICE)]))
    assert fresh.store.ready(P, KEY) is False
    assert fresh.store.waited == {KEY} and fresh.store.built == []
    steps = 0
    while not fresh.store.built:
        assert fresh.store.step()
        steps += 1
    # its walk went first, four slices a turn while waited on
    assert fresh.store.built == [KEY] and steps == 1
    assert other in fresh.store.walks
    assert fresh.store.ready(P, KEY) is True
    st = fresh.store.states[KEY]
    assert not st.building and dict(st.view(rec.HASH)) == a.view(rec.HASH)

    small = SlicedReplica(b"B")
    small.write(lambda w: w.put(rec.HASH, b"f", b"v"))
    small.store = CollectionStore(small.engine)
    small.store.wake = small._woken
    small.woken = 0
    assert small.store.ready(P, KEY) is True and small.woken == 0


def test_a_command_after_a_delete_of_a_big_key_waits_for_the_walk() -> None:
    """After a DEL of a big collection its views are rebuilt by a walk; a command on the
    key (the HSET that makes it again) finished that walk in its own turn. It now waits
    for the walk's slices, and then sees only what survived the DEL."""
    import dynredis.core.collstore as collstore

    r = SlicedReplica(b"A")
    _filled(r, 2 * collstore.SLICE)
    while not r.store.ready(P, KEY):  # (views built for the first read)
        while r.store.step():
            pass
    r.store.built.clear()  # (a coordinator drains it)
    r.write(lambda w: w.remove_observed())
    r.write(lambda w: w.put(rec.HASH, b"new", b"1"))
    assert r.store.ready(P, KEY) is False
    while r.store.step():
        pass
    assert r.store.built == [KEY] and r.store.ready(P, KEY) is True
    assert dict(r.store.states[KEY].view(rec.HASH)) == {b"new": b"1"}


def test_views_being_built_are_not_evicted() -> None:
    """A command waits on a key whose views a walk builds: evicting them midway would
    start the wait over (or load the key in one turn after all)."""
    import dynredis.core.collstore as collstore

    r = SlicedReplica(b"A")
    _filled(r, 2 * collstore.SLICE)
    store = CollectionStore(r.engine, budget=collstore.SLICE // 2)
    store.wake = r._woken
    assert store.ready(P, KEY) is False
    for i in range(5):
        w = KeyWrite(store, P, b"k%d" % i, b"A", lambda: b"\x00\x00\x00\x01", stamp)
        w.put(rec.SET, b"m", b"")
        w.finish()
        store.state(P, b"k%d" % i)
    assert KEY in store.states and store.states[KEY].building
    while store.step():
        pass
    assert store.built == [KEY] and store.ready(P, KEY)
    assert len(store.states[KEY].view(rec.HASH)) == 2 * collstore.SLICE


def test_a_big_state_evicted_is_freed_over_turns_and_read_again_whole() -> None:
    """Evicting a big key's views (past the memory budget) freed its elements in one
    turn; they go to the graveyard now, and the key reads whole when loaded again."""
    from dynredis.core import graveyard

    r = SlicedReplica(b"A")
    _filled(r, 2 * graveyard.SLICE)
    store = CollectionStore(r.engine, budget=graveyard.SLICE)
    store.wake = r._woken
    store.graveyard.wake = r._woken
    while not store.ready(P, KEY):
        while store.step():
            pass
    views = store.states[KEY].views[rec.HASH]
    assert len(views) == 2 * graveyard.SLICE
    store.state(P, b"small")  # over budget: the big key, the oldest, goes
    assert KEY not in store.states and len(store.graveyard) == 1
    steps = 1
    while store.graveyard.step():
        steps += 1
    assert len(views) == 0 and steps == 2  # two slices
    while not store.ready(P, KEY):
        while store.step():
            pass
    assert len(store.states[KEY].view(rec.HASH)) == 2 * graveyard.SLICE


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=120),
       st.integers(0, 120))
def test_the_scan_order_follows_every_add_and_removal_once_built(ops, built_at):
    """KeyState.scan_order: built at any point, it then holds exactly the live elements,
    in digest order, whatever is added or removed; emptying the views drops it."""
    from dynredis.core.collstore import KeyState, scan_entry

    st_ = KeyState(b"k", 0)
    for i, (add, n) in enumerate(ops):
        if i == built_at:
            st_.scan_order(rec.SET)
        st_.set_value(rec.SET, b"m%d" % n, b"%d" % i if add else None)  # (a new value
        st_.set_value(rec.SET, b"m%d" % n, b"%d" % i if add else None)  # or a repeat: no change)
    live = sorted(map(scan_entry, st_.view(rec.SET)))
    assert list(st_.scan_order(rec.SET)) == live
    buried: list = []
    st_.clear_views(buried.append)
    assert st_.scans is None and list(st_.scan_order(rec.SET)) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "rem", "step"]), st.integers(0, 99)),
                max_size=80))
def test_a_big_collections_scan_order_is_built_a_slice_a_turn_whatever_changes(ops):
    """The first HSCAN of a 1,000,000-field hash hashed and sorted them all in its turn
    (~5x the 50-90 ms of 200,000). `ready` with the scan's kind now builds the order one
    slice (scanorder.SLICE elements) a `step`, the command waiting for the key; fields
    added and removed meanwhile are in it or not as when built at once, and each step
    sorted one slice at most."""
    import dynredis.core.collstore as collstore
    import dynredis.core.scanorder as scanorder

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scanorder, "SLICE", 16)
        mp.setattr(collstore, "SCAN_SLICE", 16)
        _scan_order_built_in_slices(ops)


def _scan_order_built_in_slices(ops) -> None:
    import dynredis.core.collstore as collstore

    r = SlicedReplica(b"A")
    store = r.store
    r.write(lambda w: [w.put(rec.HASH, b"f%d" % i, b"v") for i in range(70)])
    while not store.ready(P, KEY):  # (its views, walked in)
        store.step()
    store.built.clear()
    assert not store.ready(P, KEY, rec.HASH)  # 5 slices to go, one done now
    assert KEY in store.waited and r.woken
    st_ = store.states[KEY]
    for op, n in ops:
        if op == "step":
            store.step()
        else:
            r.write(lambda w, op=op, n=n: w.put(rec.HASH, b"f%d" % n, b"w" if op == "add"
                                                else None))
    steps = 0
    while store.step():
        steps += 1
    assert store.built == [KEY] and store.ready(P, KEY, rec.HASH)
    runs = st_.scans[rec.HASH].runs
    assert max(map(len, runs[1:])) <= 16 and st_.scan_builds is None
    live = sorted(map(collstore.scan_entry, st_.view(rec.HASH)))
    assert list(st_.scan_order(rec.HASH)) == live
    r.write(lambda w: w.put(rec.HASH, b"new", b"v"))  # kept once built
    r.write(lambda w: w.put(rec.HASH, b"f3", None))
    assert list(st_.scan_order(rec.HASH)) == sorted(map(collstore.scan_entry,
                                                         st_.view(rec.HASH)))


def test_a_scan_order_being_built_goes_with_the_views() -> None:
    """A DEL while the order is built: the build is dropped with the views, and the
    waiting command goes on (to find the key gone)."""
    import dynredis.core.collstore as collstore

    r = SlicedReplica(b"A")
    store = r.store
    _filled(r, 3 * collstore.SCAN_SLICE // 2)
    while not store.ready(P, KEY):  # (its views, walked in)
        store.step()
    store.built.clear()
    assert not store.ready(P, KEY, rec.HASH) and KEY in store.scan_jobs
    order = store.states[KEY].scan_builds[rec.HASH].order
    store.states[KEY].clear_views(store.graveyard.bury)  # (as a DEL's removal does)
    while store.step():
        pass
    assert store.built == [KEY] and store.ready(P, KEY, rec.HASH)
    assert list(store.states[KEY].scan_order(rec.HASH)) == []
    assert len(order) == 0  # its runs buried


def test_a_restart_in_the_middle_of_a_delete_loses_nothing_and_leaves_nothing() -> None:
    """A DEL of a big collection strips its records over loop turns, and the walk is not
    on disk. A replica restarted half-way shows the key deleted, takes a new write of
    it as written, and the key's next use walks its records again: every record the
    DEL covered ends stripped, what the first walk reached and what it had not."""
    import dynredis.core.collstore as collstore

    r = SlicedReplica(b"A")
    _filled(r, 3 * collstore.SLICE)
    while r.store.step():
        pass
    r.write(lambda w: w.remove_observed())
    r.store.step()  # a slice of three stripped
    removal = r.store.removal(P, KEY)

    def unstripped() -> int:
        return sum(1 for enc in records_of(r).values()
                   if (o := objmod.decode(enc)) != elements.stripped(o)
                   and elements.covered(o, removal))

    assert 0 < unstripped() < 3 * collstore.SLICE
    r.store = CollectionStore(r.engine)  # the restart
    r.store.wake = r._woken
    assert r.store.ready(P, KEY) is False  # views rebuilt by a walk, over turns
    while r.store.step():
        pass
    assert r.store.ready(P, KEY) is True
    assert dict(r.store.states[KEY].view(rec.HASH)) == {}
    r.write(lambda w: w.put(rec.HASH, b"new", b"1"))
    while r.store.step():
        pass
    assert r.view(rec.HASH) == r.reloaded_view(rec.HASH) == {b"new": b"1"}
    assert unstripped() == 0


def test_a_write_or_a_sync_of_a_big_key_not_in_memory_walks_none_of_its_records() -> None:
    """A replica whose views of a big key were evicted rebuilt them by a walk of every
    record as soon as a write to the key or a peer's sync reached it (a million
    elements: ~7 s of CPU on every node, for each command on a key walked out again).
    Those need only the applied events and the removal set; the views are built when
    a command reads the key, and then hold every element."""
    import dynredis.core.collstore as collstore

    a = Replica(b"A")
    _filled(a, 3 * collstore.SLICE)
    fresh = SlicedReplica(b"A")
    fresh.engine = a.engine
    fresh.store = CollectionStore(a.engine)
    fresh.store.wake = fresh._woken
    w = KeyWrite(fresh.store, P, KEY, b"A", lambda: b"\x00\x00\x00\x01", stamp)
    w.put(rec.HASH, b"new", b"v")
    w.finish()
    assert fresh.store.missing_events(P, KEY, fresh.store.summary(P, KEY), 10,
                                      lambda: None) is not None
    assert fresh.store.walks == {} and fresh.woken == 0
    assert fresh.store.states[KEY].viewless and fresh.store.loaded_elements == 0
    assert fresh.store.ready(P, KEY) is False
    while not fresh.store.ready(P, KEY):
        while fresh.store.step():
            pass
    st = fresh.store.states[KEY]
    assert len(st.view(rec.HASH)) == 3 * collstore.SLICE + 1
    assert st.view(rec.HASH)[b"new"] == b"v"
    assert fresh.store.loaded_elements == 3 * collstore.SLICE + 1


def _merged_in_bulk(r: Replica, delta: tuple) -> None:
    """Apply a coordinator's delta as a replica's `cw` does (CollectionStore.merge_key)."""
    dots, deltas = delta
    r.store.merge_key(P, KEY, [(d[0], d[1], d[2]) for d in deltas],
                      lambda enc: r.headers.__setitem__(KEY, enc))
    r.store.applied(P, KEY, dots, [(d[0], d[1]) for d in deltas])


def _counting(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[int] | None:
    """Count the calls of a method (the per-element way, which the bulk ways avoid);
    None where the class is compiled (compiled callers reach its method directly, so a
    patched one would count nothing): the test then runs again pure (`_counted_pure`)."""
    if native.running() == "compiled":
        return None
    calls = [0]
    method = getattr(cls, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return method(*args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


def _counted_pure(request: pytest.FixtureRequest) -> None:
    """Where the classes run compiled (their calls not countable), the test again in a
    pure process (DYNREDIS_PURE=1), where every count is checked."""
    if native.running() != "compiled":
        return
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
        cwd=request.config.rootpath, env={**os.environ, "DYNREDIS_PURE": "1"},
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("kind", [rec.HASH, rec.ZSET])
def test_a_copy_over_a_name_a_removal_left_is_written_and_merged_in_bulk(
        kind: bytes, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """A RENAME back to the name it came from (or a COPY, a *STORE, a refill after a DEL)
    writes over records a removal stripped bare: each slice's versions were made by the
    coordinator and merged by every replica one element at a time (a RENAME of a
    200,000-field hash back cost each node 60% more CPU than the first). Now in the C
    loops a new name's take: every element reads its new value on both replicas, and
    after a reload from storage, as written one at a time."""
    a, b = Replica(b"A"), Replica(b"B")
    names = [b"e%d" % i for i in range(300)]

    def data(i: int, n: int) -> object:
        return b"v%d" % (i + n) if kind == rec.HASH else elements.score_start(i + n, 7)

    b.apply(a.write(lambda w: w.put_new(kind, names, [data(i, 0) for i in range(300)])))
    b.apply(a.write(lambda w: w.remove_observed()))  # a DEL: a walk strips every record
    assert all(elements.bare(objmod.decode(enc)) for enc in records_of(b).values())
    put = _counting(monkeypatch, KeyWrite, "put")
    merge = _counting(monkeypatch, CollectionStore, "merge")
    left: list[list[int]] = []
    again = names[:200] + [b"new%d" % i for i in range(50)]  # most over bare records
    delta = a.write(lambda w: left.append(w.put_new(kind, again, [data(i, 1) for i in
                                                                  range(250)])))
    _merged_in_bulk(b, delta)
    assert left == [[]] and put in ([0], None) and merge in ([0], None)
    want = {name: (b"v%d" % (i + 1) if kind == rec.HASH else float(i + 1))
            for i, name in enumerate(again)}
    for r in (a, b):
        assert r.view(kind) == want == r.reloaded_view(kind)
    assert records_of(a) == records_of(b)
    _counted_pure(request)


def test_a_walk_strips_and_rebuilds_in_bulk_and_keeps_what_was_written_meanwhile(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """A walk after a DEL (or a RENAME away) strips every record, and one of a key whose
    views were evicted rebuilds them: each record was read, judged and written back one
    at a time (30% of every node's CPU for a RENAME). Now a slice at a time in C loops:
    a write made between two slices stays as written, and the views end as a reload
    from storage shows them."""
    import dynredis.core.collstore as collstore

    a = SlicedReplica(b"A")
    n = 3 * collstore.SLICE + 7
    a.write(lambda w: w.put_new(rec.HASH, [b"f%d" % i for i in range(n)],
                                [b"v"] * n))
    a.write(lambda w: w.remove_observed())
    store_calls = _counting(monkeypatch, CollectionStore, "store")
    assert a.store.step()  # one slice stripped
    a.write(lambda w: w.put(rec.HASH, b"f%d" % (n - 1), b"late"))  # not walked yet
    while a.store.step():
        pass
    assert store_calls in ([1], None)  # the HSET's own; none for the walk's records
    assert a.view(rec.HASH) == {b"f%d" % (n - 1): b"late"} == a.reloaded_view(rec.HASH)
    removal = a.store.removal(P, KEY)
    bare = [objmod.decode(e) for k, e in records_of(a).items() if not k.endswith(b"late")]
    assert sum(map(elements.bare, bare)) == n - 1
    assert all(elements.covered(o, removal) for o in bare if elements.bare(o))
    # the views of a key not in memory, rebuilt by a walk the same way
    c = Replica(b"C")
    c.write(lambda w: w.put_new(rec.HASH, [b"f%d" % i for i in range(n)],
                                [b"v%d" % i for i in range(n)]))
    fresh = CollectionStore(c.engine)
    fresh.wake = lambda: None
    assert fresh.ready(P, KEY) is False
    while fresh.step():
        pass
    assert fresh.ready(P, KEY) is True
    assert dict(fresh.states[KEY].view(rec.HASH)) == c.view(rec.HASH)
    assert fresh.loaded_elements == n
    assert store_calls in ([1], None)
    _counted_pure(request)


def test_many_elements_over_existing_records_are_each_read_once(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """An HSET or SADD of many fields that are there already (or a COPY onto a key
    holding some): the bulk way read and decoded each held record, handed it back, and
    `put` read and decoded it again. Now it writes over what it read: no second read,
    and the versions cover the old ones on every replica as `put`'s did."""
    a, b = Replica(b"A"), Replica(b"B")
    old = [b"f%d" % i for i in range(40)]
    b.apply(a.write(lambda w: w.put_new(rec.HASH, old, [b"v0"] * 40)))
    b.apply(a.write(lambda w: w.put(rec.HASH, b"f3", None)))  # one removed: bare
    names = old + [b"n%d" % i for i in range(10)]
    reads = _counting(monkeypatch, CollectionStore, "get")
    left: list[list[int]] = []
    b.apply(a.write(lambda w: left.append(w.put_new(rec.HASH, names,
                                                    [b"v1"] * len(names), over=True))))
    assert left == [[]] and reads in ([0], None)
    want = dict.fromkeys(names, b"v1")
    for r in (a, b):
        assert r.view(rec.HASH) == want == r.reloaded_view(rec.HASH)
        for enc in records_of(r).values():  # each one version: the old one covered
            entries, anonymous = objmod.decode(enc)
            assert not anonymous and len(entries) == 1 and len(entries[0][2]) == 1
    assert records_of(a) == records_of(b)
    # a repeated name takes `put`'s way, one at a time: the later value wins
    b.apply(a.write(lambda w: w.put_new(rec.HASH, [b"f1", b"f2", b"f1", b"f9"],
                                        [b"x", b"y", b"z", b"w"], over=True)))
    assert {k: a.view(rec.HASH)[k] for k in (b"f1", b"f2", b"f9")} == \
        {b"f1": b"z", b"f2": b"y", b"f9": b"w"} == \
        {k: b.view(rec.HASH)[k] for k in (b"f1", b"f2", b"f9")}
    _counted_pure(request)
