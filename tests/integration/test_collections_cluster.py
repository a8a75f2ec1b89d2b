"""Hashes, sets, sorted sets, lists and geo on real clusters.

What a user sees of collections across the cluster: key commands across types,
replication to every node, a node down and back, and a cluster where not every node is
a replica (forwarding). (Every family against redis-server on a cluster:
compat/test_differential_collections.py.)
"""

from __future__ import annotations

import pytest
import redis

from tests.integration.conftest import HOST, Cluster, ClusterFactory, wait_until

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


def test_a_big_collection_deleted_is_gone_everywhere_and_can_be_made_again(
        cluster: Cluster) -> None:
    """A DEL of a collection strips its element records a slice at a time after it
    answers (a 200,000-field hash once froze every node for seconds and the DEL failed).
    What a user sees must not change: the key is gone on every node at once, a new
    collection at the key holds only its own elements, while and after the nodes walk
    the old records, and a delete of the new one works too."""
    a, b, c = clients(cluster)
    fields = 20_000
    for start in range(0, fields, 2_000):
        a.hset("big:h", mapping={f"f{i}": "v" for i in range(start, start + 2_000)})
    a.rpush("big:l", *[f"i{i}" for i in range(fields)])
    assert b.hlen("big:h") == fields and c.llen("big:l") == fields
    assert b.delete("big:h") == 1 and c.unlink("big:l") == 1
    for x in (a, b, c):
        assert x.exists("big:h", "big:l") == 0 and x.hlen("big:h") == 0
    assert c.hset("big:h", mapping={"new": "1", "f7": "2"}) == 2
    assert a.rpush("big:l", "only") == 1
    for x in (a, b, c):
        assert x.hgetall("big:h") == {b"new": b"1", b"f7": b"2"}
        assert x.lrange("big:l", 0, -1) == [b"only"]
    wait_until(lambda: all(x.hgetall("big:h") == {b"new": b"1", b"f7": b"2"}
                           for x in (a, b, c)), 10, what="the same hash everywhere")
    assert a.delete("big:h", "big:l") == 2
    assert [x.exists("big:h", "big:l") for x in (a, b, c)] == [0, 0, 0]


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


# --- replies of whole large collections (written over loop turns: resp/bulks.py) -----------


def test_a_long_read_answers_the_collection_as_it_was_and_in_its_place(
        cluster: Cluster) -> None:
    """HGETALL, SMEMBERS, ZRANGE and LRANGE of 40,000 elements are encoded a slice at a
    time over loop turns; each is the collection as the command found it, although the
    same client's next command, pipelined behind it, changes the key meanwhile, and the
    replies come back in the order of the commands."""
    a, b, _ = clients(cluster)
    n = 40_000
    a.delete("big:h", "big:s", "big:z", "big:l")
    for start in range(0, n, 5000):
        chunk = range(start, start + 5000)
        a.hset("big:h", mapping={f"f{i}": f"v{i}" for i in chunk})
        a.sadd("big:s", *[f"m{i}" for i in chunk])
        a.zadd("big:z", {f"m{i}": i for i in chunk})
        a.rpush("big:l", *[f"i{i}" for i in chunk])
    pipe = b.pipeline(transaction=False)
    pipe.hgetall("big:h").hset("big:h", "new", "x").hlen("big:h")
    pipe.smembers("big:s").srem("big:s", "m0").scard("big:s")
    pipe.zrange("big:z", 0, -1, withscores=True).zadd("big:z", {"m1": -1}).zscore("big:z", "m1")
    pipe.lrange("big:l", 0, -1).lset("big:l", 0, "changed").lindex("big:l", 0)
    pipe.execute_command("HVALS", "big:h")
    got = pipe.execute()
    assert got[0] == {f"f{i}".encode(): f"v{i}".encode() for i in range(n)}
    assert got[1:3] == [1, n + 1]
    assert got[3] == {f"m{i}".encode() for i in range(n)}
    assert got[4:6] == [1, n - 1]
    assert got[6] == [(f"m{i}".encode(), float(i)) for i in range(n)]
    assert got[7:9] == [0, -1.0]
    assert got[9] == [f"i{i}".encode() for i in range(n)]
    assert got[10:12] == [True, b"changed"]
    assert sorted(got[12]) == sorted([f"v{i}".encode() for i in range(n)] + [b"x"])
    # Inside a transaction and a script (no slices there) the reads answer the same.
    tx = b.pipeline(transaction=True)
    tx.hgetall("big:h").lrange("big:l", 0, 2).zrange("big:z", 0, 1)
    whole, head, low = tx.execute()
    assert len(whole) == n + 1 and whole[b"new"] == b"x"
    assert (head, low) == ([b"changed", b"i1", b"i2"], [b"m1", b"m0"])
    assert b.eval("return #redis.call('SMEMBERS', KEYS[1])", 1, "big:s") == n - 1
    # The list deleted and made again behind its long read (whose values are looked up
    # as it is sent: core/viewpin.py).
    pipe = b.pipeline(transaction=False)
    pipe.lrange("big:l", 0, -1).delete("big:l").rpush("big:l", "z").lrange("big:l", 0, -1)
    old, gone, pushed, new = pipe.execute()
    assert old == [b"changed"] + [f"i{i}".encode() for i in range(1, n)]
    assert (gone, pushed, new) == (1, 1, [b"z"])
    a.delete("big:h", "big:s", "big:z", "big:l")


def test_scans_of_big_collections_return_each_lasting_element_once_through_churn(
        cluster: Cluster) -> None:
    """HSCAN, SSCAN and ZSCAN of 1,500-element collections (past the 128 returned whole),
    COUNT 10, each call through the next node, an element added and one removed between
    calls: every element there for the whole scan comes back exactly once with its
    value, nothing that never was there comes back, and the scan ends."""
    nodes = clients(cluster)
    a = nodes[0]
    a.delete("sc:h", "sc:s", "sc:z")
    lasting = [f"e{i}" for i in range(1500)]
    doomed = [f"d{i}" for i in range(400)]
    for start in range(0, 1900, 500):
        part = (lasting + doomed)[start:start + 500]
        a.hset("sc:h", mapping={e: f"v-{e}" for e in part})
        a.sadd("sc:s", *part)
        a.zadd("sc:z", {e: i + start for i, e in enumerate(part)})
    for key, scan in (("sc:h", "HSCAN"), ("sc:s", "SSCAN"), ("sc:z", "ZSCAN")):
        seen: list[str] = []
        values: dict[str, str] = {}
        cursor, calls = 0, 0
        while True:
            c = nodes[calls % 3]
            if scan == "HSCAN":
                cursor, fields = c.hscan(key, cursor, count=10)
                pairs = [(f.decode(), v.decode()) for f, v in fields.items()]
            elif scan == "SSCAN":
                cursor, members = c.sscan(key, cursor, count=10)
                pairs = [(m.decode(), "") for m in members]
            else:
                cursor, scored = c.zscan(key, cursor, count=10)
                pairs = [(m.decode(), str(score)) for m, score in scored]
            for e, v in pairs:
                seen.append(e)
                values[e] = v
            # churn: one element added, one of `doomed` removed
            new = f"n{calls}"
            if scan == "HSCAN":
                c.hset(key, new, "x")
                c.hdel(key, doomed[calls % 400])
            elif scan == "SSCAN":
                c.sadd(key, new)
                c.srem(key, doomed[calls % 400])
            else:
                c.zadd(key, {new: -1})
                c.zrem(key, doomed[calls % 400])
            calls += 1
            if cursor == 0:
                break
            assert calls < 2000
        assert calls > 50  # it was walked in steps, not returned whole
        assert all(seen.count(e) == 1 for e in lasting), key
        assert set(seen) <= set(lasting) | set(doomed) | {f"n{i}" for i in range(calls)}
        if scan == "HSCAN":
            assert all(values[e] == f"v-{e}" for e in lasting)
        elif scan == "ZSCAN":
            assert all(float(values[e]) == lasting.index(e) for e in lasting[:50])
    a.delete("sc:h", "sc:s", "sc:z")


def test_memory_usage_of_a_collection_counts_its_elements(cluster: Cluster) -> None:
    """MEMORY USAGE of a hash, set, sorted set and list counts their elements (sampled,
    SAMPLES 0 all of them), the same through every node, growing with them: it answered
    the header's ~90 bytes whatever the size, so `redis-cli --memkeys` ranked the
    biggest keys last."""
    nodes = clients(cluster)
    a = nodes[0]
    keys = {"mu:h": "hash", "mu:s": "set", "mu:z": "zset", "mu:l": "list"}
    a.delete(*keys)
    sizes: dict[str, list[int]] = {}
    for start, end in ((0, 10), (10, 5000)):
        part = [f"member-{i}" for i in range(start, end)]
        a.hset("mu:h", mapping={m: "value" for m in part})
        a.sadd("mu:s", *part)
        a.zadd("mu:z", {m: i for i, m in enumerate(part)})
        a.rpush("mu:l", *part)
        for key in keys:
            got = {c.memory_usage(key) for c in nodes}
            assert len(got) == 1, (key, got)
            sizes.setdefault(key, []).append(got.pop())
            assert a.memory_usage(key, samples=0) > 0
    for key, (small, big) in sizes.items():
        assert big > 5000 * 20 and big > 100 * small // 2, (key, small, big)
    assert a.memory_usage("mu:none") is None
    a.delete(*keys)
