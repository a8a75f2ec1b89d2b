"""A real 3-node cluster (N=3 R=2 W=2) driven with redis-cli and redis-py.

With R + W > N every acknowledged write is seen by a later read through any node, so
cross-node reads are asserted directly, without polling.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
import redis

from dynredis.core import clock as dvv

from .conftest import HOST, Cluster, first_replica_of, parse_info, raw_command, wait_until

pytestmark = pytest.mark.timeout(120)


def key(prefix: str) -> str:
    """A key no other test (or earlier run of this test) uses."""
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


def all_nodes(cluster: Cluster) -> range:
    return range(cluster.nodes)


# --- replication across nodes ---------------------------------------------------------


def test_write_through_each_node_read_through_the_others_redis_cli(cluster: Cluster) -> None:
    for i in all_nodes(cluster):
        k, v = key(f"cli{i}"), f"value written via node {i}"
        assert cluster.cli(i, "SET", k, v) == "OK"
        for j in all_nodes(cluster):
            if j != i:
                assert cluster.cli(j, "GET", k) == v
                assert cluster.client(j).get(k) == v


def test_write_through_each_node_read_through_the_others_redis_py(cluster: Cluster) -> None:
    for i in all_nodes(cluster):
        k, v = key(f"py{i}"), f"wert über Knoten {i} \u2713"
        assert cluster.client(i).set(k, v) is True
        for j in all_nodes(cluster):
            if j != i:
                assert cluster.client(j).get(k) == v
                assert cluster.cli(j, "GET", k) == v


def test_binary_value_round_trips(cluster: Cluster) -> None:
    k = key("bin")
    value = bytes(range(256)) * 4 + b"\r\n\x00end"
    writer = cluster.client(0, decode_responses=False)
    try:
        assert writer.set(k, value) is True
        for j in all_nodes(cluster):
            reader = cluster.client(j, decode_responses=False)
            try:
                assert reader.get(k) == value
            finally:
                reader.close()
    finally:
        writer.close()


# --- versioned API: contexts and siblings ---------------------------------------------


def test_concurrent_setctx_gives_siblings_and_merged_write_resolves_them(
        cluster: Cluster) -> None:
    k = key("ctx")
    c0, c1 = cluster.client(0), cluster.client(1)
    assert c0.execute_command("SETCTX", k, "", "first") == "OK"
    time.sleep(0.01)  # the second write is later in wall-clock time, hence "newest"
    assert c1.execute_command("SETCTX", k, "", "second") == "OK"

    for j in all_nodes(cluster):
        ctx, values = cluster.client(j).execute_command("GETCTX", k)
        assert ctx
        assert values == ["second", "first"], f"GETCTX via node {j}"
        # A plain GET resolves siblings to the one with the highest timestamp.
        assert cluster.client(j).get(k) == "second", f"GET via node {j}"

    # A write with the context that covers both siblings supersedes both.
    ctx, _ = cluster.client(2).execute_command("GETCTX", k)
    assert cluster.client(2).execute_command("SETCTX", k, ctx, "merged") == "OK"
    for j in all_nodes(cluster):
        _, values = cluster.client(j).execute_command("GETCTX", k)
        assert values == ["merged"], f"GETCTX via node {j}"
        assert cluster.client(j).get(k) == "merged"


def test_setctx_with_stale_context_stays_a_sibling(cluster: Cluster) -> None:
    k = key("stale")
    c = cluster.clients
    assert c[0].execute_command("SETCTX", k, "", "v1") == "OK"
    ctx1, _ = c[0].execute_command("GETCTX", k)
    assert c[1].execute_command("SETCTX", k, ctx1, "v2") == "OK"  # supersedes v1
    # Written with the context of v1 only: concurrent with v2, so both stay.
    assert c[2].execute_command("SETCTX", k, ctx1, "v3") == "OK"
    for j in all_nodes(cluster):
        _, values = c[j].execute_command("GETCTX", k)
        assert sorted(values) == ["v2", "v3"]


def test_getctx_of_missing_key(cluster: Cluster) -> None:
    k = key("nokey")
    for j in all_nodes(cluster):
        ctx, values = cluster.client(j).execute_command("GETCTX", k)
        assert values == []
        # The empty context of a missing key is usable for a first write.
        assert ctx == ""


def test_delctx_removes_what_the_context_covers(cluster: Cluster) -> None:
    k = key("delctx")
    c = cluster.clients
    assert c[0].set(k, "v") is True
    ctx, values = c[1].execute_command("GETCTX", k)
    assert values == ["v"]
    assert c[1].execute_command("DELCTX", k, ctx) == "OK"
    for j in all_nodes(cluster):
        assert c[j].get(k) is None
        assert c[j].exists(k) == 0
        assert c[j].execute_command("GETCTX", k)[1] == []


def test_an_oversized_context_is_refused_at_once(cluster: Cluster) -> None:
    """A 26.5 MB context froze a node 4 s while it was decoded (issue 12, finding 4):
    now it is refused by its length, and the node answers the next command."""
    k = key("bigctx")
    c = cluster.clients
    assert c[0].set(k, "kept") is True
    # A well-formed context of a million writers: 26.5 MB.
    huge = dvv.encode_vv(tuple((i.to_bytes(12, "big"), 2**40 + i) for i in range(10**6)))
    assert len(huge) > 26 << 20
    for cmd in (("SETCTX", k, huge, "v"), ("DELCTX", k, huge)):
        with pytest.raises(redis.ResponseError,
                           match=r"^invalid context: longer than 65536 bytes"):
            c[0].execute_command(*cmd)
    assert c[0].get(k) == "kept"
    assert c[1].ping() is True


def test_setctx_with_garbage_context_is_an_error_and_does_not_write(cluster: Cluster) -> None:
    k = key("garbage")
    c = cluster.clients
    for bad in ("garbage!!", "zzzz", "\x00\x01\x02", "AAAA" * 40):
        with pytest.raises(redis.ResponseError, match="invalid context"):
            c[0].execute_command("SETCTX", k, bad, "nope")
    assert cluster.cli(1, "SETCTX", k, "not a context", "nope").startswith("ERR")
    for j in all_nodes(cluster):
        assert c[j].get(k) is None
        assert c[j].exists(k) == 0
        assert c[j].execute_command("GETCTX", k)[1] == []

    # On an existing key a garbage context changes nothing either.
    assert c[0].set(k, "kept") is True
    with pytest.raises(redis.ResponseError, match="invalid context"):
        c[1].execute_command("SETCTX", k, "garbage!!", "nope")
    with pytest.raises(redis.ResponseError, match="invalid context"):
        c[1].execute_command("DELCTX", k, "garbage!!")
    for j in all_nodes(cluster):
        assert c[j].execute_command("GETCTX", k)[1] == ["kept"]


# --- SET options and key-space commands -----------------------------------------------


def test_set_ex_px_then_ttl_pttl(cluster: Cluster) -> None:
    c = cluster.clients
    k1, k2 = key("ex"), key("px")
    assert c[0].set(k1, "v", ex=100) is True
    assert c[1].set(k2, "v", px=50_000) is True
    for j in all_nodes(cluster):
        assert 0 < c[j].ttl(k1) <= 100
        assert 0 < c[j].pttl(k1) <= 100_000
        assert 0 < c[j].pttl(k2) <= 50_000
        assert 0 < c[j].ttl(k2) <= 50
    assert cluster.cli(2, "SET", k1, "v2", "EX", "7") == "OK"
    assert 0 < int(cluster.cli(0, "TTL", k1)) <= 7
    # A plain SET drops the TTL; missing keys report -2.
    assert c[0].set(k1, "v3") is True
    assert c[1].ttl(k1) == -1
    assert c[2].pttl(k1) == -1
    assert c[2].ttl(key("missing")) == -2
    assert c[2].pttl(key("missing")) == -2


def test_set_exat_pxat_keepttl(cluster: Cluster) -> None:
    c = cluster.clients
    k = key("exat")
    at = int(time.time()) + 200
    assert c[0].set(k, "v", exat=at) is True
    assert 150 < c[1].ttl(k) <= 200
    assert c[1].set(k, "v2", keepttl=True) is True
    assert 150 < c[2].ttl(k) <= 200
    assert c[2].get(k) == "v2"
    assert c[2].set(k, "v3", pxat=int(time.time() * 1000) + 300_000) is True
    assert 250 < c[0].ttl(k) <= 300


def test_set_nx_xx(cluster: Cluster) -> None:
    c = cluster.clients
    k = key("nx")
    assert c[0].set(k, "a", xx=True) is None  # XX on a missing key: not set
    assert c[1].exists(k) == 0
    assert c[1].set(k, "b", nx=True) is True  # NX on a missing key: set
    assert c[2].set(k, "c", nx=True) is None  # NX on an existing key: not set
    assert c[0].get(k) == "b"
    assert c[2].set(k, "d", xx=True) is True  # XX on an existing key: set
    for j in all_nodes(cluster):
        assert c[j].get(k) == "d"
    assert cluster.cli(0, "SET", k, "e", "NX") == ""  # nil prints as an empty line
    assert cluster.cli(0, "SET", k, "e", "XX") == "OK"


def test_set_get_returns_old_value(cluster: Cluster) -> None:
    c = cluster.clients
    k = key("setget")
    assert c[0].set(k, "one", get=True) is None
    assert c[1].set(k, "two", get=True) == "one"
    assert c[2].set(k, "three", get=True) == "two"
    assert c[0].get(k) == "three"
    # NX GET on an existing key returns the old value and does not write.
    assert c[1].set(k, "four", nx=True, get=True) == "three"
    assert cluster.cli(2, "SET", k, "five", "NX", "GET") == "three"
    assert c[2].get(k) == "three"
    # XX GET on a missing key returns nil and does not write.
    k2 = key("setget-missing")
    assert c[0].set(k2, "x", xx=True, get=True) is None
    assert c[1].exists(k2) == 0


def test_del_counts_existing_keys_and_deleted_keys_read_nil_everywhere(
        cluster: Cluster) -> None:
    c = cluster.clients
    k1, k2, k3, missing = key("d1"), key("d2"), key("d3"), key("dmissing")
    assert c[0].set(k1, "1") and c[1].set(k2, "2") and c[2].set(k3, "3")
    assert c[1].delete(k1, k2, missing) == 2
    for j in all_nodes(cluster):
        assert c[j].get(k1) is None
        assert c[j].get(k2) is None
        assert c[j].exists(k1, k2) == 0
        assert c[j].get(k3) == "3"
        assert cluster.cli(j, "GET", k1) == ""
    assert c[2].delete(k1, k2) == 0
    assert cluster.cli(0, "DEL", k3) == "1"
    for j in all_nodes(cluster):
        assert c[j].get(k3) is None


def test_del_with_a_repeated_key_counts_it_once_like_redis(cluster: Cluster,
                                                          real_redis: redis.Redis) -> None:
    k1, k2, missing = key("dup1"), key("dup2"), key("dupmissing")
    for c in (cluster.client(0), real_redis):
        assert c.mset({k1: "1", k2: "2"}) is True
        assert c.delete(k1, k2, k1, missing, k2) == 2
        assert c.set(k1, "again") is True
        assert c.delete(k1, k1) == 1
    for j in all_nodes(cluster):
        assert cluster.client(j).exists(k1, k2) == 0


def test_exists_counts(cluster: Cluster) -> None:
    c = cluster.clients
    k1, k2, missing = key("e1"), key("e2"), key("emissing")
    assert c[0].set(k1, "x") and c[1].set(k2, "y")
    for j in all_nodes(cluster):
        assert c[j].exists(k1) == 1
        assert c[j].exists(missing) == 0
        assert c[j].exists(k1, k2, missing) == 2
        assert c[j].exists(k1, k1, k2) == 3  # Redis counts repeated keys each time


def test_mset_mget_across_nodes(cluster: Cluster) -> None:
    c = cluster.clients
    pairs = {key(f"m{n}"): f"val{n}" for n in range(20)}
    assert c[0].mset(pairs) is True
    keys = list(pairs) + [key("mmissing")]
    want = list(pairs.values()) + [None]
    for j in all_nodes(cluster):
        assert c[j].mget(keys) == want
    out = cluster.cli(2, "MGET", *keys[:3])
    assert out.splitlines() == want[:3]


def test_expire_persist(cluster: Cluster) -> None:
    c = cluster.clients
    k = key("exp")
    assert c[0].expire(k, 100) is False  # missing key
    assert c[0].persist(k) is False
    assert c[0].set(k, "v") is True
    assert c[1].persist(k) is False  # no TTL to remove
    assert c[1].expire(k, 100) is True
    for j in all_nodes(cluster):
        assert 0 < c[j].ttl(k) <= 100
    assert c[2].pexpire(k, 70_000) is True
    assert 0 < c[0].pttl(k) <= 70_000
    assert c[0].persist(k) is True
    for j in all_nodes(cluster):
        assert c[j].ttl(k) == -1
        assert c[j].get(k) == "v"
    # An expiry in the past deletes the key, as in Redis.
    assert c[1].expire(k, -1) is True
    for j in all_nodes(cluster):
        assert c[j].get(k) is None


def test_expired_key_reads_nil_everywhere(cluster: Cluster) -> None:
    c = cluster.clients
    k = key("px200")
    assert c[0].set(k, "short-lived", px=200) is True
    wait_until(lambda: c[1].get(k) is None, 10, interval=0.05, what=f"{k} to expire")
    for j in all_nodes(cluster):
        assert c[j].get(k) is None
        assert c[j].exists(k) == 0
        assert c[j].ttl(k) == -2
        assert c[j].mget([k]) == [None]
        assert c[j].execute_command("GETCTX", k)[1] == []
        assert cluster.cli(j, "GET", k) == ""


# --- errors: exactly Redis' texts ----------------------------------------------------

ERROR_CASES = [
    ("FOOBAR",),
    ("FOOBAR", "a", "b c"),
    ("nosuchcommand", "x"),
    ("GET",),
    ("GET", "a", "b"),
    ("SET", "a"),
    ("DEL",),
    ("EXISTS",),
    ("MGET",),
    ("MSET", "a"),
    ("MSET", "a", "1", "b"),
    ("TTL",),
    ("PTTL", "a", "b"),
    ("EXPIRE", "a"),
    ("PEXPIRE",),
    ("PERSIST",),
    ("ECHO",),
    ("PING", "a", "b"),
    ("DBSIZE", "x"),
    ("SET", "a", "b", "EX", "0"),
    ("SET", "a", "b", "PX", "-5"),
    ("SET", "a", "b", "EX", "ten"),
    ("SET", "a", "b", "NX", "XX"),
    ("SET", "a", "b", "EX", "10", "PX", "10"),
    ("SET", "a", "b", "BOGUS"),
    ("EXPIRE", "a", "notanumber"),
    ("CLIENT", "NOSUCHSUB"),
    ("HELLO", "4"),
]


def _error_of(client: redis.Redis, args: tuple[str, ...]) -> tuple[str, str]:
    try:
        reply = client.execute_command(*args)
    except redis.ResponseError as exc:
        return type(exc).__name__, str(exc)
    return "no error", repr(reply)


@pytest.mark.parametrize("args", ERROR_CASES, ids=lambda a: " ".join(a))
def test_errors_match_real_redis(cluster: Cluster, real_redis: redis.Redis,
                                 args: tuple[str, ...]) -> None:
    expected = _error_of(real_redis, args)
    assert expected[0] != "no error", f"bad test case {args}: redis-server accepted it"
    for j in all_nodes(cluster):
        assert _error_of(cluster.client(j), args) == expected, f"via node {j}"
    # The exact bytes on the wire, as redis-cli shows them.
    want = subprocess.run(["redis-cli", "-h", HOST, "-p", str(real_redis.port), *args],
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL).stdout
    got = subprocess.run(["redis-cli", "-h", HOST, "-p", str(cluster.ports[0]), *args],
                         capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL).stdout
    assert got == want


def test_errors_do_not_write(cluster: Cluster) -> None:
    c = cluster.clients
    k = key("errnowrite")
    for bad in (("SET", k, "v", "EX", "0"), ("SET", k, "v", "NX", "XX"),
                ("SET", k, "v", "BOGUS"), ("MSET", k, "v", "other")):
        with pytest.raises(redis.ResponseError):
            c[0].execute_command(*bad)
    for j in all_nodes(cluster):
        assert c[j].exists(k) == 0
    # The connection is still usable after errors.
    assert c[0].ping() is True


# --- client handshakes ---------------------------------------------------------------


def test_redis_py_connects_cleanly_with_client_setinfo(cluster: Cluster) -> None:
    for j in all_nodes(cluster):
        r = cluster.client(j, protocol=2)
        try:
            assert r.ping() is True
            info = r.client_info()
            # redis-py ignores errors from CLIENT SETINFO, so check that it took effect.
            assert info["lib-name"].startswith("redis-py")
            assert info["lib-ver"] == redis.__version__
            assert r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "mylib") == "OK"
            assert r.client_info()["lib-name"] == "mylib"
            assert r.client_setname("tester") is True
            assert r.client_getname() == "tester"
        finally:
            r.close()


def test_hello_3_with_redis_py_protocol_3(cluster: Cluster) -> None:
    for j in all_nodes(cluster):
        r = cluster.client(j, protocol=3)
        try:
            assert r.ping() is True
            hello = r.execute_command("HELLO", "3")
            assert hello["proto"] == 3
            assert hello["server"] == "redis"
            k = key(f"resp3-{j}")
            assert r.set(k, "v3") is True
            assert r.get(k) == "v3"
            assert r.get(key("resp3-missing")) is None
            assert r.mget([k, key("resp3-missing")]) == ["v3", None]
            ctx, values = r.execute_command("GETCTX", k)
            assert values == ["v3"] and ctx
            assert r.client_info()["resp"] == "3"
            info = parse_info(raw_command(r, "INFO", "dynamo"))
            assert info["ring_members"] == "3"
        finally:
            r.close()
    # And back to RESP2 on the same connection.
    r = cluster.client(0, protocol=2)
    try:
        hello = r.execute_command("HELLO", "2")
        assert dict(zip(hello[::2], hello[1::2], strict=True))["proto"] == 2
    finally:
        r.close()


# --- membership ----------------------------------------------------------------------


def test_info_dynamo_shows_three_members_all_up(cluster: Cluster) -> None:
    names = {f"{HOST}:{p}" for p in cluster.ports}
    epochs = set()
    for j in all_nodes(cluster):
        info = cluster.info(j)
        assert info["node_name"] == f"{HOST}:{cluster.ports[j]}"
        assert info["ring_members"] == "3"
        assert set(info["members"].split(",")) == names
        assert set(info["members_up"].split(",")) == names
        assert info["members_down"] == ""
        assert (info["n"], info["r"], info["w"]) == ("3", "2", "2")
        epochs.add((info["ring_epoch"], info["ring_claimant"]))
    assert len(epochs) == 1, f"nodes disagree on the ring: {epochs}"
    # redis-cli sees the same section.
    assert "members_down:" in cluster.cli(1, "INFO", "dynamo")


AFFINITY = ("affinity_handed", "affinity_taken", "affinity_failed", "affinity_in_flight")


def test_info_dynamo_counts_the_commands_handed_to_a_keys_first_replica(
        cluster: Cluster) -> None:
    """SET NX, GETDEL, a script with keys and a write plan run at their key's first up
    replica (cluster/affinity.py): the node a client sent them to hands them over.
    INFO dynamo counts them at both ends."""
    dst = next(k for k in (key("aff") for _ in range(100)) if first_replica_of(cluster, k) == 1)
    src = key("aff-src")
    sender, runner = cluster.client(0), cluster.client(1)
    before = [{f: int(cluster.info(j)[f]) for f in AFFINITY} for j in (0, 1)]
    assert sender.set(dst, "v", nx=True) is True
    assert sender.getdel(dst) == "v"
    assert sender.eval("return redis.call('SET', KEYS[1], 'w')", 1, dst) == "OK"
    sender.set(src, "moved")  # (a plain SET is blind: run where it was sent)
    assert sender.rename(src, dst) is True
    assert runner.get(dst) == "moved"
    after = [{f: int(cluster.info(j)[f]) for f in AFFINITY} for j in (0, 1)]
    assert after[0]["affinity_handed"] - before[0]["affinity_handed"] == 4
    assert after[1]["affinity_taken"] - before[1]["affinity_taken"] == 4
    assert after[0]["affinity_failed"] == before[0]["affinity_failed"]
    assert after[0]["affinity_in_flight"] == 0
    # Run where it was sent, nothing is handed: node 1 is dst's first replica.
    assert runner.set(dst, "x", nx=True) is None
    assert int(cluster.info(1)["affinity_handed"]) == after[1]["affinity_handed"]
