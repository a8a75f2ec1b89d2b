"""The coordinator's view of a collection key: its type, and a header kept in step
with its elements (a collection exists exactly while it has elements)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core import records as rec
from dynredis.core.collstore import CollectionStore
from dynredis.core.collview import KeyView
from dynredis.storage.memory import MemoryEngine

P, KEY = 3, b"k"


class Coordinator:
    def __init__(self) -> None:
        self.engine = MemoryEngine()
        self.store = CollectionStore(self.engine)
        self.now = 1_000_000
        self.ts = 0

    def stamp(self, obj) -> int:
        self.ts += 1
        if obj is not None:
            self.ts = max(self.ts, objmod.max_ts(obj) + 1)
        return self.ts

    def header(self):
        enc = self.engine.get(P, KEY)
        return objmod.decode(enc) if enc is not None else None

    def write_header(self, data, expire_at):
        old = self.engine.get(P, KEY)
        local = objmod.decode(old) if old is not None else None
        new = dvv.overwrite(local, b"node", (self.stamp(local), expire_at, data))
        enc = objmod.encode(new)
        self.engine.put(P, KEY, enc)
        return enc, old

    def run(self, fn):
        view = KeyView(self.store, P, KEY, self.now, self.header(), self.write_header,
                       b"node", lambda: b"\x00\x00\x00\x01", self.stamp)
        result = fn(view)
        deltas, dots = view.finish()
        return result, deltas, dots


def header_data(c: Coordinator):
    h = c.header()
    if h is None:
        return "absent"
    w = objmod.winner(h)[0]
    return w[2]


def test_the_first_element_makes_a_collection_and_the_last_one_ends_it():
    c = Coordinator()
    t, deltas, dots = c.run(lambda v: (v.put(rec.SET, b"a", b""), v.type())[1])
    assert t == "set" and header_data(c) == ("set",)
    assert [d[0] for d in deltas] == [P, rec.elem_partition(P)]  # header, element
    assert len(dots) == 1  # the element version is the one event
    t, _, _ = c.run(lambda v: v.type())
    assert t == "set"
    _, deltas, _ = c.run(lambda v: v.put(rec.SET, b"a", None))
    assert header_data(c) is None  # a tombstone header went with the removal
    assert c.run(lambda v: v.type())[0] is None
    assert [d[0] for d in deltas] == [rec.elem_partition(P), P]


def test_a_string_key_is_a_string_and_removing_nothing_writes_nothing():
    c = Coordinator()
    c.write_header(b"plain", 0)
    assert c.run(lambda v: v.type())[0] == "string"
    assert c.run(lambda v: v.put(rec.SET, b"x", None))[1] == []


def test_an_expired_collection_is_gone_and_a_new_one_starts_empty():
    c = Coordinator()
    c.run(lambda v: [v.put(rec.HASH, b"f%d" % i, b"v") for i in range(3)])
    enc, _ = c.write_header(("hash",), c.now + 10)  # EXPIRE
    assert c.run(lambda v: (v.type(), v.expire_at()))[0] == ("hash", c.now + 10)
    c.now += 11
    assert c.run(lambda v: (v.type(), v.count(rec.HASH)))[0][0] is None
    c.run(lambda v: v.put(rec.HASH, b"new", b"1"))
    assert c.run(lambda v: (v.type(), v.expire_at(), dict(v.items(rec.HASH))))[0] == (
        "hash", 0, {b"new": b"1"})


def test_delete_removes_elements_and_header():
    c = Coordinator()
    c.run(lambda v: [v.set_score(b"m%d" % i, float(i)) for i in range(4)])
    assert c.run(lambda v: v.count(rec.ZSET))[0] == 4
    _, deltas, _ = c.run(lambda v: v.delete())
    assert c.run(lambda v: v.type())[0] is None
    kinds = sorted(rec.kind_of(d[1]) if d[0] != P else b"header" for d in deltas)
    assert kinds == [rec.REMOVAL, b"header"]
    # What is left of the elements is their causal past only (reaped later as dead).
    assert all(not vals for _, e in c.store.elements(P, KEY)
               for _, _, vals in objmod.decode(e)[0])


def test_an_expired_collections_elements_read_as_absent_until_a_write_replaces_them():
    c = Coordinator()
    c.run(lambda v: [v.set_score(b"m%d" % i, float(i)) for i in range(3)])
    c.write_header(("zset",), c.now + 10)  # EXPIRE
    assert c.run(lambda v: (v.count(rec.ZSET), len(v.zorder)))[0] == (3, 3)
    c.now += 11
    # Still stored (a write starts the new collection), but nothing of it reads.
    assert len(list(c.store.elements(P, KEY))) == 3
    seen = c.run(lambda v: (v.type(), v.get(rec.ZSET, b"m1"), v.count(rec.ZSET),
                            list(v.items(rec.ZSET)), list(v.members(rec.ZSET)),
                            list(v.zorder), list(v.lorder)))[0]
    assert seen == (None, None, 0, [], [], [], [])
    assert c.run(lambda v: v.put(rec.ZSET, b"m1", None))[1] == []  # nothing to remove

    def add_then_read(v):
        v.set_score(b"m2", 7.0)
        return v.type(), v.get(rec.ZSET, b"m1"), v.count(rec.ZSET), list(v.zorder)

    assert c.run(add_then_read)[0] == ("zset", None, 1, [(7.0, b"m2")])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"b", b""]), max_size=40), st.booleans(),
       st.integers(0, 45))
def test_list_matches_equal_a_walk_item_by_item(items, forward, most):
    """LPOS, LREM and LINSERT seek with commands/lists.matches (the items holding the
    value found in one C loop, their indexes from their positions' ranks): the same
    (index, position) pairs as comparing every item, from either end, within MAXLEN.
    On a real list's view (compiled, lists.matches takes nothing else)."""
    import dynredis.commands.lists as lists
    from tests.collharness import LocalRunner

    r = LocalRunner()
    if items:
        r.run(b"RPUSH", b"l", *items)
    v = r.view(b"l")
    order = list(v.lorder)
    assert len(order) == len(items)
    walk = list(zip(order, items, strict=True))
    if not forward:
        walk.reverse()
    if most:
        walk = walk[:most]
    want = [(i, p) for i, (p, item) in enumerate(walk) if item == b"a"]
    assert list(lists.matches(v, b"a", forward, most)) == want


def test_holding_finds_the_live_elements_of_a_value_in_order() -> None:
    """KeyView.holding on a real view: the elements whose live value is the one asked,
    sorted; none on an expired key."""
    store = CollectionStore(MemoryEngine())
    st_ = store.state(7, b"k")
    for i, value in enumerate([b"a", b"b", b"a", b"c", b"a"]):
        st_.set_value(rec.LIST, b"%03d" % (9 - i), value)
    v = KeyView(store, 7, b"k", 0, None, lambda d, e: (b"", None), b"A",
                lambda: b"\0\0\0\1", lambda o: 1)
    assert v.holding(rec.LIST, b"a") == [b"005", b"007", b"009"]
    assert v.holding(rec.LIST, b"z") == []
