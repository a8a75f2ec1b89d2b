"""SCAN, KEYS, DBSIZE and RANDOMKEY for plain clients: on a node's main port they cover
the whole cluster, every live key exactly once; on its cluster port, only the node's
own partitions. A 5-node cluster with N=3, so a node asks other replicas for the
partitions it holds no copy of."""

from __future__ import annotations

import random
import subprocess
import time

import pytest
import redis

from .conftest import Cluster, ClusterFactory

pytestmark = pytest.mark.timeout(120)

KEYS = [f"ks:{i}" for i in range(1500)] + [f"{{tag}}:{i}" for i in range(50)] + ["", "a b"]


@pytest.fixture(scope="module")
def five(module_cluster_factory: ClusterFactory) -> Cluster:
    return module_cluster_factory(nodes=5)


@pytest.fixture
def loaded(five: Cluster) -> Cluster:
    c = five.client(0)
    c.flushall()
    pipe = c.pipeline(transaction=False)
    for key in KEYS:
        pipe.set(key, "v")
    pipe.execute()
    return five


def full_scan(clients: list[redis.Redis], **kw: object) -> tuple[list[str], int]:
    """SCAN to the end, step i through clients[i % len(clients)]; (keys, steps)."""
    cursor, keys, steps = 0, [], 0
    while True:
        cursor, batch = clients[steps % len(clients)].scan(cursor, **kw)
        keys.extend(batch)
        steps += 1
        if cursor == 0:
            return keys, steps


def test_scan_on_every_main_port_returns_each_key_once(loaded: Cluster) -> None:
    for i in range(loaded.nodes):
        keys = list(loaded.client(i).scan_iter(count=200))
        assert len(keys) == len(KEYS) and sorted(keys) == sorted(KEYS), f"node {i}"


def test_scan_cursor_continues_on_another_node(loaded: Cluster) -> None:
    keys, steps = full_scan(loaded.clients, count=50)
    assert sorted(keys) == sorted(KEYS)
    assert steps > loaded.nodes  # every node served a part of it
    # Handing over after the first step only.
    c0, c3 = loaded.client(0), loaded.client(3)
    cursor, first = c0.scan(0, count=100)
    assert cursor != 0
    rest = []
    while cursor:
        cursor, batch = c3.scan(cursor, count=100)
        rest.extend(batch)
    assert sorted(first + rest) == sorted(KEYS)


def test_scan_options_match_count_type(loaded: Cluster) -> None:
    c = loaded.client(1)
    keys, _ = full_scan([c], match="{tag}:*", count=100)
    assert sorted(keys) == sorted(k for k in KEYS if k.startswith("{tag}:"))
    assert sorted(full_scan([c], _type="string", count=300)[0]) == sorted(KEYS)
    assert full_scan([c], _type="hash", count=300)[0] == []
    cursor, everything = c.scan(0, count=10**6)  # a large COUNT: all of it at once
    assert cursor == 0 and sorted(everything) == sorted(KEYS)
    cursor, few = c.scan(0, count=5)
    assert cursor != 0 and 1 <= len(few) < 60  # whole buckets: about COUNT keys


def test_scan_and_keys_errors_are_redis_ones(loaded: Cluster, real_redis: redis.Redis) -> None:
    ours = loaded.client(2)
    for args in (["SCAN", "x"], ["SCAN", "0", "COUNT", "0"], ["SCAN", "0", "COUNT", "x"],
                 ["SCAN", "0", "MATCH"], ["SCAN", "0", "BOGUS", "1"], ["SCAN"],
                 ["KEYS"], ["KEYS", "a", "b"], ["RANDOMKEY", "x"], ["DBSIZE", "x"]):
        with pytest.raises(redis.ResponseError) as theirs:
            real_redis.execute_command(*args)
        with pytest.raises(redis.ResponseError) as mine:
            ours.execute_command(*args)
        assert str(mine.value) == str(theirs.value), args
    assert ours.execute_command("SCAN", "", "COUNT", "1")[0] != "x"  # "" is cursor 0


def test_keys_dbsize_randomkey_cluster_wide(loaded: Cluster) -> None:
    for i in range(loaded.nodes):
        c = loaded.client(i)
        assert c.dbsize() == len(KEYS)
        assert sorted(c.keys("*")) == sorted(KEYS)
        assert sorted(c.keys("ks:1?")) == sorted(f"ks:1{d}" for d in range(10))
        assert c.keys("nothing*") == []
        assert c.randomkey() in KEYS
    out = subprocess.run(["redis-cli", "-p", str(loaded.ports[4]), "--scan", "--pattern",
                          "ks:1*"], capture_output=True, text=True, timeout=30)
    got = out.stdout.splitlines()
    assert sorted(got) == sorted(k for k in KEYS if k.startswith("ks:1"))


def test_keys_patterns_match_redis(loaded: Cluster, real_redis: redis.Redis) -> None:
    names = ["h", "hello", "hallo", "hxllo", "h*llo", "h[llo", "a]b", "a-b", "a\\b", "ab",
             "x.y", "é", "caps", "CAPS"]
    ours = loaded.client(3)
    ours.flushall()
    real_redis.flushall()
    for name in names:
        ours.set(f"g{name}", 1)
        real_redis.set(f"g{name}", 1)
    rng = random.Random(4)
    alphabet = "ghelo*?[]^-\\abxC"
    patterns = ["*", "g*", "g?", "gh[ae]llo", "gh[^e]llo", "gh\\*llo", "g[a-b]*", "g[b-a]*",
                "ga[", "g*[", "g\\"]
    patterns += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
                 for _ in range(150)]
    for pattern in patterns:
        assert sorted(ours.keys(pattern)) == sorted(real_redis.keys(pattern)), pattern


def test_cluster_ports_count_own_partitions_which_add_up(loaded: Cluster) -> None:
    own = [loaded.cluster_client(i) for i in range(loaded.nodes)]
    try:
        sizes = [o.dbsize() for o in own]
        assert sum(sizes) == len(KEYS) and all(0 < s < len(KEYS) for s in sizes)
        scanned: list[str] = []
        for o, size in zip(own, sizes, strict=True):
            mine = list(o.scan_iter(count=100))
            assert len(mine) == size and sorted(o.keys("*")) == sorted(mine)
            assert o.randomkey() in mine
            scanned.extend(mine)
        assert sorted(scanned) == sorted(KEYS)
        # Everything else is the same on both ports.
        assert own[0].get("ks:1") == "v" and own[0].set("ks:new", "w")
        assert loaded.client(1).get("ks:new") == "w" and own[1].delete("ks:new") == 1
    finally:
        for o in own:
            o.close()


def test_info_keyspace_counts_like_dbsize_on_both_ports(loaded: Cluster) -> None:
    c = loaded.client(2)
    for i in range(10):
        c.set(f"ks:{i}", "v", ex=1000)
    for i in range(loaded.nodes):
        db0 = loaded.client(i).info("keyspace")["db0"]
        assert db0["keys"] == len(KEYS) and db0["expires"] == 10
        assert 990_000 <= db0["avg_ttl"] <= 1_000_000
        assert "db0" in loaded.client(i).info()  # the default sections include it
    own = [loaded.cluster_client(i) for i in range(loaded.nodes)]
    try:
        per_node = [o.info("keyspace")["db0"] for o in own]
        assert sum(d["keys"] for d in per_node) == len(KEYS)
        assert sum(d["expires"] for d in per_node) == 10
        assert all(d["keys"] == o.dbsize() for d, o in zip(per_node, own, strict=True))
    finally:
        for o in own:
            o.close()
    c.flushall()
    assert c.info("keyspace") == {}


def test_dead_keys_are_not_listed_and_empty_keyspace(five: Cluster) -> None:
    c = five.client(0)
    c.flushall()
    assert c.dbsize() == 0 and c.keys() == [] and c.randomkey() is None
    assert c.scan(0) == (0, [])
    c.set("live", "1")
    c.set("deleted", "1")
    c.delete("deleted")
    c.set("expiring", "1", px=100)
    time.sleep(0.3)
    for i in range(five.nodes):
        ci = five.client(i)
        assert ci.keys() == ["live"] and ci.dbsize() == 1 and ci.randomkey() == "live"
        assert list(ci.scan_iter()) == ["live"]


def test_keys_present_for_the_whole_scan_are_listed_once_despite_churn(loaded: Cluster) -> None:
    clients = loaded.clients
    writer = loaded.client(2)
    stable = set(KEYS[::2])
    churn = [k for k in KEYS if k not in stable]
    cursor, seen, step = 0, [], 0
    while True:
        cursor, batch = clients[step % len(clients)].scan(cursor, count=40)
        seen.extend(batch)
        step += 1
        # Between steps: delete some of the others, write new keys.
        if churn:
            writer.delete(*churn[:8])
            del churn[:8]
        writer.set(f"new:{step}", "v")
        if cursor == 0:
            break
    assert len(seen) == len(set(seen))  # nothing twice
    assert stable <= set(seen)  # nothing present throughout is missed


def test_walks_go_on_when_a_node_is_down(loaded: Cluster) -> None:
    loaded.kill_node(4)
    try:
        for i in range(2):
            c = loaded.client(i)
            assert c.dbsize() == len(KEYS)
            assert sorted(c.scan_iter(count=300)) == sorted(KEYS)
            assert len(c.keys("ks:*")) == 1500
    finally:
        loaded.restart_node(4)


def test_keys_of_more_keys_than_a_turn_encodes_reply_in_order_resp2_resp3_and_exec(
        five: Cluster) -> None:
    """KEYS of 20,000 keys (more than bulks.STREAM_ROWS: the reply is encoded over loop
    turns) lists each once, in RESP2 and RESP3, inside EXEC too, and the replies
    pipelined around it keep their order."""
    c = five.client(1)
    c.flushall()
    wanted = {f"many:{i}" for i in range(20_000)}
    pipe = c.pipeline(transaction=False)
    for key in wanted:
        pipe.set(key, "v")
    pipe.execute()
    pipe = c.pipeline(transaction=False)
    pipe.ping()
    pipe.keys("many:*")
    pipe.echo("after")
    first, keys, after = pipe.execute()
    assert first is True and after == "after"
    assert len(keys) == 20_000 and set(keys) == wanted
    tx = c.pipeline(transaction=True)
    tx.keys("many:*")
    tx.dbsize()
    listed, size = tx.execute()
    assert size == 20_000 and set(listed) == wanted
    r3 = five.client(1, protocol=3)
    assert set(r3.keys("many:*")) == wanted
    c.flushall()
