"""WATCH on a real 3-node cluster: EXEC aborts when another client wrote a watched key
through another node (any type), and runs when nothing changed."""

from __future__ import annotations

import time

import pytest
import redis

from .conftest import Cluster

pytestmark = pytest.mark.timeout(60)


def exec_after(cluster: Cluster, key: str, write: list[str] | None) -> object:
    """WATCH `key` through node 0, let another client run `write` through node 2, then
    MULTI / SET / EXEC through node 0: EXEC's reply (None: aborted)."""
    conn = cluster.client(0).connection_pool.get_connection()
    try:
        conn.send_command("WATCH", key)
        assert conn.read_response() in (b"OK", "OK")
        if write is not None:
            cluster.client(2).execute_command(*write)
        for args in (("MULTI",), ("SET", "watch:marker", key)):
            conn.send_command(*args)
            conn.read_response()
        conn.send_command("EXEC")
        return conn.read_response()
    finally:
        conn.disconnect()


@pytest.mark.parametrize("setup,write", [
    (["SET", "watch:s", "1"], ["SET", "watch:s", "2"]),
    (["SET", "watch:same", "1"], ["SET", "watch:same", "1"]),  # same value, new version
    (["SET", "watch:del", "1"], ["DEL", "watch:del"]),
    (["DEL", "watch:new"], ["SET", "watch:new", "1"]),  # a key that appeared
    (["INCR", "watch:n"], ["INCRBY", "watch:n", "5"]),
    (["HSET", "watch:h", "f", "v"], ["HSET", "watch:h", "g", "w"]),
    (["SADD", "watch:set", "a"], ["SREM", "watch:set", "a"]),
    (["ZADD", "watch:z", "1", "a"], ["ZINCRBY", "watch:z", "1", "a"]),
    (["RPUSH", "watch:l", "a"], ["LPOP", "watch:l"]),
    (["SET", "watch:ttl", "1"], ["EXPIRE", "watch:ttl", "100"]),
])
def test_a_write_through_another_node_aborts_exec(cluster: Cluster, setup: list[str],
                                                  write: list[str]) -> None:
    key = setup[1]
    cluster.client(1).execute_command(*setup)
    cluster.client(1).delete("watch:marker")
    assert exec_after(cluster, key, write) is None
    assert cluster.client(1).exists("watch:marker") == 0  # nothing of the batch ran


@pytest.mark.parametrize("key", ["watch:quiet:s", "watch:quiet:h", "watch:quiet:none"])
def test_exec_runs_when_nothing_changed(cluster: Cluster, key: str) -> None:
    c = cluster.client(1)
    c.set("watch:quiet:s", "1")
    c.hset("watch:quiet:h", "f", "v")
    reply = exec_after(cluster, key, None)
    assert reply is not None and len(reply) == 1  # type: ignore[arg-type]
    assert c.get("watch:marker") == key


def test_a_key_that_expires_meanwhile_aborts_exec(cluster: Cluster) -> None:
    c = cluster.client(1)
    c.set("watch:exp", "1", px=300)
    conn = cluster.client(0).connection_pool.get_connection()
    try:
        conn.send_command("WATCH", "watch:exp")
        conn.read_response()
        deadline = time.monotonic() + 10
        while c.exists("watch:exp") and time.monotonic() < deadline:
            time.sleep(0.05)
        conn.send_command("MULTI")
        conn.read_response()
        conn.send_command("EXEC")
        assert conn.read_response() is None
    finally:
        conn.disconnect()


def test_a_watching_client_sees_redis_errors(cluster: Cluster) -> None:
    c = cluster.client(0)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        c.execute_command("WATCH")
    assert c.execute_command("UNWATCH") in (b"OK", "OK", True)


@pytest.mark.parametrize("noop,changing", [
    (["DEL", "watch:noop"], ["DEL", "watch:noop"]),
    (["EXPIRE", "watch:noop", "100"], ["EXPIRE", "watch:noop", "100"]),
    (["SET", "watch:noop", "x", "XX"], ["SET", "watch:noop", "x", "XX"]),
    (["PERSIST", "watch:noop"], ["PERSIST", "watch:noop"]),
], ids=["del", "expire", "set-xx", "persist"])
def test_the_watching_clients_own_write_aborts_exec_only_if_it_changed_the_key(
        cluster: Cluster, noop: list[str], changing: list[str]) -> None:
    """As Redis: a command that changed nothing (the key missing, or PERSIST of a key
    without a TTL) leaves the watch alone; the same command changing the key aborts."""
    c = cluster.client(0, decode_responses=True)
    try:
        c.delete("watch:noop")
        assert _own_write_then_exec(c, noop) == [True]  # changed nothing: EXEC runs
        c.set("watch:noop", "v", ex=1000 if changing[0] == "PERSIST" else None)
        assert _own_write_then_exec(c, changing) is None  # changed the key: EXEC aborts
    finally:
        c.close()


def _own_write_then_exec(c: redis.Redis, write: list[str]) -> object:
    with c.pipeline() as pipe:
        pipe.watch("watch:noop")
        pipe.execute_command(*write)
        pipe.multi()
        pipe.set("watch:marker", "ran")
        try:
            return pipe.execute()
        except redis.WatchError:
            return None


@pytest.mark.parametrize("setup,failing", [
    (["SET", "watch:noop", "x"], ["INCR", "watch:noop"]),  # not an integer
    (["SET", "watch:noop", "x"], ["LPUSH", "watch:noop", "1"]),  # WRONGTYPE
    (["SET", "watch:noop", ""], ["INCRBYFLOAT", "watch:noop", "1"]),  # (handed to its node)
])
def test_the_watching_clients_own_failed_write_leaves_the_watch_alone(
        cluster: Cluster, setup: list[str], failing: list[str]) -> None:
    """As Redis: a write command that answers an error changed nothing, so EXEC runs (a
    mark made as it started aborted it). A failed write of the key by another client
    meanwhile does not undo the mark of that client's successful write."""
    c = cluster.client(0, decode_responses=True)
    try:
        c.execute_command(*setup)

        with c.pipeline() as pipe:
            pipe.watch("watch:noop")
            with pytest.raises(redis.ResponseError):
                pipe.execute_command(*failing)
            pipe.multi()
            pipe.set("watch:marker", "ran")
            assert pipe.execute() == [True]
        with c.pipeline() as pipe:
            pipe.watch("watch:noop")
            cluster.client(0).execute_command(*setup)  # another client's write: aborts
            with pytest.raises(redis.ResponseError):
                pipe.execute_command(*failing)
            pipe.multi()
            pipe.set("watch:marker", "ran")
            with pytest.raises(redis.WatchError):
                pipe.execute()
    finally:
        c.close()
