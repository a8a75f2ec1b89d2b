"""Cluster-aware clients discover the ring and send each key to a replica of it."""

from __future__ import annotations

import subprocess

import pytest
from redis.cluster import RedisCluster

from .conftest import HOST, Cluster

pytestmark = pytest.mark.timeout(120)


def test_cluster_slots_cover_every_slot_once_with_owners_as_masters(cluster: Cluster) -> None:
    slots = cluster.client(0).execute_command("CLUSTER", "SLOTS")
    ranges = sorted((int(r[0]), int(r[1])) for r in slots)
    assert ranges[0][0] == 0 and ranges[-1][1] == 16383
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert lo == hi + 1  # contiguous, no overlap
    masters = {int(r[2][1]) for r in slots}
    assert masters == set(cluster.ports)


def test_cluster_nodes_marks_myself_and_lists_every_member(cluster: Cluster) -> None:
    for i, port in enumerate(cluster.ports):
        text = cluster.client(i).execute_command("CLUSTER", "NODES")
        text = text if isinstance(text, str) else str(text)
        lines = [line for line in text.splitlines() if line]
        assert len(lines) == 3
        mine = [line for line in lines if "myself" in line]
        assert len(mine) == 1 and f":{port}@" in mine[0]
        myid = cluster.client(i).execute_command("CLUSTER", "MYID")
        assert mine[0].split()[0] == myid


def test_redis_py_cluster_client_routes_keys_to_their_owner(cluster: Cluster) -> None:
    rc = RedisCluster(host=HOST, port=cluster.ports[0], decode_responses=True,
                      socket_timeout=10)
    try:
        assert len(rc.get_primaries()) == 3
        for i in range(300):
            assert rc.set(f"rc:{i}", str(i))
        for i in range(300):
            assert rc.get(f"rc:{i}") == str(i)
        slots = cluster.client(0).execute_command("CLUSTER", "SLOTS")
        owner = {}
        for lo, hi, master, *_ in slots:
            for s in range(int(lo), int(hi) + 1):
                owner[s] = int(master[1])
        for i in range(0, 300, 37):
            key = f"rc:{i}"
            assert rc.get_node_from_key(key).port == owner[rc.keyslot(key)]
        # Each node counts the keys of the partitions it owns: together, every key once.
        total = sum(rc.dbsize(target_nodes=node) for node in rc.get_primaries())
        assert total >= 300
        assert int(cluster.client(1).execute_command("CLUSTER", "KEYSLOT", "foo")) == 12182
    finally:
        rc.close()


def test_redis_cli_cluster_mode_works(cluster: Cluster) -> None:
    out = subprocess.run(["redis-cli", "-c", "-p", str(cluster.ports[1]), "SET", "clikey", "v"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "OK"
    out = subprocess.run(["redis-cli", "-c", "-p", str(cluster.ports[2]), "GET", "clikey"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "v"


def test_countkeysinslot_and_getkeysinslot_answer_for_local_data(cluster: Cluster) -> None:
    c = cluster.client(0)
    c.set("{slotted}a", "1")
    c.set("{slotted}b", "2")
    slot = int(c.execute_command("CLUSTER", "KEYSLOT", "{slotted}a"))
    counts = [int(cluster.client(i).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
              for i in range(3)]
    assert max(counts) == 2  # N=3 on 3 nodes: every node holds both
    keys = cluster.client(0).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10)
    assert sorted(keys) == ["{slotted}a", "{slotted}b"]
