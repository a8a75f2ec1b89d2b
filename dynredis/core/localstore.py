"""A node's own replica data: the storage engine plus a bounded cache of encoded objects.

The cache is bounded by count and by bytes (recent.RecentBytes; `object-cache-max-memory`,
64 MB by default): 500 values of 1 MB once made every node hold all of them.

Replicas mostly pass bytes along (answering reads, taking writes of keys they do
not have), so the cache holds encoded bytes only: bytes are invisible to the cyclic
garbage collector, whereas a cache of decoded objects (nested tuples) would make
every collection walk the whole working set. Objects are decoded when a coordinator
or a merge needs them (about a microsecond).

What decides about an object without using its value (the reaper's sweep, anti-entropy's
hash trees, keyspace walks) reads heads (`head`, `scan_heads`): a large object's header
(header.py), or the whole of a small object, never the whole of a large value.

Every change of a key's object also updates the node's live-key counts (keycounts.py,
DBSIZE and INFO keyspace): what the object read as before (its head, read first) and
after.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Final

from . import clock as dvv
from . import header as hdr
from . import obj as objmod
from .bigencode import Encoding
from .clock import Clock
from .engine import Engine, Pinned
from .hints import HINT_PARTITION
from .keycounts import KeyCounts
from .merkle import MerkleTree, PartitionTrees, keyed_digest
from .obj import LARGE_VALUE, reads_until
from .pieces import Joined
from .recent import RecentBytes
from .records import ELEM_BASE, LOCAL_BASE
from .shape import Spliced, Unread, decode_shape

# Dirty keys of one partition in one dict at most (LocalStore.older): growing it to
# this size, and draining it, costs a turn ~1 ms.
DIRTY_CHUNK: Final = 32_768


class LocalStore:
    """Reads and writes of this node's replicas, through an injected engine."""

    __slots__ = ("engine", "cache", "trees", "dirty", "older", "counts", "_get", "_put",
                 "_read")

    def __init__(self, engine: Engine, cache_size: int = 100_000,
                 cache_max_memory: int = 0) -> None:
        self.engine = engine
        # The engine's methods of every request, bound once: the engine is a Protocol
        # (any class), so compiled code calls it generically, and looking a method up
        # and binding it cost as much again as the call.
        self._get: Callable[[int, bytes], bytes | None] = engine.get
        self._put: Callable[[int, bytes, bytes], None] = engine.put
        self._read: Callable[[int, bytes, Callable[[Any], Any]], Any] = engine.read
        self.cache = RecentBytes(cache_size, cache_max_memory)
        # Anti-entropy hash trees, one per partition. A write only notes its key as
        # dirty, with the fingerprint of what it stored (None: deleted); the ticks
        # (`fold_some`) and `tree(p)` fold dirty keys in, so the request path never
        # hashes, a key written many times before it is folded is hashed once, and
        # folding reads nothing back (the fingerprint is the bytes just written, or
        # a large object's header).
        self.trees = PartitionTrees(keyed=True)
        self.dirty: defaultdict[int, dict[bytes, bytes | None]] = defaultdict(dict)
        # A partition's dirty keys beyond DIRTY_CHUNK: full chunks, oldest first, folded
        # before its `dirty` dict (a key's later write lands in a later chunk). One dict
        # growing with a big collection's records resized at 175,000, 350,000, 700,000
        # keys, and, drained by `popitem` as it grew, at any size: a replica's merge of
        # a 1,024-record step of a COPY held its turn 60-220 ms there (keystalls, load 5).
        self.older: dict[int, list[dict[bytes, bytes | None]]] = {}
        # Live keys per partition and database (DBSIZE, INFO keyspace): every change of
        # a key's object below goes through `_count`, and the walk building the trees
        # counts what is stored.
        self.counts = KeyCounts()
        for p in engine.partitions():
            if p != HINT_PARTITION and p < LOCAL_BASE:
                tree = self.trees[p]
                counts = p < ELEM_BASE
                for key, head in self.scan_heads(p):
                    tree.insert_digest(key, keyed_digest(key, objmod.fingerprint(head)))
                    if counts:
                        self.counts.change(p, key, 0, reads_until(head))

    def rebind(self) -> None:
        """Bind the engine's methods again (after one was replaced: a test's spy)."""
        engine = self.engine
        self._get = engine.get
        self._put = engine.put
        self._read = engine.read

    def get_enc(self, p: int, key: bytes) -> bytes | None:
        enc = self.cache.get(key)
        if enc is None:
            enc = self._get(p, key)
            if enc is not None:
                self.cache.set(key, enc, None)
        return enc

    def head(self, p: int, key: bytes) -> bytes | None:
        """Enough of the key's encoded object to tell if it is dead, since when, and its
        digest (the obj functions on encoded bytes): its header if it is large."""
        enc = self.cache.get(key) if p < ELEM_BASE else None  # (the cache holds keys' objects)
        if enc is not None:
            return enc
        head = self.engine.get_head(p, key, hdr.HEADED_FROM)
        return self._whole(p, key, head)

    def scan_heads(self, p: int) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, head) of partition p (`head`'s heads)."""
        for key, head in self.engine.scan(p, hdr.HEADED_FROM):
            yield key, self._whole(p, key, head)  # type: ignore[misc]

    def _whole(self, p: int, key: bytes, head: bytes | None) -> bytes | None:
        """A head as read, unless it is the cut-off start of a large object without a
        header (stored by an earlier version): then all of it."""
        if head is not None and len(head) == hdr.HEADED_FROM and not hdr.is_headed(head):
            return self._get(p, key)
        return head

    def get(self, p: int, key: bytes) -> tuple[Clock | None, bytes | None]:
        """The decoded object and its bytes, or (None, None)."""
        enc = self.get_enc(p, key)
        if enc is None:
            return None, None
        return objmod.decode(enc), enc

    def get_clock(self, p: int, key: bytes) -> tuple[Clock | None, bytes | None]:
        """For a write that supersedes everything the key holds (a plain SET or DEL):
        the held object, and what names it (obj.identity's input). A large object not
        in the cache is read in place and only its clock decoded (obj.decode_clock), and
        named by its header: a DEL of a 100 MB value copied it out and decoded it."""
        enc = self.cache.get(key)
        if enc is not None:
            return objmod.decode(enc), enc
        got = self._read(p, key, _CLOCK_AND_NAME)
        if got is None:
            return None, None
        if got[0] is None:  # anonymous siblings, which an overwrite keeps: all of it
            return self.get(p, key)
        return got

    def get_shape(self, p: int, key: bytes) -> tuple[Clock | None, bytes | None]:
        """For a reader that needs of a large value only whether it is there, its expiry
        or its length (DEL, EXISTS, TTL ...): the object with its large values left
        unread (shape.decode_shape, read in place), named by its header; a small or
        cached object whole, as `get`."""
        shaped, enc = self.get_shape_undecoded(p, key)
        if shaped is None and enc is not None:
            return objmod.decode(enc), enc
        return shaped, enc

    def get_shape_undecoded(self, p: int, key: bytes) -> tuple[Clock | None, bytes | None]:
        """`get_shape`, except that a small or cached object comes as its bytes alone,
        (None, bytes), not decoded (a plain GET reads its value from them:
        obj.plain_value)."""
        enc = self.cache.get(key)
        if enc is not None:
            return None, enc
        got = self._read(p, key, _shape_and_name)
        if got is None:
            return None, None
        shaped, name = got
        if shaped is None:  # small (or not of the usual shape): all of it, as get's
            if name is not None:
                self.cache.set(key, name, None)
                return None, name
            return None, self.get_enc(p, key)
        return got

    def read_range(self, p: int, key: bytes, value: Unread, start: int, end: int
                   ) -> bytes | None:
        """Bytes [start, end) of a value a shape left unread, read in place; None if
        the key no longer holds the object it was read from."""
        def reader(view: Any) -> bytes | None:
            if bytes(view[: hdr.SIZE]) != value.name:
                return None
            return bytes(view[value.at + start : value.at + min(end, value.size)])
        return self._read(p, key, reader)  # type: ignore[no-any-return]

    def pin(self, p: int, key: bytes, value: Unread) -> tuple[Any, Pinned] | None:
        """A view of a value a shape left unread, valid while the Pinned given with it
        is alive (until released: the store keeps what it views meanwhile); None if the
        key no longer holds the object it was read from. For a reply sent a slice at a
        time."""
        pinned = self.engine.pin(p, key)
        if pinned is None:
            return None
        view = pinned.view
        if bytes(view[: hdr.SIZE]) != value.name:
            pinned.release()
            return None
        return memoryview(view)[value.at : value.at + value.size], pinned

    def encoding_in_place(self, p: int, key: bytes, obj: Clock) -> Encoding | None:
        """The encoding (bigencode.Encoding, made a slice a step) of a version whose
        large values were left unread (`Unread`s of a shape: EXPIRE or PERSIST of a 100
        MB value keep it as it is; a `Spliced`, APPEND's or SETRANGE's, has bytes
        written over or after it), each copied once, straight from the stored object
        (pinned until the encoding is made) into the encoding: reading it whole first (a
        copy out of the store, a copy decoding it) held the coordinator's loop about
        100 ms per 100 MB. None if that cannot be: the key holds another object than
        the one they were read from, or the engine pins no more now."""
        pinned = self.engine.pin(p, key)
        if pinned is None:
            return None
        view = memoryview(pinned.view)
        filled = _fill_unread(obj, view, bytes(view[: hdr.SIZE]))
        if filled is None:
            pinned.release()
            return None
        return Encoding(filled, pinned)

    def put(self, p: int, key: bytes, enc: bytes, old: bytes | None,
            unsure: bool = False, reads: int = -1, was: int = -1) -> None:
        """Store `enc` for `key`; `old` is what `get`/`get_enc` gave for it just before
        (the cache's accounting counts on it: see RecentBytes.set), and the key counts
        too when it is an encoding or a header, not a digest (obj.identity's). `unsure`:
        `old` is the cache's (None when not cached), not the store's (None: nothing), so
        the counts read what the key held (a lookup a write of a new key saves).
        `reads` and `was`: obj.reads_until of `enc` and of what the key held, when the
        caller knows them (from the objects decoded: obj.reads_of); -1, read here."""
        if p < ELEM_BASE:
            if was < 0:
                if old is None:
                    was = self._reads_until(p, key) if unsure else 0
                elif len(old) == hdr.DIGEST_SIZE:
                    was = self._reads_until(p, key)
                else:
                    was = reads_until(old)
            if reads < 0:
                reads = reads_until(enc)
        self._put(p, key, enc)
        self.cache.set(key, enc, old)
        self._note(p, key, objmod.fingerprint(enc))
        if p < ELEM_BASE:
            self.counts.change(p, key, was, reads)

    def delete(self, p: int, key: bytes) -> None:
        was = self._reads_until(p, key)
        self.engine.delete(p, key)
        self.cache.pop(key)
        self._note(p, key, None)
        self.counts.change(p, key, was, 0)

    def _reads_until(self, p: int, key: bytes) -> int:
        """obj.reads_until of what `key` holds (0 for nothing), read from its head
        before a change (`put`'s `old` may be a digest, or None for a key held but not
        cached). A record's partition holds no key: 0."""
        if p >= ELEM_BASE:
            return 0
        head = self.head(p, key)
        return 0 if head is None else reads_until(head)

    # Collections' element and removal records (partitions ELEM_BASE + p): in the hash
    # trees like any object, but not in the cache, which is keyed by key alone (a
    # record key may equal some string key).

    def get_record(self, p: int, key: bytes) -> bytes | None:
        if p >= ELEM_BASE:
            return self._get(p, key)
        return self.get_enc(p, key)

    def put_record(self, p: int, key: bytes, enc: bytes) -> None:
        was = self._reads_until(p, key)
        self._put(p, key, enc)
        self._note(p, key, objmod.fingerprint(enc))
        if p < ELEM_BASE:
            self.counts.change(p, key, was, reads_until(enc))

    def delete_record(self, p: int, key: bytes) -> None:
        was = self._reads_until(p, key)
        self.engine.delete(p, key)
        self._note(p, key, None)
        self.counts.change(p, key, was, 0)

    def _note(self, p: int, key: bytes, fp: bytes | None) -> None:
        """A write of `key` to fold into `p`'s tree (`fp`: its fingerprint, None if
        deleted); a chunk that is full goes to `older`."""
        keys = self.dirty[p]
        keys[key] = fp
        if len(keys) >= DIRTY_CHUNK:
            chunks = self.older.get(p)
            if chunks is None:
                self.older[p] = [keys]
            else:
                chunks.append(keys)
            self.dirty[p] = {}

    def tree(self, p: int) -> MerkleTree:
        """Partition `p`'s hash tree, brought up to date with every write so far."""
        tree = self.trees[p]
        chunks = self.older.pop(p, None)
        if chunks:
            for chunk in chunks:
                self._fold(p, tree, chunk)
        keys = self.dirty.pop(p, None)
        if keys:
            self._fold(p, tree, keys)
        return tree

    def fold_some(self, budget: int) -> int:
        """Fold up to `budget` dirty keys into their trees; returns how many.

        The driver calls it every tick, so keys are hashed a slice at a time as they
        are written: a partition written a million times between two of its exchanges
        (a big collection's element records all land in one) is not hashed all at once
        when anti-entropy reaches it, which held the node for seconds, past every
        request's timeout."""
        done = 0
        dirty = self.dirty
        while dirty and done < budget:
            done += self._fold_some_of(next(iter(dirty)), budget - done)
        return done

    def _fold_some_of(self, p: int, most: int) -> int:
        """Fold up to `most` of partition `p`'s dirty keys (it has some), its oldest
        chunk's first; how many."""
        chunks = self.older.get(p)
        if chunks:
            keys = chunks[0]
            whole = len(keys) <= most
            if whole:
                chunks.pop(0)
                if not chunks:
                    del self.older[p]
        else:
            keys = self.dirty[p]
            whole = len(keys) <= most
            if whole:
                del self.dirty[p]
        batch = keys if whole else dict([keys.popitem() for _ in range(most)])
        self._fold(p, self.trees[p], batch)
        return len(batch)

    @staticmethod
    def _fold(p: int, tree: MerkleTree, keys: dict[bytes, bytes | None]) -> None:
        tree.fold(keys)

    def tree_within(self, p: int, most: int) -> MerkleTree:
        """Partition `p`'s hash tree with at most `most` of its dirty keys folded in now
        (the rest by the ticks' `fold_some`): an anti-entropy exchange reaching a
        partition where a walk had just stripped a 200,000-element collection folded
        all of its records in one turn (ticks of 110-170 ms). A tree missing the latest
        writes only makes the exchange see differences that are not there (a repair of
        equal versions changes nothing) or miss some until the next one."""
        if p in self.dirty:
            self._fold_some_of(p, most)
        return self.trees[p]

    def backlog(self, p: int) -> int:
        """Keys of partition `p` written and not yet folded into its tree."""
        keys = self.dirty.get(p)
        n = len(keys) if keys is not None else 0
        chunks = self.older.get(p)
        if chunks is not None:
            for chunk in chunks:
                n += len(chunk)
        return n

    def index_bytes(self, p: int) -> int:
        """The bytes of partition `p`'s maps of its keys: its hash tree's and those of
        its keys not folded yet (their tables, not the keys: MEMORY STATS)."""
        tree = self.trees.get(p)
        n = tree.map_bytes() if tree is not None else 0
        keys = self.dirty.get(p)
        if keys is not None:
            n += sys.getsizeof(keys)
        for chunk in self.older.get(p, ()):
            n += sys.getsizeof(chunk)
        return n

    def holds(self, p: int) -> bool:
        """Whether this node ever held a key of partition `p` (no tree made or folded)."""
        return p in self.trees or p in self.dirty

    def held_tree(self, p: int) -> MerkleTree | None:
        """Like `tree(p)`, but None (and no empty tree made) for a partition this node
        never held a key of."""
        return self.tree(p) if self.holds(p) else None

    def count(self) -> int:
        """Keys held in replica partitions (tombstones included) as of the last fold:
        writes not folded yet (`unfolded`) are not counted. INFO asks it: folding
        every dirty key first cost a million folds in its turn after a walk stripped
        a million-element collection (the ticks fold them a slice at a time)."""
        return sum(len(self.trees[p]) for p in self.trees)

    def unfolded(self) -> int:
        """Writes not folded into the trees yet, every partition's: `count` is exact
        when none are (a len per dict: a chunk holds DIRTY_CHUNK of them)."""
        return sum(map(self.backlog, list(self.dirty)))

    def wipe(self, bury: Callable[[Any], None] | None = None) -> None:
        """Forget every key (FLUSHALL); what the engine held in memory, the cache's
        entries, the trees' and the keys written and not yet folded go to `bury`
        (core/graveyard.py) if given (three
        million of those, left by walks stripping big collections, took 66-72 ms to
        free at once)."""
        self.engine.wipe(bury)
        self.counts.clear(bury)
        self.cache.clear(bury)
        self.trees.clear(bury)
        if bury is not None:
            for keys in self.dirty.values():
                bury(keys)
            for chunks in self.older.values():
                for keys in chunks:
                    bury(keys)
        self.dirty.clear()
        self.older.clear()


def _clock_and_name(view: Any) -> tuple[Clock | None, bytes]:
    """LocalStore.get_clock's reader of a stored value: a view into the store (a
    memoryview, not bytes: only functions taking Any may be given it, compiled code
    checks the types it declares)."""
    if len(view) < hdr.SIZE or view[0] != hdr.MAGIC:  # hdr.is_headed, for a view
        enc = bytes(view)
        return objmod.decode(enc), enc
    return objmod.decode_clock(view), bytes(view[: hdr.SIZE])


def _shape_and_name(view: Any) -> tuple[Clock | None, bytes | None]:
    """LocalStore.get_shape's reader of a stored value (a view: see _clock_and_name):
    (its shape, its header) if it may hold a large value, else (None, its bytes)."""
    if len(view) < LARGE_VALUE or view[0] != hdr.MAGIC:
        return None, bytes(view)
    shaped = decode_shape(view)
    return (None, None) if shaped is None else (shaped, bytes(view[: hdr.SIZE]))


def _fill_unread(obj: Clock, view: Any, name: bytes) -> Clock | None:
    """`obj` with each Unread replaced by a view of its bytes in `view` (the stored
    object named `name`), or None if one was read from another object."""
    for sib in dvv.values(obj):
        data = sib[2]
        if type(data) is Spliced:
            data = data.value
        if type(data) is Unread and data.name != name:
            return None
    return dvv.map_values(lambda sib: _filled(sib, view), obj)


def _filled(sib: Any, view: Any) -> Any:
    data = sib[2]
    if type(data) is Unread:
        return (sib[0], sib[1], view[data.at : data.at + data.size])
    if type(data) is Spliced:
        return (sib[0], sib[1], Joined(_spliced(data, view)))
    return sib


def _spliced(spliced: Spliced, view: Any) -> list[Any]:
    """The parts of a Spliced value: views of the stored value around its data."""
    kept = spliced.value
    at = spliced.at
    end = at + len(spliced.data)
    parts: list[Any] = [view[kept.at : kept.at + min(at, kept.size)]]
    if at > kept.size:
        parts.append(bytes(at - kept.size))  # zero padding, as Redis
    parts.append(spliced.data)
    if end < kept.size:
        parts.append(view[kept.at + end : kept.at + kept.size])
    return parts


# (Final: get_clock passes it from a C global, not by a lookup in the module's dict.)
_CLOCK_AND_NAME: Final = _clock_and_name
