"""A replica's collections: element records in storage, their live views in memory,
and which update events it has applied.

Storage is the truth (`records.py` says where each piece lives). For a collection in
use, a `KeyState` keeps what commands read: each element's live value, plus the order
a sorted set's scores or a list's positions give, so a read or an update costs the same
at ten elements and at a million (a dict probe, or a sorted-list step). Every change of
an element record goes through `CollectionStore` (replication, read repair, hints handed
off, anti-entropy, reaping), which keeps a loaded view in step; a view not in memory is
rebuilt from one prefix scan of the key's records when next used, and views are evicted
least recently used beyond a budget of elements.

The store also keeps, per key, the set of update events this replica has applied (a
`DotSet`, persisted in the key's local record) and a bounded log of which records the
recent ones wrote. A coordinator compares its set with its peers' before it answers:
what they have and it lacks comes over as the records those events wrote (or, when the
log does not reach back that far, as the whole key), so replies are those of a replica
holding every acknowledged update, at the cost of a few bytes when replicas agree.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from functools import partial
from itertools import islice, repeat
from operator import is_, itemgetter
from typing import Any

import msgpack

from . import clock as dvv
from . import elements
from . import obj as objmod
from . import records as rec
from .clock import Clock
from .collstrip import SLICE, Walk, record_keys, visit
from .dotset import Dot, DotSet
from .graveyard import SLICE as GRAVE_SLICE
from .graveyard import Graveyard
from .quietlist import QuietSortedList
from .scanorder import SLICE as SCAN_SLICE
from .scanorder import ScanBuild, ScanOrder, scan_entry, sorted_run
from .viewpin import ViewPin

LOG_SIZE = 4096  # recent events remembered per key (what a peer may ask for)
DEFAULT_BUDGET = 2_000_000  # elements held in loaded views, all keys together

Record = tuple[int, bytes, bytes | None]  # (partition, record key, encoding or None)


def encode_dotset(ds: DotSet) -> bytes:
    """The set's msgpack, never headed as an object of HEADED_FROM bytes is: a set with
    hundreds of events past a gap (a removal's parts applied out of order) failed to
    encode (its pack is no clock) and `decode_dotset` reads plain msgpack."""
    return objmod.pack(ds.pack())


def decode_dotset(data: bytes | None) -> DotSet:
    if not data:
        return DotSet()
    return DotSet.unpack(msgpack.unpackb(data, use_list=False))


class KeyState:
    """One collection key at this replica."""

    __slots__ = ("key", "p", "summary", "removal", "views", "zorder", "lorder", "log",
                 "size", "building", "viewless", "scans", "scan_builds", "pins")

    def __init__(self, key: bytes, p: int) -> None:
        self.key = key
        self.p = p
        self.summary = DotSet()
        self.removal = DotSet()
        # kind -> element -> live value (bytes, int, or a float score)
        self.views: dict[bytes, dict[bytes, Any]] = {}
        # (untracked by the collector: quietlist.py)
        self.zorder: Any = QuietSortedList()  # (score, member) of live sorted-set members
        self.lorder: Any = QuietSortedList()  # positions of live list items
        self.log: OrderedDict[Dot, list[tuple[int, bytes]]] = OrderedDict()
        self.size = 0  # live elements, all kinds
        # The views are being rebuilt by a walk of the records (collstrip.py): reads
        # finish it first.
        self.building = False
        # Its views are not held at all (`CollectionStore.meta`: a write or a peer's
        # sync needs only the applied events and the removal set); built when a command
        # reads the key (`ready`, `state`), by a walk.
        self.viewless = False
        # kind -> (scan hash, element) of its live elements, in order: built by the
        # first HSCAN/SSCAN/ZSCAN of a big collection (`scan_order`, or over loop turns
        # by a build in `scan_builds`: scanorder.py), then kept.
        self.scans: dict[bytes, ScanOrder] | None = None
        self.scan_builds: dict[bytes, ScanBuild] | None = None
        # Snapshots of a kind's view held by replies being sent (viewpin.py), weakly.
        self.pins: list[weakref.ref[ViewPin]] | None = None

    def clear_views(self, bury: Callable[[Any], None]) -> None:
        """Empty the views (a removal covering them, or the state let go of): the
        orders in place, as a command may hold one (a list's order while it pushes)
        across the write that clears them; a big map of elements to values (read afresh
        by each access) is replaced. What they held goes to `bury` (core/graveyard.py:
        freed over turns)."""
        views = self.views
        pinned = self._detach_pins()
        for kind, v in views.items():
            if kind in pinned:
                views[kind] = {}  # (the pins' now, freed when they are released)
            elif len(v) > GRAVE_SLICE:
                bury(v)
                views[kind] = {}
            else:
                v.clear()
        bury(self.zorder)
        bury(self.lorder)
        if self.scans is not None:
            for order in self.scans.values():
                order.bury(bury)
            self.scans = None
        if self.scan_builds is not None:
            for build in self.scan_builds.values():
                build.order.bury(bury)
            self.scan_builds = None  # (the store's step sees them gone)
        self.size = 0

    # --- pins (viewpin.py) -------------------------------------------------------------

    def pin(self, kind: bytes, bury: Callable[[Any], None]) -> ViewPin:
        """A snapshot of the kind's view as it is now, kept until released."""
        pin = ViewPin(kind, self.view(kind), self._unpin, bury)
        if self.pins is None:
            self.pins = []
        self.pins.append(weakref.ref(pin))
        return pin

    def _unpin(self, pin: ViewPin | None) -> None:
        """Forget `pin`, and the pins no reply holds any more."""
        pins = self.pins
        if pins is not None:
            pins[:] = [r for r in pins if r() not in (pin, None)]
            if not pins:
                self.pins = None

    def _pinned_change(self, kind: bytes, element: bytes, old: Any) -> None:
        """An element's value changes: the pins of its kind keep what it was."""
        assert self.pins is not None
        dead = False
        for ref in self.pins:
            pin = ref()
            if pin is None:
                dead = True
            elif pin.kind == kind:
                pin.changed(element, old)
        if dead:
            self._unpin(None)

    def _detach_pins(self) -> set[bytes]:
        """The views are emptied: each pin keeps its map as it is. The kinds pinned."""
        pins, self.pins = self.pins, None
        kinds: set[bytes] = set()
        for ref in pins or ():
            pin = ref()
            if pin is not None:
                pin.detach()
                kinds.add(pin.kind)
        return kinds

    # --- views -----------------------------------------------------------------------

    def view(self, kind: bytes) -> dict[bytes, Any]:
        v = self.views.get(kind)
        if v is None:
            v = self.views[kind] = {}
        return v

    def count(self, kind: bytes) -> int:
        v = self.views.get(kind)
        return len(v) if v else 0

    def kinds(self) -> list[bytes]:
        """Element kinds with at least one live element."""
        return [k for k, v in self.views.items() if v]

    def set_value(self, kind: bytes, element: bytes, value: Any) -> None:
        """Record the element's live value (None: absent) in the views."""
        v = self.view(kind)
        old = v.get(element)
        if old is not None and value is not None and old == value and \
                type(old) is type(value):
            return  # unchanged
        if self.pins is not None and (old is not None or value is not None):
            self._pinned_change(kind, element, old)
        if old is not None:
            del v[element]
            self.size -= 1
            if kind == rec.ZSET:
                self.zorder.discard((old, element))
            elif kind == rec.LIST:
                self.lorder.discard(element)
        if value is None:
            if old is not None and (self.scans is not None or self.scan_builds is not None):
                self._scan_changed(kind, element, False)
            return
        v[element] = value
        self.size += 1
        if kind == rec.ZSET:
            self.zorder.add((value, element))
        elif kind == rec.LIST:
            self.lorder.add(element)
        if old is None and (self.scans is not None or self.scan_builds is not None):
            self._scan_changed(kind, element, True)

    def _scan_changed(self, kind: bytes, element: bytes, live: bool) -> None:
        """An element added (`live`) or removed: its kind's scan order follows."""
        if self.scans is not None and kind in self.scans:
            order = self.scans[kind]
            if live:
                order.add(scan_entry(element))
            else:
                order.discard(scan_entry(element))
        elif self.scan_builds is not None and kind in self.scan_builds:
            self.scan_builds[kind].changed(element, live)

    def scan_order(self, kind: bytes) -> ScanOrder:
        """The live elements of a kind as `scan_entry`s in order: HSCAN/SSCAN/ZSCAN's
        cursor is a hash. Built by the first scan (a big collection's over loop turns
        before it: `start_scan_build`; here at once, finishing a build under way), then
        kept by `set_value`."""
        scans = self.scans
        if scans is None:
            scans = self.scans = {}
        order = scans.get(kind)
        if order is None:
            build = None if self.scan_builds is None else self.scan_builds.get(kind)
            if build is not None:
                while not build.step():
                    pass
                self.scan_built(kind)
                return scans[kind]
            order = scans[kind] = ScanOrder([sorted_run(list(self.views.get(kind, ())))])
        return order

    def scan_ready(self, kind: bytes) -> bool:
        """Whether a scan of the kind can run in this turn: its order is built, or the
        collection is small enough to build it at once."""
        if self.scans is not None and kind in self.scans:
            return True
        return self.count(kind) <= SCAN_SLICE

    def start_scan_build(self, kind: bytes) -> ScanBuild:
        """The build of the kind's scan order over loop turns (started if none is)."""
        builds = self.scan_builds
        if builds is None:
            builds = self.scan_builds = {}
        build = builds.get(kind)
        if build is None:
            build = builds[kind] = ScanBuild(self.view(kind))
        return build

    def scan_built(self, kind: bytes) -> None:
        """The kind's build is done: its order is the key's."""
        builds = self.scan_builds
        build = None if builds is None else builds.pop(kind, None)
        if build is None:
            return  # (the views were emptied meanwhile)
        if not builds:
            self.scan_builds = None
        if self.scans is None:
            self.scans = {}
        self.scans[kind] = build.order

    def add_new(self, kind: bytes, names: list[bytes], values: list[Any]) -> None:
        """`set_value` of elements the views do not hold (no record of them existed),
        none of value None, in C loops where the order allows."""
        v = self.view(kind)
        if self.pins is not None:  # (they were absent)
            for element in names:
                self._pinned_change(kind, element, None)
        before = len(v)
        v.update(zip(names, values, strict=True))
        self.size += len(v) - before
        if kind == rec.ZSET:
            deque(map(self.zorder.add, zip(values, names, strict=True)), 0)
        elif kind == rec.LIST:
            deque(map(self.lorder.add, names), 0)
        if self.scans is not None or self.scan_builds is not None:
            for element in names:
                self._scan_changed(kind, element, True)

    def note(self, dots: list[Dot], written: list[tuple[int, bytes]]) -> None:
        """Log which records the applied events of one command wrote (together)."""
        log = self.log
        # (a plain loop, compiled: for a command's one event it costs a quarter of
        # update(zip(...)), whose iterator objects were 15% of a replica's samples
        # under HSET; no slower for a plan step's 1,024)
        for dot in dots:
            log[dot] = written
        while len(log) > LOG_SIZE:
            log.popitem(False)


def merged_record(rkey: bytes, old: bytes, new: bytes) -> bytes:
    """Two versions of one record joined, as a replica keeping both for another (a
    hint) would: removal records as the union of their events, elements as DVVSets."""
    if rec.kind_of(rkey) == rec.REMOVAL:
        joined = decode_dotset(old)
        joined.update(decode_dotset(new))
        return encode_dotset(joined)
    return objmod.encode(dvv.sync(objmod.decode(old), objmod.decode(new)))


def _over_bare(old: bytes | None, new: Clock) -> bool:
    """Whether `new` supersedes the record `old` (None: none) holds, a bare one (its
    causal past, no version): merged, they are `new`."""
    if old is None:
        return True
    local = objmod.decode(old)
    return elements.bare(local) and dvv.sync(local, new) == new


class _Direct:
    """Records written straight to the engine (a store without a node around it)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def put_record(self, p: int, key: bytes, enc: bytes) -> None:
        self.engine.put(p, key, enc)

    def delete_record(self, p: int, key: bytes) -> None:
        self.engine.delete(p, key)


class CollectionStore:
    """Element records of every collection this node replicates, and their views."""

    def __init__(self, engine: Any, records: Any = None, budget: int = DEFAULT_BUDGET,
                 graveyard: Graveyard | None = None) -> None:
        self.engine = engine
        # Element and removal records are written through `records` (the node's
        # LocalStore: it notes them for the anti-entropy trees); default the engine.
        self.records = records if records is not None else _Direct(engine)
        self.budget = budget
        self.graveyard = graveyard if graveyard is not None else Graveyard()
        self.states: OrderedDict[bytes, KeyState] = OrderedDict()
        self.loaded_elements = 0
        # Walks of keys' records in progress, oldest first (collstrip.py); `wake`, when
        # set by the driver, is called when one is queued while none was, and the
        # driver then calls `step()` in later loop turns. Without it walks run at once.
        self.walks: dict[bytes, Walk] = {}
        self.wake: Callable[[], None] | None = None
        # Keys a command waits on until their views are built (`ready`): their walks go
        # first; `built` lists those whose wait ended (the coordinator drains it).
        self.waited: set[bytes] = set()
        self.built: list[bytes] = []
        # Keys whose removal is made over turns (KeyView.remove_step): the element
        # records a peer's version was merged into since, with what they held before.
        self.watched: dict[bytes, dict[bytes, bytes | None]] = {}
        # Scan orders being built over loop turns (scanorder.py), by key: its state and
        # the element kind; a slice a `step`.
        self.scan_jobs: dict[bytes, tuple[KeyState, bytes]] = {}
        # Keys with a local record (they are or were collections here), by partition.
        self.known: set[bytes] = set()
        for p in engine.partitions():
            if rec.is_local_partition(p):
                for key, _ in engine.scan(p):
                    self.known.add(key)

    # --- loading ---------------------------------------------------------------------

    def has(self, key: bytes) -> bool:
        """True if the key is or was a collection on this replica (a plain string's
        writes then take the collection path, which removes the elements)."""
        return key in self.known

    def ready(self, p: int, key: bytes, scan_kind: bytes | None = None,
              views: bool = True) -> bool:
        """True if the key's views can be read in this turn (and, with `scan_kind`, the
        scan order of that kind of its elements; without `views`, for a command that
        reads none of them, only the applied events: always). Else (a big collection not
        in memory, or whose views a walk rebuilds after a DEL; a big collection's first
        scan) a walk builds them in later turns, this key's first, and the key is put
        in `built` when they are: a command then waits for its key without holding the
        node. Loading or finishing a walk of 200,000 records in the command's own turn
        froze the node for most of a second."""
        if self.wake is None:
            return True  # walks run at once
        if not views:
            self.meta(p, key)
            self.waited.discard(key)
            return True
        st = self.states.get(key)
        if st is None:
            st = self._load(p, key, SLICE)
        elif st.viewless:
            self._build(st)
            self._advance(key, SLICE)
        elif st.building:
            self._advance(key, SLICE)
        if not st.building:
            if scan_kind is not None and not st.scan_ready(scan_kind):
                return self._scan_job(key, st, scan_kind)
            self.waited.discard(key)
            return True
        self.waited.add(key)
        return False

    def _scan_job(self, key: bytes, st: KeyState, kind: bytes) -> bool:
        """Build the kind's scan order in later turns (a slice now); False."""
        build = st.start_scan_build(kind)
        if key not in self.scan_jobs:
            self.scan_jobs[key] = (st, kind)
            build.step()
        self.waited.add(key)
        if self.wake is not None:
            self.wake()
        return False

    def _scan_step(self) -> None:
        """One slice of the oldest scan order being built; at its end the key's
        command goes on."""
        key, (st, kind) = next(iter(self.scan_jobs.items()))
        build = None if st.scan_builds is None else st.scan_builds.get(kind)
        if build is None or build.step():  # (None: the views were emptied meanwhile)
            del self.scan_jobs[key]
            st.scan_built(kind)
            self._unwait(key)

    def state(self, p: int, key: bytes) -> KeyState:
        """The key's state with its views, loaded from storage if not in memory."""
        st = self.states.get(key)
        if st is not None:
            if st.viewless:
                self._build(st)
            if st.building:
                self.finish(key)
            self.states.move_to_end(key)
            return st
        return self._load(p, key, None)

    def _load(self, p: int, key: bytes, limit: int | None) -> KeyState:
        """Load the key's state from storage; with `limit`, a key of more element
        records than that has the rest of its views built by a walk (building)."""
        if limit is not None and key in self.walks:
            return self._build(self.meta(p, key))  # a walk that strips is under way:
            # start it over, building the views as it goes
        st = KeyState(key, p)
        engine = self.engine
        st.summary = decode_dotset(engine.get(rec.local_partition(p), key))
        ep = rec.elem_partition(p)
        pre = rec.prefix(key)
        removal_rk = pre + rec.REMOVAL
        # The removal record sorts first among the key's records (its kind is 0x00),
        # so it is known before any element is judged.
        left = -1 if limit is None else limit
        records = engine.scan_prefix(ep, pre)
        for rkey, enc in records:
            if rkey == removal_rk:
                st.removal = decode_dotset(enc)
                continue
            kind = rkey[len(pre) : len(pre) + 1]
            element = rkey[len(pre) + 1 :]
            st.set_value(kind, element, elements.value(objmod.decode(enc), st.removal))
            left -= 1
            if left == 0:
                st.building = True  # the rest by a walk, from where the scan is
                break
        self.states[key] = st
        self.loaded_elements += st.size
        if st.building:
            self._walk(p, key, st.removal, (rk for rk, _ in records))
        self._evict()
        return st

    def meta(self, p: int, key: bytes) -> KeyState:
        """The key's state for what needs only its applied events and removal set (a
        write, a peer's sync): if not in memory, loaded without its views (`viewless`),
        which are built only when a command reads the key. They were rebuilt at once
        by a walk of every record: a replica then walked a million-element key back in
        (~7 s of CPU, in slices) for each step of a plan written to it or read from it
        after its views were evicted, on every node."""
        st = self.states.get(key)
        if st is not None:
            self.states.move_to_end(key)
            return st
        st = KeyState(key, p)
        st.summary = decode_dotset(self.engine.get(rec.local_partition(p), key))
        st.removal = self.removal(p, key)
        st.viewless = True
        self.states[key] = st
        self._evict()  # (never this state: the newest, and _evict keeps the last one)
        return st

    def _build(self, st: KeyState) -> KeyState:
        """Have a walk (re)build the state's views from its records (`building`)."""
        st.viewless = False
        st.building = True
        self._walk(st.p, st.key, st.removal)
        return st

    # --- walks of a key's records (collstrip.py) ----------------------------------------

    def _walk(self, p: int, key: bytes, removal: DotSet,
              it: Iterator[bytes] | None = None) -> None:
        """Walk the key's records from the first (again, if a walk was under way), or
        those `it` yields."""
        self.walks.pop(key, None)
        self.walks[key] = Walk(p, key, removal,
                               record_keys(self.engine, p, key) if it is None else it)
        if self.wake is None:
            self.finish(key)
        elif len(self.walks) == 1:
            self.wake()

    def finish(self, key: bytes) -> None:
        """Run the key's walk to its end now."""
        walk = self.walks.get(key)
        if walk is not None:
            self._run(walk, -1)

    def _advance(self, key: bytes, n: int) -> None:
        """Read up to `n` records of the key's walk now."""
        walk = self.walks.get(key)
        if walk is None:  # (not expected: a building state has its walk)
            self.states[key].building = False
            return
        self._run(walk, n)

    def _run(self, walk: Walk, n: int) -> int:
        """Read up to `n` records of `walk` (-1: all), ending it if none is left; how
        many of the `n` are left unread."""
        while True:
            size = SLICE if n < 0 else min(n, SLICE)
            rkeys = list(islice(walk.it, size))
            if rkeys:
                visit(self, walk, rkeys)
            if n > 0:
                n -= len(rkeys)
            if len(rkeys) < size:
                break
            if n == 0:
                return 0
        self._done(walk)
        return n

    def _done(self, walk: Walk) -> None:
        if self.walks.get(walk.key) is walk:
            del self.walks[walk.key]
        st = self.states.get(walk.key)
        if st is not None and st.building:
            st.building = False
            self._evict()
        self._unwait(walk.key)

    def _unwait(self, key: bytes) -> None:
        """A waited key's walk ended: its views stay loaded (not evicted) until its
        command ran (`ready`) or the coordinator found none waiting (`release`)."""
        if key in self.waited:
            self.built.append(key)

    def release(self, key: bytes) -> None:
        self.waited.discard(key)

    def _next_walk(self) -> Walk:
        """A walk a command waits on, else the oldest."""
        for key in self.waited:
            walk = self.walks.get(key)
            if walk is not None:
                return walk
        return next(iter(self.walks.values()))

    def step(self) -> bool:
        """Read up to SLICE records of the queued walks (those commands wait on first,
        then the oldest; four slices a turn while one waits: ~7 µs a record, so a wait
        for a 200,000-record walk is ~0.35 s of turns of ~14 ms); True while any is
        left."""
        budget = SLICE * 4 if self.waited else SLICE
        while self.walks and budget > 0:
            budget = self._run(self._next_walk(), budget)
        if self.scan_jobs:
            self._scan_step()
        return bool(self.walks or self.scan_jobs)

    def _evict(self) -> None:
        """Drop the least recently used views past the budget; never the newest, nor
        one a walk is building or a command waits on."""
        states = self.states
        kept = []
        while self.loaded_elements > self.budget and len(states) > 1:
            key, old = states.popitem(last=False)
            if old.building or key in self.waited:
                kept.append((key, old))
            else:
                self.loaded_elements -= old.size
                self._drop(old)
        for key, old in reversed(kept):
            states[key] = old
            states.move_to_end(key, last=False)

    def forget_summary(self, p: int, key: bytes) -> None:
        """Delete the key's applied-event summary (its partition is dropped here)."""
        self.engine.delete(rec.local_partition(p), key)
        self.known.discard(key)
        self.walks.pop(key, None)
        self._unwait(key)
        st = self.states.pop(key, None)
        if st is not None:
            self.loaded_elements -= st.size
            self._drop(st)

    def forget_partition(self, p: int) -> None:
        """Drop the loaded views of partition `p`'s keys (its records are gone)."""
        for key in [k for k, st in self.states.items() if st.p == p]:
            st = self.states.pop(key)
            self.loaded_elements -= st.size
            self._drop(st)
            self.known.discard(key)
        for key in [k for k, walk in self.walks.items() if walk.p == p]:
            del self.walks[key]
            self._unwait(key)

    def _drop(self, st: KeyState) -> None:
        """A state let go of: a big one's views are freed over turns (core/graveyard.py:
        freeing 200,000 elements at once held the node 20-60 ms)."""
        if st.size > GRAVE_SLICE:
            st.clear_views(self.graveyard.bury)

    def forget(self) -> None:
        """Drop every view and every known key (after a wipe), freed over turns."""
        old, self.states = self.states, OrderedDict()
        self.watched.clear()
        for st in old.values():
            self._drop(st)
        self.graveyard.bury(old)
        self.walks.clear()
        for key in list(self.waited):
            self._unwait(key)
        self.loaded_elements = 0
        self.known.clear()

    # --- records ---------------------------------------------------------------------

    def get(self, p: int, key: bytes, kind: bytes, element: bytes) -> tuple[Clock | None,
                                                                           bytes | None]:
        enc = self.engine.get(rec.elem_partition(p), rec.record_key(key, kind, element))
        if enc is None:
            return None, None
        return objmod.decode(enc), enc

    def encodings(self, ep: int, rkeys: list[bytes]) -> list[bytes | None]:
        """The stored encodings of records of partition `ep` (None where none is)."""
        return list(map(partial(self.engine.get, ep), rkeys))

    def store_new(self, ep: int, key: bytes, kind: bytes, rkeys: list[bytes],
                  names: list[bytes], encs: list[bytes], values: list[Any]) -> None:
        """`store` of records of one key where there were none (`names`: their elements,
        `values` what they read as), in C loops."""
        deque(map(self.records.put_record, repeat(ep, len(rkeys)), rkeys, encs), 0)
        st = self._loaded(key)
        if st is not None:
            before = st.size
            st.add_new(kind, names, values)
            self.loaded_elements += st.size - before

    def store_bare(self, ep: int, key: bytes, rkeys: list[bytes], encs: list[bytes]) -> None:
        """`store` of records of one key stripped bare by a walk (they read as absent),
        in C loops: a loaded view holding one of them drops it."""
        deque(map(self.records.put_record, repeat(ep, len(rkeys)), rkeys, encs), 0)
        st = self._loaded(key)
        if st is None or not st.size:
            return
        at = len(rec.prefix(key))
        before = st.size
        for rkey in rkeys:
            kind, element = rkey[at:at + 1], rkey[at + 1:]
            if element in st.views.get(kind, ()):
                st.set_value(kind, element, None)
        self.loaded_elements += st.size - before

    def _loaded(self, key: bytes) -> KeyState | None:
        """The key's state if its views are held (whole, or being built)."""
        st = self.states.get(key)
        return None if st is None or st.viewless else st

    def store(self, ep: int, rkey: bytes, enc: bytes | None, obj: Clock | None = None
              ) -> None:
        """Write (or, with None, delete) an element record and keep a loaded view in
        step. Not for removal records (see `merge`). `obj`: `enc` decoded, where the
        caller has it (a write of many elements decoded each one it had just encoded)."""
        if enc is None:
            self.records.delete_record(ep, rkey)
        else:
            self.records.put_record(ep, rkey, enc)
        key, kind, element = rec.split(rkey)
        st = self._loaded(key)
        if st is not None:
            before = st.size
            value = None
            if enc is not None:
                value = elements.value(objmod.decode(enc) if obj is None else obj,
                                       st.removal)
            st.set_value(kind, element, value)
            self.loaded_elements += st.size - before

    def merge(self, ep: int, rkey: bytes, incoming: bytes) -> bool:
        """Merge a version of a record from a peer into this replica; True if what this
        replica stores changed. Elements merge as DVVSets; a removal record as the union
        of its events (and the elements it now covers go)."""
        key, kind, _ = rec.split(rkey)
        local = self.engine.get(ep, rkey)
        if self.watched:
            before = self.watched.get(key)
            if before is not None and rkey not in before:
                before[rkey] = local
        if kind == rec.REMOVAL:
            return self.add_removal(rec.base_partition(ep), key, decode_dotset(incoming))
        if local == incoming:
            return False
        removal = self.removal(rec.base_partition(ep), key)
        if local is None:
            merged_obj = objmod.decode(incoming)
            merged = incoming
        else:
            merged_obj = dvv.sync(objmod.decode(local), objmod.decode(incoming))
            merged = objmod.encode(merged_obj)
            if merged == local:
                return False
        if elements.covered(merged_obj, removal):
            merged_obj = elements.stripped(merged_obj)
            merged = objmod.encode(merged_obj)
            if merged == local:
                return False
        self.store(ep, rkey, merged, merged_obj)
        return True

    def merge_key(self, p: int, key: bytes, records: Any,
                  header: Callable[[bytes], None]) -> list[tuple[int, bytes]]:
        """Merge a peer's records of one key, in order (its header through `header`);
        the (partition, record key) of those merged. Runs of element records new here
        (a plan's step: 1,024 members of a copy) are stored in C loops (`merge_new`)."""
        rk_removal = rec.removal_key(key)
        written: list[tuple[int, bytes]] = []
        run: list[tuple[int, bytes, bytes]] = []
        for record in records:
            part, rkey, enc = record
            if enc is None:
                continue
            written.append((part, rkey))
            if part != p and rkey != rk_removal and (not run or run[0][0] == part):
                run.append(record)
                continue
            self._merge_run(key, run)
            run = []
            if part == p:
                header(enc)
            elif rkey == rk_removal:
                self.merge(part, rkey, enc)
            else:
                run.append(record)
        self._merge_run(key, run)
        return written

    def _merge_run(self, key: bytes, run: list[tuple[int, bytes, bytes]]) -> None:
        if len(run) > 1:
            _, rkeys, encs = zip(*run, strict=True)
            if self.merge_new(run[0][0], key, list(rkeys), list(encs)):
                return
        for part, rkey, enc in run:
            self.merge(part, rkey, enc)

    def merge_new(self, ep: int, key: bytes, rkeys: list[bytes], encs: list[bytes]) -> bool:
        """`merge` of element records of one key and kind that this replica holds none
        of (or only bare ones each new version supersedes: a copy written over a name
        a RENAME or DEL left) and no removal covers (a plan's step), in C loops; False,
        having done nothing, if they are not all such."""
        pre = rec.prefix(key)
        at = len(pre)
        if min(map(len, rkeys)) <= at or not all(map(bytes.startswith, rkeys, repeat(pre))):
            return False
        kinds = set(map(itemgetter(at), rkeys))  # (ints: the kind byte)
        if len(kinds) != 1 or len(set(rkeys)) != len(rkeys):
            return False
        objs = list(map(objmod.decode, encs))
        olds = self.encodings(ep, rkeys)
        if not all(map(is_, olds, repeat(None))) and (
                self.watched or not all(map(_over_bare, olds, objs))):
            return False
        values = elements.uncovered_values(objs, self.removal(rec.base_partition(ep), key))
        if values is None or None in values:  # (a removal's version: not in the views)
            return False
        names = list(map(itemgetter(slice(at + 1, None)), rkeys))
        self.store_new(ep, key, bytes([kinds.pop()]), rkeys, names, encs, values)
        return True

    def removal(self, p: int, key: bytes) -> DotSet:
        st = self.states.get(key)
        if st is not None:
            return st.removal
        return decode_dotset(self.engine.get(rec.elem_partition(p),
                                             rec.removal_key(key)))

    def add_removal(self, p: int, key: bytes, events: DotSet) -> bool:
        """Add events to the key's removal set; the element records it now covers are
        stripped down to their causal past by a walk (collstrip.py: O(elements), once
        per replica, not in this turn; the bare records are reaped later as dead). A
        loaded state's views are rebuilt by the same walk. True if the set grew."""
        ep = rec.elem_partition(p)
        rk = rec.removal_key(key)
        current = self.removal(p, key)
        if current.covers(events):
            return False
        grown = current.copy()
        grown.update(events)
        self.records.put_record(ep, rk, encode_dotset(grown))
        st = self.states.get(key)
        if st is not None:
            st.removal = grown
        if st is not None and not st.viewless:
            self.loaded_elements -= st.size
            st.clear_views(self.graveyard.bury)
            st.building = True
        self.known.add(key)
        self._walk(p, key, grown)
        return True

    # --- applied events --------------------------------------------------------------

    def applied(self, p: int, key: bytes, dots: list[Dot],
                written: list[tuple[int, bytes]]) -> None:
        """Note events this replica has now applied (and the records they wrote)."""
        st = self.meta(p, key)
        add = st.summary.add
        for actor, n in dots:
            add(actor, n)
        st.note(dots, written)
        self.engine.put(rec.local_partition(p), key, encode_dotset(st.summary))
        self.known.add(key)

    def applied_all(self, p: int, key: bytes, events: DotSet) -> None:
        """Note a peer's whole event set as applied (after merging its whole key)."""
        st = self.meta(p, key)
        if st.summary.covers(events):
            return
        st.summary.update(events)
        self.engine.put(rec.local_partition(p), key, encode_dotset(st.summary))
        self.known.add(key)

    def missing(self, p: int, key: bytes, theirs: DotSet, limit: int,
                header: Callable[[], bytes | None]) -> tuple[list[Record], bool]:
        """What a peer whose applied events are `theirs` lacks of the key: the records
        the missing events wrote (current versions), or, when the log does not reach
        back that far or there are more than `limit`, every record (`full` True). The
        key's header (read with `header`: the caller's store holds it) comes first, and
        the removal record rides along whenever it is not empty: neither is an event.
        (A sync answer reads every record over loop turns: collsync.py.)"""
        out = self.missing_events(p, key, theirs, limit, header)
        if out is not None:
            return out, False
        out = [(p, key, header())]
        out.extend(self.element_records(p, key))
        out.extend(self.removal_records(p, key))
        return out, True

    def missing_events(self, p: int, key: bytes, theirs: DotSet, limit: int,
                       header: Callable[[], bytes | None]) -> list[Record] | None:
        """`missing`'s records of the events a peer lacks, or None when they cannot be
        told one by one (every record is to be sent)."""
        st = self.meta(p, key)
        dots = st.summary.missing_from(theirs, limit)
        return None if dots is None else self._written(st, p, dots, header)

    def element_records(self, p: int, key: bytes) -> Iterator[Record]:
        """The key's element records in storage order (not its removal record)."""
        ep = rec.elem_partition(p)
        pre = rec.prefix(key)
        rk = pre + rec.REMOVAL
        for rkey, enc in self.engine.scan_prefix(ep, pre):
            if rkey != rk:
                yield ep, rkey, enc

    def removal_records(self, p: int, key: bytes) -> list[Record]:
        """The key's removal record, if it is not empty."""
        removal = self.meta(p, key).removal
        if not len(removal):
            return []
        return [(rec.elem_partition(p), rec.removal_key(key), encode_dotset(removal))]

    def delta(self, p: int, key: bytes, dots: list[Dot],
              header: Callable[[], bytes | None]) -> list[Record] | None:
        """The records the events `dots` wrote (current versions, header first, the
        removal record if not empty), or None when the log of recent events no longer
        holds one of them: never a walk of the whole key."""
        return self._written(self.meta(p, key), p, dots, header)

    def _written(self, st: KeyState, p: int, dots: list[Dot],
                 header: Callable[[], bytes | None]) -> list[Record] | None:
        seen: set[tuple[int, bytes]] = set()
        for dot in dots:
            written = st.log.get(dot)
            if written is None:
                return None
            seen.update(written)
        out: list[Record] = [(p, st.key, header())]
        for part, rkey in sorted(seen):
            if part != p and rec.kind_of(rkey) != rec.REMOVAL:
                out.append((part, rkey, self.engine.get(part, rkey)))
        if len(st.removal):
            ep = rec.elem_partition(p)
            out.append((ep, rec.removal_key(st.key), encode_dotset(st.removal)))
        return out

    def summary(self, p: int, key: bytes) -> DotSet:
        return self.meta(p, key).summary

    def elements(self, p: int, key: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(record key, encoding) of every element record of the key (not the removal
        record), in storage order."""
        pre = rec.prefix(key)
        rk = pre + rec.REMOVAL
        for rkey, enc in self.engine.scan_prefix(rec.elem_partition(p), pre):
            if rkey != rk:
                yield rkey, enc
