"""Real processes surviving a node failure: writes go on, the node catches up by itself."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .conftest import ClusterFactory, first_replica_of, wait_until

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
    # No client reads node 2: handoff (the coordinators kept its writes as hints, there
    # being no fallback node in a cluster of N) and anti-entropy bring it up to date.
    assert wait_until(lambda: int(cluster.info(2)["local_keys"]) >= total, timeout=120), \
        cluster.info(2)
    infos = [cluster.info(i) for i in range(3)]
    assert sum(int(i["ae_keys_repaired"]) + int(i["hints_delivered"]) for i in infos) \
        >= len(during)
    cluster.kill_node(0)
    cluster.kill_node(1)
    # One connection, no silent reconnect: R=1 is a per-connection setting, and a
    # reconnect (redis-py retries a timeout, and replaces a pooled connection that has
    # unread data or was closed) would read at the default R=2 and fail as NOQUORUM,
    # hiding what happened. Here a stall or a close fails as itself.
    survivor = cluster.client(2, retry=Retry(NoBackoff(), 0), single_connection_client=True)
    try:
        assert survivor.execute_command("DYN.CONSISTENCY", "R", "1")
        conn_id = survivor.client_id()
        for key in before + during:
            assert survivor.get(key) == f"v:{key}", key
        assert survivor.client_id() == conn_id
    finally:
        survivor.close()


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


def test_commands_handed_to_a_keys_first_replica_succeed_while_another_replica_is_paused(
        cluster_factory: ClusterFactory) -> None:
    """A handed-over command (SET NX, RENAME, COPY: cluster/affinity.py) waits for every
    up replica, not W. With one replica paused (SIGSTOP) and not yet counted down (a
    detector slow to judge: --phi-threshold 30), each failed with NOQUORUM at the request
    timeout, its write done, where a plain SET succeeded: the SET NX winner was told it
    lost. Once the runner finds the paused replica silent (nothing heard for silent_ms
    since a request) it no longer waits for it."""
    cluster = cluster_factory("--phi-threshold", "30")
    sender, runner, paused = 0, 1, 2
    dst = next(k for k in (f"hand:{i}" for i in range(1000))
               if first_replica_of(cluster, k) == runner)
    c, r = cluster.client(sender), cluster.client(runner)
    c.set("hand:src", "v")
    unsent = int(r.info("stats")["writes_unsent"])
    os.kill(cluster.pids[paused], signal.SIGSTOP)
    try:
        # Writes through the runner until it has found the paused replica silent (it
        # sends it no more, a hint instead); a plain SET succeeds all along (W=2).
        wait_until(lambda: r.set("hand:probe", "v") is True
                   and int(r.info("stats")["writes_unsent"]) > unsent, 30, interval=0.05,
                   what="the runner to find the paused replica silent")
        assert f"127.0.0.1:{cluster.ports[paused]}" not in r.info("dynamo")["members_down"]
        assert c.set(dst, "first", nx=True) is True
        assert c.set(dst, "second", nx=True) is None
        assert c.copy("hand:src", dst, replace=True) is True
        assert c.rename("hand:src", dst) is True
        assert r.get(dst) == "v" and r.exists("hand:src") == 0
    finally:
        os.kill(cluster.pids[paused], signal.SIGCONT)

