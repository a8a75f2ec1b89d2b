"""Hashes, sets, sorted sets, lists and geo on a real 3-node cluster, against redis-server.

The collection semantics tests (test_collection_semantics*.py) compare every command
family with a real redis-server through one replica's view in-process; here the same
generated histories and the same comparisons run against a real 3-node dynredis
(N=3 R=2 W=2), each command through the next node in turn: so every command is
coordinated by another node than the one before, after a quorum sync of the key, and
its writes replicate before the reply. Then the cluster-level behaviour a user sees
around the collections: key commands across types, replication to every node, a node
down and back, and a cluster where not every node is a replica (forwarding).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collharness import ClusterRunner
from tests.integration import test_collection_semantics as hashes
from tests.integration import test_collection_semantics_geo as geo
from tests.integration import test_collection_semantics_lists as lists
from tests.integration import test_collection_semantics_sets as sets
from tests.integration import test_collection_semantics_zsets as zsets
from tests.integration.conftest import HOST, Cluster, ClusterFactory, wait_until

pytestmark = pytest.mark.timeout(600)
CLUSTER_SETTINGS = settings(max_examples=40, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture,
                                                   HealthCheck.data_too_large])
MODULES = (hashes, sets, zsets, lists, geo)


@pytest.fixture(scope="module")
def runner(cluster: Cluster) -> Iterator[ClusterRunner]:
    r = ClusterRunner(cluster.ports)
    yield r
    r.close()


@contextmanager
def on_cluster(runner: ClusterRunner, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The semantics modules' checks, with the cluster where they made a LocalRunner."""

    def fresh() -> ClusterRunner:
        runner.run(b"FLUSHALL")
        return runner

    with monkeypatch.context() as m:
        for mod in MODULES:
            m.setattr(mod, "LocalRunner", fresh)
        yield


@pytest.fixture(scope="module")
def real(real_redis: redis.Redis) -> hashes.Real:
    return hashes.Real(real_redis.port)


@pytest.fixture(scope="module")
def raw_real(real_redis: redis.Redis) -> Iterator[lists.RawReal]:
    conn = lists.RawReal(real_redis.port, 2)
    yield conn
    conn.close()


@CLUSTER_SETTINGS
@given(st.lists(hashes.hash_cmd, max_size=25))
def test_hashes_on_a_cluster(real, runner, monkeypatch, seq):
    with on_cluster(runner, monkeypatch):
        hashes.check(real, seq)


@CLUSTER_SETTINGS
@given(sets.setup, st.lists(st.one_of(sets.set_cmd, sets.algebra_cmd), min_size=5,
                            max_size=30))
def test_sets_on_a_cluster(real, runner, monkeypatch, start, seq):
    with on_cluster(runner, monkeypatch):
        sets.check(real, start + seq)


@CLUSTER_SETTINGS
@given(st.lists(zsets.any_cmd, max_size=25))
def test_sorted_sets_on_a_cluster(real, runner, monkeypatch, seq):
    with on_cluster(runner, monkeypatch):
        zsets.check(real, seq)


@CLUSTER_SETTINGS
@given(lists.history)
def test_lists_on_a_cluster(raw_real, runner, monkeypatch, seq):
    with on_cluster(runner, monkeypatch):
        lists.check(raw_real, seq)


@CLUSTER_SETTINGS
@given(geo.fills, st.lists(geo.any_cmd, min_size=3, max_size=20))
def test_geo_on_a_cluster(real, runner, monkeypatch, fill, seq):
    with on_cluster(runner, monkeypatch):
        geo.check(real, fill + seq)


# --- what a user sees of collections across the cluster ------------------------------------


def clients(c: Cluster) -> list[redis.Redis]:
    return [redis.Redis(host=HOST, port=p, socket_timeout=20) for p in c.ports]


def test_every_node_serves_what_another_wrote(cluster: Cluster) -> None:
    a, b, c = clients(cluster)
    a.delete("u:h", "u:s", "u:z", "u:l")
    assert a.hset("u:h", mapping={"f1": "1", "f2": "x"}) == 2
    assert b.hincrby("u:h", "f1", 41) == 42
    assert c.hgetall("u:h") == {b"f1": b"42", b"f2": b"x"}
    assert a.sadd("u:s", "m1", "m2", "m3") == 3 and b.srem("u:s", "m2") == 1
    assert sorted(c.smembers("u:s")) == [b"m1", b"m3"]
    assert a.zadd("u:z", {"one": 1, "two": 2}) == 2 and b.zincrby("u:z", 5, "one") == 6
    assert c.zrange("u:z", 0, -1, withscores=True) == [(b"two", 2.0), (b"one", 6.0)]
    assert a.rpush("u:l", "a", "b", "c") == 3 and b.lpop("u:l") == b"a"
    assert c.lrange("u:l", 0, -1) == [b"b", b"c"]
    assert [x.type(k) for x, k in zip((a, b, c, a), ("u:h", "u:s", "u:z", "u:l"),
                                        strict=True)] == [b"hash", b"set", b"zset", b"list"]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        b.get("u:h")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.incr("u:s")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        a.sadd("u:h", "x")
    assert c.mget("u:h", "u:s") == [None, None]


def test_set_del_and_expire_act_on_the_whole_collection(cluster: Cluster) -> None:
    a, b, c = clients(cluster)
    a.delete("w:h")
    a.hset("w:h", mapping={"a": "1", "b": "2"})
    assert b.set("w:h", "now a string") and c.type("w:h") == b"string"
    assert a.get("w:h") == b"now a string"
    assert b.delete("w:h") == 1 and c.exists("w:h") == 0
    # A new hash at the key starts empty: nothing of the old one comes back.
    assert a.hset("w:h", "c", "3") == 1
    assert b.hgetall("w:h") == {b"c": b"3"}
    assert c.expire("w:h", 100) and 0 < a.ttl("w:h") <= 100
    assert b.hgetall("w:h") == {b"c": b"3"}  # EXPIRE keeps the elements
    assert a.persist("w:h") and c.ttl("w:h") == -1
    assert b.pexpire("w:h", 1)
    wait_until(lambda: a.exists("w:h") == 0, 10, what="the hash to expire")
    assert c.hgetall("w:h") == {} and a.hset("w:h", "d", "4") == 1
    assert b.hgetall("w:h") == {b"d": b"4"}  # an expired hash does not come back


def test_keyspace_commands_see_collections(cluster: Cluster) -> None:
    a, b, _ = clients(cluster)
    a.flushall()
    a.hset("k:h", "f", "v")
    a.sadd("k:s", "m")
    a.zadd("k:z", {"m": 1})
    a.rpush("k:l", "x")
    a.set("k:str", "v")
    assert b.dbsize() == 5
    assert sorted(b.keys("k:*")) == [b"k:h", b"k:l", b"k:s", b"k:str", b"k:z"]
    assert sorted(b.scan_iter(_type="hash")) == [b"k:h"]
    assert sorted(b.scan_iter(_type="zset")) == [b"k:z"]
    a.flushall()
    assert b.dbsize() == 0 and b.hgetall("k:h") == {}


def test_a_node_down_and_back_misses_nothing(cluster_factory: ClusterFactory) -> None:
    c = cluster_factory()
    a, b, third = clients(c)
    a.sadd("d:s", *[f"m{i}" for i in range(20)])
    c.kill_node(2)
    # W=2 of N=3: writes go on through the two nodes left.
    for i in range(20, 60):
        (a if i % 2 else b).sadd("d:s", f"m{i}")
    a.hset("d:h", mapping={f"f{i}": str(i) for i in range(30)})
    b.srem("d:s", "m0", "m1")
    c.restart_node(2)
    third = clients(c)[2]
    # Its reads sync with a quorum first: it answers with everything acknowledged.
    assert third.scard("d:s") == 58
    assert third.hlen("d:h") == 30
    # And the returned node coordinates writes that the others then see.
    assert third.sadd("d:s", "back") == 1
    assert a.sismember("d:s", "back") and b.scard("d:s") == 59


def test_a_node_that_is_no_replica_forwards(cluster_factory: ClusterFactory) -> None:
    """Five nodes, N=3: most keys have nodes that are not their replicas; each command
    through such a node is forwarded to a replica and answered the same."""
    c = cluster_factory(nodes=5)
    nodes = clients(c)
    for i in range(20):
        key = f"fw:{i}"
        nodes[i % 5].rpush(key, "a", "b")
        nodes[(i + 1) % 5].hset(f"fwh:{i}", "f", str(i))
        assert nodes[(i + 2) % 5].lrange(key, 0, -1) == [b"a", b"b"]
        assert nodes[(i + 3) % 5].hget(f"fwh:{i}", "f") == str(i).encode()
        assert nodes[(i + 4) % 5].lmove(key, f"fw:{i}:dst", "LEFT", "RIGHT") == b"a"
    forwarded = sum(int(x.info("stats")["forwarded"]) for x in nodes)
    assert forwarded > 0
