"""A node's own replica data: the storage engine plus a cache of decoded objects.

The engine holds encoded bytes. Replicas mostly pass bytes along (answering reads,
taking writes of keys they do not have), so objects are decoded lazily and the
decoded form is cached for the coordinator's read-modify-write path.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..storage.base import Engine
from . import obj as objmod
from .clock import Clock


class LocalStore:
    """Reads and writes of this node's replicas, through an injected engine."""

    __slots__ = ("engine", "cache", "cache_size")

    def __init__(self, engine: Engine, cache_size: int = 100_000) -> None:
        self.engine = engine
        self.cache: dict[bytes, list] = {}  # key -> [clock or None (not decoded), enc]
        self.cache_size = cache_size

    def get_enc(self, p: int, key: bytes) -> bytes | None:
        hit = self.cache.get(key)
        if hit is not None:
            return hit[1]
        enc = self.engine.get(p, key)
        if enc is not None:
            self._remember(key, [None, enc])
        return enc

    def get(self, p: int, key: bytes) -> tuple[Clock | None, bytes | None]:
        """The decoded object and its bytes, or (None, None)."""
        hit = self.cache.get(key)
        if hit is None:
            enc = self.engine.get(p, key)
            if enc is None:
                return None, None
            hit = [None, enc]
            self._remember(key, hit)
        if hit[0] is None:
            hit[0] = objmod.decode(hit[1])
        return hit[0], hit[1]

    def put(self, p: int, key: bytes, clock: Clock | None, enc: bytes) -> None:
        self.engine.put(p, key, enc)
        self._remember(key, [clock, enc])

    def delete(self, p: int, key: bytes) -> None:
        self.engine.delete(p, key)
        self.cache.pop(key, None)

    def _remember(self, key: bytes, entry: list) -> None:
        cache = self.cache
        if len(cache) >= self.cache_size and key not in cache:
            del cache[next(iter(cache))]
        cache[key] = entry

    def scan(self, p: int) -> Iterator[tuple[bytes, bytes]]:
        return self.engine.scan(p)

    def wipe(self) -> None:
        self.engine.wipe()
        self.cache.clear()
