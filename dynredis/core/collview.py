"""What a collection command sees and changes at its coordinator.

A command runs as a function of a `KeyView`, after the coordinator has brought the key
up to date with a read quorum of its replicas: it reads the key's type and elements,
and writes new element versions, as one single-node Redis would. The view keeps the
key's header in step with its elements, so that a collection exists exactly while it
has elements, as in Redis:

- the key's type is its header's (last writer wins among concurrent header versions,
  as for strings): a live collection marker, a string, or nothing (deleted, expired,
  never written). A deleted header with live elements left (an addition concurrent
  with a delete, which removed only what it saw) is a collection of those elements;
- the first element written to a key that is not a collection (deleted or expired)
  starts a new one: every element version seen so far is removed (so nothing of an
  expired collection comes back) and a new header is written, without expiry. Until
  then an expired collection's elements, still stored, read as absent;
- a write that removes the last element deletes the header too.

The view is pure: it reads and writes through the collection store and the two header
functions its driver gives it, and hands back the deltas to replicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, KeysView, Sequence
from itertools import compress, filterfalse, repeat
from operator import eq, is_
from typing import Any

from sortedcontainers import SortedList

from . import clock as dvv
from . import elements, listpos
from . import obj as objmod
from . import records as rec
from .clock import VV, Clock
from .collstore import CollectionStore, KeyState
from .collwrite import Delta, KeyWrite
from .dotset import DotSet
from .viewpin import ViewPin

# header(data, expire_at) -> (new encoding, old encoding): build and store a new version
# of the key's header over the local one, as a string write does.
HeaderWriter = Callable[[Any, int], tuple[bytes, bytes | None]]

# A command removing at least this many elements, and at least BULK_RATIO times as many
# as it leaves, removes them all with one removal record and writes the rest again.
BULK_MIN = 256
BULK_RATIO = 4

# Removal records a removal of part of a collection makes in one loop turn (issue 12):
# ~10-20 µs each on every node, made in later turns (`remove_step`) when there are
# more: none in the command's own turn, which its read and reply fill (SPOP s 250000:
# the first 4,096 beside them made a piece of ~100 ms). 4,096 a turn made pieces of
# 65-76 ms of CPU on the replicas applying them (bench/hostile.py --trace); 2,048 a piece
# of ~34 ms on the coordinator and PING stalls of 150-280 ms on the replicas (three
# nodes busy on two cores, a PING waiting through several pieces), 512 (with the
# collection modules compiled and peers.READ_BUDGET_NS at 8 ms) 9-12 ms and stalls under
# 90 ms, for about as long end to end.
TURN_REMOVALS = 512


class Removals:
    """The removal records a command has still to make: its doomed elements past the
    first turn's, and (`before`, kept by the store) the versions it saw of those a
    peer's version was merged into since: a version merged in since stays, as if
    merged after the removal."""

    __slots__ = ("kind", "names", "before", "at")

    def __init__(self, kind: bytes, names: Sequence[bytes],
                 before: dict[bytes, bytes | None]) -> None:
        self.kind = kind
        self.names = names
        self.before = before
        self.at = 0

_EMPTY: dict[bytes, Any] = {}
_EMPTY_ORDER: Any = SortedList()  # never written


# Fewer elements than this are each `put` (HSET or SADD of one or two): the batch's
# set-up costs more than it saves (HSET of an existing field through KeyWrite.put_new,
# which then read and decoded it twice: 13.5% of the coordinator's samples, `put` 8%).
PUT_NEW_MIN = 4


def _columns(pairs: Iterable[tuple[bytes, Any]]) -> tuple[list[bytes], list[Any]]:
    """Pairs as two lists (C loops)."""
    pairs = pairs if isinstance(pairs, list) else list(pairs)
    if not pairs:
        return [], []
    names, datas = zip(*pairs, strict=True)
    return list(names), list(datas)


class KeyView:
    __slots__ = ("store", "p", "key", "now", "header", "header_writer", "state", "_write",
                 "_new_actor", "_stamp", "_me", "changed_type", "_expired", "_later")

    def __init__(self, store: CollectionStore, p: int, key: bytes, now: int,
                 header: Clock | None, header_writer: HeaderWriter, me: bytes,
                 new_actor: Callable[[], bytes], stamp: Callable[[Clock | None], int],
                 views: bool = True) -> None:
        self.store = store
        self.p = p
        self.key = key
        self.now = now
        self.header = header
        self.header_writer = header_writer
        # Without `views`, the key's state without its elements loaded (a command that
        # reads none: `replace` of the whole key by a string or nothing).
        self.state: KeyState = store.state(p, key) if views else store.meta(p, key)
        self._write: KeyWrite | None = None
        self._me = me
        self._new_actor = new_actor
        self._stamp = stamp
        self.changed_type: str | None = None  # the type this command gave the key
        self._expired = self._expired_header()  # its elements are not to be read
        self._later: Removals | None = None  # removal records left for later turns

    # --- reading ---------------------------------------------------------------------

    def _header_sibling(self) -> objmod.Sibling | None:
        if self.header is None:
            return None
        w = objmod.winner(self.header)
        return w[0] if w is not None else None

    def _expired_header(self) -> bool:
        sib = self._header_sibling()
        return sib is not None and sib[2] is not None and 0 < sib[1] <= self.now

    def type(self) -> str | None:
        """"string", "hash", "set", "zset", "list", or None if the key does not exist."""
        sib = self._header_sibling()
        if sib is not None and sib[2] is not None:
            if sib[1] and sib[1] <= self.now:
                return None  # expired: nothing of it is visible
            kind = rec.marker_type(sib[2])
            if kind is None:
                return "string"
            if self.state.count(rec.KIND_OF_TYPE[kind]):
                return kind
            return None
        kinds = self.state.kinds()
        if kinds:
            return rec.TYPE_OF_KIND[min(kinds)]
        return None

    def header_value(self) -> Any:
        """A string key's value (a counter as its decimal), or None."""
        sib = objmod.read_value(self.header, self.now)
        return sib[2] if sib is not None else None

    def expire_at(self) -> int:
        sib = self._header_sibling()
        if sib is None or sib[2] is None or rec.marker_type(sib[2]) is None:
            return 0
        return sib[1]

    def get(self, kind: bytes, element: bytes) -> Any:
        """An element's live value, or None."""
        if self._expired:
            return None
        return self.state.views.get(kind, _EMPTY).get(element)

    def values_at(self, kind: bytes, elements: Iterable[bytes]) -> list[Any]:
        """The live values of `elements` (None where absent), in their order: one call
        for a range (LRANGE 0 -1 of 200,000 items spent 60% of its time calling `get`),
        one C loop within it."""
        if self._expired:
            return [None for _ in elements]
        return list(map(self.state.views.get(kind, _EMPTY).get, elements))

    def columns(self, kind: bytes) -> tuple[list[bytes], list[Any]]:
        """The live elements of a kind and their values, in the same (no particular)
        order: two copies of references, no pair made per element (HGETALL)."""
        view = _EMPTY if self._expired else self.state.views.get(kind, _EMPTY)
        return list(view), list(view.values())

    def list_values(self) -> list[Any]:
        """The list's values in list order. The view keeps items in the order they were
        put there, which is list order when they were loaded from storage (records sort
        by position) or only ever pushed at the tail: then it is one C copy of the
        values (a million: ~45 ms with the check, where a lookup per position took
        ~200 ms); else those lookups."""
        if self._expired:
            return []
        view = self.state.views.get(rec.LIST, _EMPTY)
        order = self.state.lorder
        if len(view) == len(order) and all(map(is_, view, order)):
            # (item by item, by identity, in C: two lists of a million made to compare
            # them took 90 ms of a loop turn, this 48)
            return list(view.values())
        return list(map(view.get, order))

    def values(self, kind: bytes) -> list[Any]:
        """The live values of a kind, in no particular order (one C copy)."""
        return [] if self._expired else list(self.state.views.get(kind, _EMPTY).values())

    def pin(self, kind: bytes) -> ViewPin:
        """The kind's live elements and values as they are now, for a reply read from
        them over loop turns (viewpin.py); the caller releases it."""
        if self._expired:
            return ViewPin(kind, {}, lambda pin: None, self.store.graveyard.bury)
        return self.state.pin(kind, self.store.graveyard.bury)

    def having(self, kind: bytes, elements: Iterable[bytes], keep: bool) -> list[bytes]:
        """Those of `elements` that are live (`keep`) or absent (not `keep`), in their
        order (SINTER's and SDIFF's filters: one C loop)."""
        view = _EMPTY if self._expired else self.state.views.get(kind, _EMPTY)
        if keep:
            return list(filter(view.__contains__, elements))
        return list(filterfalse(view.__contains__, elements))

    def holding(self, kind: bytes, value: Any) -> list[bytes]:
        """The live elements of a kind whose value equals `value`, sorted (a list's
        positions: in list order): every value compared in one C loop, no element
        looked up (LPOS, LREM and LINSERT of a million items)."""
        view = _EMPTY if self._expired else self.state.views.get(kind, _EMPTY)
        return sorted(compress(view, map(eq, view.values(), repeat(value))))

    def count(self, kind: bytes) -> int:
        return 0 if self._expired else self.state.count(kind)

    def members(self, kind: bytes) -> KeysView[bytes]:
        """The live elements of a kind, without copying them (a random pick from a large
        set walks this; the key must not be written while it is being iterated)."""
        return (_EMPTY if self._expired else self.state.views.get(kind, _EMPTY)).keys()

    def items(self, kind: bytes) -> Iterator[tuple[bytes, Any]]:
        """(element, value) pairs, in no particular order (hashes, sets)."""
        if self._expired:
            return iter(())
        return iter(list(self.state.views.get(kind, _EMPTY).items()))

    def scan(self, kind: bytes, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """About `count` live elements of a kind from hash `cursor` on, in hash order
        (elements sharing a hash are never split between calls), and the cursor to go
        on from (0: none left). An element live for a whole scan is returned once,
        whatever is added or removed meanwhile, on any node (collstore.scan_entry)."""
        if self._expired:
            return 0, []
        out: list[bytes] = []
        last = b""
        for entry in self.state.scan_order(kind).after(cursor.to_bytes(8, "big")):
            h = entry[:8]
            if len(out) >= count and h != last:
                return int.from_bytes(h, "big"), out
            out.append(entry[8:])
            last = h
        return 0, out

    @property
    def zorder(self) -> Any:
        """The sorted set's (score, member) pairs in order (a SortedList: index it)."""
        return _EMPTY_ORDER if self._expired else self.state.zorder

    @property
    def lorder(self) -> Any:
        """The list's positions in order (a SortedList: index it)."""
        return _EMPTY_ORDER if self._expired else self.state.lorder

    # --- writing ---------------------------------------------------------------------

    def _writer(self) -> KeyWrite:
        w = self._write
        if w is None:
            w = self._write = KeyWrite(self.store, self.p, self.key, self._me,
                                       self._new_actor, self._stamp)
        return w

    def _ensure(self, kind: bytes) -> None:
        """Before an element write: start a new collection if the key has none."""
        type_name = rec.TYPE_OF_KIND[kind]
        if self.type() == type_name and self.changed_type is None:
            sib = self._header_sibling()
            if sib is not None and rec.marker_type(sib[2]) == type_name:
                return
        if self.changed_type == type_name:
            return
        w = self._writer()
        if self.type() is None:
            w.remove_observed()
        self._write_header(rec.marker(type_name), 0)
        self.changed_type = type_name

    def _write_header(self, data: Any, expire_at: int) -> None:
        enc, old = self.header_writer(data, expire_at)
        self.header = objmod.decode(enc)
        self._expired = self._expired_header()
        self._writer().header(enc, old)

    def put(self, kind: bytes, element: bytes, data: Any) -> None:
        """Set an element's value (None removes it)."""
        if data is not None:
            self._ensure(kind)
        elif self.get(kind, element) is None:
            return
        self._writer().put(kind, element, data)

    def put_many(self, kind: bytes, pairs: Iterable[tuple[bytes, Any]]) -> None:
        """`put` of many (element, value) pairs, none None (a slice of a COPY or a
        *STORE: the key checked once, not per element)."""
        self._ensure(kind)
        names, datas = _columns(pairs)
        w = self._writer()
        if len(names) < PUT_NEW_MIN:
            for name, data in zip(names, datas, strict=True):
                w.put(kind, name, data)
            return
        w.put_new(kind, names, datas, over=True)

    def remove(self, kind: bytes, doomed: Iterable[bytes], n: int | None = None,
               kept: Callable[[], Iterable[bytes]] | None = None) -> None:
        """Remove these live elements (LTRIM, ZREMRANGEBY*, a pop of a count).

        A removal record per element cost every node ~20 µs each: LTRIM or
        ZREMRANGEBYRANK of 200,000 froze each node 4-5 s. When the command removes most
        of what it sees (BULK_MIN, BULK_RATIO), it removes every element version seen with
        one removal record instead, as DEL does (each replica strips the records later,
        a slice a turn), and writes the few survivors again as new versions (a list item
        at its own position, a member with its score): the key's header, type and expiry
        stay. A concurrent removal of a survivor elsewhere then loses to that rewrite, as
        an addition beats a concurrent removal. A hash's values may be counters: a hash
        takes the bulk way only when nothing survives.

        Else each element gets a removal record: up to TURN_REMOVALS now; more are all
        made by `remove_step`, a turn's worth a call, once the command has run (its
        reply is made from what it saw): the coordinator holds the key's later
        commands meanwhile (collcoord.py). So this is a command's last read or write.

        `n`: how many `doomed` holds (then it may be a lazy iterable, not read on the
        bulk way); `kept`: the elements left, where the caller knows them (outside a
        range), rather than found by elimination."""
        while self.remove_step():
            pass  # (an earlier removal's records first)
        if n is None:
            doomed = doomed if isinstance(doomed, list) else list(doomed)
            n = len(doomed)
        survivors = self.count(kind) - n
        if n < BULK_MIN or survivors * BULK_RATIO > n or (
                survivors and kind not in (rec.LIST, rec.ZSET, rec.SET)):
            # (read `doomed` whole first: it may be a lazy slice of the order it changes;
            # a Sequence is read as the records are made: SPOP's picks, sets.Gathered)
            if not isinstance(doomed, Sequence):
                doomed = list(doomed)
            if len(doomed) > TURN_REMOVALS:
                before = self.store.watched[self.key] = {}
                self._later = Removals(kind, doomed, before)
                return
            for element in doomed:
                self.put(kind, element, None)
            return
        view = self.state.view(kind)
        if not survivors:
            left: list[tuple[bytes, Any]] = []
        elif kept is not None:
            left = [(e, view[e]) for e in kept()]
        else:
            gone = set(doomed)
            left = [(e, value) for e, value in view.items() if e not in gone]
        w = self._writer()
        w.remove_observed()
        for element, value in left:
            if kind == rec.ZSET:
                obj, _ = w.element(rec.ZSET, element)
                w.put(kind, element, elements.score_start(value, self._stamp(obj)))
            else:
                w.put(kind, element, value)

    def removing(self) -> bool:
        """True while `remove` left removal records to make (`remove_step`)."""
        return self._later is not None

    def remove_step(self) -> bool:
        """Make the next TURN_REMOVALS removal records `remove` left (`finish` hands
        them out); True if it made any."""
        later = self._later
        if later is None:
            return False
        self.state = self.store.state(self.p, self.key)  # (the views another key's
        at = later.at                                    # load evicted come back)
        later.at = end = at + TURN_REMOVALS
        self._writer().remove_as_seen(later.kind, later.names[at:end], later.before)
        if end >= len(later.names):
            self._later = None
            self.store.watched.pop(self.key, None)
        return True

    def increment(self, kind: bytes, element: bytes, delta: int | float,
                  start: int | float) -> int | float:
        self._ensure(kind)
        return self._writer().increment(kind, element, delta, start)

    def list_insert(self, left: bytes | None, right: bytes | None, value: bytes) -> bytes:
        """Insert a list item between two neighbouring positions (None: the list's
        head or tail side); returns its position (core/listpos.py)."""
        self._ensure(rec.LIST)
        w = self._writer()
        dot = w.next_dot()
        if left is None and right is None:
            pos = listpos.first(dot)
        elif left is None:
            assert right is not None
            pos = listpos.before(right, dot)
        else:
            pos = listpos.between(left, right, dot)
        w.put(rec.LIST, pos, value)
        return pos

    def append_items(self, tail: bytes | None, items: Sequence[bytes]) -> None:
        """`list_insert` of many items after `tail` (None: into an empty list), in their
        order (a slice of a RENAME or COPY of a list): positions and versions made in
        one batch."""
        self._ensure(rec.LIST)
        w = self._writer()
        actor, n0 = w.next_dot()
        positions = listpos.appended(tail, actor, n0, len(items))
        for i in w.put_new(rec.LIST, positions, items):  # (new positions: none, or all)
            tail = self.list_insert(tail, None, items[i])

    def set_score(self, member: bytes, score: float) -> None:
        """A sorted-set member's score, set (a new lineage: concurrent ZADDs, the
        later wins; see elements.py)."""
        self._ensure(rec.ZSET)
        w = self._writer()
        obj, _ = w.element(rec.ZSET, member)
        w.put(rec.ZSET, member, elements.score_start(score, self._stamp(obj)))

    def set_scores(self, pairs: Iterable[tuple[bytes, float]]) -> None:
        """`set_score` of many (member, score) pairs (a slice of a COPY or *STORE)."""
        self._ensure(rec.ZSET)
        names, scores = _columns(pairs)
        w = self._writer()
        ts = self._stamp(None)  # what `set_score` stamps a member without a record
        start = elements.score_start
        for i in w.put_new(rec.ZSET, names, [start(s, ts) for s in scores]):
            self.set_score(names[i], scores[i])

    def delete(self) -> None:
        """Delete the key: every element seen and the header."""
        w = self._writer()
        w.remove_observed()
        self._write_header(None, 0)
        self.changed_type = "none"

    def replace(self, data: Any, expire_at: int) -> Clock | None:
        """A string write over the whole key (`data` None: its delete): every element
        seen goes, the header takes the value; returns the new header."""
        w = self._writer()
        kind = rec.marker_type(data)
        if kind is not None:
            # EXPIRE, PERSIST: the collection stays, its header takes the new expiry,
            # if it is still that live collection (its header says so: an emptied
            # one's is deleted); else it went since the command read it, nothing to do.
            # No element is read (the views may not be loaded: CollCoordinator.replace).
            sib = self._header_sibling()
            if sib is None or self._expired or rec.marker_type(sib[2]) != kind:
                return self.header
            self._write_header(rec.marker(kind), expire_at)
            return self.header
        w.remove_observed()
        self._write_header(data, expire_at)
        self.changed_type = "none" if data is None else "string"
        return self.header

    def seen(self) -> tuple[DotSet, VV]:
        """What this command sees of the key, for a later `remove_seen`: the element
        events applied here and the header's version vector."""
        vv = dvv.join(self.header) if self.header is not None else ()
        return self.state.summary.copy(), vv

    def remove_seen(self, events: DotSet, header_vv: Iterable[Any]) -> None:
        """Delete what an earlier command saw of the key (`seen`, e.g. RENAME's read of
        its source): the element versions of those events, and the header unless it
        was written since. A version written after that read (an element added or
        changed, a SET or EXPIRE of the key) stays."""
        self._writer().remove_events(events)
        if self.header is None:
            return
        if dict(dvv.join(self.header)) == {bytes(a): n for a, n in header_vv}:
            self._write_header(None, 0)
            self.changed_type = "none"

    def concurrent(self, sample: int) -> tuple[int, int, list[bytes]]:
        """Elements of the key's type whose record holds versions written concurrently
        (through different nodes, or on both sides of a partition) and merged by the
        type's rule: (how many are present, how many are absent (every version a
        removal, e.g. one list item popped by two clients), up to `sample` of the
        present ones: their names, a list's items their values). Reads every record
        of the key: O(elements)."""
        t = self.type()
        if t is None or t == "string":
            return 0, 0, []
        kind = rec.KIND_OF_TYPE[t]
        removal = self.state.removal
        present = absent = 0
        names: list[bytes] = []
        for rkey, enc in self.store.elements(self.p, self.key):
            _, k, element = rec.split(rkey)
            if k != kind:
                continue
            obj = objmod.decode(enc)
            if len(elements.live_siblings(obj, removal)) < 2:
                continue
            live = self.get(kind, element)
            if live is None:
                absent += 1
                continue
            present += 1
            if len(names) < sample:
                names.append(live if kind == rec.LIST else element)
        return present, absent, names

    def wrote(self) -> bool:
        """True once this command has written an element version or removed any (or
        left removal records to make)."""
        return (self._write is not None and bool(self._write.deltas)) or \
            self._later is not None

    def finish(self) -> tuple[list[Delta], list[tuple[bytes, int]]]:
        """The deltas to replicate and their events, after deleting the header of a
        collection this command emptied."""
        w = self._write
        if w is None:
            return [], []
        sib = self._header_sibling()
        st = self.state
        if sib is not None and sib[2] is not None and not (st.viewless or st.building):
            kind = rec.marker_type(sib[2])
            if kind is not None and not st.count(rec.KIND_OF_TYPE[kind]):
                self._write_header(None, 0)
        dots = w.finish()
        self._write = None  # (the records `remove_step` makes next: deltas of their own)
        return w.deltas, dots
