"""Where a collection's pieces live in a replica's storage.

A key's *header* is the object stored under the key itself in its partition `p`, as a
string's is: its live sibling says the key's type (a string's bytes, a counter, or a
collection marker `(type,)`) and carries its expiry. A collection's elements are
records of their own, one per field, member or list position, in the key's element
partition `ELEM_BASE + p`, under `prefix(key) + kind + element`; so an update writes,
sends and hashes one element, never the whole collection, and the elements of one key
are one contiguous, ordered run of the engine's key space. The key's *removal record*
(`prefix(key) + REMOVAL`) holds the events a delete or a type change observed: element
versions it covers are gone, anything concurrent survives.

Element partitions have the same preference lists as their base partitions, so every
replica mechanism (replication, hints, read repair, anti-entropy, reaping) treats them
as partitions like any other. `LOCAL_BASE + p` holds what only this replica knows about
its collections (which update events it has applied, see `dotset.py`): never
replicated, never in hash trees.
"""

from __future__ import annotations

from typing import Final

ELEM_BASE: Final = 0x4000  # ring sizes are at most 16384 partitions
LOCAL_BASE: Final = 0x8000

REMOVAL = b"\x00"
HASH = b"h"
SET = b"s"
ZSET = b"z"
LIST = b"l"

TYPE_OF_KIND = {HASH: "hash", SET: "set", ZSET: "zset", LIST: "list"}
KIND_OF_TYPE = {v: k for k, v in TYPE_OF_KIND.items()}


def elem_partition(p: int) -> int:
    return ELEM_BASE + p


def local_partition(p: int) -> int:
    return LOCAL_BASE + p


def is_elem_partition(p: int) -> bool:
    return ELEM_BASE <= p < LOCAL_BASE


def is_local_partition(p: int) -> bool:
    return LOCAL_BASE <= p < LOCAL_BASE + ELEM_BASE


def base_partition(p: int) -> int:
    """The ring partition an element or local partition belongs to."""
    if p >= LOCAL_BASE:
        return p - LOCAL_BASE
    if p >= ELEM_BASE:
        return p - ELEM_BASE
    return p


def replicated(p: int) -> bool:
    """Partitions whose records replicas exchange (not the local ones, not hints)."""
    return p < LOCAL_BASE


def prefix(key: bytes) -> bytes:
    """The key's length (LEB128) and the key: no key's prefix starts another's."""
    n = len(key)
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    return bytes(out) + key


def record_key(key: bytes, kind: bytes, element: bytes) -> bytes:
    return prefix(key) + kind + element


def removal_key(key: bytes) -> bytes:
    return prefix(key) + REMOVAL


def split(rkey: bytes) -> tuple[bytes, bytes, bytes]:
    """(key, kind, element) of a record key."""
    n = 0
    shift = 0
    i = 0
    while True:
        byte = rkey[i]
        n |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            break
        shift += 7
    key = rkey[i : i + n]
    return key, rkey[i + n : i + n + 1], rkey[i + n + 1 :]


def kind_of(rkey: bytes) -> bytes:
    """The kind byte of a record key."""
    return split(rkey)[1]


def marker(type_name: str) -> tuple[str]:
    """A header sibling's data for a collection of `type_name`."""
    return (type_name,)


def marker_type(data: object) -> str | None:
    """The collection type a header sibling's data names, or None (string, counter,
    tombstone)."""
    if (type(data) is tuple or type(data) is list) and len(data) == 1 \
            and type(data[0]) is str:  # (a list: as it crossed the wire)
        return data[0]  # type: ignore[no-any-return,index]
    return None
