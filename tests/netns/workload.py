"""A partition scenario: clients on every side write and read while a fault is in
place, the fault heals, and the checker judges the history against the converged
state."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .checker import Op, check, load
from .netcluster import NetCluster


@dataclass
class Outcome:
    ops: list[Op]
    final: dict[str, list[str]]
    problems: list[str]
    fault_start: float
    fault_end: float

    def acked_during_fault(self, client: str) -> int:
        return sum(1 for op in self.ops if op.client == client and op.op == "set"
                   and op.status == "ok" and self.fault_start <= op.t0
                   and op.t1 <= self.fault_end)


def run(c: NetCluster, tmp: Path, tag: str, fault: Callable[[], Callable[[], None] | None],
        clients: list[tuple[str, str, int, int]], healthy_s: float = 2.0,
        fault_s: float = 8.0, after_s: float = 2.0) -> Outcome:
    """`fault()` makes the fault (and may return what ends it, run before the heal).
    `clients`: (host, node, R, W) each (0: the node's default quorum). Each client
    writes keys of its own and keys every client shares."""
    shared = [f"{tag}:shared{i}" for i in range(3)]
    procs, outs, keys = [], [], list(shared)
    for i, (host, node, r, w) in enumerate(clients):
        cid = f"{tag}-c{i}"
        own = [f"{tag}:{cid}:{j}" for j in range(3)]
        keys += own
        out = tmp / f"{cid}.jsonl"
        outs.append(out)
        procs.append(c.client(host, node, cid, own + shared, out, r=r, w=w))
    try:
        time.sleep(healthy_s)
        fault_start = time.monotonic()
        end = fault()
        time.sleep(fault_s)
        if end is not None:
            end()
        c.lab.heal()
        fault_end = time.monotonic()
        time.sleep(after_s)
    finally:
        c.lab.heal()
        for p in procs:
            c.lab.stop(p)
    final = c.converged(keys)
    ops = load(outs)
    return Outcome(ops, final, check(ops, final), fault_start, fault_end)
