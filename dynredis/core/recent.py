"""A bounded map that keeps the most recently set keys and forgets the rest in O(1).

The obvious bounded dict, evicting with ``del d[next(iter(d))]``, is quadratic in
CPython: a deletion leaves a hole at the front of the dict's entry array and every
later ``iter(d)`` walks all the holes before the next live entry, until a resize
compacts the table. With 100,000 entries each eviction walked tens of thousands of
holes (30-170 µs), which turned every write of a node holding more keys than its
cache into a crawl. Here two generations of plain dicts rotate instead: keys are set
in the young one; when it is full it becomes the old one and the previous old one is
dropped whole.

Holds at most `size` entries, and always the last ``size // 2`` keys set. Values must
not be None (`get` answers None for a missing key).
"""

from __future__ import annotations

from typing import Any


class RecentMap:
    __slots__ = ("young", "old", "half")

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError("size must be at least 2")
        self.half = size // 2
        self.young: dict[Any, Any] = {}
        self.old: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        """The value set last for `key`, or None. A hit in the old generation moves
        the key to the young one, so keys in use stay."""
        value = self.young.get(key)
        if value is None:
            value = self.old.get(key)
            if value is not None:
                self.set(key, value)
        return value

    def peek(self, key: Any) -> Any:
        """Like `get`, but the key does not count as used (for scans such as the hash
        tree fold, which would otherwise push the keys in use out)."""
        value = self.young.get(key)
        return self.old.get(key) if value is None else value

    def __contains__(self, key: Any) -> bool:
        return key in self.young or key in self.old

    def set(self, key: Any, value: Any) -> None:
        young = self.young
        young[key] = value
        if len(young) >= self.half:
            self.old = young
            self.young = {}

    def pop(self, key: Any) -> None:
        """Forget `key` (no error if absent)."""
        self.young.pop(key, None)
        self.old.pop(key, None)

    def clear(self) -> None:
        self.young = {}
        self.old = {}

    def __len__(self) -> int:
        """Entries held (a key set in both generations counts twice)."""
        return len(self.young) + len(self.old)
