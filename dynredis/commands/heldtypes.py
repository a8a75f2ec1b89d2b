"""WRONGTYPE for a collection command on a large string, told from its shape.

A collection command (HGET, SMEMBERS, LPUSH ...) runs on the collection path
(core/collcoord.py), whose quorum sync carries the key's header from every replica:
for a key holding a 100 MB string that header is the string, so an HGET that only had
to answer WRONGTYPE made both other replicas read and send the whole value and the
coordinator decode and merge both (0.15-0.5 s on each of the three nodes,
bench/stalls.py). Where this node coordinates the key's plain reads and holds it as a
live large string, a command of a collection type first reads the key's shape (a quorum
read that leaves the value in the store: replicas holding the same copy answer so, and
nothing large moves); if the key holds a live string the answer is WRONGTYPE, as the
collection path would have given. Anything else (the key changed, replicas differ
about it, it is gone) runs the command on the collection path as before.

The commands of one client keep their order: a read issued here completes before one
issued later (the answers come over the same links in order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import obj as objmod
from ..core.shape import Unread


def ours(node: Any, key: bytes) -> bool:
    """Whether this node coordinates `key`'s plain reads and writes, and the key is not
    (and was not) a collection here (whose writes take the collection path)."""
    # (the set first: every collection command asks, and a collection is known)
    return key not in node.coll.store.known and node.route(node.partition(key)).local


def large(data: Any) -> bool:
    return type(data) is Unread or (type(data) is bytes and len(data) >= objmod.LARGE_VALUE)


def large_here(node: Any, key: bytes) -> bool:
    """Whether this node's copy of `key` is a live large string (a look at its shape,
    the value left in the store unless cached)."""
    obj, _ = node.local.get_shape(node.partition(key), key)
    sib = objmod.read_value(obj, node.now)
    return sib is not None and large(sib[2])


def run_typed(node: Any, key: bytes, if_string: Any, run: Callable[[], None],
              wrong: Callable[[], None], r: int | None) -> None:
    """`run()` the command on the collection path, or `wrong()` when `key` holds a live
    large string and the command answers the same for any string (`if_string` not
    None: collection.on_string), known from a read of its shape (see module
    docstring)."""
    if if_string is None or not (ours(node, key) and large_here(node, key)):
        run()
        return
    read_shape(node, key, lambda value, obj: wrong(), run, r)


def read_shape(node: Any, key: bytes, found: Callable[[Any, Any], None],
               run: Callable[[], None], r: int | None) -> None:
    """A quorum read of `key`'s shape (the value left in the store): `found(its value,
    the object)` if it holds a live string (the value's bytes, or a large one's
    Unread), else `run()` (the key changed, replicas differ about it, it is gone, or it
    became a collection here)."""

    def read(res: tuple[str | None, Any]) -> None:
        err, obj = res
        if err is None and key not in node.coll.store.known:
            sib = objmod.read_value(obj, node.now)
            if sib is not None and (type(sib[2]) is bytes or type(sib[2]) is Unread):
                found(sib[2], obj)
                return
        run()

    node.get(key, read, r, False)
