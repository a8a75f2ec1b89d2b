"""A Bloom filter over the keys an engine stores: "never stored" without a lookup.

A write of a new key (and a read of a key never written) first asks the engine what it
holds; in LMDB a key that is not there still costs a B-tree descent (about 3,200
instructions of a 33,400-instruction SET on one node). The filter answers most such
questions from two bits. It only ever says "maybe" for a key that was added, so a
stored key is never reported absent (which would lose its clock: a write would start a
history beside the stored one); a key never added is reported "maybe" with the false
positive rate (a real lookup then, as without the filter). Bits are never cleared:
a deleted key stays "maybe" until the filter is made anew.

Probes: Python's hash of a bytes key (computed once and kept on the object, so the
store's earlier lookups of the same key paid for it), split into two 32-bit halves
`h1` and `h2`; the bits are `h1` and `h1 + h2` modulo the size, a power of two (two
independent-enough probes from one hash). The hash is per process (PYTHONHASHSEED):
the filter is never saved, it is rebuilt from the store's keys at open.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

# The smallest filter (bits): 4 MB (a byte a bit, below), 262,144 keys at 16 bits a
# key however few the store holds at open.
MIN_BITS: Final = 1 << 22
# Bits per key held at open (rounded up to a power of two): a false positive rate of
# about 1.4% at 16 bits per key, 4.9% once the keys have doubled. Beyond that the
# filter only says "maybe" more often.
BITS_PER_KEY: Final = 16
_LOW: Final = 0xFFFFFFFF


def filter_bits(keys: int, min_bits: int = MIN_BITS) -> int:
    """The filter's size in bits for `keys` keys held at open: a power of two."""
    bits = 8
    while bits < min_bits or bits < keys * BITS_PER_KEY:
        bits <<= 1
    return bits


class KeyFilter:
    """The keys added so far, as a Bloom filter of `bits` bits (a power of two, 8 or
    more).

    The bits are held eight to an item of a list of ints, each 0-255: CPython's small
    ints, shared, so an item costs its 8-byte pointer (a byte per bit) and setting a bit
    allocates nothing, and compiled code reads an item in a few instructions. (A
    bytearray's item was a generic call with a boxed index, about 330 instructions a
    probe; chunks of immutable bytes read as fast, but a bit set made a new chunk,
    about 400 instructions, once per bit of every new key.)"""

    def __init__(self, bits: int) -> None:
        self.bytes: list[int] = [0] * (bits >> 3)
        self.mask: i64 = bits - 1
        # The key last hashed, and its hash: a write asks `may_hold` then `add` for the
        # same key object (half of all hashes do not fit a compiled short int: boxed).
        self.last_key: object = None
        self.last_hash: i64 = 0

    def add(self, key: bytes) -> None:
        h = self._hash(key)
        a: i64 = h & self.mask
        b: i64 = (a + ((h >> 32) & _LOW)) & self.mask
        items = self.bytes
        i = a >> 3
        j = b >> 3
        x = items[i]
        ma = 1 << (a & 7)
        mb = 1 << (b & 7)
        items[i] = x | ma
        items[j] = items[j] | mb  # (read again: i may be j)

    def may_hold(self, key: bytes) -> bool:
        """False only if `key` was never added."""
        h = self._hash(key)
        a: i64 = h & self.mask
        items = self.bytes
        if not items[a >> 3] & (1 << (a & 7)):
            return False
        b: i64 = (a + ((h >> 32) & _LOW)) & self.mask
        return items[b >> 3] & (1 << (b & 7)) != 0

    def _hash(self, key: bytes) -> i64:
        if key is self.last_key:
            return self.last_hash
        if type(key) is not bytes:
            return hash(bytes(key))  # (not kept: a bytearray may change)
        h: i64 = hash(key)
        self.last_key = key
        self.last_hash = h
        return h

    def size(self) -> int:
        """The filter's size in bits."""
        return int(self.mask) + 1
