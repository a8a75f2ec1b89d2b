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

The object cache (RecentBytes), set on every write of every replica, keeps a plain dict
and the order of its keys in a deque beside it: a new key costs a dict insert and an
append (an OrderedDict's insert allocates and links a node: ~850 instructions against
~300), eviction a popleft and a dict pop. A key forgotten by `pop` stays in the deque,
counted stale, until eviction reaches it and skips it (its stale places always come
before its live one, so the order stays exact); the deque is rebuilt from the dict when
stale keys outnumber the live ones, so it never holds more than twice the entries plus
a constant.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final


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


# What a cached entry costs beyond its key's and value's bytes: its dict slot and
# OrderedDict link, and the headers of two bytes objects.
ENTRY_OVERHEAD: Final = 160
NO_LIMIT: Final = 1 << 60  # a short int still (compiled code: no big-int arithmetic)
# Stale keys RecentBytes.order may hold beyond twice its entries before it is rebuilt.
STALE_SLACK: Final = 1024


class RecentBytes:
    """A RecentMap of bytes values bounded by count and by bytes (the node's object
    cache): it holds the last `size` entries set, fewer if they take more than
    `max_bytes` (0: no bound by bytes). A value that would take more than an eighth of
    `max_bytes` is not kept at all (any older copy of its key is dropped), so one large
    value never empties the cache of the small ones."""

    __slots__ = ("entries", "order", "stale", "size", "max_bytes", "limit", "largest",
                 "held")

    def __init__(self, size: int, max_bytes: int = 0) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self.max_bytes = max_bytes
        self.limit = max_bytes or NO_LIMIT  # the bound by bytes
        self.largest = max_bytes >> 3 if max_bytes else NO_LIMIT  # the largest entry kept
        self.held = 0  # bytes of the entries, overhead included
        self.entries: dict[bytes, bytes] = {}
        # The keys in the order they were set when not held, and how many places in
        # it are stale, by key (forgotten by pop since).
        self.order: deque[bytes] = deque()
        self.stale: dict[bytes, int] = {}

    def get(self, key: bytes) -> bytes | None:
        """The value set last for `key`, or None."""
        return self.entries.get(key)

    def __contains__(self, key: bytes) -> bool:
        return key in self.entries

    def set(self, key: bytes, value: bytes, old: bytes | None) -> None:
        """Cache `value` for `key`. `old` is what the caller read for the key just
        before (from this cache, or from the store when it was not cached; None if
        nothing): it is what the cache holds for the key if it holds anything, so the
        set costs one operation, not a lookup to learn the size it replaces."""
        cost = len(key) + len(value) + ENTRY_OVERHEAD
        if cost > self.largest:
            if old is not None:
                self.pop(key)
            return
        entries = self.entries
        n = len(entries)
        entries[key] = value  # a key set again keeps its place: FIFO
        if len(entries) > n:
            self.order.append(key)
            self.held += cost
            if n >= self.size or self.held > self.limit:
                self.shrink()
        else:
            self.held += len(value) - (len(old) if old is not None else 0)
            if self.held > self.limit:
                self.shrink()

    def shrink(self) -> None:
        """Forget the oldest entries until within both bounds."""
        entries = self.entries
        order = self.order
        stale = self.stale
        while entries and (len(entries) > self.size or self.held > self.limit):
            key = order.popleft()
            if stale and key in stale:
                left = stale.pop(key) - 1
                if left:
                    stale[key] = left
                continue
            value = entries.pop(key)
            self.held -= len(key) + len(value) + ENTRY_OVERHEAD

    def resize(self, max_bytes: int, bury: Callable[[Any], None] | None = None) -> None:
        """A new bound by bytes (CONFIG SET). One the entries held may not fit in (below
        what they take, or a smaller largest entry) empties the cache, its entries given
        to `bury` if any (core/graveyard.py frees them over turns): evicting 100,000
        entries one at a time, after testing each against the new largest size, held a
        node's loop 52 ms of CPU."""
        largest = self.largest
        self.max_bytes = max_bytes
        self.limit = max_bytes or NO_LIMIT
        self.largest = max_bytes >> 3 if max_bytes else NO_LIMIT
        if self.held > self.limit or self.largest < largest:
            self.clear(bury)

    def pop(self, key: bytes) -> None:
        """Forget `key` (no error if absent). Its place in `order` goes stale; the
        order is rebuilt once stale places outnumber the entries."""
        entries = self.entries
        old = entries.pop(key, None)
        if old is not None:
            self.held -= len(key) + len(old) + ENTRY_OVERHEAD
            if len(self.order) > 2 * len(entries) + STALE_SLACK:
                self.order = deque(entries)  # a dict keeps the order of the live keys
                self.stale = {}
            else:
                self.stale[key] = self.stale.get(key, 0) + 1

    def clear(self, bury: Callable[[Any], None] | None = None) -> None:
        """Forget every entry (`bury`: core/graveyard.py's, to free them over turns)."""
        if bury is None:
            self.entries.clear()
            self.order.clear()
        else:
            bury(self.entries)
            bury(self.order)
            self.entries = {}
            self.order = deque()
        self.stale = {}
        self.held = 0

    def __len__(self) -> int:
        return len(self.entries)
