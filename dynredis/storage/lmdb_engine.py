"""The LMDB engine: one B-tree per node, keys prefixed by their partition.

Layout: the named db ``data`` maps ``struct.pack(">H", partition) + key`` to the
encoded value, so a partition is one contiguous key range (scan = a cursor range
scan, `partitions()` jumps from prefix to prefix). The named db ``meta`` maps
UTF-8 names to small values.

Long keys: LMDB keys are limited to 511 bytes, Redis keys are not. A key longer
than ``max_key_size`` (509: the limit minus the 2-byte prefix) lives in the named
db ``long`` instead, under ``struct.pack(">H", partition) + blake2b-256(key)``,
with the record ``struct.pack(">I", len(key)) + key + value``. A key's length
alone decides its db, so a key lives in exactly one place. Reads check the stored
real key, so a digest collision can never return (or delete) another key's
value. Such keys are rare: `scan` reads a partition's long entries in one go and
merges them, in key order, with the chunked scan of ``data``.

Writes are staged in a dict ``{struct.pack(">H", partition) + key: value, or None
for a delete}`` (last write wins) and written in one transaction by `commit`. The
stage is keyed by the packed ``data`` key so that a commit of ordinary puts hands the
dict's items to LMDB as they are (no per-entry tuples, keys or sort: about a sixth of
a put's LMDB cost), and a read that misses the stage looks up the same bytes.

The environment is opened with ``sync=False``: a commit reaches the OS (so it
survives the process being killed) but only ``commit(sync=True)`` (``env.sync``)
makes it survive a power loss. Single-threaded use is assumed (the server's event
loop), with two exceptions, both in ``commit(..., wait=False)`` (the group commit's
timer): the fsync runs in a short-lived thread (py-lmdb releases the GIL inside
``env.sync``, and LMDB never rewrites a committed page in place, so the loop goes on
committing while the disk catches up); and a stage holding a large value (BIG_VALUE
bytes or more) is written by a thread too ("write-behind"), since copying 100 MB into
the map held the loop for a second (py-lmdb releases the GIL inside ``mdb_put``).

Write-behind keeps the store's rules: the thread writes a snapshot of the stage's
items in one transaction while the entries stay in the stage, so every read (which
consults the stage first) sees them as before; no other write transaction starts
meanwhile (later commits wait for the thread: LMDB has one writer, and the loop would
block on its lock); once the thread is done, the next commit renews the read
transaction and only then drops from the stage the entries still holding what the
thread wrote (a key written again meanwhile stays staged). A failed write leaves the
stage as it was, as a failed commit does. The durable mode (fsync before
acknowledgement) never writes behind.

Keys never stored: a filter of the keys of the key partitions (below ELEM_BASE;
keyfilter.py) is set by `put`, through which every record written passes (the stage is
all a commit or a write-behind writes), built at open from a key-only scan of the store,
and made anew by `wipe`. The reads of a key partition ask it first: a key it never held
is absent without a lookup (a SET of a new key, a GET of a key never written: a B-tree
descent each, about a tenth of a 1-node SET's instructions).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import struct
import threading
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator
from typing import Any, ClassVar, Final, cast

import lmdb

from ..core.records import ELEM_BASE
from .keyfilter import MIN_BITS, KeyFilter, filter_bits
from .syncretry import SyncBackoff

log = logging.getLogger(__name__)

# (Final: compiled code reads these from C globals, not by lookups in the module's dict
# at every read and write.)
_pack: Final = struct.Struct(">H").pack
_unpack = struct.Struct(">H").unpack
_len = struct.Struct(">I")
_MISSING: Final = object()
_MAX_PARTITION: Final = 0xFFFF
# Each partition's packed prefix, made once (a call of the struct's pack cost about 400
# instructions per read and per write).
_PREFIXES: Final[dict[int, bytes]] = {}
# LMDB's default key size limit. The long-key threshold must never change for an
# existing environment (it decides which db holds a key), so an LMDB built with a
# larger limit still uses this one.
_LMDB_KEY_LIMIT = 511
# Values from this size make a commit write behind the loop (see the module docstring).
BIG_VALUE = 1 << 20
# Values pinned at a time (LMDB's reader slots: 126 by default, one a pin).
MAX_PINS = 32
# FLUSHALL swaps in a new generation of the data and long dbs (their names carry it,
# the meta db's GENERATION names the live one, in the same write transaction) and
# leaves the old ones to `reclaim`: their entries are deleted RECLAIM_SLICE a write
# transaction (~1 µs each), the emptied db then dropped. Dropping the dbs of 777,000
# entries in the wipe's own transaction held the loop 106-140 ms (issue 12). A
# generation left over by a crash is found by its name when the environment opens.
RECLAIM_SLICE = 8192
GENERATION = b"generation"
# Named dbs the environment may hold: meta, the live data and long, and the wiped
# generations not yet reclaimed (past MAX_WIPED the oldest is dropped at once).
MAX_DBS = 16
MAX_WIPED = 10
# The first bytes of every value of BIG_VALUE bytes or more are kept in memory (`heads`):
# py-lmdb touches every page of a value it returns (its `preload`, so that no page fault
# is taken with the GIL held), so reading even 42 bytes of a 100 MB value through it
# walked 25,600 pages, 10-80 ms of the loop each time the sweep passed it or a replica
# looked at its header.
HEAD_KEEP = 4096


class _Held:
    """A staged value pinned by holding it (bytes never change)."""

    def __init__(self, view: bytes) -> None:
        self.view = view

    def release(self) -> None:
        return None

    def alive(self) -> bool:
        return True


def _prefix(partition: int) -> bytes:
    """`_pack(partition)`, remembered (raises as it does for a partition out of range)."""
    prefix = _PREFIXES.get(partition)
    if prefix is None:
        prefix = _PREFIXES[partition] = _pack(partition)
    return prefix


def _db_names(generation: int) -> tuple[bytes, bytes]:
    """The data and long dbs' names of a generation (the first's: the original names)."""
    if generation == 0:
        return b"data", b"long"
    return b"data.%d" % generation, b"long.%d" % generation


def _long_key(packed: bytes) -> bytes:
    """The ``long`` db key of a key too long for ``data``, from its packed ``data`` key
    (partition prefix + key)."""
    return packed[:2] + hashlib.blake2b(packed[2:], digest_size=32).digest()


def _long_record(key: bytes, value: bytes) -> bytes:
    return b"".join((_len.pack(len(key)), key, value))


def _is_record_of(record: bytes, key: bytes) -> bool:
    """Whether a ``long`` record holds exactly `key` (not a digest collision)."""
    return _len.unpack_from(record)[0] == len(key) and record.startswith(key, 4)


def _head(value: bytes | None, n: int) -> bytes | None:
    """The first `n` bytes of a value (all of a shorter one)."""
    return value if value is None or len(value) <= n else value[:n]


def _split_record(record: bytes) -> tuple[bytes, bytes]:
    """(real key, value) of a ``long`` record."""
    n = _len.unpack_from(record)[0]
    return record[4 : 4 + n], record[4 + n :]


class _Pin:
    """A value viewed in the read transaction `LmdbEngine.pin` holds for it, ended once
    by `release` (or by the environment's close, which ends every transaction)."""

    def __init__(self, engine: LmdbEngine, txn: Any, view: Any) -> None:
        self.engine = engine
        self.txn: Any = txn
        self.view: Any = view

    def release(self) -> None:
        txn = self.txn
        if txn is None:
            return
        self.txn = None
        self.view = None
        engine = self.engine
        engine.pins.discard(self)
        if not engine.closed():
            txn.abort()

    def alive(self) -> bool:
        return self.txn is not None and not self.engine.closed()


class LmdbEngine:
    """Staged writes over an LMDB environment."""

    # ClassVar: class attributes also when compiled (mypyc makes plain ones per instance).
    name: ClassVar[str] = "lmdb"
    scan_chunk = 512  # committed entries read per short read transaction in scan()

    def __init__(self, path: str, map_size: int = 1 << 34, durability: str = "buffered",
                 filter_min_bits: int = MIN_BITS) -> None:
        # fsync mode: LMDB's own two-phase commit (data pages synced before the meta
        # page), so an acknowledged write survives power loss. Other modes: write
        # straight into the map (about 3x cheaper per key) and leave flushing to the
        # OS and to periodic syncs; a process crash loses nothing committed, an OS
        # crash may lose (or, as with any LMDB no-sync mode, damage) the unsynced tail,
        # and the node then rejoins empty under a new identity and is refilled by
        # its replicas.
        durable = durability == "fsync"
        self._durable = durable
        self._env = lmdb.open(
            path,
            map_size=map_size,
            max_dbs=MAX_DBS,
            sync=durable,
            metasync=True,
            writemap=not durable,
            readahead=False,
        )
        self._meta = self._env.open_db(b"meta")
        with self._env.begin(db=self._meta) as txn:
            self._generation = int(txn.get(GENERATION) or b"0")
        data_name, long_name = _db_names(self._generation)
        self._data = self._env.open_db(data_name)
        self._long = self._env.open_db(long_name)
        # The dbs of wiped generations, oldest first, their entries left to `reclaim`.
        self._wiped: list[Any] = [self._env.open_db(name, create=False)
                                  for name in self._wiped_names()]
        # The partition prefix takes 2 bytes of LMDB's key size limit (511 by
        # default); longer keys go to the ``long`` db.
        self.max_key_size = min(self._env.max_key_size(), _LMDB_KEY_LIMIT) - 2
        self._stage: dict[bytes, bytes | None] = {}
        # True while the stage holds only puts of keys short enough for ``data``: the
        # commit then writes the stage's items directly.
        self._plain = True
        self._unsynced = False  # committed to the OS since the last env.sync began
        self._syncer: threading.Thread | None = None  # a background env.sync, if any
        # Unix time the last sync ended: everything committed before it began is on
        # disk (LASTSAVE). At the open, everything is. `syncs` counts the syncs ended
        # (SAVE waits for one that began after it), `sync_failures` those that failed.
        self.synced_at = time.time()
        self.syncs = 0
        self.sync_failures = 0
        self.sync_backoff = SyncBackoff()  # a failed sync is tried again (syncretry.py)
        self.write_behind_from = BIG_VALUE  # the value size that makes a commit write behind
        self._big = False  # the stage holds a value of write_behind_from bytes or more
        # A write-behind in progress: its thread, the items it writes, whether it
        # failed, and whether a sync was asked for while it ran.
        self._writer: threading.Thread | None = None
        self._writing: list[tuple[bytes, bytes | None]] = []
        self._write_failed = False
        self._sync_after = False
        self._closed = False
        # One read transaction serves every get; it is renewed after each write
        # transaction, so it never sees less than the latest commit (and the stage
        # is consulted first). Beginning a transaction per get costs more than the get.
        self._rtxn = self._env.begin(db=self._data)
        self._vtxn = self._env.begin(db=self._data, buffers=True)  # `read`'s, in place
        self.pins: set[_Pin] = set()  # values `pin` holds (a read transaction each)
        # The first HEAD_KEEP bytes of values of BIG_VALUE bytes or more (short keys
        # only), by packed key: what was last put, or read while nothing was staged.
        self.heads: dict[bytes, bytes] = {}
        self.heads_from = BIG_VALUE  # the value size whose head `heads` keeps
        # Every key ever put in a key partition (below ELEM_BASE) since the open, and
        # every one stored at the open: a key it does not hold is not looked up (see
        # keyfilter.py). Set by `put` (every record written comes from the stage);
        # asked by the reads of key partitions only. Element records are left out (a
        # big collection's records would crowd the keys out), as are hints and local
        # records (looked up only where they are expected).
        self._filter_min_bits = filter_min_bits
        self._filter = self._keys_stored()

    # ------------------------------------------------------------------ reads

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The staged value if any, else one short read transaction."""
        if self._never_stored(partition, key):
            return None
        packed = _prefix(partition) + key
        stage = self._stage
        if stage:
            value = stage.get(packed, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[return-value]
        if len(key) > self.max_key_size:
            return self._get_long(packed, key)
        return self._rtxn.get(packed)

    def get_head(self, partition: int, key: bytes, n: int) -> bytes | None:
        """The first `n` bytes of the value, read in place (a value of 100 MB is not
        copied out of the map to read its header)."""
        if self._never_stored(partition, key):
            return None
        packed = _prefix(partition) + key
        stage = self._stage
        if stage:
            value = stage.get(packed, _MISSING)
            if value is not _MISSING:
                return _head(value, n)  # type: ignore[arg-type]
        if len(key) > self.max_key_size:
            return _head(self._get_long(packed, key), n)
        kept = self.heads.get(packed)
        if kept is not None and n <= HEAD_KEEP:
            return kept[:n]
        with self._env.begin(db=self._data, buffers=True) as txn:
            view = txn.get(packed)
            if view is None:
                return None
            if len(view) >= self.heads_from:
                self.heads[packed] = bytes(view[:HEAD_KEEP])
            return bytes(view[:n])

    def read(self, partition: int, key: bytes, reader: Callable[[Any], Any]) -> Any:
        """`reader` of the staged value, else of the committed one as a buffer into the
        map (no copy; valid during the call only), from a read transaction kept, as
        `get`'s, from one write transaction to the next."""
        if self._never_stored(partition, key):
            return None
        packed = _prefix(partition) + key
        stage = self._stage
        if stage:
            value = stage.get(packed, _MISSING)
            if value is not _MISSING:
                return None if value is None else reader(value)
        if len(key) > self.max_key_size:
            value = self._get_long(packed, key)
            return None if value is None else reader(value)
        view = self._vtxn.get(packed)
        return None if view is None else reader(view)

    def pin(self, partition: int, key: bytes) -> _Pin | _Held | None:
        """The value as a buffer valid until the release is called: a staged one
        itself, a committed one in place, in a read transaction of its own (LMDB keeps
        the pages it reads meanwhile). At most MAX_PINS at a time (each takes one of
        LMDB's reader slots): None beyond."""
        if partition < ELEM_BASE and not self._filter.may_hold(key):
            return None
        packed = _pack(partition) + key
        stage = self._stage
        if stage:
            value = stage.get(packed, _MISSING)
            if value is not _MISSING:
                return None if value is None else _Held(value)  # type: ignore[arg-type]
        if len(key) > self.max_key_size:
            long_value = self._get_long(packed, key)
            return None if long_value is None else _Held(long_value)
        if len(self.pins) >= MAX_PINS or self._closed:
            return None
        txn = self._env.begin(db=self._data, buffers=True)
        view = txn.get(packed)
        if view is None:
            txn.abort()
            return None
        pin = _Pin(self, txn, view)
        self.pins.add(pin)
        return pin

    def _keys_stored(self) -> KeyFilter:
        """A filter of every key stored in a key partition: a key-only scan of their
        range of ``data`` (which comes first: the prefix is the partition, big-endian),
        and of ``long``'s records. Sized from the entries of both (keys of every
        partition: at least the keys the filter will hold)."""
        end = _prefix(ELEM_BASE)
        with self._env.begin() as txn:
            n = txn.stat(self._data)["entries"] + txn.stat(self._long)["entries"]
            keys = KeyFilter(filter_bits(n, self._filter_min_bits))
            for k in txn.cursor(self._data).iternext(values=False):
                if k >= end:
                    break
                keys.add(k[2:])
        with self._env.begin(buffers=True) as txn:  # (long records read in place)
            for lk, record in txn.cursor(self._long).iternext():
                if bytes(lk[:2]) >= end:
                    break
                n = _len.unpack_from(record)[0]
                keys.add(bytes(record[4 : 4 + n]))
        return keys

    def _never_stored(self, partition: int, key: bytes) -> bool:
        """Whether the filter knows the key was never stored (a key partition's): no
        lookup needed. Raises once the engine is closed, as the lookup would."""
        if partition >= ELEM_BASE or self._filter.may_hold(key):
            return False
        if self._closed:
            raise lmdb.Error("engine is closed")
        return True

    def _renew_reader(self) -> None:
        self._rtxn.abort()
        self._rtxn = self._env.begin(db=self._data)
        self._vtxn.abort()
        self._vtxn = self._env.begin(db=self._data, buffers=True)

    def _get_long(self, packed: bytes, key: bytes) -> bytes | None:
        with self._env.begin(db=self._long) as txn:
            record = txn.get(_long_key(packed))
        if record is None or not _is_record_of(record, key):
            return None
        return record[4 + len(key) :]

    def scan(self, partition: int, head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of a partition in key order, staged writes included (with
        `head`, the first `head` bytes of each value, read in place).

        Staged writes are snapshotted when `scan` is called; committed data is read
        in chunks, each in its own short read transaction (so a slow consumer, such
        as a hand-off, never pins old pages). Writes made while iterating may or may
        not show up, but the iteration never fails, stays sorted and never repeats a
        key.
        """
        prefix = _pack(partition)
        staged = sorted((pk[2:], v if v is None or not head else _head(v, head))
                        for pk, v in self._stage.items() if pk[:2] == prefix)
        return self._scan(prefix, staged, head)

    def scan_prefix(self, partition: int, key_prefix: bytes,
                    head: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """Like `scan`, for the keys of a partition that start with `key_prefix` (a
        collection's elements: one contiguous run of the B-tree; a node's hints for one
        owner)."""
        prefix = _pack(partition)
        full = prefix + key_prefix
        staged = sorted((pk[2:], v if v is None or not head else _head(v, head))
                        for pk, v in self._stage.items() if pk.startswith(full))
        return self._scan(prefix, staged, head, key_prefix)

    def _scan(
        self, prefix: bytes, staged: list[tuple[bytes, bytes | None]], head: int,
        key_prefix: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        committed: Iterator[tuple[bytes, bytes]] = self._iter_data(prefix, head, key_prefix)
        longs = self._read_long(prefix, head, key_prefix)
        if longs:
            # Disjoint key sets (a key's length picks its db): tuples never tie on key.
            committed = heapq.merge(committed, longs)
        si, ns = 0, len(staged)
        for key, value in committed:
            while si < ns and staged[si][0] < key:
                sk, sv = staged[si]
                si += 1
                if sv is not None:
                    yield sk, sv
            if si < ns and staged[si][0] == key:
                sv = staged[si][1]
                si += 1
                if sv is not None:
                    yield key, sv
            else:
                yield key, value
        while si < ns:
            sk, sv = staged[si]
            si += 1
            if sv is not None:
                yield sk, sv

    def _iter_data(self, prefix: bytes, head: int,
                   key_prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Committed (key, value) of a prefix in the ``data`` db, read in chunks."""
        after: bytes | None = None
        while True:
            chunk = self._read_chunk(prefix, after, head, key_prefix)
            yield from chunk
            if len(chunk) < self.scan_chunk:
                return
            after = prefix + chunk[-1][0]

    def _read_long(self, prefix: bytes, head: int,
                   key_prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Every committed (real key, value) of a prefix in the ``long`` db whose real
        key starts with `key_prefix`, sorted (the first `head` bytes of each value, with
        `head`)."""
        out: list[tuple[bytes, bytes]] = []
        with self._env.begin(db=self._long) as txn:
            cur = txn.cursor()
            if not cur.set_range(prefix):
                return out
            for k, record in cur.iternext():
                if k[:2] != prefix:
                    break
                key, value = _split_record(record)
                if key.startswith(key_prefix):
                    out.append((key, value[:head] if head else value))
        out.sort()
        return out

    def _read_chunk(self, prefix: bytes, after: bytes | None, head: int,
                    key_prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Up to scan_chunk committed (key, value) of a prefix (and key prefix),
        strictly after `after` (with `head`, the first `head` bytes of each value: read
        in place)."""
        if head:
            with self._env.begin(db=self._data, buffers=True) as txn:
                return self._chunk(txn, prefix + key_prefix, after, head)
        with self._env.begin(db=self._data) as txn:
            return self._chunk(txn, prefix + key_prefix, after, 0)

    def _chunk(self, txn: Any, full: bytes, after: bytes | None,
               head: int) -> list[tuple[bytes, bytes]]:
        limit = self.scan_chunk
        n = len(full)
        out: list[tuple[bytes, bytes]] = []
        cur = txn.cursor()
        if not cur.set_range(full if after is None else after):
            return out
        if after is not None and bytes(cur.key()) == after and not cur.next():
            return out
        if head and head <= HEAD_KEEP:
            return self._head_chunk(cur, full, head, out)
        for k, v in cur.iternext():
            if bytes(k[:n]) != full:
                break
            if head:
                out.append((bytes(k[2:]), bytes(v[:head])))
            else:
                out.append((k[2:], v))
            if len(out) >= limit:
                break
        return out

    def _head_chunk(self, cur: Any, full: bytes, head: int,
                    out: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`_chunk`'s heads read from the cursor a key at a time: a big value's from
        `heads` (its pages untouched), any other's read in place (and a big one read
        so kept, unless the key is staged: `heads` then holds the staged value's)."""
        limit = self.scan_chunk
        n = len(full)
        heads = self.heads
        stage = self._stage
        big = self.heads_from
        while True:
            k = bytes(cur.key())
            if k[:n] != full:
                break
            kept = heads.get(k)
            if kept is None:
                v = cur.value()
                kept = bytes(v[:HEAD_KEEP])
                if len(v) >= big and k not in stage:
                    heads[k] = kept
            out.append((k[2:], kept[:head]))
            if len(out) >= limit or not cur.next():
                break
        return out

    def partitions(self) -> list[int]:
        """Partitions holding at least one key (staged writes included), ascending."""
        with_puts: set[int] = set()
        with_deletes: set[int] = set()
        for pk, v in self._stage.items():
            (with_deletes if v is None else with_puts).add(_unpack(pk[:2])[0])
        found = set(with_puts)
        with self._env.begin() as txn:
            self._find_partitions(txn.cursor(self._data), found, with_deletes, False)
            self._find_partitions(txn.cursor(self._long), found, with_deletes, True)
        return sorted(found)

    def _find_partitions(self, cur, found: set[int], with_deletes: set[int], long: bool) -> None:
        """Add to `found` the partitions of the cursor's db with a key the stage keeps."""
        stage = self._stage
        ok = cur.first()
        while ok:
            p = _unpack(cur.key()[:2])[0]
            if p not in found:
                if p not in with_deletes:
                    found.add(p)
                else:
                    # Only deletes are staged for p: does a committed key survive?
                    prefix = _pack(p)
                    while cur.key()[:2] == prefix:
                        key = _split_record(cur.value())[0] if long else cur.key()[2:]
                        if prefix + key not in stage:
                            found.add(p)
                            break
                        if not cur.next():
                            break
            if p >= _MAX_PARTITION:
                break
            ok = cur.set_range(_pack(p + 1))

    def pending(self) -> int:
        return len(self._stage)

    # ----------------------------------------------------------------- writes

    def staged(self, partition: int, key: bytes) -> bool:
        return _prefix(partition) + key in self._stage

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Stage a write (any key length). Raises ValueError for a partition outside
        0..65535, rather than failing the later commit."""
        if not 0 <= partition <= _MAX_PARTITION:
            raise ValueError(f"partition {partition} out of range")
        if self._closed:
            raise lmdb.Error("engine is closed")
        if len(key) > self.max_key_size:
            self._plain = False
        if len(value) >= self.write_behind_from:
            self._big = True
        if partition < ELEM_BASE:
            self._filter.add(key)
        packed = _prefix(partition) + key
        heads = self.heads
        if len(value) >= self.heads_from and len(key) <= self.max_key_size:
            heads[packed] = value[:HEAD_KEEP]
        elif heads:
            heads.pop(packed, None)
        self._stage[packed] = value

    def delete(self, partition: int, key: bytes) -> None:
        """Stage a delete."""
        if not 0 <= partition <= _MAX_PARTITION:
            raise ValueError(f"partition {partition} out of range")
        if self._closed:
            raise lmdb.Error("engine is closed")
        self._plain = False
        packed = _prefix(partition) + key
        self.heads.pop(packed, None)
        self._stage[packed] = None

    def _wiped_names(self) -> list[bytes]:
        """The names of the data and long dbs of generations before the live one (a
        crash left them unreclaimed), oldest first."""
        live = _db_names(self._generation)
        found: list[tuple[int, bytes]] = []
        with self._env.begin() as txn:
            for name in txn.cursor().iternext(values=False):
                base, _, gen = bytes(name).partition(b".")
                if base in (b"data", b"long") and name not in live and \
                        (not gen or gen.isdigit()):
                    found.append((int(gen or b"0"), bytes(name)))
        return [name for _, name in sorted(found)]

    def wipe(self, bury: Callable[[Any], None] | None = None) -> None:
        """Swap in empty data and long dbs (a new generation, one short write txn: the
        old ones' entries are deleted later, `reclaim`) and drop the stage; the old key
        filter's items go to `bury` if given (a filter sized at open for 4.3 million
        records holds 16.7 million: 25-65 ms of CPU to free at once).

        Durable after the next ``commit(sync=True)`` (or `close`)."""
        self._finish_writer()
        env = self._env
        generation = self._generation + 1
        data_name, long_name = _db_names(generation)
        with env.begin(write=True) as txn:
            while len(self._wiped) + 2 > MAX_WIPED:
                txn.drop(self._wiped.pop(0), delete=True)  # (many wipes at once)
            data = env.open_db(data_name, txn=txn)
            long_db = env.open_db(long_name, txn=txn)
            txn.put(GENERATION, b"%d" % generation, db=self._meta)
        self._wiped += [self._data, self._long]
        self._data, self._long, self._generation = data, long_db, generation
        self._renew_reader()
        self._stage = {}
        self.heads.clear()
        # Nothing is stored any more (the live dbs are new, the stage is dropped, no
        # write-behind runs): a new filter is exact. Of the least size (the next open
        # sizes it for what is stored then): one of the old size took 40-90 ms to make.
        old = self._filter.bytes
        self._filter = KeyFilter(filter_bits(0, self._filter_min_bits))
        if bury is not None:
            bury(old)
        self._plain = True
        self._unsynced = True

    def reclaimable(self) -> bool:
        """Whether wiped dbs still hold entries for `reclaim` to delete."""
        return bool(self._wiped)

    def reclaim(self) -> bool:
        """Delete a slice of a wiped generation's entries (its own write transaction:
        a commit deletes one in its own too); True while some are left. Not while a
        write-behind runs (LMDB has one writer)."""
        if not self._wiped or self._closed or (
                self._writer is not None and self._writer.is_alive()):
            return bool(self._wiped)
        with self._env.begin(write=True) as txn:
            self._reclaim_in(txn)
        self._unsynced = not self._durable
        return bool(self._wiped)

    def _reclaim_in(self, txn: Any) -> None:
        """Delete up to RECLAIM_SLICE entries of the oldest wiped db in `txn`, dropping
        it once empty."""
        db = self._wiped[0]
        cur = txn.cursor(db)
        left = RECLAIM_SLICE
        if cur.first():
            delete = cur.delete
            while left and delete():
                left -= 1
        cur.close()
        if left:
            txn.drop(db, delete=True)
            self._wiped.pop(0)

    def commit(self, sync: bool, wait: bool = True) -> None:
        """Write every staged entry in one write transaction, then fsync if asked.

        ``commit(True)`` with nothing staged still syncs earlier unsynced commits
        (and a wipe), but is free when everything is already on disk. If the
        transaction fails the stage is kept, so nothing is silently lost.

        ``wait=False`` runs the fsync in a background thread (see the module
        docstring); while one runs, another is not started (the next call with
        `sync` starts it, so nothing committed is left unsynced for long). With
        ``wait=False`` a stage holding a large value is written behind (see the module
        docstring), and while a write-behind runs the call only notes `sync`."""
        writer = self._writer
        if writer is not None:
            if not wait and writer.is_alive():
                self._sync_after = self._sync_after or sync
                return
            sync = sync or self._sync_after
            self._sync_after = False
            self._finish_writer()
        stage = self._stage
        env = self._env
        if stage and self._big and not wait and not self._durable:
            self._write_behind()
            self._sync_after = sync
            return
        if stage:
            with env.begin(write=True, db=self._data) as txn:
                if self._plain:
                    # Only short-key puts: the items go to LMDB as they are, in
                    # insertion order (sorting random keys cost more than it saved).
                    cur = txn.cursor()
                    cur.putmulti(cast("ItemsView[bytes, bytes]", stage.items()))
                    cur.close()
                else:
                    self._write_mixed(txn, stage.items())
                if self._wiped:
                    self._reclaim_in(txn)
            self._renew_reader()
            self._stage = {}
            self._plain = True
            self._big = False
            self._unsynced = not self._durable  # a durable env synced inside commit
            if self._durable:
                self._synced()
        if sync and self._unsynced:
            if wait:
                self._join_syncer()
                env.sync(True)
                self._unsynced = False
                self._synced()
            elif self._syncer is None or not self._syncer.is_alive():
                # Everything committed before the sync begins is on disk when it ends.
                self._unsynced = False
                self._syncer = threading.Thread(
                    target=self._background_sync, name="lmdb-sync", daemon=True)
                self._syncer.start()

    def _write_behind(self) -> None:
        """Start a thread writing a snapshot of the stage (the entries stay staged)."""
        items = list(self._stage.items())
        self._writing = items
        self._write_failed = False
        self._big = False
        self._writer = threading.Thread(target=self._write_items, args=(items, self._plain),
                                        name="lmdb-write", daemon=True)
        self._writer.start()

    def _write_items(self, items: list[tuple[bytes, bytes | None]], plain: bool) -> None:
        """The write-behind thread: `items` in one write transaction, a put at a time
        (py-lmdb's put releases the GIL while LMDB copies the value; putmulti held it)."""
        try:
            with self._env.begin(write=True, db=self._data) as txn:
                if plain:
                    for pk, v in items:
                        txn.put(pk, cast("bytes", v))  # plain: puts only
                else:
                    self._write_mixed(txn, items)
        except Exception:
            self._write_failed = True
            log.exception("LMDB write-behind failed (the writes stay staged)")

    def _finish_writer(self) -> None:
        """Wait for a write-behind (if any) and make what it wrote the committed state:
        renew the reader, then unstage the entries it wrote that were not written again."""
        writer = self._writer
        if writer is None:
            return
        writer.join()
        self._writer = None
        items = self._writing
        self._writing = []
        stage = self._stage
        if self._write_failed:
            self._big = True  # the next commit tries again, behind the loop
            return
        self._renew_reader()
        for pk, v in items:
            if stage.get(pk, _MISSING) is v:
                del stage[pk]
        if not stage:
            self._plain = True
        self._unsynced = True

    def _write_mixed(self, txn: lmdb.Transaction,
                     items: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Write staged items holding deletes or long keys (``long`` db) in `txn`."""
        limit = self.max_key_size + 2
        puts: list[tuple[bytes, bytes]] = []
        long_db = self._long
        for pk, v in items:
            if len(pk) > limit:
                k = pk[2:]
                lk = _long_key(pk)
                if v is None:
                    record = txn.get(lk, db=long_db)
                    if record is not None and _is_record_of(bytes(record), k):
                        txn.delete(lk, db=long_db)
                else:
                    txn.put(lk, _long_record(k, v), db=long_db)
            elif v is None:
                txn.delete(pk)
            else:
                puts.append((pk, v))
        if puts:
            cur = txn.cursor()
            cur.putmulti(puts)
            cur.close()

    def _background_sync(self) -> None:
        try:
            self._env.sync(True)
            self._synced()
        except Exception:
            self.sync_failures += 1
            self._unsynced = True  # the next sync retries
            self.sync_backoff.failed(time.monotonic())
            log.exception("background LMDB sync failed")

    def saving(self) -> bool:
        """Whether a sync or a write-behind runs in the background (BGSAVE's "in
        progress")."""
        syncer, writer = self._syncer, self._writer
        return (syncer is not None and syncer.is_alive()) \
            or (writer is not None and writer.is_alive())

    def save(self) -> None:
        """SAVE and BGSAVE: commit what is staged and sync it in the background (a thread,
        as the buffered mode's syncs: the loop never waits for the disk); `syncs` counts
        it when it ends. While `saving`, the sync that runs may have begun before the
        latest commits: call again once it ended."""
        if not self._stage and not self._unsynced and not self.saving():
            self._synced()  # everything is on disk already
        else:
            self.commit(True, wait=False)

    def _synced(self) -> None:
        """A sync ended (in the loop's thread or the syncer's)."""
        self.synced_at = time.time()
        self.syncs += 1
        self.sync_backoff.succeeded()

    def last_sync_failed(self) -> bool:
        """Whether the last sync failed (none has succeeded since: INFO's
        rdb_last_bgsave_status:err)."""
        return self.sync_backoff.failures > 0

    def sync_retry_due(self, now: float) -> bool:
        """Whether a failed sync is to be tried again now (`now`: monotonic seconds): its
        backoff has passed and no sync runs."""
        return self.sync_backoff.due(now) and not self.saving()

    def _join_syncer(self) -> None:
        syncer = self._syncer
        if syncer is not None:
            syncer.join()
            self._syncer = None

    # --------------------------------------------------------------- metadata

    def closed(self) -> bool:
        return self._closed

    def meta_get(self, name: str) -> bytes | None:
        with self._env.begin(db=self._meta) as txn:
            return txn.get(name.encode())

    def meta_put(self, name: str, value: bytes) -> None:
        """Write and fsync at once (this also syncs earlier unsynced commits)."""
        self._finish_writer()
        with self._env.begin(write=True, db=self._meta) as txn:
            txn.put(name.encode(), value)
        self._env.sync(True)
        self._unsynced = False
        self._synced()

    def close(self) -> None:
        """Commit the stage durably and close the environment; idempotent."""
        if self._closed:
            return
        try:
            self.commit(True)  # waits for a background sync before its own
        finally:
            self._join_syncer()
            for pin in list(self.pins):
                pin.release()  # (a reply streaming from it sees that: Pinned.alive)
            self._closed = True
            self._rtxn.abort()
            self._vtxn.abort()
            self._env.close()
