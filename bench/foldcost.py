"""The CPU of the hash trees' fold as a big collection's records land in one partition,
in-process (issue 12: "no freeze over 100 ms from any request of under 1 KB").

A LocalStore (memory engine) takes --records element records into one element
partition, written --batch at a time (as a RENAME's or COPY's write steps land), each
batch followed by the folds the node runs for it (Node.fold_step's FOLD_SLICE keys a
loop turn). Prints the longest fold step's CPU and where it happened: a hash tree whose
entries live in one map rehashed them all in one step as it grew (1.4M entries: 60-80 ms).

Usage:
    python bench/foldcost.py [--records 1500000] [--batch 1024]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dynredis import native  # noqa: E402
from dynredis.core.localstore import LocalStore  # noqa: E402
from dynredis.core.node import FOLD_SLICE  # noqa: E402
from dynredis.core.records import ELEM_BASE  # noqa: E402
from dynredis.storage.memory import MemoryEngine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_500_000)
    ap.add_argument("--batch", type=int, default=1024)
    args = ap.parse_args()
    local = LocalStore(MemoryEngine())
    gc.collect()
    gc.freeze()
    longest, at, total = 0.0, 0, 0.0
    for start in range(0, args.records, args.batch):
        for i in range(start, min(args.records, start + args.batch)):
            local.put_record(ELEM_BASE, b"r:%d" % i, b"x")
        while local.dirty:
            t = time.thread_time_ns()
            local.fold_some(FOLD_SLICE)
            ms = (time.thread_time_ns() - t) / 1e6
            total += ms
            if ms > longest:
                longest, at = ms, start
    print(f"{native.state}: {args.records} records in one partition: folds {total:.0f} ms "
          f"of CPU, the longest step {longest:.1f} ms (at {at} records)")


if __name__ == "__main__":
    main()
