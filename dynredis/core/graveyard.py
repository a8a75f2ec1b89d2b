"""Big structures let go of a slice at a time (Redis' lazy free, in loop turns).

Dropping the last reference to a dict of a million entries frees them all in one C call:
FLUSHALL's drop of a node's hash trees, object cache and collection views held it
100-200 ms. A wipe gives them to the graveyard instead, which empties them a slice per
`step` (the driver calls it in loop turns, with the collection walks, after `wake`).
Taking a container apart at once (listing its entries) would cost about as much as
freeing them, every entry being touched: a buried container is emptied by pops, and so
belongs to the graveyard alone: its owner has put a new one in its place. Without a
driver (`wake` unset: tests, the simulation unless it slices walks) a container is freed
at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat, starmap
from typing import Any

from sortedcontainers import SortedList

# Elements dropped per step: 16,384 entries of a dict of 1.2 million take 1-3 ms.
SLICE = 16_384

_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend  # an iterator run out in C


class Sublists:
    """Lists of elements (a SortedList's sublists, about a thousand elements each; a
    hash tree's buckets of keys), dropped a list at a time: buried as one container, a
    dict of a thousand lists holding a million keys went in one step's pop."""

    __slots__ = ("lists", "n")

    def __init__(self, lists: list[list[Any]]) -> None:
        self.lists = lists
        self.n = sum(map(len, lists))

    def drop(self, most: int) -> int:
        """Drop sublists until about `most` elements went; how many did."""
        k = 0
        lists = self.lists
        while lists and k < most:
            k += len(lists.pop())
        self.n -= k
        return k

    def clear(self) -> None:
        self.lists = []
        self.n = 0

    def __len__(self) -> int:
        return self.n


class Graveyard:
    """Containers waiting to be emptied, the newest last."""

    __slots__ = ("graves", "wake")

    def __init__(self) -> None:
        self.graves: list[Any] = []
        self.wake: Callable[[], None] | None = None

    def bury(self, container: Any) -> None:
        """Free `container` over the coming steps: a dict, a list or a set nobody else
        holds any more, or a SortedList (emptied in place at once). A big value inside
        it (a dict of dicts) is freed whole when its turn comes: bury those apart
        first.

        A small container waits its turn too: a wipe buries a few containers for each
        of hundreds of hash trees, every one under a slice, and clearing each at once
        freed 777k keys' entries in the wipe's own turn (FLUSHALL: 73-117 ms of CPU)."""
        if self.wake is None:
            container.clear()
            return
        if isinstance(container, SortedList):
            if len(container) <= SLICE:
                container.clear()  # (in place: its owner keeps it)
                return
            # Its (private) list of sublists taken, it is left empty in place: a
            # command may hold it (a list's order) across the write that empties it.
            lists = container._lists
            container._lists = []
            container.clear()
            container = Sublists(lists)
        elif not container:
            return
        self.graves.append(container)
        if len(self.graves) == 1:  # (else a step is already coming)
            self.wake()

    def step(self) -> bool:
        """Drop about one slice of elements; True while some are left."""
        left = SLICE
        graves = self.graves
        while graves and left > 0:
            grave = graves[-1]
            n = len(grave)
            k = min(n, left)
            if isinstance(grave, dict):
                # k pops in C loops: a dict's popitem takes its last entry and shortens
                # its table; a set's pop goes on from where the last one stopped. Taking
                # the first k keys instead (islice, then pops) walked over every slot
                # the steps before had emptied: quadratic, 1.2 million entries 296 ms
                # in all, the last steps the longest.
                _consume(starmap(grave.popitem, repeat((), k)))
            elif isinstance(grave, Sublists):
                k = grave.drop(left)
            elif isinstance(grave, list):
                del grave[n - k:]
            else:
                _consume(starmap(grave.pop, repeat((), k)))
            left -= k
            if not grave:
                graves.pop()
        return bool(graves)

    def __len__(self) -> int:
        """Containers still to empty."""
        return len(self.graves)
