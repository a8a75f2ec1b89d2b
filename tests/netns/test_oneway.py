"""One-way faults between namespaces: packets of one node to the others are dropped
where they arrive while the others' packets still reach it; and a non-transitive cut
(node1 and node2 cannot hear each other, both still reach node3). Clients write on
every node throughout; after the heal the state every node answers keeps every
acknowledged write and no value nobody wrote."""

from __future__ import annotations

from pathlib import Path

from .netcluster import NetCluster
from .workload import run

CLIENTS = [("node1", "node1", 1, 1), ("node2", "node2", 0, 0), ("node3", "node3", 1, 1)]


def test_a_node_whose_packets_are_dropped_one_way_loses_no_acknowledged_write(
        net_cluster: NetCluster, tmp_path: Path) -> None:
    c = net_cluster
    out = run(c, tmp_path, "out",
              lambda: c.lab.cut_groups(["node1"], ["node2", "node3"], both=False),
              clients=CLIENTS, fault_s=6.0)
    assert not out.problems, "\n".join(out.problems[:20])
    assert all(out.acked_during_fault(f"out-c{i}") > 0 for i in range(3))


def test_a_cut_between_two_nodes_only_loses_no_acknowledged_write(
        net_cluster: NetCluster, tmp_path: Path) -> None:
    c = net_cluster
    out = run(c, tmp_path, "pair", lambda: c.lab.cut("node1", "node2", both=False),
              clients=CLIENTS, fault_s=6.0)
    assert not out.problems, "\n".join(out.problems[:20])
    assert all(out.acked_during_fault(f"pair-c{i}") > 0 for i in range(3))
