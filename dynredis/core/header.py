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
    digest  16 bytes  SHA-256 of the body, cut to 16 bytes: names the object exactly
                      (SHA-256, not blake2b as for small objects: the CPU's SHA
                      instructions hash it about twice as fast)

A sweep over 100 MB values once decoded each of them every second; with the header it
reads 42 bytes of each. The header is a function of the body, so encoding stays
canonical (two replicas holding the same object hold the same bytes), and hashing the
header stands for hashing the whole object (anti-entropy's trees). Smaller objects
have no header: decoding them costs less than a header would on every write.
"""

from __future__ import annotations

import struct
from hashlib import sha256
from typing import Final

MAGIC: Final = 0xC1
VERSION: Final = 1
HEADED_FROM: Final = 4096  # body bytes from which an object carries a header
FOREVER: Final = (1 << 64) - 1

_HEADER = struct.Struct(">BBQQQ16s")
SIZE: Final = 42  # _HEADER.size
DIGEST_AT: Final = SIZE - 16
assert _HEADER.size == SIZE


def make(live: int, dead: int, reads: int, body: bytes) -> bytes:
    """The header of `body` (whose object's times are `live`, `dead` and `reads`)."""
    return _HEADER.pack(MAGIC, VERSION, live, dead, reads, sha256(body).digest()[:16])


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
