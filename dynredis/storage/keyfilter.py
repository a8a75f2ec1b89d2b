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

# The smallest filter (bits): 4 MB, a few hundred thousand keys at a low false
# positive rate however few the store holds at open.
MIN_BITS: Final = 1 << 25
# Bits per key held at open (rounded up to a power of two): 16 bits per key, a false
# positive rate of about 1.4%, once the keys have doubled. Beyond that the filter only
# says "maybe" more often.
BITS_PER_KEY: Final = 32
# Bytes per chunk (a power of two; a smaller filter is one chunk).
CHUNK: Final = 128
_LOW: Final = 0xFFFFFFFF
_BYTES: Final = [bytes((i,)) for i in range(256)]


def filter_bits(keys: int, min_bits: int = MIN_BITS) -> int:
    """The filter's size in bits for `keys` keys held at open: a power of two."""
    bits = 8
    while bits < min_bits or bits < keys * BITS_PER_KEY:
        bits <<= 1
    return bits


class KeyFilter:
    """The keys added so far, as a Bloom filter of `bits` bits (a power of two, 8 or
    more).

    The bits are held as chunks of immutable bytes, a chunk replaced when one of its
    bits is set: compiled code reads a byte of a bytes object in a few instructions,
    where a bytearray's item is a generic call with a boxed index (about 330
    instructions a probe, measured). Setting a bit (once per bit) makes a new chunk."""

    def __init__(self, bits: int) -> None:
        size = min(CHUNK, bits >> 3)  # bytes per chunk
        self.chunks: list[bytes] = [bytes(size)] * ((bits >> 3) // size)
        self.mask: i64 = bits - 1
        self.shift: i64 = 3 + size.bit_length() - 1  # a bit's chunk: its number >> shift
        self.low: i64 = size - 1  # a bit's byte in its chunk: (its number >> 3) & low
        self.added = 0  # adds that set a bit: about the number of distinct keys

    def add(self, key: bytes) -> None:
        h: i64 = hash(key if type(key) is bytes else bytes(key))
        a: i64 = h & self.mask
        b: i64 = (a + ((h >> 32) & _LOW)) & self.mask
        if self._set(a) | self._set(b):
            self.added += 1

    def _set(self, bit: i64) -> bool:
        """Set the bit; whether it was clear."""
        chunks = self.chunks
        c = bit >> self.shift
        chunk = chunks[c]
        j = (bit >> 3) & self.low
        byte = chunk[j]
        m = 1 << (bit & 7)
        if byte & m:
            return False
        chunks[c] = chunk[:j] + _BYTES[byte | m] + chunk[j + 1 :]
        return True

    def may_hold(self, key: bytes) -> bool:
        """False only if `key` was never added."""
        h: i64 = hash(key if type(key) is bytes else bytes(key))
        a: i64 = h & self.mask
        if not self.chunks[a >> self.shift][(a >> 3) & self.low] & (1 << (a & 7)):
            return False
        b: i64 = (a + ((h >> 32) & _LOW)) & self.mask
        return self.chunks[b >> self.shift][(b >> 3) & self.low] & (1 << (b & 7)) != 0

    def size(self) -> int:
        """The filter's size in bits."""
        return int(self.mask) + 1
