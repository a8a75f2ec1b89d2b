"""A partition scenario: clients on every side write and read while a fault is in
place, the fault heals, and the checker judges the history against the converged
state."""

from __future__ import annotations

import subprocess
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


class Clients:
    """Workload clients (client.py), each in a host's namespace writing through a
    node: keys of its own (`own` each) and keys every client shares. Started on entering,
    stopped (SIGTERM) on leaving; `outcome` judges their history."""

    def __init__(self, c: NetCluster, tmp: Path, tag: str,
                 clients: list[tuple[str, str, int, int]], own: int = 3) -> None:
        self.c = c
        self.keys = [f"{tag}:shared{i}" for i in range(3)]
        self.specs = []
        self.outs: list[Path] = []
        self.procs: list[subprocess.Popen] = []
        for i, (host, node, r, w) in enumerate(clients):
            cid = f"{tag}-c{i}"
            mine = [f"{tag}:{cid}:{j}" for j in range(own)]
            out = tmp / f"{cid}.jsonl"
            self.keys += mine
            self.outs.append(out)
            self.specs.append((host, node, cid, mine, out, r, w))

    def __enter__(self) -> Clients:
        shared = self.keys[:3]
        for host, node, cid, mine, out, r, w in self.specs:
            self.procs.append(self.c.client(host, node, cid, mine + shared, out, r=r, w=w))
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            self.c.lab.stop(p)

    def ops(self) -> list[Op]:
        return load(self.outs)

    def outcome(self, fault_start: float = 0.0, fault_end: float = 0.0) -> Outcome:
        """The checker's verdict on the history against the state every member
        converges to (waited for)."""
        final = self.c.converged(self.keys)
        ops = self.ops()
        return Outcome(ops, final, check(ops, final), fault_start, fault_end)


def run(c: NetCluster, tmp: Path, tag: str, fault: Callable[[], Callable[[], None] | None],
        clients: list[tuple[str, str, int, int]], healthy_s: float = 2.0,
        fault_s: float = 8.0, after_s: float = 2.0) -> Outcome:
    """`fault()` makes the fault (and may return what ends it, run before the heal).
    `clients`: (host, node, R, W) each (0: the node's default quorum). Each client
    writes keys of its own and keys every client shares."""
    with Clients(c, tmp, tag, clients) as load:
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
    return load.outcome(fault_start, fault_end)
