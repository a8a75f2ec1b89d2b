"""Hinted handoff storage layout (Dynamo §4.6).

A fallback node that takes a write meant for a down primary keeps it as a hint in a
reserved partition of its engine, keyed by the intended owner, the partition and
the key, so hints are durable like any data, survive restarts, and can be scanned
and handed off owner by owner.
"""

from __future__ import annotations

HINT_PARTITION = 0xFFFF  # beyond any ring's partitions (ring sizes are at most 16384)


def hint_key(owner: str, partition: int, key: bytes) -> bytes:
    return hint_prefix(owner) + partition.to_bytes(2, "big") + key


def hint_prefix(owner: str) -> bytes:
    """What every hint key for `owner` starts with (and no other owner's does)."""
    return owner.encode() + b"\x00"


def parse_hint_key(hk: bytes) -> tuple[str, int, bytes]:
    """(owner, partition, key) of a hint key."""
    i = hk.index(b"\x00")
    return hk[:i].decode(), int.from_bytes(hk[i + 1 : i + 3], "big"), hk[i + 3 :]
