"""The header of a large stored object: what the reaper, anti-entropy and keyspace walks
need to know of it, readable without decoding (or even reading) its value.

An object whose msgpack encoding (its body) is HEADED_FROM bytes or more is stored and
sent as a fixed header followed by the body:

    magic    1 byte   0xc1, a byte msgpack never uses (a small object starts 0x9_)
    version  1 byte
    live     8 bytes  until when some sibling is a live value: FOREVER if one never
                      expires, 0 if there is none (tombstones only)
    dead     8 bytes  when the object died, once nothing in it is live: the latest
                      tombstone's write time or value's expiry
    reads    8 bytes  until when a plain GET sees a value (the last-writer-wins
                      sibling): FOREVER, its expiry, or 0 if it is a tombstone
    digest  16 bytes  XXH3-128 of the body: names the object (version 1 had SHA-256
                      cut to 16 bytes, which held a node's loop 150 ms per 100 MB
                      written; XXH3 takes 5-10 ms)

A sweep over 100 MB values once decoded each of them every second; with the header it
reads 42 bytes of each. The header is a function of the body, so encoding stays
canonical (two replicas holding the same object hold the same bytes), and hashing the
header stands for hashing the whole object (anti-entropy's trees). Smaller objects
have no header: decoding them costs less than a header would on every write.

The digest is compared, never recomputed from a stored body, so headers of either
version stay valid; a replica that merges or rewrites an object writes a version 2
header, and replicas then agree again through anti-entropy. XXH3 guards against
accidents, not forgery (as anti-entropy's entry digests, merkle.py): a client able to
craft two large values of one key with equal digests could at most make a replica take
one of its own versions for the other.
"""

from __future__ import annotations

import struct
from typing import Final

from xxhash import xxh3_128_digest

MAGIC: Final = 0xC1
VERSION: Final = 2
HEADED_FROM: Final = 4096  # body bytes from which an object carries a header
FOREVER: Final = (1 << 64) - 1

_HEADER = struct.Struct(">BBQQQ16s")
SIZE: Final = 42  # _HEADER.size
DIGEST_SIZE: Final = 16
DIGEST_AT: Final = SIZE - DIGEST_SIZE
assert _HEADER.size == SIZE


def make(live: int, dead: int, reads: int, body: bytes) -> bytes:
    """The header of `body` (whose object's times are `live`, `dead` and `reads`)."""
    return _HEADER.pack(MAGIC, VERSION, live, dead, reads, xxh3_128_digest(body))


def make_with(live: int, dead: int, reads: int, digest: bytes) -> bytes:
    """`make`, given the body's digest (XXH3-128, computed over it in pieces)."""
    return _HEADER.pack(MAGIC, VERSION, live, dead, reads, digest)


def is_headed(enc: bytes) -> bool:
    """Whether an encoded object (or the first bytes of one) starts with a header."""
    return len(enc) >= SIZE and enc[0] == MAGIC


def times(enc: bytes) -> tuple[int, int, int]:
    """(live, dead, reads) of a headed object."""
    _, _, live, dead, reads, _ = _HEADER.unpack_from(enc)
    return live, dead, reads


def digest(enc: bytes) -> bytes:
    """The body's digest in a headed object's header."""
    return enc[DIGEST_AT:SIZE]
