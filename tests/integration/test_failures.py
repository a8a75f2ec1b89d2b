"""Real processes surviving a node failure: writes go on, the node catches up by itself."""

from __future__ import annotations

import shutil

import pytest
import redis

from .conftest import ClusterFactory, wait_until

pytestmark = pytest.mark.timeout(240)


def write_all(client: redis.Redis, keys: list[str], tag: str) -> int:
    acked = 0
    for key in keys:
        assert client.set(key, f"{tag}:{key}") is True
        acked += 1
    return acked


def test_writes_go_on_while_a_node_is_down_and_it_catches_up_without_reads(
        cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory("--ae-interval-ms", "10")
    before = [f"before:{i}" for i in range(300)]
    during = [f"during:{i}" for i in range(600)]
    assert write_all(cluster.client(0), before, "v") == len(before)
    cluster.kill_node(2)
    # N=3, W=2: two nodes up are enough for every write to be acknowledged.
    half = len(during) // 2
    acked = write_all(cluster.client(0), during[:half], "v")
    acked += write_all(cluster.client(1), during[half:], "v")
    assert acked == len(during)
    cluster.restart_node(2)
    total = len(before) + len(during)
    # No client reads node 2: only anti-entropy can bring it up to date.
    assert wait_until(lambda: int(cluster.info(2)["local_keys"]) >= total, timeout=120), \
        cluster.info(2)
    assert int(cluster.info(2)["ae_keys_repaired"]) + int(cluster.info(0)["ae_keys_repaired"]) \
        + int(cluster.info(1)["ae_keys_repaired"]) >= len(during)
    cluster.kill_node(0)
    cluster.kill_node(1)
    survivor = cluster.client(2)
    assert survivor.execute_command("DYN.CONSISTENCY", "R", "1")
    for key in before + during:
        assert survivor.get(key) == f"v:{key}".encode() or survivor.get(key) == f"v:{key}", key


def test_a_node_whose_data_was_wiped_rejoins_under_a_new_identity_and_loses_nothing(
        cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory("--ae-interval-ms", "10")
    keys = [f"amnesia:{i}" for i in range(100)]
    for round_ in range(3):  # node 2 issues several dots per key
        write_all(cluster.client(2), keys, f"old{round_}")
    old_actor = cluster.info(2)["actor_id"]
    cluster.kill_node(2)
    shutil.rmtree(cluster.node_dir(2) / "lmdb")
    cluster.restart_node(2)
    new_actor = cluster.info(2)["actor_id"]
    assert new_actor != old_actor
    # Writes through the wiped node must not be mistaken for ones already seen.
    write_all(cluster.client(2), keys, "new")
    for i in (0, 1, 2):
        client = cluster.client(i)
        for key in keys:
            value = client.get(key)
            assert value in (f"new:{key}".encode(), f"new:{key}"), (i, key, value)
