"""The order HSCAN, SSCAN and ZSCAN walk a collection in, built a slice per loop turn.

A scan's cursor is a 64-bit hash: a call returns the elements from the cursor on in
hash order, so an element live for a whole scan is returned once, on any node, whatever
is added or removed meanwhile. A key keeps its elements in that order once a scan asked
for it (`ScanOrder`, kept by every change of the key's views). Building it hashed and
sorted every element in the scan's turn: 50-90 ms for 200,000 elements, five times that
for a million. A big collection's order is now built by `ScanBuild` in slices of
`SLICE` elements, one sorted run per slice, over loop turns while the command waits
(collstore.py: as for a walk of the key's records); the order stays a list of runs,
which a scan reads merged.

Changes during a build: an element added then goes to the order's run of additions
(and is noted, so its place in the snapshot is skipped); one removed is taken out of
the runs built so far, and the slices still to come skip elements no longer live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import merge
from typing import Any

from xxhash import xxh3_64_digest

from .quietlist import QuietSortedList

SLICE = 32_768
"""Elements hashed and sorted into one run per step (~8-20 ms; a million elements
make 31 runs, which a scan call merges in well under a millisecond)."""


def scan_entry(element: bytes) -> bytes:
    """An element as a scan of its collection orders it: its 64-bit hash (8 bytes, the
    same on every node and run) then the element; a scan's cursor is such a hash."""
    return xxh3_64_digest(element) + element


def sorted_run(elements: list[bytes]) -> Any:
    """The elements' entries as a SortedList (C loops: a hash, a join and a sort)."""
    return QuietSortedList(map(bytes.__add__, map(xxh3_64_digest, elements), elements))


class ScanOrder:
    """Live elements of one kind as scan entries: sorted runs, the first taking the
    additions made after it was built."""

    __slots__ = ("runs",)

    def __init__(self, runs: list[Any]) -> None:
        self.runs = runs  # runs[0]: later additions

    def __len__(self) -> int:
        return sum(map(len, self.runs))

    def __iter__(self) -> Iterator[bytes]:
        return self.after(b"")

    def add(self, entry: bytes) -> None:
        self.runs[0].add(entry)

    def bury(self, bury: Callable[[Any], None]) -> None:
        """Give the runs to `bury` (graveyard.py: freed over turns)."""
        for run in self.runs:
            bury(run)

    def discard(self, entry: bytes) -> None:
        for run in self.runs:
            run.discard(entry)

    def after(self, start: bytes) -> Iterator[bytes]:
        """The entries from `start` on, in order."""
        runs = self.runs
        if len(runs) == 1:
            return runs[0].irange(start)  # type: ignore[no-any-return]
        return merge(*(run.irange(start) for run in runs if run))


class ScanBuild:
    """The scan order of one kind of a key's elements, built `SLICE` elements a step
    from a snapshot of them (see module docstring)."""

    __slots__ = ("view", "snapshot", "at", "order", "added")

    def __init__(self, view: dict[bytes, Any]) -> None:
        self.view = view  # the kind's live elements (the key's view, as it changes)
        self.snapshot = list(view)
        self.at = 0
        self.order = ScanOrder([QuietSortedList()])
        self.added: set[bytes] = set()  # added since the snapshot

    def step(self) -> bool:
        """Sort the next slice into a run; True once every slice is done."""
        at = self.at
        chunk = self.snapshot[at:at + SLICE]
        self.at = at + SLICE
        view, added = self.view, self.added
        live = [m for m in chunk if m in view and m not in added]
        if live:
            self.order.runs.append(sorted_run(live))
        if self.at >= len(self.snapshot):
            self.snapshot = []
            return True
        return False

    def changed(self, element: bytes, live: bool) -> None:
        """An element of the kind was added (`live`) or removed meanwhile."""
        entry = scan_entry(element)
        if live:
            self.added.add(element)
            self.order.add(entry)
        else:
            self.added.discard(element)
            self.order.discard(entry)
