"""Acknowledged writes survive node crashes (fsync) and clean restarts (buffered)."""

from __future__ import annotations

import signal

import pytest

from .conftest import HOST, ClusterFactory, pid_alive, wait_until

pytestmark = pytest.mark.timeout(240)

KEYS = 2000
BATCH = 100


def dkey(n: int) -> str:
    return f"durable:{n:05d}"


def dvalue(n: int) -> str:
    return f"value-{n}-{n * 7919 % 100003:06d}"


def test_fsync_writes_survive_sigkill_and_are_all_on_the_restarted_node(
        cluster_factory: ClusterFactory) -> None:
    # At the end only node 1 is alive. Reads need R replies, and the default R=2 could
    # never be met by one node (the read would fail with a quorum error), so R=1: a read
    # through node 1 is then answered from node 1's own store alone.
    # W=3 makes every acknowledgement mean "node 1 has committed (fsync) this write"; with
    # the default W=2 the ack could come from nodes 0 and 2 while node 1 still had the
    # write in flight when it was SIGKILLed, and its absence there would not be a bug
    # (R + W = 3 = N gives no overlap guarantee).
    cluster = cluster_factory("--durability", "fsync", "--r", "1", "--w", "3")
    for j in range(cluster.nodes):
        info = cluster.info(j)
        assert (info["r"], info["w"], info["durability"]) == ("1", "3", "fsync")

    writer = cluster.client(0)
    for start in range(0, KEYS, BATCH):
        pipe = writer.pipeline(transaction=False)
        for n in range(start, start + BATCH):
            pipe.set(dkey(n), dvalue(n))
        replies = pipe.execute(raise_on_error=False)
        assert replies == [True] * BATCH, f"unacknowledged writes in batch {start}: {replies}"

    # Crash node 1 and bring it back with the very same command line.
    old_pid = cluster.pids[1]
    actor = cluster.info(1)["actor_id"]
    cluster.kill_node(1, signal.SIGKILL)
    assert not pid_alive(old_pid)
    cluster.restart_node(1)
    assert cluster.pids[1] != old_pid
    assert cluster.info(1)["actor_id"] == actor, "the restarted node lost its identity"

    # Now crash the other two: node 1 alone must hold every acknowledged write.
    cluster.kill_node(0, signal.SIGKILL)
    cluster.kill_node(2, signal.SIGKILL)
    reader = cluster.client(1)
    names = [dkey(n) for n in range(KEYS)]
    got: list[str | None] = []
    for start in range(0, KEYS, BATCH):
        got += reader.mget(names[start:start + BATCH])
    lost = [(names[n], got[n]) for n in range(KEYS) if got[n] != dvalue(n)]
    assert not lost, f"{len(lost)} acknowledged writes missing on node 1, e.g. {lost[:5]}"
    # Single GETs too (a different code path than MGET's gather).
    for n in range(0, KEYS, 97):
        assert reader.get(dkey(n)) == dvalue(n)

    # Node 1 notices its peers are gone.
    down = {f"{HOST}:{cluster.ports[0]}", f"{HOST}:{cluster.ports[2]}"}

    def peers_down() -> bool:
        return set(filter(None, cluster.info(1)["members_down"].split(","))) == down

    wait_until(peers_down, 15, what="node 1 to report nodes 0 and 2 down")


def test_sigterm_stopped_cluster_restarts_with_its_data(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory()  # default durability: buffered
    assert cluster.info(0)["durability"] == "buffered"
    c = cluster.clients
    values = {f"restart:{n:04d}": f"v{n}" for n in range(600)}
    items = list(values.items())
    # Spread the writes over all three coordinators.
    for j in range(cluster.nodes):
        assert c[j].mset(dict(items[j::cluster.nodes])) is True
    assert c[0].set("restart:ttl", "t", ex=1000) is True
    assert c[1].set("restart:deleted", "gone") is True
    assert c[2].delete("restart:deleted") == 1
    assert c[0].execute_command("SETCTX", "restart:siblings", "", "a") == "OK"
    assert c[1].execute_command("SETCTX", "restart:siblings", "", "b") == "OK"
    actors = [cluster.info(j)["actor_id"] for j in range(cluster.nodes)]
    old_pids = list(cluster.pids)

    cluster.stop()  # dynredis stop: SIGTERM
    assert not any(pid_alive(p) for p in old_pids)

    cluster.start()  # `dynredis cluster ... --detach` again, same data dir and ports
    assert set(cluster.pids).isdisjoint(old_pids)
    cluster.wait_healthy()
    assert [cluster.info(j)["actor_id"] for j in range(cluster.nodes)] == actors
    c = cluster.clients
    names = list(values)
    for j in range(cluster.nodes):
        assert c[j].mget(names) == [values[k] for k in names], f"via node {j}"
        assert c[j].get("restart:ttl") == "t"
        assert 0 < c[j].ttl("restart:ttl") <= 1000
        assert c[j].get("restart:deleted") is None
        assert sorted(c[j].execute_command("GETCTX", "restart:siblings")[1]) == ["a", "b"]
        assert c[j].dbsize() == len(values) + 2  # main port: the whole cluster
    # Cluster ports: each node's own partitions, which add up to every key once.
    own = [cluster.cluster_client(j) for j in range(cluster.nodes)]
    try:
        assert sum(o.dbsize() for o in own) == len(values) + 2
    finally:
        for o in own:
            o.close()
