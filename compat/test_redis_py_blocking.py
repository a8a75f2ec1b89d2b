"""redis-py's blocking pops against a live 3-node cluster, woken across nodes: a client
blocks through one node, the push goes through another (the sync client, RESP3,
redis.asyncio), timeouts come back as None, and workers on every node draining a queue
fed through all of them each get their own jobs."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from tests.integration.conftest import HOST, Cluster, wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.compat(client="redis-py",
                                                           family="blocking")]
TIMEOUT = 10  # seconds a test's blocking call may wait: far more than a wake-up takes


def blocked(cluster: Cluster, i: int) -> int:
    return int(cluster.client(i).info("clients")["blocked_clients"])


@pytest.fixture
def fresh(cluster: Cluster) -> Iterator[Cluster]:
    for c in cluster.clients:
        c.flushall()
    yield cluster


def woken(cluster: Cluster, call: Callable[[redis.Redis], Any],
          push: Callable[[redis.Redis], Any], proto: int = 2) -> Any:
    """`call` through node 0 (a new connection), `push` through node 2 once it blocks;
    the call's result."""
    client = cluster.client(0, protocol=proto)
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call(client)))
    thread.start()
    try:
        wait_until(lambda: blocked(cluster, 0) == 1, 10, 0.01, "the client to block")
        push(cluster.client(2))
    finally:
        thread.join(TIMEOUT + 5)
        client.close()
    assert box, "the blocking call did not return"
    return box[0]


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_each_blocking_pop_is_woken_by_a_write_through_another_node(fresh: Cluster,
                                                                     proto: int) -> None:
    c = fresh
    pair = (lambda *x: tuple(x)) if proto == 2 else (lambda *x: list(x))
    assert woken(c, lambda r: r.blpop(["q1", "q2"], TIMEOUT),
                 lambda r: r.rpush("q2", "a", "b"), proto) == pair("q2", "a")
    assert woken(c, lambda r: r.brpop("q1", TIMEOUT),
                 lambda r: r.lpush("q1", "x", "y"), proto) == pair("q1", "x")
    assert woken(c, lambda r: r.blmove("src", "dst", TIMEOUT, "LEFT", "RIGHT"),
                 lambda r: r.rpush("src", "m"), proto) == "m"
    assert woken(c, lambda r: r.brpoplpush("src", "dst", TIMEOUT),
                 lambda r: r.rpush("src", "n"), proto) == "n"
    assert c.client(1).lrange("dst", 0, -1) == ["n", "m"]
    assert woken(c, lambda r: r.blmpop(TIMEOUT, 2, "l1", "l2", direction="RIGHT", count=2),
                 lambda r: r.rpush("l2", "1", "2", "3"), proto) == ["l2", ["3", "2"]]
    assert woken(c, lambda r: r.bzpopmin(["z1", "z2"], TIMEOUT),
                 lambda r: r.zadd("z1", {"m": 1.5}), proto) == pair("z1", "m", 1.5)
    assert woken(c, lambda r: r.bzpopmax("z1", TIMEOUT),
                 lambda r: r.zadd("z1", {"a": 1, "b": 2}), proto) == pair("z1", "b", 2.0)
    scores = [["m", "1"]] if proto == 2 else [["m", 1.0]]
    assert woken(c, lambda r: r.bzmpop(TIMEOUT, 1, ["z3"], min=True, count=5),
                 lambda r: r.zadd("z3", {"m": 1}), proto) == ["z3", scores]


def test_timeouts_return_none(fresh: Cluster) -> None:
    r = fresh.client(1)
    assert r.blpop("none", 0.05) is None
    assert r.brpop(["none", "also"], 0.05) is None
    assert r.blmove("none", "d", 0.05) is None
    assert r.brpoplpush("none", "d", 0.05) is None
    assert r.bzpopmin("none", 0.05) is None
    assert r.blmpop(0.05, 1, "none", direction="LEFT") is None
    assert r.bzmpop(0.05, 1, ["none"], max=True) is None
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.blpop("none", -1)


def test_asyncio_blocking_pops_are_woken_across_nodes(fresh: Cluster) -> None:
    async def main() -> None:
        waiting = aioredis.Redis(host=HOST, port=fresh.ports[0], decode_responses=True)
        pusher = aioredis.Redis(host=HOST, port=fresh.ports[2], decode_responses=True)
        try:
            async def until_blocked() -> None:
                # `waiting` is a pool: INFO goes through another of its connections.
                while int((await waiting.info("clients"))["blocked_clients"]) == 0:
                    await asyncio.sleep(0.01)

            task = asyncio.ensure_future(waiting.blpop("aq", TIMEOUT))
            await asyncio.wait_for(until_blocked(), 10)
            await pusher.rpush("aq", "hello")
            assert await asyncio.wait_for(task, TIMEOUT + 5) == ("aq", "hello")
            ztask = asyncio.ensure_future(waiting.bzpopmin("az", TIMEOUT))
            await asyncio.wait_for(until_blocked(), 10)
            await pusher.zadd("az", {"m": 3})
            assert await asyncio.wait_for(ztask, TIMEOUT + 5) == ("az", "m", 3.0)
        finally:
            await waiting.aclose()
            await pusher.aclose()

    asyncio.run(main())


def test_workers_on_every_node_share_a_queue_fed_through_every_node(fresh: Cluster) -> None:
    """Two workers per node (BLPOP, handle, BLPOP again) and a producer pushing 60 jobs
    through random nodes: every job is handled once (the cluster is healthy)."""
    c = fresh
    handled: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(node: int) -> None:
        r = c.client(node, socket_timeout=TIMEOUT + 5)
        try:
            while not stop.is_set():
                got = r.blpop("jobs", 1)
                if got is not None:
                    with lock:
                        handled.append((node, got[1]))
        finally:
            r.close()

    threads = [threading.Thread(target=worker, args=(i % 3,)) for i in range(6)]
    for t in threads:
        t.start()
    jobs = [f"job{i}" for i in range(60)]
    rng = random.Random(7)
    try:
        wait_until(lambda: sum(blocked(c, i) for i in range(3)) == 6, 10, 0.01,
                   "six blocked workers")
        for job in jobs:
            c.client(rng.randrange(3)).rpush("jobs", job)
            time.sleep(rng.uniform(0, 0.01))
        wait_until(lambda: len(handled) >= len(jobs), 30, 0.05, "every job handled")
        time.sleep(1.5)  # a second delivery of any job would show by now
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT)
    assert sorted(job for _, job in handled) == sorted(jobs)
    assert c.client(0).llen("jobs") == 0
    assert len({node for node, _ in handled}) == 3  # workers on every node took jobs
