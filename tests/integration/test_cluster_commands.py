"""Cluster-aware clients discover the ring and send each key to a replica of it.

CLUSTER SLOTS lists each partition once: its owner as master at the owner's cluster port,
the rest of its preference list as replicas at their main ports. Fan-outs to the
masters (SCAN, KEYS, DBSIZE) then see every key exactly once, since on a cluster port
those commands cover only the node's own partitions.
"""

from __future__ import annotations

import subprocess

import pytest
import redis
from redis._parsers.helpers import parse_cluster_nodes
from redis.cluster import RedisCluster

from .conftest import CLUSTER_PORT_OFFSET, HOST, Cluster, raw_command

pytestmark = pytest.mark.timeout(120)

SLOTS = 16384


def slot_table(cluster: Cluster) -> list:
    return cluster.client(0).execute_command("CLUSTER", "SLOTS")


def owner_ports(cluster: Cluster) -> dict[int, int]:
    """slot -> the port CLUSTER SLOTS gives for its master."""
    owner = {}
    for lo, hi, master, *_ in slot_table(cluster):
        for s in range(int(lo), int(hi) + 1):
            owner[s] = int(master[1])
    return owner


def test_cluster_slots_cover_every_slot_once_with_owners_as_masters(cluster: Cluster) -> None:
    slots = slot_table(cluster)
    ring_size = int(cluster.info(0)["ring_size"])
    assert len(slots) == ring_size  # one entry per partition
    ranges = sorted((int(r[0]), int(r[1])) for r in slots)
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert lo == hi + 1  # contiguous, no overlap
    assert all(hi - lo + 1 == SLOTS // ring_size for lo, hi in ranges)
    masters = {int(r[2][1]) for r in slots}
    assert masters == set(cluster.cluster_ports)
    for entry in slots:
        # N=3 on 3 nodes: the two other nodes are replicas, at their main ports.
        master_main = int(entry[2][1]) - CLUSTER_PORT_OFFSET
        replicas = [int(r[1]) for r in entry[3:]]
        assert len(replicas) == 2 and master_main not in replicas
        assert set(replicas) <= set(cluster.ports)
        ids = [r[2] for r in entry[2:]]
        assert all(len(i) == 40 and int(i, 16) >= 0 for i in ids) and len(set(ids)) == 3
    # The same table from every node, whichever port asked.
    other = cluster.cluster_client(2)
    try:
        assert other.execute_command("CLUSTER", "SLOTS") == slots
    finally:
        other.close()


def test_cluster_nodes_parses_with_redis_py_and_marks_myself(cluster: Cluster) -> None:
    for i, port in enumerate(cluster.ports):
        text = raw_command(cluster.client(i), "CLUSTER", "NODES")
        assert isinstance(text, str)
        nodes = parse_cluster_nodes(text)
        assert sorted(nodes) == sorted(f"{HOST}:{p}" for p in cluster.cluster_ports)
        mine = [addr for addr, n in nodes.items() if "myself" in n["flags"]]
        assert mine == [f"{HOST}:{cluster.cluster_ports[i]}"]
        assert f"{HOST}:{cluster.cluster_ports[i]}@{port} " in text  # bus port: main port
        myid = cluster.client(i).execute_command("CLUSTER", "MYID")
        assert nodes[mine[0]]["node_id"] == myid
        covered: list[int] = []
        for n in nodes.values():
            assert "master" in n["flags"] and n["connected"]
            assert "fail" not in n["flags"]
            assert len(n["node_id"]) == 40
            for rng in n["slots"]:
                lo, hi = int(rng[0]), int(rng[-1])
                covered.extend(range(lo, hi + 1))
            # Adjacent ranges are merged.
            bounds = [(int(r[0]), int(r[-1])) for r in n["slots"]]
            assert all(b[0] > a[1] + 1 for a, b in zip(bounds, bounds[1:], strict=False))
        assert sorted(covered) == list(range(SLOTS))
    info = raw_command(cluster.client(0), "CLUSTER", "INFO")
    assert "cluster_state:ok" in info and f"cluster_slots_ok:{SLOTS}" in info


def test_hello_and_config_say_cluster_mode_on_the_cluster_port(cluster: Cluster) -> None:
    cport, other = cluster.cluster_client(0), cluster.cluster_client(1)
    try:
        hello = cport.execute_command("HELLO", "2")
        assert dict(zip(hello[::2], hello[1::2], strict=True))["mode"] == "cluster"
        assert other.config_get("cluster-enabled") == {"cluster-enabled": "yes"}
    finally:
        cport.close()
        other.close()
    # the main port is a standalone Redis (numbered databases)
    hello = cluster.client(0).execute_command("HELLO", "2")
    assert dict(zip(hello[::2], hello[1::2], strict=True))["mode"] == "standalone"
    assert cluster.client(1).config_get("cluster-enabled") == {"cluster-enabled": "no"}


def test_redis_py_cluster_client_routes_keys_to_their_owner(cluster: Cluster) -> None:
    cluster.client(0).flushall()
    rc = RedisCluster(host=HOST, port=cluster.cluster_ports[0], decode_responses=True,
                      socket_timeout=10)
    try:
        assert sorted(n.port for n in rc.get_primaries()) == cluster.cluster_ports
        keys = [f"rc:{i}" for i in range(300)]
        for i, key in enumerate(keys):
            assert rc.set(key, str(i))
        for i, key in enumerate(keys):
            assert rc.get(key) == str(i)
        owner = owner_ports(cluster)
        c1 = cluster.client(1)
        for key in keys[::7]:
            slot = int(c1.execute_command("CLUSTER", "KEYSLOT", key))
            assert rc.keyslot(key) == slot
            assert rc.get_node_from_key(key).port == owner[slot]
        # Fan-out to every master: each key exactly once.
        scanned = list(rc.scan_iter(count=50))
        assert sorted(scanned) == sorted(keys)
        assert rc.dbsize(target_nodes=RedisCluster.PRIMARIES) == len(keys)
        assert sorted(rc.keys(target_nodes=RedisCluster.PRIMARIES)) == sorted(keys)
        # Each master holds (at least) the keys of the partitions it owns.
        for node in rc.get_primaries():
            own = node.redis_connection.keys()
            assert own and all(owner[rc.keyslot(k)] == node.port for k in own)
        assert rc.randomkey() in keys
        assert rc.delete(*keys[:10]) == 10
        assert rc.dbsize(target_nodes=RedisCluster.PRIMARIES) == len(keys) - 10
    finally:
        rc.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_cluster_client_bootstraps_from_a_main_port(cluster: Cluster,
                                                             protocol: int) -> None:
    rc = RedisCluster(host=HOST, port=cluster.ports[1], decode_responses=True,
                      socket_timeout=10, protocol=protocol)
    try:
        assert sorted(n.port for n in rc.get_primaries()) == cluster.cluster_ports
        assert rc.set("boot:key", "v") and rc.get("boot:key") == "v"
        shards = rc.cluster_shards()
        assert len(shards) == int(cluster.info(0)["ring_size"])
        covered = []
        for shard in shards:
            # RESP2: redis-py pairs the bounds up; RESP3: the flat list Redis sends.
            bounds = [int(x) for pair in shard["slots"]
                      for x in (pair if isinstance(pair, tuple) else (pair,))]
            for lo, hi in zip(bounds[::2], bounds[1::2], strict=True):
                covered.extend(range(lo, hi + 1))
        covered.sort()
        assert covered == list(range(SLOTS))
        for shard in shards:
            roles = [n["role"] for n in shard["nodes"]]
            assert roles == ["master", "replica", "replica"]
            assert shard["nodes"][0]["port"] in cluster.cluster_ports
    finally:
        rc.close()


def test_redis_cli_cluster_mode_works(cluster: Cluster) -> None:
    for i in range(20):
        out = subprocess.run(["redis-cli", "-c", "-p", str(cluster.ports[i % 3]), "SET",
                              f"clikey{i}", f"v{i}"],
                             capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "OK"
    for i in range(20):
        out = subprocess.run(["redis-cli", "-c", "-p", str(cluster.ports[(i + 1) % 3]), "GET",
                              f"clikey{i}"],
                             capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == f"v{i}"


def test_countkeysinslot_and_getkeysinslot_answer_for_local_data(cluster: Cluster) -> None:
    c = cluster.client(0)
    c.set("{slotted}a", "1")
    c.set("{slotted}b", "2")
    c.set("{slotted}gone", "3")
    c.delete("{slotted}gone")
    slot = int(c.execute_command("CLUSTER", "KEYSLOT", "{slotted}a"))
    counts = [int(cluster.client(i).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
              for i in range(3)]
    assert max(counts) == 2  # N=3 on 3 nodes: every node holds both (live keys only)
    keys = cluster.client(0).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10)
    assert sorted(keys) == ["{slotted}a", "{slotted}b"]
    assert len(cluster.client(0).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1)) == 1
    for args, text in [(("COUNTKEYSINSLOT", "x"), "value is not an integer"),
                       (("COUNTKEYSINSLOT", "16384"), "Invalid slot"),
                       (("GETKEYSINSLOT", "1", "-1"), "Invalid slot or number of keys")]:
        with pytest.raises(redis.ResponseError, match=text):
            c.execute_command("CLUSTER", *args)
