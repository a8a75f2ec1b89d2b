"""A node's own replica data: the storage engine plus a bounded cache of encoded objects.

Replicas mostly pass bytes along (answering reads, taking writes of keys they do
not have), so the cache holds encoded bytes only: bytes are invisible to the cyclic
garbage collector, whereas a cache of decoded objects (nested tuples) would make
every collection walk the whole working set. Objects are decoded when a coordinator
or a merge needs them (about a microsecond).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..storage.base import Engine
from . import obj as objmod
from .clock import Clock
from .hints import HINT_PARTITION
from .merkle import PartitionTrees, keyed_hash


class LocalStore:
    """Reads and writes of this node's replicas, through an injected engine."""

    __slots__ = ("engine", "cache", "cache_size", "trees")

    def __init__(self, engine: Engine, cache_size: int = 100_000) -> None:
        self.engine = engine
        self.cache: dict[bytes, bytes] = {}
        self.cache_size = cache_size
        # Anti-entropy hash trees, one per partition, kept in step with every write.
        self.trees = PartitionTrees(keyed=True)
        for p in engine.partitions():
            if p != HINT_PARTITION:
                tree = self.trees[p]
                for key, enc in engine.scan(p):
                    tree.insert(key, keyed_hash(key, enc))

    def get_enc(self, p: int, key: bytes) -> bytes | None:
        enc = self.cache.get(key)
        if enc is None:
            enc = self.engine.get(p, key)
            if enc is not None:
                self._remember(key, enc)
        return enc

    def get(self, p: int, key: bytes) -> tuple[Clock | None, bytes | None]:
        """The decoded object and its bytes, or (None, None)."""
        enc = self.get_enc(p, key)
        if enc is None:
            return None, None
        return objmod.decode(enc), enc

    def put(self, p: int, key: bytes, clock: Clock | None, enc: bytes) -> None:
        self.engine.put(p, key, enc)
        self._remember(key, enc)
        self.trees[p].insert(key, keyed_hash(key, enc))

    def delete(self, p: int, key: bytes) -> None:
        self.engine.delete(p, key)
        self.cache.pop(key, None)
        self.trees[p].delete(key)

    def count(self) -> int:
        """Keys held in replica partitions (tombstones included)."""
        return sum(len(self.trees[p]) for p in self.trees)

    def _remember(self, key: bytes, enc: bytes) -> None:
        cache = self.cache
        if len(cache) >= self.cache_size and key not in cache:
            del cache[next(iter(cache))]
        cache[key] = enc

    def scan(self, p: int) -> Iterator[tuple[bytes, bytes]]:
        return self.engine.scan(p)

    def wipe(self) -> None:
        self.engine.wipe()
        self.cache.clear()
        self.trees.clear()
