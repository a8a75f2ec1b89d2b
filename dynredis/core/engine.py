"""The storage interface the core needs; every engine in `dynredis/storage/` implements it.

Declared here, beside its only user, so the core depends on no outer layer: engines
satisfy it structurally (a Protocol) without importing anything from the core.

Keys live under their partition so a partition can be scanned and handed off.
Values are encoded objects (opaque bytes to the engine). Writes are staged in memory
and become durable when the owner calls `commit`; the server decides when (group
commit), according to the durability mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Protocol


class Pinned(Protocol):
    """A stored value viewed in place (Engine.pin)."""

    view: Any

    def release(self) -> None:
        """Let go of it (once is enough; again does nothing)."""

    def alive(self) -> bool:
        """Whether `view` may still be read (False once released or the engine closed)."""


class Engine(Protocol):
    name: ClassVar[str]

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The stored value, staged writes included."""

    def get_head(self, partition: int, key: bytes, n: int) -> bytes | None:
        """The first `n` bytes of the stored value (all of it if shorter): what a large
        object's header needs, without reading the whole value."""

    def read(self, partition: int, key: bytes, reader: Callable[[Any], Any]) -> Any:
        """`reader(value)` of the stored value (None if there is none), the value given
        as a buffer read in place where the engine can (valid only during the call): a
        write decodes a large object's clock without copying its value out."""

    def pin(self, partition: int, key: bytes) -> Pinned | None:
        """The stored value as a buffer valid until it is released (what it views is
        kept meanwhile, whatever is written) or the engine closes, or None if there is
        none or the engine pins no more now: a reply sent a slice at a time."""

    def staged(self, partition: int, key: bytes) -> bool:
        """True while a write to the key is staged but not committed."""

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Stage a write; visible to get/scan at once, durable after commit."""

    def delete(self, partition: int, key: bytes) -> None:
        """Stage a delete."""

    def scan(self, partition: int, head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of a partition, staged writes included; with `head`, only
        the first `head` bytes of each value (all of a shorter one)."""

    def scan_prefix(self, partition: int, key_prefix: bytes,
                    head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """Like `scan`, only the keys starting with `key_prefix`."""

    def partitions(self) -> list[int]:
        """Partitions that hold at least one key."""

    def wipe(self, bury: Callable[[Any], None] | None = None) -> None:
        """Remove every key (FLUSHALL); durable at the next commit. What the engine
        held in memory goes to `bury` (core/graveyard.py: freed a slice a loop turn) if
        given, else is freed at once."""

    def pending(self) -> int:
        """Number of staged writes not yet committed."""

    def reclaimable(self) -> bool:
        """Whether a wipe left storage to free later (`reclaim`)."""

    def reclaim(self) -> bool:
        """Free a slice of what a wipe left to free later, outside a commit (the
        server calls it between commits while `reclaimable`); True while some is left."""

    def commit(self, sync: bool, wait: bool = True) -> None:
        """Write staged changes; with `sync`, also force them to disk (fsync).

        With `wait` False the fsync may run in the background: the call returns
        once the changes are written, and they are on disk a little later (the
        buffered mode's periodic sync, which must not stall the event loop)."""

    synced_at: float  # unix time the last sync to disk ended (LASTSAVE)
    syncs: int  # syncs to disk ended
    sync_failures: int  # syncs to disk that failed

    def saving(self) -> bool:
        """Whether a sync to disk runs in the background."""

    def last_sync_failed(self) -> bool:
        """Whether the last sync to disk failed (INFO's rdb_last_bgsave_status)."""

    def sync_retry_due(self, now: float) -> bool:
        """Whether a failed sync is to be tried again now (`now`: monotonic seconds;
        storage/syncretry.py): the server's commit timer then syncs."""

    def save(self) -> None:
        """SAVE / BGSAVE: commit what is staged and sync everything to disk in the
        background (`syncs` and `synced_at` move when it ends)."""

    def meta_get(self, name: str) -> bytes | None:
        """Small node metadata (identity, ring), outside the keyspace."""

    def meta_put(self, name: str, value: bytes) -> None:
        """Write metadata durably at once (committed and synced)."""

    def close(self) -> None:
        """Commit what is staged and release the files."""
