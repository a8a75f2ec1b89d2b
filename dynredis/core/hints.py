"""Hinted handoff storage layout (Dynamo §4.6).

A fallback node that takes a write meant for a down primary keeps it as a hint in a
reserved partition of its engine, keyed by the intended owner, the partition and
the key, so hints are durable like any data, survive restarts, and can be scanned
and handed off owner by owner.

Compiled (native.py): while a primary is down, every write its coordinator takes
makes one hint key.
"""

from __future__ import annotations

from typing import Final

HINT_PARTITION: Final = 0xFFFF  # beyond any ring's partitions (ring sizes are at most 16384)

# Each owner's key prefix and each partition's two bytes, made once (a hint key per
# write while an owner is down: building both parts each time was about 600 of its
# 1,000 instructions).
_OWNER_PREFIXES: Final[dict[str, bytes]] = {}
_PARTITION_BYTES: Final[dict[int, bytes]] = {}


def hint_key(owner: str, partition: int, key: bytes) -> bytes:
    prefix = _OWNER_PREFIXES.get(owner)
    if prefix is None:
        prefix = hint_prefix(owner)
        if len(_OWNER_PREFIXES) < 4096:  # (owners are the cluster's members: a few)
            _OWNER_PREFIXES[owner] = prefix
    part = _PARTITION_BYTES.get(partition)
    if part is None:
        part = _PARTITION_BYTES[partition] = partition.to_bytes(2, "big")
    return prefix + part + key


def hint_prefix(owner: str) -> bytes:
    """What every hint key for `owner` starts with (and no other owner's does)."""
    return owner.encode() + b"\x00"


def parse_hint_key(hk: bytes) -> tuple[str, int, bytes]:
    """(owner, partition, key) of a hint key."""
    i = hk.index(b"\x00")
    return hk[:i].decode(), int.from_bytes(hk[i + 1 : i + 3], "big"), hk[i + 3 :]
