"""redis-py against a live 3-node cluster: the sync client, redis.asyncio, RedisCluster
(sync and asyncio), pipelines with and without a transaction, and RESP3."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import LoadBalancingStrategy, RedisCluster

from tests.integration.conftest import HOST, SOCKET_TIMEOUT_S, Cluster

pytestmark = pytest.mark.timeout(120)

SYNC = "redis-py"
ASYNC = "redis-py asyncio"
CLUSTER = "redis-py RedisCluster"
ASYNC_CLUSTER = "redis-py asyncio RedisCluster"
RESP3 = "redis-py RESP3"


def mark(client: str, family: str) -> pytest.MarkDecorator:
    return pytest.mark.compat(client=client, family=family)


@pytest.fixture
def r(cluster: Cluster) -> Iterator[redis.Redis]:
    c = cluster.client(1, socket_timeout=SOCKET_TIMEOUT_S)
    yield c
    c.close()


@pytest.fixture
def rc(cluster: Cluster) -> Iterator[RedisCluster]:
    c = RedisCluster(host=HOST, port=cluster.cluster_ports[0], decode_responses=True,
                     socket_timeout=SOCKET_TIMEOUT_S)
    yield c
    c.close()


# --- the sync client ---------------------------------------------------------------


@mark(SYNC, "strings")
def test_sync_strings(r: redis.Redis, cluster: Cluster) -> None:
    assert r.set("py:s", "hello") is True
    assert r.get("py:s") == "hello"
    assert r.set("py:s", "x", nx=True) is None
    assert r.set("py:s", "world", xx=True, get=True) == "hello"
    assert r.append("py:s", "!") == 6 and r.strlen("py:s") == 6
    assert r.getrange("py:s", 0, 2) == "wor"
    assert r.mset({"py:m1": "1", "py:m2": "2"}) is True
    assert r.mget("py:m1", "py:m2", "py:none") == ["1", "2", None]
    assert r.msetnx({"py:m2": "x", "py:m3": "3"}) is False
    assert r.getdel("py:m1") == "1" and r.get("py:m1") is None
    assert r.getset("py:m2", "two") == "2"
    assert r.execute_command("SETEX", "py:ex", 100, "v") is True
    assert 0 < r.ttl("py:ex") <= 100
    assert r.getex("py:ex", persist=True) == "v" and r.ttl("py:ex") == -1
    binary = bytes(range(256))
    rb = cluster.client(2, decode_responses=False)
    try:
        assert rb.set(b"py:bin\x00key", binary) is True
        assert rb.get(b"py:bin\x00key") == binary
    finally:
        rb.close()
    assert cluster.client(0).get("py:m2") == "two"  # and every node sees it


@mark(SYNC, "keys")
def test_sync_keys(r: redis.Redis) -> None:
    r.set("py:k1", "a")
    r.set("py:k2", "b")
    assert r.exists("py:k1", "py:k2", "py:none") == 2
    assert r.type("py:k1") == "string" and r.type("py:none") == "none"
    assert r.expire("py:k1", 100) is True and 0 < r.ttl("py:k1") <= 100
    assert 0 < r.pttl("py:k1") <= 100_000
    assert r.expire("py:k1", 50, gt=True) is False
    assert r.persist("py:k1") is True and r.ttl("py:k1") == -1
    assert r.touch("py:k1", "py:none") == 1
    assert r.delete("py:k1", "py:k2", "py:none") == 2
    assert r.unlink("py:k1") == 0
    assert r.ttl("py:k1") == -2


@mark(SYNC, "scan")
def test_sync_scan_iter_and_keys(r: redis.Redis) -> None:
    names = {f"py:scan:{i}" for i in range(300)}
    with r.pipeline(transaction=False) as p:
        for n in names:
            p.set(n, "1")
        p.execute()
    assert set(r.scan_iter(match="py:scan:*", count=40)) == names
    assert sorted(r.scan_iter(match="py:scan:*", count=40)) == sorted(names)  # once each
    assert set(r.keys("py:scan:1?")) == {f"py:scan:{i}" for i in range(10, 20)}
    assert r.randomkey() is not None
    assert r.dbsize() >= len(names)


@mark(SYNC, "counters")
def test_sync_counters(r: redis.Redis) -> None:
    assert r.incr("py:c") == 1
    assert r.incrby("py:c", 41) == 42
    assert r.decr("py:c") == 41 and r.decrby("py:c", 40) == 1
    assert r.get("py:c") == "1"
    assert r.incrbyfloat("py:f", 1.25) == 1.25
    assert r.incrbyfloat("py:f", "0.5") == 1.75
    r.set("py:notint", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer or out of range"):
        r.incr("py:notint")


@mark(SYNC, "versioned")
def test_sync_versioned_api(r: redis.Redis, cluster: Cluster) -> None:
    r.set("py:v", "base")
    ctx, values = r.execute_command("GETCTX", "py:v")
    assert values == ["base"] and ctx
    assert cluster.client(0).execute_command("SETCTX", "py:v", ctx, "left") == "OK"
    assert cluster.client(2).execute_command("SETCTX", "py:v", ctx, "right") == "OK"
    both, values = r.execute_command("GETCTX", "py:v")
    assert sorted(values) == ["left", "right"]
    assert r.get("py:v") == values[0]  # GET: the newest sibling
    assert r.execute_command("SETCTX", "py:v", both, "merged", "EX", "100") == "OK"
    ctx, values = r.execute_command("GETCTX", "py:v")
    assert values == ["merged"] and 0 < r.ttl("py:v") <= 100
    assert r.execute_command("DELCTX", "py:v", ctx) == "OK"
    assert r.get("py:v") is None


@mark(SYNC, "connection")
def test_sync_connection(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.echo("hi") == "hi"
    assert r.client_setname("py-conn") is True and r.client_getname() == "py-conn"
    assert isinstance(r.client_id(), int)
    info = r.client_info()
    assert info["name"] == "py-conn" and info["lib-name"] == "redis-py"
    assert any(c["name"] == "py-conn" for c in r.client_list())
    assert r.execute_command("SELECT", "1") is True
    assert r.execute_command("SELECT", "0") is True
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", "16")


@mark(SYNC, "server")
def test_sync_server(r: redis.Redis) -> None:
    info = r.info()
    assert info["redis_version"].startswith("7.")
    # the main port is a standalone Redis (numbered databases); the cluster port a node
    assert info["redis_mode"] == "standalone" and info["cluster_enabled"] == 0
    assert r.info("dynamo")["ring_members"] == 3
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    secs, micros = r.time()
    assert secs > 1_600_000_000 and 0 <= micros < 1_000_000
    assert r.lastsave() is not None
    assert r.command_count() >= 60
    assert r.memory_usage("py:none") is None
    r.set("py:mem", "x" * 100)
    assert r.memory_usage("py:mem") > 100


# --- pipelines and MULTI/EXEC --------------------------------------------------------


@mark(SYNC, "pipelines")
def test_pipeline_without_transaction(r: redis.Redis, cluster: Cluster) -> None:
    with r.pipeline(transaction=False) as p:
        for i in range(2000):
            p.set(f"py:p:{i}", i)
        assert p.execute() == [True] * 2000
    with cluster.client(0).pipeline(transaction=False) as p:
        for i in range(2000):
            p.get(f"py:p:{i}")
        p.incr("py:p:7")
        p.get("py:p:none")
        assert p.execute() == [str(i) for i in range(2000)] + [8, None]
    with r.pipeline(transaction=False) as p:
        p.set("py:p:word", "abc").incr("py:p:word").get("py:p:word")
        res = p.execute(raise_on_error=False)
    assert res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] == "abc"


@mark(SYNC, "transactions")
def test_pipeline_with_transaction_is_an_ordered_batch(r: redis.Redis) -> None:
    with r.pipeline(transaction=True) as p:
        p.set("py:t", 1).incr("py:t").incrby("py:t", 10).get("py:t").delete("py:t:none")
        assert p.execute() == [True, 2, 12, "12", 0]
    # A command failing at run time does not undo the others (as in Redis).
    with r.pipeline(transaction=True) as p:
        p.set("py:t:word", "abc").incr("py:t:word").set("py:t:after", "yes")
        res = p.execute(raise_on_error=False)
    assert res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] is True
    assert r.get("py:t:after") == "yes"
    # A command refused while queueing aborts the whole transaction (EXECABORT).
    with r.pipeline(transaction=True) as p:
        p.set("py:t:x", "1").execute_command("GET")
        with pytest.raises(redis.ResponseError):
            p.execute()
    assert r.get("py:t:x") is None


@mark(SYNC, "transactions")
def test_pipeline_watch_aborts_when_another_node_wrote_the_key(r: redis.Redis,
                                                               cluster: Cluster) -> None:
    other = cluster.client(2)
    r.set("py:w", "1")
    with r.pipeline() as p:
        p.watch("py:w")
        assert p.get("py:w") == "1"  # immediate mode after WATCH
        other.set("py:w", "changed")  # through another node
        p.multi()
        p.set("py:w", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("py:w") == "changed"
    with r.pipeline() as p:  # nothing changed this time: EXEC runs
        p.watch("py:w")
        p.multi()
        p.set("py:w", "mine")
        assert p.execute() == [True]
    assert other.get("py:w") == "mine"
    other.close()


@mark(SYNC, "transactions")
def test_the_transaction_helper_retries_until_its_watch_holds(r: redis.Redis,
                                                              cluster: Cluster) -> None:
    other = cluster.client(0)
    r.set("py:tx:n", "0")
    calls = []

    def bump(pipe: redis.client.Pipeline) -> None:
        value = int(pipe.get("py:tx:n") or 0)
        if not calls:
            other.incr("py:tx:n")  # a concurrent writer, once: the first EXEC aborts
        calls.append(value)
        pipe.multi()
        pipe.set("py:tx:n", value + 1)

    assert r.transaction(bump, "py:tx:n") == [True]
    assert calls == [0, 1]  # read, aborted, read again
    assert other.get("py:tx:n") == "2"  # no increment lost
    assert r.ping() is True
    other.close()


# --- redis.asyncio -------------------------------------------------------------------


def async_client(port: int) -> aioredis.Redis:
    """An asyncio client whose pool makes extra tasks wait for a connection."""
    pool = aioredis.BlockingConnectionPool(host=HOST, port=port, max_connections=32,
                                           decode_responses=True, timeout=SOCKET_TIMEOUT_S)
    return aioredis.Redis.from_pool(pool)  # closing the client closes the pool


@mark(ASYNC, "strings")
def test_asyncio_concurrent_commands(cluster: Cluster) -> None:
    async def main() -> None:
        async with async_client(cluster.ports[2]) as c:
            assert await c.ping() is True
            await asyncio.gather(*(c.set(f"py:a:{i}", i) for i in range(300)))
            got = await asyncio.gather(*(c.get(f"py:a:{i}") for i in range(300)))
            assert got == [str(i) for i in range(300)]
            assert await c.mget("py:a:0", "py:a:none") == ["0", None]
            assert await c.getdel("py:a:0") == "0" and await c.exists("py:a:0") == 0

    asyncio.run(main())


@mark(ASYNC, "counters")
def test_asyncio_counters_from_many_tasks_lose_no_increment(cluster: Cluster) -> None:
    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(async_client(p)) for p in cluster.ports]
            await asyncio.gather(*(clients[i % 3].incr("py:a:count") for i in range(300)))
            assert await clients[0].get("py:a:count") == "300"
            assert await clients[1].incrbyfloat("py:a:float", 0.5) == 0.5

    asyncio.run(main())


@mark(ASYNC, "pipelines")
def test_asyncio_pipelines(cluster: Cluster) -> None:
    async def main() -> None:
        async with async_client(cluster.ports[0]) as c:
            async with c.pipeline(transaction=False) as p:
                for i in range(500):
                    p.set(f"py:ap:{i}", i)
                assert await p.execute() == [True] * 500
            async with c.pipeline(transaction=True) as p:
                p.incr("py:ap:1").get("py:ap:1")
                assert await p.execute() == [2, "2"]

    asyncio.run(main())


@mark(ASYNC, "scan")
def test_asyncio_scan_iter(cluster: Cluster) -> None:
    async def main() -> None:
        async with async_client(cluster.ports[1]) as c:
            await c.mset({f"py:as:{i}": i for i in range(120)})
            seen = [k async for k in c.scan_iter(match="py:as:*", count=25)]
            assert sorted(seen) == sorted(f"py:as:{i}" for i in range(120))

    asyncio.run(main())


# --- RedisCluster --------------------------------------------------------------------


@mark(CLUSTER, "cluster")
def test_cluster_client_discovers_three_masters(rc: RedisCluster, cluster: Cluster) -> None:
    masters = sorted(n.port for n in rc.get_primaries())
    assert masters == sorted(cluster.cluster_ports)
    assert rc.cluster_info()["cluster_state"] == "ok"
    for i in range(100):
        assert rc.set(f"py:rc:{i}", i) is True
    assert [rc.get(f"py:rc:{i}") for i in range(100)] == [str(i) for i in range(100)]
    used = {rc.get_node_from_key(f"py:rc:{i}").port for i in range(100)}
    assert used == set(cluster.cluster_ports)


@mark(CLUSTER, "strings")
def test_cluster_client_multi_key_commands(rc: RedisCluster) -> None:
    pairs = {f"py:rm:{i}": str(i) for i in range(50)}
    assert all(ok is True for ok in rc.mset_nonatomic(pairs))
    assert rc.mget_nonatomic(list(pairs)) == list(pairs.values())
    # Keys with one hash tag share a slot: plain MSET/MGET/DEL work.
    assert rc.mset({"{py}:a": "1", "{py}:b": "2"}) is True
    assert rc.mget("{py}:a", "{py}:b") == ["1", "2"]
    assert rc.delete("{py}:a", "{py}:b") == 2
    # redis-py splits multi-slot DEL/EXISTS per slot and adds up the answers.
    assert rc.exists(*pairs) == 50
    assert rc.delete(*pairs) == 50


@mark(CLUSTER, "pipelines")
def test_cluster_pipeline(rc: RedisCluster) -> None:
    with rc.pipeline() as p:
        for i in range(300):
            p.set(f"py:rp:{i}", i)
        assert p.execute() == [True] * 300
    with rc.pipeline() as p:
        for i in range(300):
            p.incr(f"py:rp:{i}")
        assert p.execute() == list(range(1, 301))


@mark(CLUSTER, "scan")
def test_cluster_scan_and_dbsize_fan_out(rc: RedisCluster, cluster: Cluster) -> None:
    names = {f"py:rs:{i}" for i in range(200)}
    for n in names:
        rc.set(n, "1")
    seen = list(rc.scan_iter(match="py:rs:*", count=50))
    assert len(seen) == len(names) and set(seen) == names
    # Fanned out to the masters, DBSIZE adds up to the cluster-wide count of a main port.
    total = rc.dbsize(target_nodes=RedisCluster.PRIMARIES)
    assert total == cluster.client(0).dbsize() and total >= len(names)
    assert set(rc.keys("py:rs:1?", target_nodes=RedisCluster.PRIMARIES)) == \
        {f"py:rs:{i}" for i in range(10, 20)}


@mark(CLUSTER, "keys")
def test_cluster_client_reads_from_replicas(cluster: Cluster) -> None:
    rc = RedisCluster(host=HOST, port=cluster.ports[1], decode_responses=True,
                      load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN,
                      socket_timeout=SOCKET_TIMEOUT_S)
    try:
        for i in range(60):
            rc.set(f"py:rr:{i}", i, ex=1000)
        assert [rc.get(f"py:rr:{i}") for i in range(60)] == [str(i) for i in range(60)]
        assert all(0 < rc.ttl(f"py:rr:{i}") <= 1000 for i in range(0, 60, 7))
    finally:
        rc.close()


@mark(ASYNC_CLUSTER, "cluster")
def test_asyncio_cluster_client(cluster: Cluster) -> None:
    async def main() -> None:
        async with AsyncRedisCluster(host=HOST, port=cluster.cluster_ports[2],
                                     decode_responses=True) as rc:  # initializes, closes
            assert sorted(n.port for n in rc.get_primaries()) == sorted(cluster.cluster_ports)
            await asyncio.gather(*(rc.set(f"py:arc:{i}", i) for i in range(150)))
            got = await asyncio.gather(*(rc.get(f"py:arc:{i}") for i in range(150)))
            assert got == [str(i) for i in range(150)]
            async with rc.pipeline() as p:
                for i in range(150):
                    p.incr(f"py:arc:{i}")
                assert await p.execute() == list(range(1, 151))
            seen = [k async for k in rc.scan_iter(match="py:arc:*")]
            assert sorted(seen) == sorted(f"py:arc:{i}" for i in range(150))

    asyncio.run(main())


# --- RESP3 ---------------------------------------------------------------------------


@pytest.fixture
def r3(cluster: Cluster) -> Iterator[redis.Redis]:
    c = cluster.client(0, protocol=3)
    yield c
    c.close()


@mark(RESP3, "connection")
def test_resp3_hello_is_a_map(r3: redis.Redis) -> None:
    hello = r3.execute_command("HELLO", "3")
    assert isinstance(hello, dict)
    assert hello["server"] == "redis" and hello["proto"] == 3
    assert hello["mode"] == "standalone" and hello["role"] == "master"
    assert hello["modules"] == [] and isinstance(hello["id"], int)
    assert r3.client_info()["resp"] == "3"
    assert r3.ping() is True


@mark(RESP3, "strings")
def test_resp3_nulls_and_strings(r3: redis.Redis) -> None:
    assert r3.get("py:r3:none") is None
    assert r3.set("py:r3:s", "v") is True
    assert r3.mget("py:r3:s", "py:r3:none") == ["v", None]
    assert r3.set("py:r3:s", "w", nx=True) is None
    assert r3.set("py:r3:s", "w", get=True) == "v"
    assert r3.getdel("py:r3:none") is None


@mark(RESP3, "counters")
def test_resp3_counters_and_floats(r3: redis.Redis) -> None:
    assert r3.incr("py:r3:c") == 1
    assert r3.incrbyfloat("py:r3:f", 2.5) == 2.5
    assert r3.incrbyfloat("py:r3:f", "-0.25") == 2.25
    # INCRBYFLOAT answers a bulk string in RESP3 too (as Redis 7.0 does), not a double.
    assert r3.execute_command("INCRBYFLOAT", "py:r3:f", "0.5") in ("2.75", 2.75)


@mark(RESP3, "server")
def test_resp3_maps_of_server_commands(r3: redis.Redis) -> None:
    assert r3.config_get("maxmemory*") == {"maxmemory": "0", "maxmemory-policy": "noeviction",
                                           "maxmemory-clients": "2147483648"}
    info = r3.info("server")
    assert info["redis_mode"] == "standalone"
    table = r3.command()
    assert table["get"]["arity"] == 2 and "readonly" in table["get"]["flags"]
    assert r3.command_getkeys("MSET", "a", "1", "b", "2") == ["a", "b"]
    slots = r3.execute_command("CLUSTER", "SLOTS")
    assert sum(int(hi) - int(lo) + 1 for lo, hi, *_ in slots) == 16384


@mark(RESP3, "transactions")
def test_resp3_pipeline_and_transaction(r3: redis.Redis) -> None:
    with r3.pipeline(transaction=True) as p:
        p.set("py:r3:t", "1").incr("py:r3:t").get("py:r3:none")
        assert p.execute() == [True, 2, None]
    with r3.pipeline(transaction=False) as p:
        p.ttl("py:r3:t").exists("py:r3:t").type("py:r3:t")
        assert p.execute() == [-1, 1, "string"]


@mark(RESP3, "versioned")
def test_resp3_versioned_api(r3: redis.Redis) -> None:
    r3.set("py:r3:v", "one")
    ctx, values = r3.execute_command("GETCTX", "py:r3:v")
    assert values == ["one"] and ctx
    assert r3.execute_command("SETCTX", "py:r3:v", ctx, "two") == "OK"
    assert r3.execute_command("GETCTX", "py:r3:v")[1] == ["two"]
    ctx, values = r3.execute_command("GETCTX", "py:r3:none")
    assert values == []
