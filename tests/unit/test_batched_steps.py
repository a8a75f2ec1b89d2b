"""A plan's step written and merged as one batch (KeyWrite.put_new, KeyView.set_scores and
append_items, CollectionStore.merge_key): the same views, records and events as the
element-by-element way, whatever the key already held; a replica's run of new records
falls back to merging one by one when it is not all new."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands.collection import add_items
from dynredis.core import elements, listpos, score
from dynredis.core import records as rec
from dynredis.core.collstore import CollectionStore
from dynredis.core.dotset import DotSet
from dynredis.storage.memory import MemoryEngine
from tests.collharness import _RING, LocalRunner
from tests.integration.test_collection_semantics import parse

KEY = b"dst"
P = _RING.partition_of(KEY)


def replica_of(deltas_list, batched: bool, store: CollectionStore | None = None
               ) -> CollectionStore:
    """A replica that applied the coordinator's deltas in order, as CollCoordinator._apply
    does (batched), or record by record."""
    store = store if store is not None else CollectionStore(MemoryEngine())
    for deltas, dots in deltas_list:
        records = [(d[0], d[1], d[2]) for d in deltas]
        if batched:
            written = store.merge_key(P, KEY, records, lambda enc: None)
        else:
            written = []
            for part, rkey, enc in records:
                if part != P:
                    store.merge(part, rkey, enc)
                written.append((part, rkey))
        store.applied(P, KEY, dots, written)
    return store


def views(store: CollectionStore) -> dict:
    st_ = store.state(P, KEY)
    return {kind: dict(st_.view(kind)) for kind in (rec.SET, rec.HASH, rec.ZSET, rec.LIST)
            if st_.view(kind)}


kinds = st.sampled_from(["set", "hash", "zset", "list"])
numbers = st.lists(st.integers(0, 30), max_size=25)
ADD = {"set": "SADD", "hash": "HSET", "zset": "ZADD", "list": "RPUSH"}


def words(t: str, ns: list[int]) -> list[bytes]:
    if t == "hash":
        return [x for n in ns for x in (b"f%d" % n, b"v%d" % n)]
    if t == "zset":
        return [x for n in ns for x in (b"%d" % n, b"m%d" % n)]
    return [b"m%d" % n for n in ns]


def items(t: str, ns: list[int]) -> list:
    if t == "hash":
        return [(b"f%d" % n, b"x%d" % n) for n in dict.fromkeys(ns)]
    if t == "zset":
        return [(b"m%d" % n, n / 2) for n in dict.fromkeys(ns)]
    if t == "set":
        return [b"m%d" % n for n in dict.fromkeys(ns)]
    return [b"i%d" % n for n in ns]


@settings(max_examples=150, deadline=None)
@given(kinds, numbers, numbers, st.booleans())
def test_a_batch_reads_as_the_same_writes_one_by_one(t, before, batch, deleted):
    """Items added to a key that holds some of them already (or held them before a
    DEL): every item is there (a list's after the old ones, in order), and replicas
    merging the batch or merging record by record end with the coordinator's view,
    which storage reloads."""
    r = LocalRunner()
    if before:
        r.run(ADD[t], KEY, *words(t, before))
    if deleted:
        v = r.view(KEY)
        v.delete()
        r.writes.append(v.finish())
    old = [] if deleted else before
    added = items(t, batch)
    v = r.view(KEY)
    add_items(v, t, added)
    r.writes.append(v.finish())
    if t == "list":
        assert parse(r.run("LRANGE", KEY, "0", "-1")) == words(t, old) + added
    elif t == "set":
        assert set(parse(r.run("SMEMBERS", KEY))) == set(added) | set(words(t, old))
    elif t == "hash":
        want = dict(zip(words(t, old)[::2], words(t, old)[1::2], strict=True))
        want.update(added)
        assert dict(r.store.state(P, KEY).view(rec.HASH)) == want
    a = replica_of(r.writes, batched=True)
    b = replica_of(r.writes, batched=False)
    assert views(a) == views(b) == views(r.store)
    assert a.summary(P, KEY) == b.summary(P, KEY) == r.store.summary(P, KEY)
    assert views(CollectionStore(a.engine)) == views(a)


def test_a_replica_merging_a_run_twice_or_after_a_removal_falls_back():
    r = LocalRunner()
    v = r.view(KEY)
    v.put_many(rec.SET, [(b"a", b""), (b"b", b""), (b"c", b"")])
    deltas, dots = v.finish()
    store = replica_of([(deltas, dots)], batched=True)
    records = [(d[0], d[1], d[2]) for d in deltas]
    # The same records again: held already, merged one by one, nothing changes.
    store.merge_key(P, KEY, records, lambda enc: None)
    assert views(store) == {rec.SET: {b"a": b"", b"b": b"", b"c": b""}}
    # A removal covering their events arrives first elsewhere: a fresh replica that
    # took the removal does not bring them back.
    other = CollectionStore(MemoryEngine())
    other.add_removal(P, KEY, DotSet.of(dots))
    other.merge_key(P, KEY, records, lambda enc: None)
    assert views(other) == {}


def test_appended_positions_are_those_pushed_one_at_a_time():
    for tail in (None, listpos.first((b"x", 1)), listpos.after(listpos.first((b"x", 1)),
                                                               (b"x", 2))):
        got = listpos.appended(tail, b"me", 10, 5)
        want = []
        left = tail
        for i in range(5):
            left = listpos.first((b"me", 10)) if left is None else \
                listpos.after(left, (b"me", 10 + i))
            want.append(left)
        assert got == want


def test_fresh_values_are_what_value_reads():
    ts = itertools.count(1)
    datas = [score.start(x, next(ts)) for x in (1.5, -0.0, 3.0)]
    objs = [(((b"a", n, ((9, 0, d),)),), ()) for n, d in enumerate(datas, 1)]
    assert elements.fresh_values(objs, datas) == [elements.value(o, None) for o in objs]
    assert elements.uncovered_values(objs, DotSet()) == [1.5, 0.0, 3.0]
    assert elements.uncovered_values(objs, DotSet.of([(b"a", 2)])) is None


def test_a_replica_that_missed_the_additions_takes_their_removals_as_absent():
    """A run of removals' versions (SREM, a pop) of elements a replica never held (its
    views loaded): new records all, but none of them in the views (LRANGE then failed
    there)."""
    for t, add, remove in (("set", ["SADD", KEY, "a", "b", "c"], ["SREM", KEY, "a", "b"]),
                           ("list", ["RPUSH", KEY, "a", "b", "c"], ["RPOP", KEY, "2"])):
        r = LocalRunner()
        r.run(*add[:2], "z")
        r.run(*add)
        r.run(*remove)
        for batched in (True, False):
            store = replica_of(r.writes[:1], batched)
            kind = rec.KIND_OF_TYPE[t]
            assert len(views(store)[kind]) == 1  # (loaded)
            replica_of(r.writes[2:], batched, store)  # the additions missed
            assert list(views(store)[kind].values()) == [b"z" if t == "list" else b""], t
            assert len(store.state(P, KEY).lorder) == (1 if t == "list" else 0)
