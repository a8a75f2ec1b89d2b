"""WAIT on real processes: how many of a key's replicas hold the connection's last write."""

from __future__ import annotations

import time

import pytest
import redis

from .conftest import Cluster, ClusterFactory

pytestmark = pytest.mark.timeout(120)


def wait(c: redis.Redis, replicas: int, timeout_ms: int) -> int:
    return int(c.execute_command("WAIT", replicas, timeout_ms))


def test_wait_counts_replicas_holding_the_last_write(cluster: Cluster) -> None:
    c = cluster.client(0, decode_responses=True)
    try:
        # Nothing written on this connection yet: every replica holds "it".
        assert wait(c, 3, 0) == 3
        assert c.set("wait:k", "v1")
        # N=3: all three replicas get the write; WAIT 3 with no timeout returns once
        # they all hold it (a replica acks in well under the test timeout).
        assert wait(c, 3, 0) == 3
        # As in Redis, it answers once numreplicas hold it: at least that many.
        assert 1 <= wait(c, 1, 100) <= 3
        # Any write command counts, through whichever node coordinates it.
        assert c.incr("wait:counter") == 1
        assert wait(c, 3, 0) == 3
        assert c.delete("wait:k") == 1
        assert wait(c, 3, 0) == 3
    finally:
        c.close()


def test_wait_errors_are_redis_ones(cluster: Cluster, real_redis: redis.Redis) -> None:
    ours = cluster.client(1)
    for args in [("1", "-1"), ("a", "0"), ("1", "a"), ("1",), ()]:
        with pytest.raises(redis.ResponseError) as theirs:
            real_redis.execute_command("WAIT", *args)
        with pytest.raises(redis.ResponseError) as mine:
            ours.execute_command("WAIT", *args)
        assert str(mine.value) == str(theirs.value), args


def test_wait_reports_fewer_replicas_when_one_is_down_and_honours_the_timeout(
        cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory("--phi-threshold", "100")  # node 2 stays "up" for routing
    c = cluster.client(0, decode_responses=True)
    try:
        cluster.kill_node(2)
        assert c.set("wait:down", "v")  # W=2: nodes 0 and 1
        started = time.monotonic()
        held = wait(c, 3, 300)
        assert held == 2
        # It waited (at least most of) the timeout for the third replica.
        assert time.monotonic() - started >= 0.25
        assert wait(c, 2, 0) == 2  # enough already: returns at once
    finally:
        c.close()
