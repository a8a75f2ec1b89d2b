"""A bounded map that forgets its oldest entries in O(1): the node's caches.

The obvious bounded dict, evicting with ``del d[next(iter(d))]``, is quadratic in
CPython: a deletion leaves a hole at the front of the dict's entry array and every
later ``iter(d)`` walks all the holes before the next live entry, until a resize
compacts the table. With 100,000 entries each eviction walked tens of thousands of
holes (30-170 µs), which turned every write of a node holding more keys than its
cache into a crawl. An ``OrderedDict`` keeps its order in a linked list instead:
evicting the oldest entry is O(1), and a lookup is one hash probe, as in a dict.

First in, first out: holds the last `size` keys inserted (a key set again keeps its
place, so a set costs one probe). Values must not be None (`get` answers None for a
missing key). Two generations of plain dicts were tried too: a set was a little
cheaper, but a read of a key in the old generation cost two probes and a move,
about 1,000 instructions per replica get when the working set outgrew the young one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class RecentMap:
    __slots__ = ("entries", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self.entries: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        """The value set last for `key`, or None."""
        return self.entries.get(key)

    def __contains__(self, key: Any) -> bool:
        return key in self.entries

    def set(self, key: Any, value: Any) -> None:
        entries = self.entries
        entries[key] = value  # a key set again keeps its place: one probe per set
        if len(entries) > self.size:
            entries.popitem(last=False)

    def pop(self, key: Any) -> None:
        """Forget `key` (no error if absent)."""
        self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)
