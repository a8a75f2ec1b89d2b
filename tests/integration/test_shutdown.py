"""SHUTDOWN stops the node it is sent to, as `dynredis stop` does: what it acknowledged
stays on its disk and it comes back with it; its peers go on serving meanwhile."""

from __future__ import annotations

import pytest
import redis

from .conftest import ClusterFactory, pid_alive, wait_dead, wait_until
from .test_commands_extra import cli, same


def test_shutdown_refusals_are_redis_own(cluster_factory: ClusterFactory,
                                         real_redis: redis.Redis) -> None:
    """Bad options, ABORT with nothing to abort, inside MULTI and in a script: Redis'
    replies, and the node keeps running."""
    c = cluster_factory()
    same(c, real_redis, ("SHUTDOWN", "FOO"), ("SHUTDOWN", "ABORT"),
         ("SHUTDOWN", "SAVE", "NOSAVE"), ("SHUTDOWN", "ABORT", "NOW"),
         ("EVAL", "return redis.call('shutdown')", "0"))
    for side in (c.client(0), real_redis):
        tx = side.pipeline(transaction=True)
        tx.execute_command("SHUTDOWN")
        with pytest.raises(redis.ResponseError, match="not allowed inside a transaction"):
            tx.execute()
    assert all(pid_alive(pid) for pid in c.pids)
    assert c.client(0).ping()


def test_shutdown_stops_the_node_and_it_comes_back_with_its_writes(
        cluster_factory: ClusterFactory) -> None:
    c = cluster_factory()
    first = c.client(0)
    for i in range(200):
        assert first.set(f"k{i}", f"v{i}")
    pid = c.pids[2]
    # redis-cli, as an operator would: the node closes the connection with no reply.
    assert cli(c.ports[2], "SHUTDOWN", "NOSAVE") == ""
    assert wait_dead(pid, 20), "the node did not stop"
    c.up[2] = False
    # Its peers go on (N=3 W=2 R=2 with two up), keeping hints for it.
    for i in range(200, 300):
        assert first.set(f"k{i}", f"v{i}")
    c.restart_node(2)
    back = c.client(2)
    wait_until(lambda: all(back.get(f"k{i}") == f"v{i}" for i in range(300)), 30)
