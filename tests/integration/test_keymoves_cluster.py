"""RENAME, RENAMENX, COPY, SORT and GETCTX of collections on real nodes.

What the README says of them on a cluster: every type (counters and HyperLogLogs too)
renamed and copied through any node with its TTL; SORT's BY and GET keys read wherever
they live; a rename is not atomic, but a value is never in neither key and an element
written to the source while it is renamed is never lost; GETCTX of a collection.
"""

from __future__ import annotations

import threading

import pytest
import redis

from tests.integration.conftest import HOST, Cluster, wait_until


def clients(c: Cluster) -> list[redis.Redis]:
    return [redis.Redis(host=HOST, port=p, socket_timeout=30) for p in c.ports]


def test_every_type_renamed_and_copied_through_any_node_with_its_ttl(
        cluster: Cluster, real_redis: redis.Redis) -> None:
    a, b, c = clients(cluster)
    theirs = redis.Redis(host=HOST, port=real_redis.port)  # type: ignore[attr-defined]
    for r in (a, theirs):
        r.flushall()
    for r in (a, theirs):
        r.rpush("m:l", "c", "a", "b")
        r.sadd("m:s", "x", "y")
        r.zadd("m:z", {"a": 1.5, "b": 2})
        r.hset("m:h", "f", "1")
        r.hincrby("m:h", "n", 5)
        r.set("m:t", "v")
        r.pfadd("m:hll", "e1", "e2")
    for r in (a, b, c):  # a counter incremented through every node
        r.incr("m:n")
        theirs.incr("m:n")
    keys = ["m:l", "m:s", "m:z", "m:h", "m:t", "m:hll", "m:n"]
    for r in (a, theirs):
        for k in keys:
            r.expire(k, 1000)
    nodes = [a, b, c]
    for i, k in enumerate(keys):
        ours = nodes[i % 3]
        assert ours.copy(k, k + ":c") == theirs.copy(k, k + ":c") == 1
        assert nodes[(i + 1) % 3].rename(k, k + ":r") and theirs.rename(k, k + ":r")
        assert nodes[(i + 2) % 3].renamenx(k + ":c", k + ":r") == theirs.renamenx(
            k + ":c", k + ":r") == 0
    for i, k in enumerate(keys):
        ours = nodes[(i + 2) % 3]
        for name in (k + ":c", k + ":r"):
            assert ours.type(name) == theirs.type(name)
            assert ours.exists(k) == theirs.exists(k) == 0
            assert 990 <= ours.ttl(name) <= 1000 and 990 <= theirs.ttl(name) <= 1000
    assert a.lrange("m:l:r", 0, -1) == theirs.lrange("m:l:r", 0, -1) == [b"c", b"a", b"b"]
    assert sorted(b.smembers("m:s:c")) == [b"x", b"y"]
    assert c.zrange("m:z:r", 0, -1, withscores=True) == [(b"a", 1.5), (b"b", 2.0)]
    assert a.hgetall("m:h:c") == theirs.hgetall("m:h:c") == {b"f": b"1", b"n": b"5"}
    assert b.get("m:t:r") == b"v"
    assert c.get("m:hll:r") == theirs.get("m:hll:r")  # Redis' own HLL bytes
    assert a.pfcount("m:hll:c") == 2
    assert b.get("m:n:r") == b"3" and c.incr("m:n:r") == 4 and a.incr("m:n:c") == 4
    theirs.close()


def test_sort_reads_by_and_get_keys_wherever_they_live(
        cluster: Cluster, real_redis: redis.Redis) -> None:
    a, b, c = clients(cluster)
    theirs = redis.Redis(host=HOST, port=real_redis.port)  # type: ignore[attr-defined]
    for r in (a, theirs):
        r.flushall()
    ids = [str(i) for i in range(40)]
    for r in (b, theirs):
        r.rpush("s:ids", *ids)
        r.sadd("s:set", *ids)
        r.zadd("s:z", {x: -int(x) for x in ids})
        for x in ids:  # the weights and names are keys spread over every node
            r.set(f"s:w:{x}", str((int(x) * 7) % 11))
            if int(x) % 3:
                r.hset(f"s:o:{x}", mapping={"name": f"n{x}", "rank": str(int(x) % 5)})
    cases = [
        ("s:ids", "BY", "s:w:*", "GET", "#", "GET", "s:o:*->name"),
        ("s:set", "BY", "s:o:*->rank", "DESC", "LIMIT", "3", "10", "GET", "s:w:*"),
        ("s:ids", "BY", "s:w:*", "ALPHA", "GET", "#", "GET", "s:o:*->rank"),
        ("s:z", "BY", "s:o:*->rank", "GET", "#", "GET", "s:w:*"),
        ("s:ids", "BY", "nosort", "GET", "s:o:*->name", "LIMIT", "5", "5"),
        ("s:z", "BY", "s:w:*", "LIMIT", "0", "7"),
    ]
    for i, case in enumerate(cases):
        for sort in ("SORT", "SORT_RO"):
            ours = (a, b, c)[i % 3].execute_command(sort, *case)
            assert ours == theirs.execute_command(sort, *case), case
    assert c.sort("s:ids", by="s:w:*", get=["#", "s:o:*->name"], store="s:out") == 80
    theirs.sort("s:ids", by="s:w:*", get=["#", "s:o:*->name"], store="s:out")
    assert a.lrange("s:out", 0, -1) == theirs.lrange("s:out", 0, -1)
    theirs.close()


def test_a_renamed_hll_keeps_every_concurrent_version(cluster: Cluster,
                                                      real_redis: redis.Redis) -> None:
    """Two HLL versions written concurrently (the same context through two nodes):
    PFCOUNT counts their union, and so does the renamed key."""
    a, b, c = clients(cluster)
    theirs = redis.Redis(host=HOST, port=real_redis.port)  # type: ignore[attr-defined]
    theirs.pfadd("h:1", *[f"x{i}" for i in range(50)])
    theirs.pfadd("h:2", *[f"y{i}" for i in range(70)])
    theirs.pfadd("h:both", *[f"x{i}" for i in range(50)], *[f"y{i}" for i in range(70)])
    a.delete("h:k", "h:r")
    a.set("h:k", theirs.get("h:1"))
    ctx = a.execute_command("GETCTX", "h:k")[0]
    assert b.execute_command("SETCTX", "h:k", ctx, theirs.get("h:1"))
    assert c.execute_command("SETCTX", "h:k", ctx, theirs.get("h:2"))
    assert len(a.execute_command("GETCTX", "h:k")[1]) == 2
    assert a.pfcount("h:k") == theirs.pfcount("h:both")
    assert b.rename("h:k", "h:r")
    assert len(c.execute_command("GETCTX", "h:r")[1]) == 1
    assert a.pfcount("h:r") == theirs.pfcount("h:both")
    theirs.close()


def test_a_renamed_value_is_never_in_neither_key(cluster: Cluster) -> None:
    """A hash renamed along a chain of keys, one node after another, while another
    client sweeps the chain in the same direction: every sweep finds it (the
    destination is written before the source is deleted)."""
    a, b, c = clients(cluster)
    chain = [f"chain:{i}" for i in range(12)]
    a.delete(*chain)
    a.hset(chain[0], mapping={f"f{i}": str(i) for i in range(300)})
    done = threading.Event()
    misses: list[int] = []
    sweeps = [0]

    def sweep() -> None:
        watcher = redis.Redis(host=HOST, port=cluster.ports[2], socket_timeout=30)
        while not done.is_set():
            if not any(watcher.exists(k) for k in chain):
                misses.append(sweeps[0])
            sweeps[0] += 1
        watcher.close()

    t = threading.Thread(target=sweep)
    t.start()
    try:
        for i in range(len(chain) - 1):
            assert (a, b)[i % 2].rename(chain[i], chain[i + 1])
    finally:
        done.set()
        t.join(60)
    assert misses == [] and sweeps[0] > 0
    assert c.hlen(chain[-1]) == 300 and c.exists(*chain[:-1]) == 0


def test_additions_to_a_source_being_renamed_are_never_lost(cluster: Cluster) -> None:
    """Members added to a set through another node while it is renamed end in the
    destination (added before the rename read the source) or stay in the source (added
    after): none is lost, and the source keeps nothing the rename moved."""
    a, b, c = clients(cluster)
    a.delete("mv:src", "mv:dst")
    old = [f"old{i}" for i in range(3000)]
    a.sadd("mv:src", *old)
    added: list[str] = []
    done = threading.Event()

    def add() -> None:
        writer = redis.Redis(host=HOST, port=cluster.ports[1], socket_timeout=30)
        i = 0
        while not done.is_set() or i < 20:
            writer.sadd("mv:src", f"new{i}")
            added.append(f"new{i}")
            i += 1
        writer.close()

    t = threading.Thread(target=add)
    t.start()
    wait_until(lambda: len(added) >= 5, 30, what="the first additions")
    before = set(added)
    try:
        assert a.rename("mv:src", "mv:dst")
    finally:
        done.set()
        t.join(60)
    src = {m.decode() for m in c.smembers("mv:src")}
    dst = {m.decode() for m in c.smembers("mv:dst")}
    assert set(old) | before <= dst
    assert set(added) <= src | dst
    assert src <= set(added)  # what stayed behind was added while the rename ran


def test_getctx_of_a_collection(cluster: Cluster) -> None:
    a, b, c = clients(cluster)
    a.delete("cx:h", "cx:l")
    a.hset("cx:h", mapping={"f": "1", "g": "2"})
    b.hset("cx:h", "f", "3")
    r2 = redis.Redis(host=HOST, port=cluster.ports[2], protocol=2)
    ctx, kind, info = r2.execute_command("GETCTX", "cx:h")
    r2.close()
    assert kind == b"hash"
    assert info == [b"elements", 2, b"concurrent", 0, b"concurrent-removed", 0,
                    b"sample", [], b"header-versions", 1]
    r3 = redis.Redis(host=HOST, port=cluster.ports[0], protocol=3)
    assert r3.execute_command("GETCTX", "cx:h")[2] == {  # a map in RESP3
        b"elements": 2, b"concurrent": 0, b"concurrent-removed": 0, b"sample": [],
        b"header-versions": 1}
    r3.close()
    # SETCTX and DELCTX with it replace and delete the whole collection.
    assert a.execute_command("SETCTX", "cx:h", ctx, "now a string")
    assert b.get("cx:h") == b"now a string"
    a.rpush("cx:l", "x")
    ctx = b.execute_command("GETCTX", "cx:l")[0]
    assert c.execute_command("DELCTX", "cx:l", ctx) and a.exists("cx:l") == 0
    # A string key answers as before.
    assert c.execute_command("GETCTX", "cx:h")[1] == [b"now a string"]


def test_a_sort_of_more_elements_than_a_turn_holds_answers_as_redis(
        cluster: Cluster, real_redis: redis.Redis) -> None:
    """SORT of over 16,384 elements reads them, weighs them and sorts them in three loop
    turns (other clients' requests run in between): the same replies as Redis, through
    any node, zeros, negatives, repeats and STORE included."""
    a, b, c = clients(cluster)
    theirs = redis.Redis(host=HOST, port=real_redis.port)  # type: ignore[attr-defined]
    numbers = [str((i * 7919) % 20_011 - 9_000) for i in range(20_000)] + ["0", "-0", "1e3"]
    words = [f"w{(i * 31) % 19_997}" for i in range(20_000)]
    for r in (a, theirs):
        r.delete("t:n", "t:w", "t:out")
        for i in range(0, len(numbers), 2_000):
            r.rpush("t:n", *numbers[i:i + 2_000])
        for i in range(0, len(words), 2_000):
            r.sadd("t:w", *words[i:i + 2_000])
    cases = [("t:n",), ("t:n", "DESC"), ("t:n", "LIMIT", "100", "50"), ("t:w", "ALPHA"),
             ("t:w", "ALPHA", "DESC", "LIMIT", "0", "20")]
    for i, case in enumerate(cases):
        assert (a, b, c)[i % 3].execute_command("SORT", *case) == \
            theirs.execute_command("SORT", *case), case
    assert b.sort("t:n", store="t:out") == theirs.sort("t:n", store="t:out") == 20_003
    assert c.lrange("t:out", 0, -1) == theirs.lrange("t:out", 0, -1)
    theirs.close()


def test_a_rename_whose_client_left_ends_before_a_second_rename_of_its_keys(
        cluster: Cluster) -> None:
    """Issue 12: a client sends RENAME of a long list (written a slice a step) and
    disconnects; another client renames the same key through the same node while the
    first plan still writes the destination. The first goes on to its end (Redis would
    have run it whole) and the second runs after it: the list holds each item once, and
    the second finds no source (before: both plans appended every slice)."""
    import socket

    a = clients(cluster)[0]
    n = 60_000
    a.delete("g:src", "g:dst")
    for i in range(0, n, 10_000):
        a.rpush("g:src", *range(i, i + 10_000))
    with socket.create_connection((HOST, cluster.ports[0])) as gone:
        gone.sendall(b"*3\r\n$6\r\nRENAME\r\n$5\r\ng:src\r\n$5\r\ng:dst\r\n")
    assert wait_until(lambda: a.exists("g:dst") == 1, 30, interval=0.002)
    assert a.llen("g:dst") < n  # the first plan is still writing it
    try:
        a.rename("g:src", "g:dst")
        second = "OK"
    except redis.ResponseError as e:
        second = str(e)
    assert second == "no such key"
    assert a.llen("g:dst") == n and a.exists("g:src") == 0
    assert a.lrange("g:dst", 0, 4) == [b"0", b"1", b"2", b"3", b"4"]
    assert a.lrange("g:dst", -2, -1) == [b"%d" % (n - 2), b"%d" % (n - 1)]


def test_a_clients_command_pipelined_after_a_rename_sees_it_whole(cluster: Cluster) -> None:
    """RENAME of a long list, then RPUSH and LLEN of the destination in the same write
    (a pipeline): as Redis runs a connection's commands in order, the pushed item is
    the last one, after every renamed one (before: it landed among the slices, or was
    replaced by the rename's first step)."""
    a = clients(cluster)[1]
    n = 20_000
    a.delete("p:src", "p:dst")
    a.rpush("p:src", *range(n))
    pipe = a.pipeline(transaction=False)
    pipe.rename("p:src", "p:dst").rpush("p:dst", "last").llen("p:dst")
    assert pipe.execute() == [True, n + 1, n + 1]
    assert a.lrange("p:dst", -2, -1) == [b"%d" % (n - 1), b"last"]


def test_two_renames_of_one_list_through_two_nodes_end_as_one_after_the_other(
        cluster: Cluster) -> None:
    """Issue 12, through two nodes: a RENAME of a long list through one node, and the same
    RENAME through another while the first still writes the destination. Both run at the
    destination's node (cluster/affinity.py), the second after the first: the list holds
    each item once and the second finds no source (before: each node's plan read the
    source whole and appended every slice, a 200,000-item list ended with 321,152)."""
    a, b, c = (redis.Redis(host=HOST, port=p, socket_timeout=120) for p in cluster.ports)
    replies: dict[str, object] = {}

    def rename(tag: str, r: redis.Redis) -> None:
        try:
            replies[tag] = r.rename("t2:src", "t2:dst")
        except redis.ResponseError as e:
            replies[tag] = str(e)

    # The second RENAME must come while the first still writes the destination: a list
    # four times longer if the first was done before the test saw its destination.
    for n in (60_000, 240_000, 960_000):
        a.delete("t2:src", "t2:dst")
        for i in range(0, n, 10_000):
            a.rpush("t2:src", *range(i, i + 10_000))
        replies.clear()
        first = threading.Thread(target=rename, args=("first", a))
        first.start()
        assert wait_until(lambda: c.exists("t2:dst") == 1, 60, interval=0.002)
        if c.llen("t2:dst") < n:  # the first plan is still writing it
            break
        first.join(120)
    else:
        pytest.fail("every first RENAME was done before its destination was seen")
    rename("second", b)
    first.join(120)
    assert replies == {"first": True, "second": "no such key"}
    assert c.llen("t2:dst") == n and c.exists("t2:src") == 0
    assert c.lrange("t2:dst", -2, -1) == [b"%d" % (n - 2), b"%d" % (n - 1)]
    for r in (a, b, c):
        r.close()
