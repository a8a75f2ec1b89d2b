"""Hash trees for active anti-entropy (Dynamo §4.7, Riak's hashtree / AAE).

Each replica keeps one `MerkleTree` per partition and updates it as writes land, so an
exchange never rescans the store. Pure: no I/O, no awaits, no clock reads.

Shape
-----
A fixed fan-out tree over key-hash buckets. With the defaults (fanout 32, depth 2)::

    depth 0   1 node      the root
    depth 1   32 nodes    inner: each covers 32 buckets
    depth 2   1024 nodes  the buckets (segments): the leaves

A key lives in bucket `bucket_of(key)`, chosen by a hash of the key alone, so both
replicas put it in the same bucket whatever its value. A bucket holds key -> value_hash
(the caller's digest of the stored object, e.g. of its encoding or its clock).

Bucket hash: the sum, mod 2**128, of one 128-bit digest per entry,
``blake2b(len(key) || key || value_hash)``. It does not depend on insertion order, and an
upsert or delete adjusts it in O(1) (subtract the old entry's digest, add the new one).
Modular addition rather than XOR: XOR makes any entry counted twice vanish and is linear
over GF(2), so past 128 entries some subsets of a bucket always XOR to zero (and
differences can be solved for by Gaussian elimination); the modular sum is the AdHash
multiset hash, where an entry counted twice shows as 2*d and no linear-algebra shortcut
exists. Since each entry's digest covers its key (length-prefixed, so key/value
boundaries cannot shift), moving a value from one key to another also changes the sum.
Two buckets whose contents differ get equal sums only if the digests of the differing
entries happen to sum to zero mod 2**128: probability about 2**-128. The nodes' own
trees are keyed (`keyed_digest`): there an entry's digest is XXH3-128 of the key and the
stored object's fingerprint, computed once per write, for speed (see there).

Inner nodes hash their children in order: ``blake2b(child_0 || ... || child_{f-1})``.
They are recomputed lazily: a write only marks its bucket dirty (O(1)); asking for the
root or an inner level first recomputes the dirty buckets' ancestors, and nothing else.
A burst of w writes thus costs O(w) plus at most one recompute per touched path.
Deleting every key restores every bucket sum to 0, hence the empty tree's exact root.

Exchange
--------
Everything that crosses the wire is plain ints, bytes and lists (msgpack-friendly). Both
replicas must use the same `shape` (fanout, depth); check it in the first message. The
requester (A) drives; the responder (B) answers from its own tree of the same partition:

1. Root compare. A asks B for ``level(0, [0])`` and compares it with its own `root()`.
   Equal: the replicas agree, the exchange is over (one hash transferred).
2. Level compare. For depth 1 .. depth-1, A asks B for ``level(d, children)`` where
   `children` are the children of the nodes that differed at depth d-1, and keeps the
   ones whose hash differs from its own ``level(d, children)``.
3. Bucket compare. The last level asked is the bucket level (depth `depth`): its
   differing nodes are the buckets to reconcile.
4. Key list. A asks B for ``bucket(i)`` for each differing bucket (or ``buckets(is)``
   in one message) and runs ``compare_buckets(local.bucket(i), remote_items)``: the keys
   whose value hashes differ or that exist on one side only. The node then reconciles
   those keys like read repair (fetch both objects, merge the clocks, write back).

`DiffWalk` is steps 1-3 as a sans-I/O state machine (`request()` gives the next
(depth, indices) to send, `feed()` takes B's hashes), so the node can await B's replies
between steps; `diff_walk` drives it with a synchronous callback and `diff_keys` runs
the whole exchange (for tests and local use).

Cost: with k differing keys the walk asks for at most 1 + k*fanout*depth hashes (at
most fanout children under each differing node per level, i.e. O(k log n) for a fixed
fanout), in depth+1 round trips, then the <= k differing buckets (about n/segments
entries each). For one differing key under the defaults: 1 + 32 + 32 = 65 hashes and one
bucket. If the trees change during an exchange (writes keep landing), the walk may
report a stale difference or miss a fresh one; both are harmless, as the next exchange
sees the new state.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from hashlib import blake2b
from typing import Any, Final
from zlib import crc32

from xxhash import xxh3_128_intdigest

from .graveyard import Sublists
from .quietlist import untrack

# The fold in C (dynredis/csrc/treefold.c), built with the compiled modules; else Python's.
_native_fold: Callable[..., bool] | None
_native_index: Callable[..., dict[int, list[bytes]]] | None
try:
    from .._treefold import fold as _native_fold
    from .._treefold import index as _native_index
except ImportError:
    _native_fold = _native_index = None

HASH_BYTES = 16
"""Width of every hash in the tree (bucket sums, inner nodes, the root)."""

_BITS = HASH_BYTES * 8
_MASK: Final = (1 << _BITS) - 1
_NODE_PERSON = b"dynredis.mrk.nod"

DEFAULT_FANOUT = 32
DEFAULT_DEPTH = 2

SHARDS: Final = 64
"""Maps a tree's entries are kept in (see MerkleTree._entries): a million keys rehash
~16,000 at a time as they grow."""

# The hashes every write's fold calls, as Final names: compiled code reads them from C
# globals instead of looking them up in the module's dict at each call.
_crc32: Final = crc32
_xxh3_128: Final = xxh3_128_intdigest
_from_bytes: Final = int.from_bytes


def keyed_digest(key: bytes, value: bytes) -> int:
    """The entry digest of `key` holding `value`, for trees built with ``keyed=True``:
    one hash per write instead of a value hash plus an entry digest.

    XXH3-128 over key || value, seeded with the key's length (so the boundary cannot
    shift): every write of every replica pays it (it is a third of the tree's upkeep with
    blake2b), and anti-entropy guards against accidents, not forgery: a client able to
    craft colliding values could at most hide a divergence from anti-entropy, which read
    repair still finds."""
    return _xxh3_128(key + value, len(key))


def entry_digest(key: bytes, value_hash: bytes) -> int:
    """One entry's contribution to its bucket's sum: a 128-bit int."""
    return int.from_bytes(
        blake2b(len(key).to_bytes(4, "big") + key + value_hash, digest_size=HASH_BYTES).digest(),
        "big",
    )


def _node_hash(children: bytes) -> bytes:
    return blake2b(children, digest_size=HASH_BYTES, person=_NODE_PERSON).digest()


class MerkleTree:
    """An incrementally maintained hash tree over one partition's keys.

    `insert`/`delete` cost two small hashes and a few dict operations; inner nodes are
    recomputed only when `root()` or `level()` asks for them, and only along dirty paths.
    """

    __slots__ = ("fanout", "depth", "segments", "shards", "_entries", "_index", "_indexed",
                 "_stale",
                 "_sums", "_nodes", "_dirty", "keyed", "inner_hashed")

    def __init__(self, fanout: int = DEFAULT_FANOUT, depth: int = DEFAULT_DEPTH,
                 keyed: bool = False) -> None:
        # keyed: value hashes come from `keyed_digest` and already cover the key, so an
        # entry's contribution is the value hash itself.
        self.keyed = keyed
        if fanout < 2 or depth < 1:
            raise ValueError("need fanout >= 2 and depth >= 1")
        self.fanout = fanout
        self.depth = depth
        self.segments: int = fanout**depth  # (declared: compiled code then uses int ops)
        # key -> the entry's digest (its contribution to its bucket's sum), in `shards`
        # maps: bucket b's keys in map b % shards. Not a map per bucket: a node's trees
        # have 1024 buckets for each of the ring's partitions, most holding a key or
        # two, and a map per bucket cost a dict (about 200 bytes, an allocation) per key
        # written. Not one map: a partition holding a big collection's records grows to
        # millions of keys, and a map that grows rehashes every key in one go (at 1.4M
        # keys 60-80 ms of CPU in the fold's turn, at 2.8M 120): a shard grows a
        # SHARDS-th of that at a time.
        self.shards: int = min(SHARDS, self.segments)
        self._entries: list[dict[bytes, int]] = [{} for _ in range(self.shards)]
        # bucket -> its keys, built when a bucket's entries are first asked for
        # (exchanges, key walks), then kept by the writes: a key added is appended, a
        # key deleted left in place (`_stale` counts them by bucket) and dropped when
        # its bucket is read, or once they are half its list (that list alone is
        # cleaned: O(1) a delete, amortized). Rebuilt after every write that added a
        # key, it cost each exchange of a partition holding a million-element
        # collection's records 120 ms; rebuilt whole once the deleted keys outnumbered
        # those held, it cost the exchange after a bulk removal of a 300,000-element
        # sorted set's records 70-120 ms.
        # Built a shard of the entries at a time (`_indexed`: the shards whose buckets it
        # lists), when one of its buckets is first asked for: built whole, the first
        # exchange of a partition of a million records after a start took 120 ms in one
        # piece (crc32 of every key), a shard's 2 ms.
        self._index: dict[int, list[bytes]] = {}
        self._indexed = bytearray(self.shards)
        self._stale: dict[int, int] = {}
        # Each bucket's sum of its entries' digests mod 2**128: HASH_BYTES big-endian
        # bytes per bucket, the hash an exchange sends. Fixed-width bytes rather than an
        # exact int per bucket: the C fold adds in place, where each write made a
        # difference and a new sum as ints. (The entries stay ints: 48 bytes each
        # where 16 bytes of digest take 64 as a bytes object.)
        self._sums = bytearray(HASH_BYTES * self.segments)
        # _nodes[d] holds the hashes at inner depth d (0 = root), for d < depth.
        self._nodes: list[list[bytes]] = []
        below = bytes(HASH_BYTES)
        levels = []
        for d in range(depth - 1, -1, -1):
            below = _node_hash(below * fanout)
            levels.append([below] * fanout**d)
        self._nodes = levels[::-1]
        # A byte per bucket, 1 if its sum changed since the inner nodes were hashed:
        # the fold marks a bucket by a store, where a set's insert made an int.
        self._dirty = bytearray(self.segments)
        self.inner_hashed = 0  # inner nodes recomputed so far (what laziness saves)

    # -- writes -----------------------------------------------------------------------

    def bucket_of(self, key: bytes) -> int:
        """The bucket (leaf index) `key` belongs to; depends on the key only."""
        # CRC-32 only spreads keys over buckets (security comes from the entry digests);
        # it is on every write's path and costs a tenth of a keyed hash.
        return crc32(key) % self.segments

    def insert(self, key: bytes, value_hash: bytes) -> None:
        """Set `key`'s value hash (insert or update)."""
        if self.keyed:
            self.insert_digest(key, int.from_bytes(value_hash, "big"))
        else:
            self.insert_digest(key, entry_digest(key, value_hash))

    def insert_digest(self, key: bytes, digest: int) -> None:
        """Set `key`'s entry digest (what `insert` derives from a value hash; a keyed
        tree's writer passes `keyed_digest` directly)."""
        b = _crc32(key) % self.segments
        entries = self._entries[b % self.shards]
        old = entries.get(key)
        if old is None:
            delta = digest
            if self._indexed[b % self.shards]:
                self._index_add(key, b)
        elif old == digest:
            return
        else:
            delta = digest - old
        entries[key] = digest
        self._add(b, delta)

    def _add(self, b: int, delta: int) -> None:
        """Bucket `b`'s sum plus `delta`, mod 2**128, and the bucket marked dirty."""
        at = b * HASH_BYTES
        sums = self._sums
        total = _from_bytes(sums[at : at + HASH_BYTES], "big") + delta
        sums[at : at + HASH_BYTES] = (total & _MASK).to_bytes(HASH_BYTES, "big")
        self._dirty[b] = 1

    def fold(self, keys: dict[bytes, bytes | None]) -> None:
        """Take in a batch of writes of a keyed tree: each key's fingerprint (the
        stored object's, obj.fingerprint), None for a key deleted. Every write of every
        replica comes through here, so it runs in C when the helper is built
        (dynredis/csrc/treefold.c: the same digests and sums, in a third of the
        instructions)."""
        native = _native_fold
        if native is not None:
            # `1 in` is bytearray's memchr; compiled, any() stepped through the 64 shards
            # a call each on every fold.
            deleted = self._index_fold(keys) if 1 in self._indexed else None
            native(self._entries, self._sums, self._dirty, self.segments, keys)
            if deleted:
                self._clean_stale(deleted)
            return
        self.fold_pure(keys)

    def _index_fold(self, keys: dict[bytes, bytes | None]) -> list[int]:
        """The bucket index told of the keys a fold (about to run) adds or deletes;
        the buckets of those it deletes."""
        shards = self._entries
        indexed = self._indexed
        n, segments = self.shards, self.segments
        deleted: list[int] = []
        for key, fp in keys.items():
            b = _crc32(key) % segments
            if not indexed[b % n]:
                continue
            if key in shards[b % n]:
                if fp is None:
                    self._stale_one(b)
                    deleted.append(b)
            elif fp is not None:
                self._index_add(key, b)
        return deleted

    def _stale_one(self, b: int) -> None:
        """A key of bucket `b` is deleted (or about to be): counted against its list."""
        stale = self._stale
        stale[b] = stale.get(b, 0) + 1

    def _clean_stale(self, buckets: Iterable[int]) -> None:
        """Clean those of `buckets`' lists that deleted keys make half of (after a
        write deleted keys of theirs)."""
        index = self._index
        stale = self._stale
        for b in set(buckets):
            keys = index.get(b)
            if keys is None:
                stale.pop(b, None)
            elif 2 * stale.get(b, 0) >= len(keys):
                self._clean(b, keys)

    def _clean(self, b: int, keys: list[bytes]) -> list[bytes]:
        """Bucket `b`'s list without its deleted keys, each listed once."""
        index = self._index
        del self._stale[b]
        entries = self._entries[b % self.shards]
        held = [k for k in dict.fromkeys(keys) if k in entries]
        if held:
            index[b] = held
            untrack(held)
        else:
            del index[b]
        return held

    def _index_add(self, key: bytes, b: int) -> None:
        index = self._index
        keys = index.get(b)
        if keys is None:
            keys = index[b] = [key]
            untrack(keys)  # (keys only: see `_index_shard`)
        else:
            keys.append(key)

    def fold_pure(self, keys: dict[bytes, bytes | None]) -> None:
        """`fold` in Python: the reference the C helper is tested against."""
        for key, fp in keys.items():
            if fp is None:
                self.delete(key)
            else:
                self.insert_digest(key, keyed_digest(key, fp))

    def delete(self, key: bytes) -> None:
        """Forget `key` (no-op if absent)."""
        b = _crc32(key) % self.segments
        old = self._entries[b % self.shards].pop(key, None)
        if old is None:
            return
        if self._indexed[b % self.shards]:
            self._stale_one(b)
            self._clean_stale((b,))
        self._add(b, -old)

    # -- reads ------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(map(len, self._entries))

    def map_bytes(self) -> int:
        """The bytes of the maps of its keys to their digests (their tables, not the
        keys: MEMORY STATS' overhead.hashtable.main)."""
        return sum(map(sys.getsizeof, self._entries))

    def _shard(self, key: bytes) -> dict[bytes, int]:
        return self._entries[_crc32(key) % self.segments % self.shards]

    def __contains__(self, key: bytes) -> bool:
        return key in self._shard(key)

    def get(self, key: bytes) -> bytes | None:
        """`key`'s entry digest (a keyed tree's: the value hash it was given), or None."""
        d = self._shard(key).get(key)
        return None if d is None else d.to_bytes(HASH_BYTES, "big")

    @property
    def shape(self) -> tuple[int, int]:
        """(fanout, depth): two trees can be compared only if their shapes match."""
        return (self.fanout, self.depth)

    def width(self, depth: int) -> int:
        """Number of nodes at `depth` (1 at the root, `segments` at the buckets)."""
        self._check_depth(depth)
        return self.fanout**depth

    def release(self, bury: Callable[[Any], None]) -> None:
        """Give the entries to `bury` (the tree is being dropped: a wipe). The bucket
        index's lists go as lists: a partition of a million-element collection's
        records has its million keys in a thousand of them (freed in one step, 17 ms
        in-process, as one dict of a thousand entries)."""
        for shard in self._entries:
            bury(shard)
        self._entries = [{} for _ in range(self.shards)]
        index = self._index
        if index:
            lists = list(index.values())
            index.clear()  # (its lists are held by `lists`: nothing is freed)
            bury(Sublists(lists))
        self._index = {}
        self._indexed = bytearray(self.shards)
        self._stale = {}
        self._sums = bytearray()

    def root(self) -> bytes:
        self._flush()
        return self._nodes[0][0]

    def level(self, depth: Any, indices: Iterable[Any]) -> list[bytes]:
        """Hashes of the nodes `indices` at `depth` (0 = root, `self.depth` = buckets).

        Indices come from peers, so they are checked here (hence Any, not int)."""
        self._check_depth(depth)
        width = self.fanout**depth
        idx = list(indices)
        for i in idx:
            if type(i) is not int or not 0 <= i < width:
                raise IndexError(f"no node {i!r} at depth {depth}")
        if depth == self.depth:
            sums = self._sums
            return [bytes(sums[i * HASH_BYTES : (i + 1) * HASH_BYTES]) for i in idx]
        self._flush()
        nodes = self._nodes[depth]
        return [nodes[i] for i in idx]

    def bucket(self, index: Any) -> list[tuple[bytes, bytes]]:
        """Bucket `index`'s entries as a key-sorted list of (key, entry digest): two
        replicas' entries for a key are equal exactly when their value hashes are."""
        if type(index) is not int or not 0 <= index < self.segments:
            raise IndexError(f"no bucket {index!r}")
        self._index_shard(index % self.shards)
        keys = self._index.get(index)
        if not keys:
            return []
        if index in self._stale:
            # Keys deleted since the index was built, or deleted and added again
            # (listed twice), go now.
            keys = self._clean(index, keys)
        entries = self._entries[index % self.shards]
        return sorted([(k, entries[k].to_bytes(HASH_BYTES, "big")) for k in keys])

    def occupied(self) -> list[int]:
        """The numbers of the buckets listing keys, in order (a bucket whose keys were
        all deleted since may still be listed: `bucket` then gives []). A walk steps
        from one to the next instead of visiting every bucket: a SCAN 0 COUNT
        1000000000 of ~700 keys visited all 1,024 of every partition, 66 ms."""
        for s in range(self.shards):
            self._index_shard(s)
        return sorted(self._index)

    def _index_shard(self, s: int) -> None:
        """List the buckets of entries shard `s` in the index, if not yet (its keys
        fall in buckets b with b % shards == s, which no other shard's do)."""
        if self._indexed[s]:
            return
        native = _native_index
        part = (native([self._entries[s]], self.segments) if native is not None
                else self._build_index([self._entries[s]]))
        # Lists of keys, a million for a partition holding a big collection's records:
        # never in a cycle, so kept out of the collector's walk (quietlist.py; a full
        # pass visited every key).
        for keys in part.values():
            untrack(keys)
        self._index.update(part)
        self._indexed[s] = 1

    def _build_index(self, shards: list[dict[bytes, int]] | None = None
                     ) -> dict[int, list[bytes]]:
        """The bucket index of `shards` (every shard's by default) in Python (without
        the C helper)."""
        index: dict[int, list[bytes]] = {}
        segments = self.segments
        for shard in self._entries if shards is None else shards:
            for k in shard:
                b = crc32(k) % segments
                keys = index.get(b)
                if keys is None:
                    index[b] = [k]
                else:
                    keys.append(k)
        return index

    def buckets(self, indices: Iterable[Any]) -> list[list[tuple[bytes, bytes]]]:
        """`bucket(i)` for each of `indices`: the answer to step 4 in one message."""
        return [self.bucket(i) for i in indices]

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, entry digest), in no particular order."""
        for shard in self._entries:
            for k, d in shard.items():
                yield k, d.to_bytes(HASH_BYTES, "big")

    def keys(self) -> Iterator[bytes]:
        for shard in self._entries:
            yield from shard

    # -- internals --------------------------------------------------------------------

    def _check_depth(self, depth: Any) -> None:
        if type(depth) is not int or not 0 <= depth <= self.depth:
            raise IndexError(f"no depth {depth!r} (tree depth {self.depth})")

    def _flush(self) -> None:
        """Recompute the inner nodes above the dirty buckets, bottom-up."""
        flags = self._dirty
        if 1 not in flags:
            return
        dirty = {i for i in range(len(flags)) if flags[i]}
        self._dirty = bytearray(self.segments)
        f = self.fanout
        sums = self._sums
        below: Sequence[bytes] | None = None  # None: the level below is the buckets
        for d in range(self.depth - 1, -1, -1):
            parents = {i // f for i in dirty}
            nodes = self._nodes[d]
            for p in parents:
                lo = p * f
                if below is None:
                    children = bytes(sums[lo * HASH_BYTES : (lo + f) * HASH_BYTES])
                else:
                    children = b"".join(below[lo : lo + f])
                nodes[p] = _node_hash(children)
            self.inner_hashed += len(parents)
            below = nodes
            dirty = parents


class DiffWalk:
    """Steps 1-3 of an exchange, as a sans-I/O state machine on the requester's side.

    Loop: ``req = walk.request()``; if None, ``walk.buckets`` are the differing buckets;
    else send ``req`` = (depth, indices) to the peer, which answers
    ``tree.level(depth, indices)``, and ``walk.feed(answer)``.
    """

    __slots__ = ("tree", "depth", "indices", "buckets", "asked", "done")

    def __init__(self, tree: MerkleTree) -> None:
        self.tree = tree
        self.depth = 0
        self.indices: list[int] = [0]
        self.buckets: list[int] = []
        self.asked = 0  # node hashes requested from the peer so far
        self.done = False

    def request(self) -> tuple[int, list[int]] | None:
        """The next (depth, indices) to ask the peer for, or None when finished."""
        if self.done:
            return None
        return (self.depth, list(self.indices))

    def feed(self, remote: Sequence[bytes]) -> None:
        """Take the peer's hashes for the last request."""
        if self.done:
            raise RuntimeError("walk already finished")
        if len(remote) != len(self.indices):
            raise ValueError(f"expected {len(self.indices)} hashes, got {len(remote)}")
        self.asked += len(self.indices)
        local = self.tree.level(self.depth, self.indices)
        differing = [
            i for i, mine, theirs in zip(self.indices, local, remote, strict=True)
            if mine != theirs
        ]
        if self.depth == self.tree.depth or not differing:
            self.buckets = differing if self.depth == self.tree.depth else []
            self.indices = []
            self.done = True
            return
        f = self.tree.fanout
        self.depth += 1
        self.indices = [c for p in differing for c in range(p * f, p * f + f)]


def diff_walk(
    local: MerkleTree, ask: Callable[[int, list[int]], Sequence[bytes]]
) -> list[int]:
    """The buckets where `local` and the peer differ, found top-down.

    `ask(depth, indices)` must return the peer's ``level(depth, indices)``.
    """
    walk = DiffWalk(local)
    while (req := walk.request()) is not None:
        walk.feed(ask(*req))
    return walk.buckets


def compare_buckets(
    local_items: Iterable[Sequence[bytes]], remote_items: Iterable[Sequence[bytes]]
) -> list[bytes]:
    """Sorted keys whose value hashes differ between the two sides, or that one lacks.

    Items are (key, value_hash) pairs; lists work as well as tuples (after msgpack).
    """
    mine = {k: v for k, v in local_items}
    theirs = {k: v for k, v in remote_items}
    out = [k for k, v in mine.items() if theirs.get(k) != v]
    out.extend(k for k in theirs if k not in mine)
    return sorted(out)


def diff_keys(
    local: MerkleTree,
    ask_level: Callable[[int, list[int]], Sequence[bytes]],
    ask_buckets: Callable[[list[int]], Sequence[Iterable[Sequence[bytes]]]],
) -> list[bytes]:
    """A whole exchange (steps 1-4): the sorted keys to reconcile with the peer.

    `ask_buckets(indices)` must return the peer's ``buckets(indices)``.
    """
    differing = diff_walk(local, ask_level)
    if not differing:
        return []
    remote = ask_buckets(differing)
    keys: list[bytes] = []
    for i, theirs in zip(differing, remote, strict=True):
        keys.extend(compare_buckets(local.bucket(i), theirs))
    return sorted(keys)


class PartitionTrees:
    """One `MerkleTree` per partition, created on first use."""

    __slots__ = ("fanout", "depth", "_trees", "keyed")

    def __init__(self, fanout: int = DEFAULT_FANOUT, depth: int = DEFAULT_DEPTH,
                 keyed: bool = False) -> None:
        self.keyed = keyed
        MerkleTree(fanout, depth)  # validate the shape once, up front
        self.fanout = fanout
        self.depth = depth
        self._trees: dict[int, MerkleTree] = {}

    def __getitem__(self, partition: int) -> MerkleTree:
        tree = self._trees.get(partition)
        if tree is None:
            tree = self._trees[partition] = MerkleTree(self.fanout, self.depth, self.keyed)
        return tree

    def held(self) -> list[int]:
        """Partitions whose tree holds at least one key."""
        return [p for p, tree in self._trees.items() if len(tree)]

    def get(self, partition: int) -> MerkleTree | None:
        """The partition's tree if it exists (does not create one)."""
        return self._trees.get(partition)

    def insert(self, partition: int, key: bytes, value_hash: bytes) -> None:
        self[partition].insert(key, value_hash)

    def delete(self, partition: int, key: bytes) -> None:
        tree = self._trees.get(partition)
        if tree is not None:
            tree.delete(key)

    def pop(self, partition: int) -> MerkleTree | None:
        """Drop a partition's tree (e.g. after handing the partition off)."""
        return self._trees.pop(partition, None)

    def clear(self, bury: Callable[[Any], None] | None = None) -> None:
        """Drop every tree (`bury`: core/graveyard.py's, to free their entries over
        turns)."""
        if bury is not None:
            for tree in self._trees.values():
                tree.release(bury)
        self._trees.clear()

    def __contains__(self, partition: object) -> bool:
        return partition in self._trees

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._trees))

    def __len__(self) -> int:
        return len(self._trees)
