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


def visit(store: Any, walk: Walk, rkey: bytes) -> None:
    """Strip the record if the removal set covers it; else, if the key's views are being
    rebuilt, set its live value there."""
    ep = rec.elem_partition(walk.p)
    enc = store.engine.get(ep, rkey)
    if enc is None:
        return
    obj = objmod.decode(enc)
    st = store.states.get(walk.key)
    removal = st.removal if st is not None else walk.removal
    if elements.covered(obj, removal):
        bare = objmod.encode(elements.stripped(obj))
        if bare != enc:
            store.store(ep, rkey, bare)
        return
    if st is not None and st.building:
        _, kind, element = rec.split(rkey)
        before = st.size
        st.set_value(kind, element, elements.value(obj, removal))
        store.loaded_elements += st.size - before
