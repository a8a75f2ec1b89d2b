"""redis-py with numbered databases against a live 3-node cluster, as an application or
a test harness configures it: `redis://host:port/N` URLs (redis-py sends SELECT on
connect, after HELLO 3 or AUTH when those are asked for), the sync and asyncio clients,
and the main port taken for what it says it is (a standalone Redis)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis
import redis.asyncio as aioredis

from tests.integration.conftest import HOST, Cluster

pytestmark = pytest.mark.timeout(120)


def mark(client: str) -> pytest.MarkDecorator:
    return pytest.mark.compat(client=client, family="databases")


def url(cluster: Cluster, i: int, db: int, auth: str = "") -> str:
    return f"redis://{auth}{HOST}:{cluster.ports[i]}/{db}"


@mark("redis-py")
def test_a_url_with_a_database(cluster: Cluster) -> None:
    zero = cluster.client(0)
    a = redis.from_url(url(cluster, 0, 3), decode_responses=True)
    b = redis.from_url(url(cluster, 2, 3), decode_responses=True)
    try:
        zero.delete("pydb:k")
        a.flushdb()
        assert a.set("pydb:k", "three") is True
        assert b.get("pydb:k") == "three" and zero.get("pydb:k") is None
        assert a.connection_pool.connection_kwargs["db"] == 3
        assert str(b.client_info()["db"]) == "3"
        assert b.dbsize() == 1 and b.keys() == ["pydb:k"] and b.randomkey() == "pydb:k"
    finally:
        a.close()
        b.close()


@mark("redis-py RESP3")
def test_a_url_with_a_database_over_resp3(cluster: Cluster) -> None:
    r = redis.from_url(url(cluster, 1, 4), decode_responses=True, protocol=3)
    try:
        r.set("pydb:r3", "four")
        assert r.hgetall("pydb:none") == {}
        assert cluster.client(2, db=4).get("pydb:r3") == "four"
        assert cluster.client(0).get("pydb:r3") is None
    finally:
        r.close()


@mark("redis-py")
def test_a_url_with_credentials_and_a_database(cluster: Cluster) -> None:
    admin = cluster.client(0)
    user, password = "pydb-user", secrets.token_hex(8)
    assert admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"],
                             keys=["*"], commands=["+@all"])
    r = redis.from_url(url(cluster, 1, 6, f"{user}:{password}@"), decode_responses=True)
    try:
        assert r.acl_whoami() == user
        r.set("pydb:auth", "six")
        assert cluster.client(2, db=6).get("pydb:auth") == "six"
        assert admin.get("pydb:auth") is None
    finally:
        r.close()
        admin.acl_deluser(user)


@mark("redis-py asyncio")
def test_asyncio_url_with_a_database(cluster: Cluster) -> None:
    async def run() -> None:
        r = aioredis.from_url(url(cluster, 2, 7), decode_responses=True)
        try:
            await r.set("pydb:aio", "seven")
            assert await r.get("pydb:aio") == "seven"
            async with r.pipeline(transaction=True) as p:
                p.incr("pydb:aio:n")
                p.get("pydb:aio")
                assert await p.execute() == [1, "seven"]
        finally:
            await r.aclose()

    asyncio.run(run())
    assert cluster.client(0, db=7).get("pydb:aio") == "seven"
    assert cluster.client(0).get("pydb:aio") is None


@mark("redis-py")
def test_the_main_port_is_taken_for_a_standalone_redis(cluster: Cluster) -> None:
    """What a test suite decides from (INFO's cluster_enabled, HELLO's mode): a plain
    client, not a cluster client, with 16 databases to pick from."""
    r = redis.Redis(host=HOST, port=cluster.ports[0], decode_responses=True)
    try:
        info = r.info()
        assert info["cluster_enabled"] == 0 and info["redis_mode"] == "standalone"
        assert r.config_get("databases") == {"databases": "16"}
        assert r.execute_command("SELECT", "9") is True
        assert r.flushdb() is True and r.dbsize() == 0
    finally:
        r.close()
