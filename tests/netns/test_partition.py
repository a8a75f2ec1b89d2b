"""A cluster on three addresses (network namespaces) cut in two, symmetrically: a node
alone on one side, two on the other, clients writing on both sides (the lone node's
client with W=1, so both sides keep acknowledging). After the heal every node answers
the same state, which keeps every acknowledged write and no value nobody wrote.

Also: the topology commands give the addresses the nodes announce (they listen on
0.0.0.0), and cluster-aware redis-cli on another host follows them.
"""

from __future__ import annotations

from pathlib import Path

from .netcluster import NetCluster
from .workload import run


def test_topology_commands_give_the_announced_addresses(net_cluster: NetCluster) -> None:
    c = net_cluster
    nodes = c.cli("node1", "CLUSTER", "NODES").stdout
    for name in c.names:
        ip = c.specs[name].ip
        assert f" {ip}:17000@7000 " in nodes, nodes
    assert "0.0.0.0" not in nodes
    slots = c.probe("cmd", "node2", "CLUSTER", "SLOTS")
    assert isinstance(slots, list) and slots
    hosts = {entry[0] for rng in slots for entry in rng[2:]}
    assert hosts == {s.ip for s in c.specs.values()}
    shards = c.cli("node3", "CLUSTER", "SHARDS").stdout
    assert "0.0.0.0" not in shards and "172.28.0.13" in shards
    # Cluster mode from another host: every key lands where CLUSTER SLOTS says.
    for i in range(20):
        assert c.cli("node1", "-c", "-p", "17000", "SET", f"topo{i}", str(i)).stdout.strip() == "OK"
    got = [c.cli("node3", "-c", "GET", f"topo{i}").stdout.strip() for i in range(20)]
    assert got == [str(i) for i in range(20)]


def test_symmetric_partition_loses_no_acknowledged_write(net_cluster: NetCluster,
                                                          tmp_path: Path) -> None:
    c = net_cluster
    out = run(c, tmp_path, "sym",
              lambda: c.lab.cut_groups(["node1"], ["node2", "node3"]),
              clients=[("node1", "node1", 1, 1), ("node2", "node2", 0, 0),
                       ("node3", "node3", 0, 0)])
    assert not out.problems, "\n".join(out.problems[:20])
    # Both sides served writes while cut off from each other.
    assert out.acked_during_fault("sym-c0") > 0
    assert out.acked_during_fault("sym-c1") > 0 and out.acked_during_fault("sym-c2") > 0
    assert sum(1 for op in out.ops if op.op == "set" and op.status == "ok") > 100
