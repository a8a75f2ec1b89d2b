"""redis-py's bitmap, string-extra and HyperLogLog APIs against a live 3-node cluster:
the sync client, redis.asyncio, RedisCluster and RESP3."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from dynredis.commands import hll
from dynredis.commands.hll import Hll
from tests.integration.conftest import HOST, SOCKET_TIMEOUT_S, Cluster

pytestmark = pytest.mark.timeout(120)


def mark(client: str, family: str) -> pytest.MarkDecorator:
    return pytest.mark.compat(client=client, family=family)


@pytest.fixture
def r(cluster: Cluster) -> Iterator[redis.Redis]:
    c = cluster.client(1, socket_timeout=SOCKET_TIMEOUT_S)
    yield c
    c.close()


@mark("redis-py", "bitmaps")
def test_sync_bitmaps(r: redis.Redis, cluster: Cluster) -> None:
    assert r.setbit("py:bits", 7, 1) == 0 and r.setbit("py:bits", 7, 1) == 1
    assert r.getbit("py:bits", 7) == 1 and r.getbit("py:bits", 100) == 0
    r.set("py:foobar", "foobar")
    assert r.bitcount("py:foobar") == 26
    assert r.bitcount("py:foobar", 1, 1) == 6
    assert r.bitcount("py:foobar", 5, 30, "BIT") == 17
    assert r.bitpos("py:foobar", 1) == 1
    assert r.bitpos("py:foobar", 0, 2, -1, "BIT") == 3
    assert r.bitop("AND", "py:and", "py:foobar", "py:bits") == 6
    assert r.get("py:and") == "\x00" * 6
    assert r.bitop("NOT", "py:not", "py:bits") == 1
    with pytest.raises(redis.ResponseError, match="BITOP NOT must be called with a single"):
        r.bitop("NOT", "py:not", "py:bits", "py:foobar")
    bf = r.bitfield("py:bf")
    assert bf.incrby("u2", 100, 1).set("i8", "#1", -3).get("i8", "#1").execute() == [1, 0, -3]
    bf = r.bitfield("py:bf", default_overflow="FAIL")
    assert bf.incrby("u2", 100, 5).execute() == [None]
    assert r.bitfield_ro("py:bf", "i8", 8, items=[("u2", 100)]) == [-3, 1]
    with pytest.raises(redis.ResponseError, match="BITFIELD_RO only supports the GET"):
        r.execute_command("BITFIELD_RO", "py:bf", "SET", "u8", 0, 1)
    assert cluster.client(2).getbit("py:bits", 7) == 1  # and every node sees it


@mark("redis-py", "string-extras")
def test_sync_lcs_and_substr(r: redis.Redis) -> None:
    r.mset({"py:{l}1": "ohmytext", "py:{l}2": "mynewtext"})
    assert r.lcs("py:{l}1", "py:{l}2") == "mytext"
    assert r.lcs("py:{l}1", "py:{l}2", len=True) == 6
    assert r.lcs("py:{l}1", "py:{l}2", idx=True, minmatchlen=4, withmatchlen=True) == [
        "matches", [[[4, 7], [5, 8], 4]], "len", 6]
    assert r.substr("py:{l}1", 2, 3) == "my"
    with pytest.raises(redis.ResponseError, match="If you want both the length and indexes"):
        r.lcs("py:{l}1", "py:{l}2", len=True, idx=True)


@mark("redis-py", "hyperloglog")
def test_sync_hyperloglog(r: redis.Redis, cluster: Cluster) -> None:
    assert r.pfadd("py:hll1", *[f"a{i}" for i in range(1000)]) == 1
    assert r.pfadd("py:hll1", "a1") == 0
    assert r.pfadd("py:hll2", *[f"b{i}" for i in range(500)], "a1") == 1
    assert 980 <= r.pfcount("py:hll1") <= 1020
    both = r.pfcount("py:hll1", "py:hll2")
    assert 1470 <= both <= 1530
    assert r.pfmerge("py:hll3", "py:hll1", "py:hll2") is True
    assert cluster.client(0).pfcount("py:hll3") == both
    r.set("py:plain", "not an hll")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE Key is not a valid HyperLogLog"):
        r.pfadd("py:plain", "x")


CONCURRENT = 60  # concurrent PFADDs (tests/integration/test_siblings.py: past the cap)


@mark("redis-py asyncio", "hyperloglog")
def test_asyncio_pfadds_through_every_node_all_count(cluster: Cluster) -> None:
    reference = Hll(hll.empty())
    for i in range(CONCURRENT):
        reference.add(f"e{i}".encode())
    expected = reference.count()
    async def main() -> None:
        clients = [aioredis.Redis(host=HOST, port=p, decode_responses=True,
                                  socket_timeout=SOCKET_TIMEOUT_S) for p in cluster.ports]
        try:
            # Concurrent read-modify-writes through three nodes make concurrent versions;
            # each PFADD joins the versions it read, and every element is kept.
            await asyncio.gather(*(clients[i % 3].pfadd("py:ahll", f"e{i}")
                                   for i in range(CONCURRENT)))
            counts = await asyncio.gather(*(c.pfcount("py:ahll") for c in clients))
            assert counts == [expected] * 3
            await asyncio.gather(*(clients[i % 3].setbit("py:abits", i, 1) for i in range(64)))
            assert await clients[0].bitcount("py:abits") <= 64
        finally:
            for c in clients:
                await c.aclose()

    asyncio.run(main())


@mark("redis-py RedisCluster", "hyperloglog")
def test_cluster_client_multi_key_bit_and_hll_commands(cluster: Cluster) -> None:
    rc = RedisCluster(host=HOST, port=cluster.cluster_ports[0], decode_responses=True,
                      socket_timeout=SOCKET_TIMEOUT_S)
    try:
        rc.pfadd("py:{rc}a", "x", "y")
        rc.pfadd("py:{rc}b", "y", "z")
        assert rc.pfcount("py:{rc}a", "py:{rc}b") == 3
        assert rc.pfmerge("py:{rc}c", "py:{rc}a", "py:{rc}b") is True
        assert rc.pfcount("py:{rc}c") == 3
        rc.set("py:{rc}s", "ab")
        assert rc.bitop("XOR", "py:{rc}x", "py:{rc}s", "py:{rc}s") == 2
        assert rc.bitcount("py:{rc}x") == 0 and rc.getbit("py:{rc}s", 1) == 1
    finally:
        rc.close()


@mark("redis-py RESP3", "string-extras")
def test_resp3_lcs_idx_is_a_map(cluster: Cluster) -> None:
    r3 = cluster.client(0, protocol=3)
    try:
        r3.mset({"py:{r3}1": "ohmytext", "py:{r3}2": "mynewtext"})
        got = r3.lcs("py:{r3}1", "py:{r3}2", idx=True)
        assert got == {"matches": [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], "len": 6}
        assert r3.bitfield("py:{r3}bf", "FAIL").incrby("u1", 0, 2).execute() == [None]
    finally:
        r3.close()
