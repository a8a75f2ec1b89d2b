"""A flapping network: a node is cut off from the others and reconnected every second
while clients write on every node. After it settles, every node answers the same
state, keeping every acknowledged write and no value nobody wrote."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from .netcluster import NetCluster
from .workload import run


def test_flapping_links_lose_no_acknowledged_write(net_cluster: NetCluster,
                                                   tmp_path: Path) -> None:
    c = net_cluster
    stop = threading.Event()

    def flap() -> None:
        cut = False
        while not stop.wait(1.0):
            if cut:
                c.lab.heal()
            else:
                c.lab.cut_groups(["node3"], ["node1", "node2"])
            cut = not cut

    flapper = threading.Thread(target=flap)

    def start() -> Callable[[], None]:
        flapper.start()

        def end() -> None:
            stop.set()
            flapper.join(10)

        return end

    try:
        out = run(c, tmp_path, "flap", start, fault_s=8.0,
                  clients=[("node1", "node1", 0, 0), ("node2", "node2", 1, 1),
                           ("node3", "node3", 1, 1)])
    finally:
        stop.set()
    assert not out.problems, "\n".join(out.problems[:20])
    assert sum(1 for op in out.ops if op.op == "set" and op.status == "ok") > 100
