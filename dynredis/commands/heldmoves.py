"""RENAME, RENAMENX, COPY and MOVE of a large string, its value never read whole.

keymoves.py moves a key in three collection steps (read the source, write the
destination, delete from the source what was read). For a string of 100 MB each step's
quorum sync carried the whole value from every replica, and the read copied it out of the
store and through msgpack twice more: 1.1-2.9 s of the coordinator's CPU and stalls of
0.35-1.6 s, where a client's SET of it costs 0.4 s (bench/stalls.py); this way 0.22 s and
70-130 ms, about what the SET's own write costs. Where the node running the plan
is a replica of both keys and the source holds a large value here (LARGE_VALUE or more;
and is not a collection here: collstore.known), the same three steps run on the plain
string paths:

1. `dyn.dumpcols`: a quorum read that leaves the value in the store (Reads.get,
   whole=False: replicas that hold the same answer so); the value is pinned there
   (`Held`, LocalStore.pin) for the next step (a cached one is held as its bytes);
2. `dyn.restore`: a plain write of the destination (Writes.put: a SET, or with nx one
   after a quorum read that found no key, with that read's context), its value copied
   once from the pinned bytes into the new version's encoding;
3. `dyn.unlink`: a quorum read of the source, and a delete with its context if the
   source is as step 1 read it (as KeyView.remove_seen: a value written since stays).

The plan (keymoves.py) is the same; these are step runners (collection.LOCAL_STEPS) that
take the step over when they can, and otherwise run it as before: a source that is small,
a collection, gone or changed by the time it is pinned; a destination or a source handled
elsewhere by then (the value goes as bytes, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from ..core import clock as dvv
from ..core import obj as objmod
from ..core.clock import VV
from ..core.collcoord import FAILED
from ..core.dotset import DotSet
from ..core.filled import COPY_SLICE
from ..core.shape import Unread
from .collection import LOCAL_STEPS, Result
from .heldtypes import large, large_here, ours
from .wholereply import join_in_turns

Answer = Callable[[Result], None]
Fallback = Callable[[list[Any]], None]


class Held:
    """A large string read in step 1: its bytes (a view pinned in the store, or bytes
    when the read had to take it whole), expiry, and the context the read saw (its
    clock's version vector), until `release`."""

    __slots__ = ("view", "pinned", "expire", "ctx")

    def __init__(self, view: Any, pinned: Any, expire: int, ctx: VV) -> None:
        self.view = view
        self.pinned = pinned
        self.expire = expire
        self.ctx = ctx

    def release(self) -> None:
        self.own(b"")

    def own(self, data: bytes) -> None:
        """Hold `data` (a copy of the pinned value, or nothing) instead of the pin."""
        pinned, self.pinned = self.pinned, None
        self.view = data
        if pinned is not None:
            pinned.release()

    def dump(self) -> list[Any]:
        """The step's answer, as dyn.dumpcols' (its value and what it saw: this)."""
        return ["string", self, self.expire, self]


def held_read(node: Any, key: bytes, answer: Answer, fallback: Fallback, r: int | None
              ) -> None:
    """Step 1 (see module docstring): answer a dump holding a `Held`, or None for no key;
    `fallback()` for anything else (the step as before)."""

    def read(res: Result) -> None:
        err, obj = res
        if err is not None:
            answer((err, None))
            return
        sib = objmod.read_value(obj, node.now)
        if sib is None:
            answer((None, [None, None, 0, b""]))
            return
        held = None if key in node.coll.store.known else _hold(node, key, sib, obj)
        if held is None:
            fallback([])
            return
        answer((None, held.dump()))

    node.get(key, read, r, False)


def _hold(node: Any, key: bytes, sib: Any, obj: Any) -> Held | None:
    """The live value `sib` of the object `obj` read, held for step 2; None if it is
    small or cannot be pinned where it was read."""
    data = sib[2]
    if type(data) is Unread:
        pinned = node.pin_value(key, data)
        return None if pinned is None else Held(pinned[0], pinned[1], sib[1], dvv.join(obj))
    if large(data):  # cached, or read whole (replicas differed): bytes
        return Held(data, None, sib[1], dvv.join(obj))
    return None


def held_write(node: Any, key: bytes, nx: bool, held: Held, answer: Answer,
               w: int | None, r: int | None) -> None:
    """Step 2: write `held`'s value to `key` (with `nx`, only if there is no key);
    answer 1 if written, 0 if not. A value pinned in the store and longer than a loop
    turn's copy is first copied out of it over turns (wholereply.join_in_turns): the write
    then makes its version over turns too (core/bigencode.py), which it cannot from a
    view pinned by another (the plan lets it go when it ends, however it ends); written
    from the view, the new version's copy held the loop 55-61 ms per 100 MB."""
    view = held.view
    if held.pinned is None or type(view) is bytes or len(view) <= COPY_SLICE:
        _held_write(node, key, nx, held, answer, w, r)
        return

    def copied(data: bytes | None) -> None:
        if data is None:  # the store closed (the node stops)
            answer((FAILED, None))
            return
        held.own(data)
        _held_write(node, key, nx, held, answer, w, r)

    join_in_turns(node.coll.later, held.pinned, [view], copied)


def _held_write(node: Any, key: bytes, nx: bool, held: Held, answer: Answer,
                w: int | None, r: int | None) -> None:

    def written(res: Result) -> None:
        answer((res[0], None if res[0] is not None else 1))

    if not nx:
        node.put(key, None, held.view, held.expire, written, w)
        return

    def read(res: Result) -> None:
        err, obj = res
        if err is not None:
            answer((err, None))
        elif objmod.read_value(obj, node.now) is not None:
            answer((None, 0))
        else:
            node.put(key, None if obj is None else dvv.join(obj), held.view, held.expire,
                     written, w)

    node.get(key, read, r, False)


def held_delete(node: Any, key: bytes, held: Held, answer: Answer, w: int | None,
                r: int | None) -> None:
    """Step 3: delete `key` if it holds what step 1 read (its clock's version vector is
    the same: nobody wrote it since), with that context; answer 1."""

    def read(res: Result) -> None:
        err, obj = res
        if err is not None:
            answer((err, None))
        elif obj is None or dict(dvv.join(obj)) != dict(held.ctx):
            answer((None, 1))
        else:
            node.put(key, dvv.join(obj), None, 0,
                     lambda res: answer((res[0], None if res[0] is not None else 1)), w)

    node.get(key, read, r, False)


def seen_of(held: Held) -> bytes:
    """What dyn.unlink's collection step takes for what step 1 saw (KeyView.seen):
    no element events, the header's version vector."""
    return msgpack.packb([DotSet().pack(), held.ctx])


# --- the step runners (collection.run_step) ---------------------------------------------


def _dumpcols(node: Any, args: list[Any], answer: Answer, fallback: Fallback,
              r: int | None, w: int | None) -> bool:
    key = args[1]
    if not (ours(node, key) and large_here(node, key)):
        return False
    held_read(node, key, answer, fallback, r)
    return True


def _restore(node: Any, args: list[Any], answer: Answer, fallback: Fallback,
             r: int | None, w: int | None) -> bool:
    held = args[3]
    if type(held) is not Held:
        return False
    key, nx = args[1], args[2] == b"nx"
    if ours(node, key):
        held_write(node, key, nx, held, answer, w, r)
    else:  # the destination is coordinated elsewhere: its value goes as bytes
        fallback([args[0], key, args[2],
                  msgpack.packb(["string", bytes(held.view), held.expire])])
    return True


def _unlink(node: Any, args: list[Any], answer: Answer, fallback: Fallback,
            r: int | None, w: int | None) -> bool:
    held = args[2]
    if type(held) is not Held:
        return False
    key = args[1]
    if ours(node, key):
        held_delete(node, key, held, answer, w, r)
    else:
        fallback([args[0], key, seen_of(held)])
    return True


LOCAL_STEPS[b"dyn.dumpcols"] = _dumpcols
LOCAL_STEPS[b"dyn.restore"] = _restore
LOCAL_STEPS[b"dyn.unlink"] = _unlink
