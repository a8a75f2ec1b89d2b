"""Walks of one collection key's element records, a slice at a time: after its removal
set grows (a DEL, a type change, a RENAME's source), every record it now covers is
stripped to its causal past; and a key whose state is loaded without its views (a
write needs only its applied events) has its views rebuilt.

Both once ran in the write's own turn: a DEL of a 200,000-field hash stripped and
rewrote 200,000 records on every replica (~4.6 s each), froze the nodes and failed
with NOQUORUM. Now the write updates the removal record and the key's state at once
(reads judge every element by the removal set, so nothing covered is ever shown), and
`CollectionStore.step` walks the records in later loop turns. A command on a key whose
views are still being rebuilt waits for that walk, which goes first
(`CollectionStore.ready`); a read without that wait (the simulation's, a test's)
finishes it in its turn (`finish`).

A walk re-reads each record when it reaches it, so writes made meanwhile are never
undone: a record written after the walk started is judged as it is now. A node that
restarts mid-walk keeps covered records unstripped (judged dead by the removal set on
every read; anti-entropy and later merges strip them).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import compress
from operator import itemgetter
from typing import Any

from . import elements
from . import obj as objmod
from . import records as rec
from .dotset import DotSet

# Element records one slice reads (a few ms of decoding and rewriting).
SLICE = 512


class Walk:
    """One key's walk: its records from the first, judged by `removal`."""

    __slots__ = ("p", "key", "removal", "it")

    def __init__(self, p: int, key: bytes, removal: DotSet, it: Iterator[bytes]) -> None:
        self.p = p
        self.key = key
        self.removal = removal
        self.it = it


def record_keys(engine: Any, p: int, key: bytes) -> Iterator[bytes]:
    """The key's element record keys in storage order (not its removal record)."""
    pre = rec.prefix(key)
    rk = pre + rec.REMOVAL
    for rkey, _ in engine.scan_prefix(rec.elem_partition(p), pre):
        if rkey != rk:
            yield rkey


def visit(store: Any, walk: Walk, rkeys: list[bytes]) -> None:
    """Visit some of the walk's records (read afresh: writes made since the walk began
    are judged as they are now): strip those the removal set covers; else, if the key's
    views are being rebuilt, set their live values there. In C loops where the records
    hold one version each (every record a copy or a fill wrote): one record at a time,
    a walk after a RENAME was 30% of every replica's CPU for the command."""
    ep = rec.elem_partition(walk.p)
    encs = store.encodings(ep, rkeys)
    if None in encs:  # (gone since the walk listed them)
        rkeys = [rk for rk, enc in zip(rkeys, encs, strict=True) if enc is not None]
        encs = [enc for enc in encs if enc is not None]
    objs = list(map(objmod.decode, encs))
    st = store.states.get(walk.key)
    removal = st.removal if st is not None else walk.removal
    single = all(map(elements.single, objs))
    if single:
        has = removal.has
        covered = [has(a, n) for a, n, _ in (obj[0][0] for obj in objs)]
    else:
        covered = [elements.covered(obj, removal) for obj in objs]
    if any(covered):
        doomed = list(compress(range(len(objs)), covered))
        bare = [elements.stripped(objs[i]) for i in doomed]
        bare_encs = list(map(objmod.encode, bare))
        changed = [i for i, enc in zip(range(len(doomed)), bare_encs, strict=True)
                   if enc != encs[doomed[i]]]
        store.store_bare(ep, walk.key, [rkeys[doomed[i]] for i in changed],
                         [bare_encs[i] for i in changed])
    if st is None or not st.building:
        return
    if not all(covered):
        live = [i for i, c in enumerate(covered) if not c]
        _rebuild(store, st, [rkeys[i] for i in live], [objs[i] for i in live], removal)


def _rebuild(store: Any, st: Any, rkeys: list[bytes], objs: list[Any], removal: DotSet
             ) -> None:
    """Set the live values of records no removal covers in the views being rebuilt:
    in C loops those of one kind whose element the views do not hold yet."""
    if not rkeys:
        return
    before = st.size
    at = len(rec.prefix(st.key))
    kinds = set(map(itemgetter(at), rkeys))
    values = elements.uncovered_values(objs, removal)
    if values is None or len(kinds) != 1 or None in values:
        for rkey, obj in zip(rkeys, objs, strict=True):
            kind, element = rkey[at:at + 1], rkey[at + 1:]
            st.set_value(kind, element, elements.value(obj, removal))
    else:
        kind = bytes([kinds.pop()])
        names = list(map(itemgetter(slice(at + 1, None)), rkeys))
        view = st.view(kind)
        held = [name in view for name in names]
        if any(held):  # (written since the walk began: set as they are now)
            for i in compress(range(len(names)), held):
                st.set_value(kind, names[i], values[i])
            names = [n for n, h in zip(names, held, strict=True) if not h]
            values = [v for v, h in zip(values, held, strict=True) if not h]
        st.add_new(kind, names, values)
    store.loaded_elements += st.size - before
