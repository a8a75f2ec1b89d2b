"""MEMORY USAGE of a collection: its elements, estimated from a sample of them.

A collection key's own stored object is only its header (type, expiry, clock): MEMORY
USAGE answered 94 bytes for a sorted set of 200,000 members, so `redis-cli --memkeys`
ranked the biggest keys last. As Redis does, the elements are sampled (SAMPLES, 5 by
default, 0 for all of them): each kind's count times the mean stored size of the first
ones (record key, record, per-key overhead), at the key's coordinator. At most
SAMPLES_MOST are read whatever SAMPLES asks: SAMPLES 0 read every record of a million
elements in one loop turn (1.1-1.5 s of a node's CPU); the answer is an estimate anyway.
At 16,384 a read still took 15-43 ms of CPU (one of 33 pipelined ones): 4,096 records
are enough for a mean.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from ..core import records as rec
from ..core.collview import KeyView
from .collection import Built, internal_step

KEY_OVERHEAD = 56
"""Per-key bytes MEMORY USAGE adds to the key and its stored object (index entry,
page slot, cache entry): an estimate, as Redis' own answer is; per element as well."""

DEFAULT_SAMPLES = 5
SAMPLES_MOST = 4096  # records read at most (module docstring)


@internal_step("dyn.memusage")
def build_memusage(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.memusage, key, samples] -> [type or None, estimated bytes of its elements]."""
    samples = int(args[2])

    def op(v: KeyView) -> Any:
        t = v.type()
        if t is None or t == "string":
            return [t, 0]
        return [t, elements_size(v, samples)]

    return args[1], op


def elements_size(v: KeyView, samples: int) -> int:
    """The stored size of the key's elements, estimated from `samples` of each kind
    (0: all of them, up to SAMPLES_MOST)."""
    engine = v.store.engine
    ep = rec.elem_partition(v.p)
    total = 0
    for kind in v.state.kinds():
        n = v.count(kind)
        if not n:
            continue
        members = v.members(kind)
        picked = list(islice(members, min(samples or SAMPLES_MOST, SAMPLES_MOST)))
        size = 0
        for element in picked:
            rkey = rec.record_key(v.key, kind, element)
            enc = engine.get(ep, rkey)
            size += len(rkey) + (len(enc) if enc is not None else 0) + KEY_OVERHEAD
        total += size * n // max(len(picked), 1)
    return total
