"""redis-py's hash, set, sorted-set and list APIs against a live 3-node cluster, in every
form a user reaches for: the sync client, redis.asyncio, RESP3 (`protocol=3`: HGETALL
a map, SMEMBERS a set, scores as doubles) and RedisCluster (sync and asyncio).

Each family is a script of redis-py calls run twice with the same kind of client: once
through a dynredis node, once against a real redis-server, and every call's Python result
must be the same (random picks, SPOP SRANDMEMBER HRANDFIELD ZRANDMEMBER, are compared by
size and membership). Keys share a hash tag so the multi-key calls (SINTER, SMOVE,
ZUNIONSTORE, LMOVE ...) are single-slot for RedisCluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from tests.integration.conftest import HOST, SOCKET_TIMEOUT_S, Cluster

pytestmark = pytest.mark.timeout(180)

FAMILIES = ("hashes", "sets", "sorted sets", "lists")
Step = tuple[str, tuple, dict, Callable[[Any], Any] | None]


def step(method: str, *args: Any, norm: Callable[[Any], Any] | None = None,
         **kwargs: Any) -> Step:
    return (method, args, kwargs, norm)


def _size(x: Any) -> Any:
    return len(x) if isinstance(x, list | set | dict) else x


def hashes(t: str) -> list[Step]:
    h, g = f"{{{t}}}:h", f"{{{t}}}:g"
    return [
        step("hset", h, "f1", "v1"),
        step("hset", h, mapping={"f2": "v2", "f3": "3", "n": "10"}),
        step("hsetnx", h, "f1", "x"), step("hsetnx", h, "f4", "v4"),
        step("hget", h, "f2"), step("hget", h, "none"),
        step("hmget", h, ["f1", "none", "f3"]),
        step("hgetall", h), step("hgetall", g),
        step("hlen", h), step("hexists", h, "f1"), step("hexists", h, "zz"),
        step("hkeys", h, norm=sorted), step("hvals", h, norm=sorted),
        step("hincrby", h, "n", 5), step("hincrby", h, "new", -3),
        step("hincrbyfloat", h, "n", 0.5), step("hincrbyfloat", h, "fl", "1.25"),
        step("hstrlen", h, "f2"),
        step("hdel", h, "f1", "none"), step("hgetall", h),
        step("hrandfield", h, norm=lambda x: x is not None),
        step("hrandfield", h, 3, norm=_size),
        step("hrandfield", h, 2, withvalues=True, norm=_size),
        step("hscan", h, 0, count=100, norm=lambda x: (x[0], x[1])),
        step("type", h), step("expire", h, 100), step("ttl", h),
        step("delete", h), step("hgetall", h), step("exists", h),
    ]


def sets(t: str) -> list[Step]:
    a, b, c, d = (f"{{{t}}}:{x}" for x in "abcd")
    return [
        step("sadd", a, "x", "y", "z", "w"), step("sadd", a, "x"),
        step("sadd", b, "y", "z", "q"), step("sadd", c, *[str(i) for i in range(50)]),
        step("smembers", a), step("scard", a), step("sismember", a, "x"),
        step("sismember", a, "nope"), step("smismember", a, ["x", "nope", "z"]),
        step("sinter", a, b), step("sunion", a, b), step("sdiff", a, b),
        step("sintercard", 2, [a, b]), step("sinterstore", d, [a, b]), step("smembers", d),
        step("sunionstore", d, [a, b]), step("sdiffstore", d, [a, b]), step("smembers", d),
        step("smove", a, b, "x"), step("smembers", a), step("smembers", b),
        step("srem", a, "y", "nope"), step("smembers", a),
        step("srandmember", c, norm=lambda x: x is not None and int(x) < 50),
        step("srandmember", c, 5, norm=_size),
        step("srandmember", c, -70, norm=_size),
        step("spop", c, norm=lambda x: x is not None), step("scard", c),
        step("spop", c, 3, norm=_size), step("scard", c),
        step("sscan_iter", b, norm=lambda it: sorted(it)),
        step("type", a), step("delete", b), step("smembers", b),
    ]


def sorted_sets(t: str) -> list[Step]:
    z, w, d = (f"{{{t}}}:{x}" for x in "zwd")
    return [
        step("zadd", z, {"a": 1, "b": 2, "c": 3, "d": 4.5}),
        step("zadd", z, {"a": 10}, nx=True), step("zadd", z, {"e": 5}, xx=True),
        step("zadd", z, {"a": 0.5, "b": 7}, gt=True, ch=True),
        step("zadd", z, {"c": 1}, incr=True),
        step("zincrby", z, 2.5, "d"), step("zscore", z, "d"), step("zscore", z, "none"),
        step("zmscore", z, ["a", "none", "c"]),
        step("zcard", z), step("zcount", z, 2, "+inf"), step("zlexcount", z, "-", "+"),
        step("zrange", z, 0, -1), step("zrange", z, 0, -1, withscores=True),
        step("zrange", z, 0, 1, desc=True, withscores=True),
        step("zrange", z, 2, 8, byscore=True, offset=1, num=2),
        step("zrangebyscore", z, "(1", 7, withscores=True),
        step("zrevrange", z, 0, 2), step("zrevrangebyscore", z, "+inf", 3),
        step("zrank", z, "c"), step("zrevrank", z, "c"), step("zrank", z, "none"),
        step("zadd", w, {"a": 1, "x": 2}),
        step("zunionstore", d, [z, w]), step("zrange", d, 0, -1, withscores=True),
        step("zinterstore", d, {z: 2, w: 3}, aggregate="MAX"),
        step("zrange", d, 0, -1, withscores=True),
        step("zunion", [z, w], withscores=True), step("zinter", [z, w]),
        step("zdiff", [z, w]),
        step("zrangestore", d, z, 1, 2), step("zrange", d, 0, -1),
        step("zrandmember", z, norm=lambda x: x is not None),
        step("zrandmember", z, 2, withscores=True, norm=_size),
        step("zpopmin", z), step("zpopmax", z, 2), step("zrem", z, "b", "none"),
        step("zremrangebyscore", w, 0, 1), step("zrange", w, 0, -1, withscores=True),
        step("zscan_iter", z, norm=lambda it: sorted(it)),
        step("type", z), step("zcard", z),
    ]


def lists(t: str) -> list[Step]:
    q, r = f"{{{t}}}:q", f"{{{t}}}:r"
    return [
        step("rpush", q, "a", "b", "c"), step("lpush", q, "z", "y"),
        step("lrange", q, 0, -1), step("llen", q), step("lindex", q, 1),
        step("lindex", q, 99), step("lset", q, 0, "Y"),
        step("linsert", q, "before", "b", "ab"), step("linsert", q, "after", "nope", "x"),
        step("rpush", q, "a", "a"), step("lpos", q, "a"), step("lpos", q, "a", rank=-1),
        step("lpos", q, "a", count=0), step("lrem", q, 2, "a"), step("lrange", q, 0, -1),
        step("ltrim", q, 1, -1), step("lrange", q, 0, -1),
        step("lmove", q, r, "LEFT", "RIGHT"), step("rpoplpush", q, r),
        step("lrange", r, 0, -1),
        step("lpop", q), step("rpop", q), step("lpop", q, 5), step("lpop", q),
        step("llen", q), step("exists", q),
        step("rpushx", q, "x"), step("lpushx", r, "first"), step("lrange", r, 0, -1),
        step("lmpop", 2, q, r, direction="RIGHT", count=2),
        step("type", r), step("lrange", r, 0, -1),
    ]


SCRIPTS: dict[str, Callable[[str], list[Step]]] = {
    "hashes": hashes, "sets": sets, "sorted sets": sorted_sets, "lists": lists}


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except redis.ResponseError as exc:
        return ("error", str(exc).split(" ")[0])


def run_sync(client: Any, script: list[Step]) -> list[Any]:
    out = []
    for method, args, kwargs, norm in script:
        got = outcome(lambda m=method, a=args, k=kwargs: getattr(client, m)(*a, **k))
        out.append((method, norm(got) if norm and not isinstance(got, tuple) else got))
    return out


async def run_async(client: Any, script: list[Step]) -> list[Any]:
    out = []
    for method, args, kwargs, norm in script:
        try:
            if method.endswith("_iter"):
                got: Any = [x async for x in getattr(client, method)(*args, **kwargs)]
            else:
                got = await getattr(client, method)(*args, **kwargs)
        except redis.ResponseError as exc:
            got = ("error", str(exc).split(" ")[0])
        out.append((method, norm(got) if norm and not isinstance(got, tuple) else got))
    return out


def assert_same(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"call {i} ({w[0]}): dynredis {g[1]!r}, redis-server {w[1]!r}"


def mark(client: str, family: str) -> Any:
    return pytest.param(family, id=family.replace(" ", "-"),
                        marks=pytest.mark.compat(client=client, family=family))


def params(client: str) -> Any:
    return pytest.mark.parametrize("family", [mark(client, f) for f in FAMILIES])


@pytest.fixture(scope="module")
def redis_port(real_redis: redis.Redis) -> Iterator[int]:
    yield real_redis.port  # type: ignore[attr-defined]


# --- sync, RESP2 and RESP3 -------------------------------------------------------------


@params("redis-py")
def test_sync(family: str, cluster: Cluster, redis_port: int) -> None:
    script = SCRIPTS[family]("pyc-sync")
    dyn = cluster.client(1, socket_timeout=SOCKET_TIMEOUT_S)
    ref = redis.Redis(host=HOST, port=redis_port, decode_responses=True)
    try:
        assert_same(run_sync(dyn, script), run_sync(ref, script))
    finally:
        dyn.close()
        ref.close()


@params("redis-py RESP3")
def test_resp3(family: str, cluster: Cluster, redis_port: int) -> None:
    script = SCRIPTS[family]("pyc-r3")
    dyn = cluster.client(2, protocol=3)
    ref = redis.Redis(host=HOST, port=redis_port, decode_responses=True, protocol=3)
    try:
        assert_same(run_sync(dyn, script), run_sync(ref, script))
    finally:
        dyn.close()
        ref.close()


@pytest.mark.compat(client="redis-py RESP3", family="hashes")
def test_resp3_hgetall_is_a_map_and_scores_are_doubles(cluster: Cluster) -> None:
    c = cluster.client(0, protocol=3)
    try:
        c.hset("pyc:r3:map", mapping={"a": "1", "b": "2"})
        assert c.hgetall("pyc:r3:map") == {"a": "1", "b": "2"}
        c.zadd("pyc:r3:z", {"m": 1.5, "n": 2})
        assert c.zrange("pyc:r3:z", 0, -1, withscores=True) == [["m", 1.5], ["n", 2.0]]
        assert c.zscore("pyc:r3:z", "m") == 1.5
        c.sadd("pyc:r3:s", "x", "y")
        assert c.smembers("pyc:r3:s") == {"x", "y"}
    finally:
        c.close()


# --- redis.asyncio ---------------------------------------------------------------------


@params("redis-py asyncio")
def test_asyncio(family: str, cluster: Cluster, redis_port: int) -> None:
    script = SCRIPTS[family]("pyc-async")

    async def main() -> tuple[list[Any], list[Any]]:
        async with aioredis.Redis(host=HOST, port=cluster.ports[0], decode_responses=True,
                                  socket_timeout=SOCKET_TIMEOUT_S) as dyn, \
                aioredis.Redis(host=HOST, port=redis_port, decode_responses=True) as ref:
            return await run_async(dyn, script), await run_async(ref, script)

    got, want = asyncio.run(main())
    assert_same(got, want)


# --- RedisCluster ----------------------------------------------------------------------


@params("redis-py RedisCluster")
def test_cluster_client(family: str, cluster: Cluster, redis_port: int) -> None:
    script = SCRIPTS[family]("pyc-rc")
    rc = RedisCluster(host=HOST, port=cluster.cluster_ports[1], decode_responses=True,
                      socket_timeout=SOCKET_TIMEOUT_S)
    ref = redis.Redis(host=HOST, port=redis_port, decode_responses=True)
    try:
        assert_same(run_sync(rc, script), run_sync(ref, script))
    finally:
        rc.close()
        ref.close()


@params("redis-py asyncio RedisCluster")
def test_asyncio_cluster_client(family: str, cluster: Cluster, redis_port: int) -> None:
    script = SCRIPTS[family]("pyc-arc")

    async def main() -> tuple[list[Any], list[Any]]:
        async with AsyncRedisCluster(host=HOST, port=cluster.cluster_ports[2],
                                     decode_responses=True) as rc, \
                aioredis.Redis(host=HOST, port=redis_port, decode_responses=True) as ref:
            return await run_async(rc, script), await run_async(ref, script)

    got, want = asyncio.run(main())
    assert_same(got, want)
