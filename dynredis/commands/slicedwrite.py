"""Writing a whole collection from a plan a slice of items per step (issue 12).

RENAME, COPY, MOVE and every *STORE command write their destination from items a plan
holds (read from other keys). Written in one step, a collection of 200,000 elements
was one command of 200,000 record versions: it stalled the coordinator while it wrote
them and every replica while it applied them (2.4-6.7 s each, bench/keystalls.py, 3
nodes on a loaded 2-core machine). Here the first step replaces the destination with
the first `SLICE` items (with RENAMENX/COPY's "only if it does not exist" and the
expiry: whatever that step did for the whole), and each later step adds the next
slice (`dyn.append`: a list's items at its tail, so the list keeps its order). Each
step is a command of its own on the destination, so other clients' commands run
between them, on every node.

So a reader may see the destination part-written. Another client's write between two
steps acts on the part written so far: an element it adds stays, among the stored
ones (a list item pushed at the tail sits between two slices); once the key is gone
(deleted, expired) or holds another type, the remaining slices are dropped, as if that
write came after the whole store. The command's reply is unchanged.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any

import msgpack

from ..core.collview import KeyView
from ..core.viewpin import ViewPin
from .collection import Built, Snapshot, add_items, internal_step, store_args

# Items a step writes. With 2,048, the longest stall per node during a 200,000-element
# RENAME/COPY was 45-90 ms on a loaded 2-core machine; with 1,024, 30-60 ms, for 10-45%
# more time end to end (a quorum round per step).
SLICE = 1024

Step = list[bytes]
Steps = Generator[Step, Any, Any]


class Pairs(Sequence[Any]):
    """(name, value) pairs kept as two flat lists (a hash's fields, a sorted set's
    members, as dyn.dumpcols reads them): a slice builds its pairs only when taken."""

    __slots__ = ("names", "values")

    def __init__(self, names: list[Any], values: list[Any]) -> None:
        self.names = names
        self.values = values

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return list(zip(self.names[i], self.values[i], strict=True))
        return (self.names[i], self.values[i])


class PinnedList(Snapshot):
    """A list's items as a read saw them: its positions copied then (C speed), their
    values looked up through a pin of its view (core/viewpin.py: a value changed or
    removed since reads as it was) a slice at a time, as the steps writing them are
    sent. Looked up in the read's turn, a million items held the coordinator 45 ms of
    CPU idle, 79-99 ms at load 8 (RENAME/COPY's dyn.dumpcols, KeyView.list_values)."""

    __slots__ = ("positions", "pin")

    def __init__(self, positions: list[Any], pin: ViewPin) -> None:
        self.positions = positions
        self.pin = pin

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.pin.values(self.positions[i])
        return self.pin.values([self.positions[i]])[0]

    def listed(self) -> list[Any]:
        return self.pin.values(self.positions)

    def release(self) -> None:
        self.pin.release()
        self.positions = []


class Ranked(Sequence[Any]):
    """A sorted set's (score, member) pairs as (member, score * weight) pairs, each
    slice turned when taken (ZUNIONSTORE's copy of one key, ZRANGESTORE: a million
    pairs turned in one turn held the node ~100 ms, and the collector's passes over
    them as much again). A weighted score that is NaN (inf * 0) is 0, as Redis'."""

    __slots__ = ("ranked", "weight")

    def __init__(self, ranked: list[Any], weight: float = 1.0) -> None:
        self.ranked = ranked
        self.weight = weight

    def __len__(self) -> int:
        return len(self.ranked)

    def __getitem__(self, i: Any) -> Any:
        part = self.ranked[i] if isinstance(i, slice) else [self.ranked[i]]
        w = self.weight
        if w == 1.0:
            out = [(m, s) for s, m in part]
        else:
            out = [(m, 0.0 if x != x else x) for m, x in ((m, w * s) for s, m in part)]
        return out if isinstance(i, slice) else out[0]


def split(items: Sequence[Any]) -> tuple[Sequence[Any], Iterator[Sequence[Any]]]:
    """The first slice (written by the step that replaces the key; empty for no items)
    and the slices of the rest, in order, of `SLICE` items each (the last fewer), each
    taken when its step is sent (a slice of `Pairs` builds its pairs then)."""
    size = SLICE
    return items[:size], (items[i:i + size] for i in range(size, len(items), size))


def append_args(key: bytes, t: str, items: Sequence[Any]) -> Step:
    return [b"dyn.append", key, t.encode(), msgpack.packb(list(items))]


def append_rest(key: bytes, t: str, rest: Iterable[Sequence[Any]]) -> Steps:
    """The steps adding `rest`'s slices after a first step wrote the key; they stop at
    the first that finds the key no longer a collection of type `t`."""
    for part in rest:
        still = yield append_args(key, t, part)
        if not still:
            return


def store_steps(key: bytes, t: str, items: Sequence[Any]) -> Steps:
    """A *STORE's write of `items` into `key` as a collection of type `t` (no items:
    its delete), whatever it held; returns how many were stored."""
    head, rest = split(items)
    stored = yield store_args(key, t, list(head))
    if stored:
        yield from append_rest(key, t, rest)
    return len(items) if stored else 0


@internal_step("dyn.append")
def build_append(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.append, key, type, msgpack(items)] -> 1 if added (to a collection of that
    type: the one an earlier step of the plan started), 0 if the key is gone or holds
    another type now (nothing written)."""
    key, t = args[1], args[2].decode()
    items = msgpack.unpackb(args[3], use_list=False)

    def op(v: KeyView) -> Any:
        if v.type() != t:
            return 0
        add_items(v, t, items)
        return 1

    return key, op
