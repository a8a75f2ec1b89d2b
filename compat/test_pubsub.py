"""Pub/sub clients through different nodes of a 3-node cluster: redis-py's PubSub (sync,
RESP2 and RESP3, its listener thread) and its asyncio PubSub, and ioredis
(compat/ioredis_pubsub.js): subscribers on one node receive what publishers send through
the others, with Redis' counts, and keyspace notifications of writes made elsewhere."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from compat.test_ioredis import run_node
from tests.integration.conftest import HOST, Cluster, wait_until

pytestmark = pytest.mark.timeout(120)

py_mark = pytest.mark.compat(client="redis-py", family="pubsub")


def messages(ps: redis.client.PubSub, want: int, timeout: float = 10.0) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        m = ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if m is not None:
            got.append(m)
    return got


@py_mark
@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub_through_different_nodes(cluster: Cluster, protocol: int) -> None:
    sub = cluster.client(0, protocol=protocol)
    ps = sub.pubsub()
    try:
        ps.subscribe(f"py{protocol}")
        ps.psubscribe(f"py{protocol}.*")
        wait_until(lambda: cluster.clients[1].pubsub_numsub(f"py{protocol}")[0][1] == 1, 10)
        assert cluster.clients[1].publish(f"py{protocol}", "a") == 1
        assert cluster.clients[2].publish(f"py{protocol}.x", "b") == 1
        got = messages(ps, 2)
        assert [(m["type"], m["channel"], m["data"]) for m in got] == [
            ("message", f"py{protocol}", "a"), ("pmessage", f"py{protocol}.x", "b")]
        if protocol == 3:
            # RESP3: the subscribed connection runs ordinary commands as well.
            cluster.clients[2].set("py3:k", "v")
            conn = ps.connection
            assert conn is not None
            conn.send_command("GET", "py3:k")
            assert conn.read_response() == "v"
        ps.unsubscribe(f"py{protocol}")
        ps.punsubscribe()
        wait_until(lambda: cluster.clients[2].publish(f"py{protocol}", "c") == 0, 10)
    finally:
        ps.close()
        sub.close()


@py_mark
def test_redis_py_listener_thread_receives_from_every_node(cluster: Cluster) -> None:
    ps = cluster.client(1).pubsub()
    got: list[str] = []
    done = threading.Event()

    def handler(m: dict) -> None:
        got.append(m["data"])
        if len(got) == 3:
            done.set()

    ps.subscribe(**{"thread-chan": handler})
    thread = ps.run_in_thread(sleep_time=0.05, daemon=True)
    try:
        wait_until(lambda: cluster.clients[0].pubsub_numsub("thread-chan")[0][1] == 1, 10)
        for i, client in enumerate(cluster.clients):
            assert client.publish("thread-chan", f"n{i}") == 1
        assert done.wait(10), got
        assert got == ["n0", "n1", "n2"]
    finally:
        thread.stop()
        thread.join(5)
        ps.close()


@py_mark
def test_redis_py_asyncio_pubsub(cluster: Cluster) -> None:
    async def run() -> list[tuple[str, str]]:
        sub = aioredis.Redis(host=HOST, port=cluster.ports[2], decode_responses=True)
        pub = aioredis.Redis(host=HOST, port=cluster.ports[0], decode_responses=True)
        ps = sub.pubsub()
        try:
            await ps.subscribe("aio")
            await ps.psubscribe("aio.*")
            for _ in range(100):
                if (await pub.pubsub_numsub("aio"))[0][1] == 1:
                    break
                await asyncio.sleep(0.05)
            assert await pub.publish("aio", "one") == 1
            assert await pub.publish("aio.two", "two") == 1
            out: list[tuple[str, str]] = []
            for _ in range(200):
                m = await ps.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if m is not None:
                    out.append((m["channel"], m["data"]))
                if len(out) == 2:
                    break
            return out
        finally:
            await ps.aclose()
            await sub.aclose()
            await pub.aclose()

    assert asyncio.run(run()) == [("aio", "one"), ("aio.two", "two")]


@py_mark
def test_redis_py_keyspace_notifications_through_another_node(cluster: Cluster) -> None:
    a, b, c = cluster.clients
    a.config_set("notify-keyspace-events", "Kg$")
    ps = b.pubsub()
    try:
        wait_until(lambda: c.config_get("notify-keyspace-events")["notify-keyspace-events"]
                   == "g$K", 10)
        ps.psubscribe("__keyspace@0__:cache:*")
        wait_until(lambda: a.pubsub_numpat() == 1, 10)
        c.set("cache:item", "1")
        c.expire("cache:item", 100)
        c.delete("cache:item")
        got = messages(ps, 3)
        assert [(m["channel"], m["data"]) for m in got] == [
            ("__keyspace@0__:cache:item", "set"), ("__keyspace@0__:cache:item", "expire"),
            ("__keyspace@0__:cache:item", "del")]
    finally:
        ps.close()
        a.config_set("notify-keyspace-events", "")


@pytest.mark.compat(client="ioredis", family="pubsub")
def test_ioredis_pubsub_through_different_nodes(ioredis_ready: Path, cluster: Cluster) -> None:
    code, result, stderr = run_node(ioredis_ready, "ioredis_pubsub.js", HOST,
                                    *(str(p) for p in cluster.ports))
    assert result["failed"] == [], (result, stderr)
    assert code == 0 and result["passed"] > 10
