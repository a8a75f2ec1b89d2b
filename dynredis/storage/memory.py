"""An in-memory engine: nothing survives the process, commit is a no-op.

Used by tests, the simulator and `--storage memory` nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar


class Held:
    """A value pinned by holding it (bytes never change): Engine.pin's answer."""

    __slots__ = ("view",)

    def __init__(self, view: Any) -> None:
        self.view = view

    def release(self) -> None:
        return None

    def alive(self) -> bool:
        return True


class MemoryEngine:
    """A dict of dicts, one per partition; writes are applied at once."""

    name: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._parts: dict[int, dict[bytes, bytes]] = {}
        self._meta: dict[str, bytes] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The stored value, or None."""
        part = self._parts.get(partition)
        if part is None:
            return None
        return part.get(key)

    def get_head(self, partition: int, key: bytes, n: int) -> bytes | None:
        value = self.get(partition, key)
        return value if value is None or len(value) <= n else value[:n]

    def read(self, partition: int, key: bytes, reader: Callable[[Any], Any]) -> Any:
        part = self._parts.get(partition)
        value = None if part is None else part.get(key)
        return None if value is None else reader(value)

    def pin(self, partition: int, key: bytes) -> Held | None:
        """The value itself (bytes never change)."""
        value = self.get(partition, key)
        return None if value is None else Held(value)

    def staged(self, partition: int, key: bytes) -> bool:
        return False  # nothing to commit: a memory engine is as durable as it gets

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Store at once (there is no stage)."""
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = {}
        part[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        """Remove at once; a missing key is not an error."""
        part = self._parts.get(partition)
        if part is None:
            return
        part.pop(key, None)
        if not part:
            del self._parts[partition]

    def scan(self, partition: int, head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of a partition in key order, as of the call (with `head`,
        the first `head` bytes of each value)."""
        part = self._parts.get(partition)
        if not part:
            return iter(())
        # A sorted copy, so writes during the iteration cannot break it.
        items = sorted(part.items())
        if head:
            return iter([(k, v if len(v) <= head else v[:head]) for k, v in items])
        return iter(items)

    def scan_prefix(self, partition: int, key_prefix: bytes,
                    head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """The (key, value) of a partition whose keys start with `key_prefix`, in order
        (with `head`, the first `head` bytes of each value)."""
        part = self._parts.get(partition)
        if not part:
            return iter(())
        items = sorted((k, v) for k, v in part.items() if k.startswith(key_prefix))
        if head:
            return iter([(k, v if len(v) <= head else v[:head]) for k, v in items])
        return iter(items)

    def partitions(self) -> list[int]:
        """Partitions holding at least one key, ascending."""
        return sorted(p for p, part in self._parts.items() if part)

    def wipe(self, bury: Callable[[Any], None] | None = None) -> None:
        """Remove every key (metadata stays); each partition's dict to `bury` if given."""
        if bury is not None:
            for part in self._parts.values():
                bury(part)
        self._parts = {}

    def pending(self) -> int:
        """Always 0: writes are applied at once."""
        return 0

    def reclaimable(self) -> bool:
        """Never: a wipe frees what it removes."""
        return False

    def reclaim(self) -> bool:
        return False

    def commit(self, sync: bool, wait: bool = True) -> None:
        """Nothing to do."""

    synced_at = 0.0  # never: nothing is kept on disk
    syncs = 0
    sync_failures = 0

    def saving(self) -> bool:
        return False

    def last_sync_failed(self) -> bool:
        return False

    def sync_retry_due(self, now: float) -> bool:
        return False

    def save(self) -> None:
        """Nothing to do (the server refuses SAVE on this engine)."""

    def meta_get(self, name: str) -> bytes | None:
        return self._meta.get(name)

    def meta_put(self, name: str, value: bytes) -> None:
        self._meta[name] = value

    def close(self) -> None:
        """Nothing to release; the data stays readable (it is never durable)."""
