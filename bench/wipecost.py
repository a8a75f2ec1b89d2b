"""The CPU of FLUSHALL's wipe in its own loop turn, and of the graveyard's longest step
after it, in-process (issue 12: "no freeze over 100 ms from any request of under 1 KB").

A LocalStore (memory engine) holds --keys plain keys over 256 partitions and --big
element partitions of --records records each, their bucket index built (anti-entropy
reads buckets), everything folded into the hash trees; it is wiped with a graveyard
stepped as the server's walk steps it. The memory engine's own wipe comes first, left
out of the figure (LMDB's is a new generation in one short write transaction).

Usage:
    python bench/wipecost.py [--keys 777000] [--big 6] [--records 1000000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dynredis import native  # noqa: E402
from dynredis.core import clock as dvv  # noqa: E402
from dynredis.core import obj as objmod  # noqa: E402
from dynredis.core.graveyard import Graveyard  # noqa: E402
from dynredis.core.localstore import LocalStore  # noqa: E402
from dynredis.core.records import ELEM_BASE  # noqa: E402
from dynredis.storage.memory import MemoryEngine  # noqa: E402


def filled(keys: int, big: int, records: int) -> LocalStore:
    enc = objmod.encode(dvv.overwrite(None, b"a", (1, 0, b"v")))
    local = LocalStore(MemoryEngine())
    for i in range(keys):
        local.put(i % 256, b"key:%d" % i, enc, None)
    for b in range(big):
        ep = ELEM_BASE + b * 7
        for i in range(records):
            local.put_record(ep, b"r%d:%d" % (b, i), b"x")
    for p in list(local.dirty) + list(local.older):
        local.tree(p)
    for b in range(big):
        local.trees[ELEM_BASE + b * 7].bucket(0)  # (builds the bucket index)
    local.engine.wipe()
    return local


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=777_000)
    ap.add_argument("--big", type=int, default=6)
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    local = filled(args.keys, args.big, args.records)
    gc.collect()
    gc.freeze()
    yard = Graveyard()
    yard.wake = lambda: None
    t = time.thread_time_ns()
    local.wipe(yard.bury)
    wipe_ms = (time.thread_time_ns() - t) / 1e6
    longest, steps, more = 0.0, 0, True
    while more:
        t = time.thread_time_ns()
        more = yard.step()
        longest = max(longest, (time.thread_time_ns() - t) / 1e6)
        steps += 1
    print(f"{native.state}: {args.keys} keys, {args.big} x {args.records} records: wipe "
          f"{wipe_ms:.1f} ms of CPU, then {steps} steps, the longest {longest:.1f} ms")


if __name__ == "__main__":
    main()
