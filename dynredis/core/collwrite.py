"""The updates one command makes to one collection key, at its coordinator.

Each new record version gets its own event `(actor, n)`, numbered per key across all
its elements (`dotset.py`): the actor is this node's identity with a suffix drawn when
the key has no event of ours yet (a new life of the key never reuses an old life's
numbers, as `obj` versions do), and `n` follows the highest event of that actor this
replica has applied. A version is built on the coordinator's own record (which, after
the coordinator's sync with its peers, holds every acknowledged update), stored at
once, and kept as a delta for the other replicas: the record's new encoding and the
identity of the version it replaced, so a replica in step takes it without merging.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import is_
from typing import Any

from . import clock as dvv
from . import elements
from . import obj as objmod
from . import records as rec
from .clock import Clock
from .collstore import CollectionStore, KeyState, encode_dotset
from .dotset import Dot, DotSet

# (partition, record key, encoding, identity of the version it replaced or None)
Delta = tuple[int, bytes, bytes, bytes | None]

_UNTOUCHED: Any = object()  # (remove_as_seen: no peer's version merged in)


class KeyWrite:
    """A batch of record versions for one key, applied locally as they are made."""

    __slots__ = ("store", "p", "key", "state", "actor", "next", "dots", "written",
                 "deltas", "stamp")

    def __init__(self, store: CollectionStore, p: int, key: bytes, me: bytes,
                 fresh_suffix: Callable[[], bytes], stamp: Callable[[Clock | None], int]) -> None:
        self.store = store
        self.p = p
        self.key = key
        self.state: KeyState = store.meta(p, key)  # a write reads no view
        summary = self.state.summary
        actor = None
        for a in summary.actors():
            if a.startswith(me) and len(a) == len(me) + 4:
                actor = a
                break
        self.actor: bytes = actor if actor is not None else me + fresh_suffix()
        self.next = summary.top(self.actor) + 1
        self.dots: list[Dot] = []
        self.written: list[tuple[int, bytes]] = []
        self.deltas: list[Delta] = []
        self.stamp = stamp  # an HLC timestamp later than every version of an object

    def next_dot(self) -> Dot:
        """The event the next new version will carry (a list position embeds it)."""
        return (self.actor, self.next)

    def _mint(self) -> int:
        n = self.next
        self.next += 1
        self.dots.append((self.actor, n))
        return n

    # --- elements --------------------------------------------------------------------

    def element(self, kind: bytes, element: bytes) -> tuple[Clock | None, bytes | None]:
        return self.store.get(self.p, self.key, kind, element)

    def put(self, kind: bytes, element: bytes, data: Any) -> None:
        """A new version of an element: `data` (see elements.py), None to remove it."""
        obj, enc = self.element(kind, element)
        if obj is None and data is None:
            return  # nothing to remove
        self._put_over(rec.record_key(self.key, kind, element), data, obj, enc)

    def _put_over(self, rkey: bytes, data: Any, obj: Clock | None, enc: bytes | None
                  ) -> None:
        """`put` of record `rkey` holding `obj` (stored as `enc`), read already."""
        n = self._mint()
        new = dvv.overwrite_at(obj, self.actor, n, (self.stamp(obj), 0, data))
        self._store(rec.elem_partition(self.p), rkey, objmod.encode(new), enc, new)

    def remove_as_seen(self, kind: bytes, names: Sequence[bytes],
                       before: dict[bytes, bytes | None]) -> None:
        """`put` of None to these elements, each over the version the command read
        (`before`: the encodings then of those a peer's version was merged into since):
        a version merged in since stays beside the removal, as when merged after it
        (an addition beats a concurrent removal)."""
        ep = rec.elem_partition(self.p)
        pre = rec.prefix(self.key) + kind
        for element in names:
            old = before.get(pre + element, _UNTOUCHED) if before else _UNTOUCHED
            if old is _UNTOUCHED:
                self.put(kind, element, None)
                continue
            if old is None:
                continue  # (never expected: a doomed element was live)
            obj, enc = self.element(kind, element)
            seen = objmod.decode(old)
            new = dvv.overwrite_at(seen, self.actor, self._mint(),
                                   (self.stamp(obj if obj is not None else seen), 0, None))
            if obj is not None:
                new = dvv.sync(new, obj)
            self._store(ep, rec.record_key(self.key, kind, element), objmod.encode(new),
                        None, new)

    def put_new(self, kind: bytes, names: Sequence[bytes], datas: Sequence[Any],
                over: bool = False) -> list[int]:
        """`put` of those of many elements (no data None; a slice of a COPY or *STORE,
        an HSET or SADD of many) that no record holds yet, or only a bare one (no value:
        stripped by a removal, as a DEL or a RENAME away leaves a key's records until
        they are reaped), all of a new destination's: the versions `put` makes (sharing
        one timestamp), in C loops. Per element in Python, a million cost the
        coordinator ~6 s of CPU in its 1,024-element steps (and a RENAME back to a name
        renamed away from, whose records were all bare, took that way).

        The others: with `over`, `put` here over what was read of them (`put` would read
        and decode each again), and [] is returned; else their positions, left to the
        caller (a list's append or a sorted set's score builds them its own way)."""
        ep = rec.elem_partition(self.p)
        pre = rec.prefix(self.key) + kind
        rkeys = list(map(pre.__add__, names))
        n0 = self.next
        if len(set(names)) != len(names) or None in datas or \
                self.state.removal.top(self.actor) >= n0:  # (removes what is yet to be
            if not over:                                   # minted: never expected)
                return list(range(len(names)))
            for name, data in zip(names, datas, strict=True):
                self.put(kind, name, data)
            return []
        olds = self.store.encodings(ep, rkeys)
        bases: list[Clock | None] = [None] * len(olds)
        fresh = list(map(is_, olds, repeat(None)))
        left: list[int] = []
        held: list[Clock] = []
        if not all(fresh):
            for i in [i for i, new in enumerate(fresh) if not new]:
                old = objmod.decode(olds[i])  # type: ignore[arg-type]
                if elements.bare(old) and all(e[0] != self.actor or e[1] < n0
                                              for e in old[0]):
                    bases[i] = old
                    fresh[i] = True
                else:
                    left.append(i)
                    held.append(old)
            if left:
                all_rkeys, all_datas, all_olds = rkeys, datas, olds
                names = list(compress(names, fresh))
                datas = list(compress(datas, fresh))
                rkeys = list(compress(rkeys, fresh))
                olds = list(compress(olds, fresh))
                bases = list(compress(bases, fresh))
        if rkeys:
            self._put_fresh(ep, kind, names, datas, rkeys, olds, bases)
        if not over or not left:
            return left
        for i, old in zip(left, held, strict=True):
            self._put_over(all_rkeys[i], all_datas[i], old, all_olds[i])
        return []

    def _put_fresh(self, ep: int, kind: bytes, names: Sequence[bytes], datas: Sequence[Any],
                   rkeys: list[bytes], olds: list[bytes | None], bases: list[Clock | None]
                   ) -> None:
        """put_new's elements that no record holds, or only a bare one (`bases`)."""
        count = len(rkeys)
        n0 = self.next
        self.next = n0 + count
        actor = self.actor
        ns = range(n0, n0 + count)
        self.dots.extend(zip(repeat(actor), ns))
        ts = self.stamp(None)  # (a bare record holds no version's time)
        objs = [(((actor, n, ((ts, 0, d),)),), ()) if base is None else
                dvv.overwrite_at(base, actor, n, (ts, 0, d))
                for n, d, base in zip(ns, datas, bases, strict=True)]
        encs = list(map(objmod.encode, objs))
        self.store.store_new(ep, self.key, kind, rkeys, list(names), encs,
                             elements.fresh_values(objs, datas))
        self.written.extend(zip(repeat(ep), rkeys))
        self.deltas.extend(zip(repeat(ep), rkeys, encs,
                               (None if old is None else objmod.identity(old) for old in olds)))

    def increment(self, kind: bytes, element: bytes, delta: int | float,
                  start: int | float) -> int | float:
        """Add `delta` to a counter element (HINCRBY, ZINCRBY), starting from `start` if
        it holds none; returns the new value. Concurrent increments through other nodes
        grow their own entries and all count."""
        obj, enc = self.element(kind, element)
        state = elements.counter_state(obj, self.state.removal)
        ts = self.stamp(obj)
        if state is None:
            # A counter started from nothing shares one lineage everywhere (as INCR of
            # a missing key does), so concurrent first increments all count; one
            # started from a string field's value is a new lineage from that version.
            absent = obj is None or elements.value(obj, self.state.removal) is None
            state = elements.start_state(kind, start, 0 if absent else ts)
        n = self._mint()
        data = elements.incremented(state, self.actor, delta, n)
        new = dvv.overwrite_at(obj, self.actor, n, (ts, 0, data))
        self._store(rec.elem_partition(self.p), rec.record_key(self.key, kind, element),
                    objmod.encode(new), enc, new)
        return elements.state_value(data)

    def _store(self, part: int, rkey: bytes, enc: bytes, old: bytes | None, new: Clock
               ) -> None:
        self.store.store(part, rkey, enc, new)
        self.written.append((part, rkey))
        self.deltas.append((part, rkey, enc, objmod.identity(old) if old is not None else None))

    # --- the whole key ---------------------------------------------------------------

    def remove_observed(self) -> None:
        """Remove every element version this replica holds (a delete or a type change):
        the removal set grows by every event applied here before this write; concurrent
        additions elsewhere, with events not applied here, survive. Call it before the
        write's own new versions."""
        self.remove_events(self.state.summary.copy())

    def remove_events(self, events: DotSet) -> None:
        """Remove the element versions of `events` (what an earlier read of the key
        saw); versions of other events stay."""
        if self.store.add_removal(self.p, self.key, events):
            ep = rec.elem_partition(self.p)
            rkey = rec.removal_key(self.key)
            enc = encode_dotset(self.state.removal)
            self.written.append((ep, rkey))
            self.deltas.append((ep, rkey, enc, None))

    def header(self, enc: bytes, old: bytes | None) -> None:
        """Note a new header version the caller built and stored (its own DVV dot, as a
        string's): it travels with the delta. Headers and removal sets are not events:
        a peer's answer to a coordinator always carries both."""
        self.written.append((self.p, self.key))
        self.deltas.append((self.p, self.key, enc,
                            objmod.identity(old) if old is not None else None))

    def finish(self) -> list[Dot]:
        """Record the events as applied here; the deltas are then ready to send."""
        if self.dots:
            self.store.applied(self.p, self.key, self.dots, self.written)
        return self.dots
