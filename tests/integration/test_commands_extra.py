"""The extra string, key-space and server commands, compared with a real redis-server.

Each test sends the same sequence of commands to a real 3-node dynredis cluster (rotating
through its nodes, so every step also crosses nodes) and to a real redis-server, and
requires the same replies, error texts included. Replies are compared as parsed from the
wire (no redis-py response callbacks), and error cases also as redis-cli prints them.
Expiry is checked with absolute times (PEXPIREAT / PEXPIRETIME), which are exact.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence

import hiredis
import pytest
import redis
from redis._parsers.commands import CommandsParser

from .conftest import HOST, Cluster, ClusterFactory

pytestmark = pytest.mark.timeout(120)

Cmd = Sequence[str]


class Err(str):
    """An error reply: the exception class redis-py chose and the text."""


def wire(client: redis.Redis, *args: str) -> object:
    """One command's reply as parsed from the wire; an error reply becomes an Err."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        try:
            reply = conn.read_response()
        except (redis.ResponseError, redis.AuthenticationError) as exc:
            return Err(f"{type(exc).__name__}: {exc}")
    except BaseException:
        conn.disconnect()
        raise
    finally:
        client.connection_pool.release(conn)
    if isinstance(reply, redis.ResponseError):
        return Err(f"{type(reply).__name__}: {reply}")
    return reply


def key(prefix: str) -> str:
    return f"x{prefix}:{uuid.uuid4().hex[:12]}"


def same(cluster: Cluster, real: redis.Redis, *cmds: Cmd) -> list[object]:
    """Run `cmds` in order on redis-server and on dynredis (command i through node
    i mod 3); every reply must be equal. Returns dynredis' replies."""
    got, diffs = [], []
    for i, cmd in enumerate(cmds):
        want = wire(real, *cmd)
        have = wire(cluster.client(i % cluster.nodes), *cmd)
        got.append(have)
        if have != want:
            diffs.append(f"  {' '.join(cmd)!r} via node {i % cluster.nodes}: "
                         f"dynredis {have!r}, redis-server {want!r}")
    assert not diffs, "replies differ from redis-server:\n" + "\n".join(diffs)
    return got


def cli(port: int, *args: str) -> str:
    proc = subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), *args],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return proc.stdout


def ms_from_now(ms: int) -> int:
    return int(time.time() * 1000) + ms


@pytest.fixture
def resp2(cluster: Cluster, real_redis: redis.Redis
          ) -> Iterator[tuple[list[redis.Redis], redis.Redis]]:
    """RESP2 connections to each dynredis node and to redis-server (redis-py's default,
    which the other tests use, is RESP3)."""
    dyn = [cluster.client(j, protocol=2) for j in range(cluster.nodes)]
    real = redis.Redis(host=HOST, port=real_redis.port, protocol=2,  # type: ignore[attr-defined]
                       decode_responses=True, socket_timeout=10)
    try:
        yield dyn, real
    finally:
        for r in (*dyn, real):
            r.close()


class Raw:
    """A bare socket speaking RESP: replies are compared as the exact bytes sent, so a
    status reply is not mistaken for a bulk string, nor a RESP3 set for an array."""

    def __init__(self, port: int, proto: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        if proto == 3:
            self("HELLO", "3")

    def __call__(self, *args: str) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            data = a.encode()
            parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        reader, got = hiredis.Reader(), b""
        while True:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            got += chunk
            reader.feed(chunk)
            if reader.gets() is not False:
                return got

    def close(self) -> None:
        self.sock.close()


def same_bytes(cluster: Cluster, real: redis.Redis, proto: int, node: int, *cmds: Cmd) -> None:
    """`cmds` over one connection to each server (they may change its state: RESET)."""
    ours = Raw(cluster.ports[node], proto)
    theirs = Raw(real.port, proto)  # type: ignore[attr-defined]
    try:
        diffs = []
        for cmd in cmds:
            want, have = theirs(*cmd), ours(*cmd)
            if have != want:
                diffs.append(f"  {' '.join(cmd)!r} RESP{proto}: dynredis {have!r}, "
                             f"redis-server {want!r}")
        assert not diffs, "replies differ from redis-server:\n" + "\n".join(diffs)
    finally:
        ours.close()
        theirs.close()


# --- error replies of every new command: redis-py and redis-cli -----------------------

MISSING = f"xmissing:{uuid.uuid4().hex[:12]}"  # never written, on either server

ERROR_CASES: list[tuple[str, ...]] = [
    ("SETNX", "k"),
    ("SETEX", "k", "10"),
    ("SETEX", "k", "0", "v"),
    ("SETEX", "k", "-1", "v"),
    ("SETEX", "k", "ten", "v"),
    ("SETEX", "k", "9223372036854775807", "v"),
    ("PSETEX", "k", "0", "v"),
    ("PSETEX", "k", "9223372036854775807", "v"),
    ("GETSET", "k"),
    ("GETDEL",),
    ("GETDEL", "k", "j"),
    ("SET", MISSING, "v", "EX", "ten", "BOGUS"),  # the whole line is parsed first
    ("SET", MISSING, "v", "KEEPTTL", "EX", "10"),
    ("SET", MISSING, "v", "EX", "10", "PXAT", "10"),
    ("SET", MISSING, "v", "PERSIST"),
    ("GETEX",),
    ("GETEX", MISSING, "EX"),
    ("GETEX", MISSING, "EX", "10", "PX", "10"),
    ("GETEX", MISSING, "PERSIST", "EX", "10"),
    ("GETEX", MISSING, "EX", "10", "PERSIST"),
    ("GETEX", MISSING, "EXAT", "10", "PXAT", "10"),
    ("GETEX", MISSING, "KEEPTTL"),
    ("GETEX", MISSING, "NX"),
    ("GETEX", MISSING, "GET"),
    ("GETEX", MISSING, "BOGUS"),
    ("MSETNX",),
    ("MSETNX", "k"),
    ("MSETNX", "k", "1", "j"),
    ("APPEND", "k"),
    ("STRLEN",),
    ("GETRANGE", "k", "0"),
    ("GETRANGE", MISSING, "zero", "1"),
    ("GETRANGE", MISSING, "0", "1.5"),
    ("SETRANGE", MISSING, "-1", "x"),
    ("SETRANGE", MISSING, "one", "x"),
    ("SETRANGE", MISSING, "536870912", "x"),
    ("SETRANGE", MISSING, "536870911", "xx"),
    ("SETRANGE", MISSING, "9223372036854775807", "x"),
    ("UNLINK",),
    ("TYPE",),
    ("TYPE", "k", "j"),
    ("TOUCH",),
    ("EXPIREAT", "k"),
    ("EXPIREAT", MISSING, "soon"),
    ("EXPIREAT", MISSING, "1", "BOGUS"),
    ("EXPIREAT", MISSING, "soon", "BOGUS"),
    ("EXPIREAT", MISSING, "1", "NX", "XX"),
    ("EXPIREAT", MISSING, "1", "NX", "GT"),
    ("EXPIREAT", MISSING, "1", "GT", "LT"),
    ("EXPIREAT", MISSING, "9223372036854775807"),
    ("EXPIREAT", MISSING, "-9223372036854775808"),
    ("PEXPIREAT",),
    ("PEXPIREAT", MISSING, "1", "xx", "bogus"),
    ("EXPIRE", MISSING, "1", "nx", "bogus"),
    ("EXPIRE", MISSING, "9223372036854775807"),
    ("EXPIRETIME",),
    ("PEXPIRETIME", "k", "j"),
    ("TIME", "x"),
    ("LASTSAVE", "x"),
    ("CONFIG",),
    ("CONFIG", "BOGUS"),
    ("CONFIG", "GET"),
    ("CONFIG", "SET", "maxmemory"),
    ("CONFIG", "SET", "save", "", "appendonly"),
    ("CONFIG", "SET", "nosuch", "1"),
    ("CONFIG", "SET", "maxmemory", "abc", "nosuch", "1"),
    ("CONFIG", "SET", "databases", "1", "nosuch", "1"),
    ("CONFIG", "SET", "nosuch", "1", "databases", "1"),
    ("CONFIG", "SET", "maxmemory", "abc"),
    ("CONFIG", "SET", "maxmemory", "-1"),
    ("CONFIG", "SET", "maxmemory", " 0"),
    ("CONFIG", "SET", "maxmemory", "0", "maxmemory", "0"),
    ("CONFIG", "SET", "maxmemory", "0", "MAXMEMORY", "abc"),
    ("CONFIG", "SET", "databases", "2"),
    ("CONFIG", "SET", "cluster-enabled", "no"),
    ("CONFIG", "SET", "appendonly", "maybe"),
    ("CONFIG", "SET", "maxmemory-policy", "bogus"),
    ("CONFIG", "SET", "save", "abc"),
    ("CONFIG", "SET", "save", "3600"),
    ("CONFIG", "SET", "save", "0 1"),
    ("CONFIG", "SET", "save", "  "),
    ("CONFIG", "SET", "port", "abc"),
    ("CONFIG", "SET", "notify-keyspace-events", "KQ"),
    ("CONFIG", "SET", "port", "070"),
    ("CONFIG", "SET", "port", "70000"),
    ("CONFIG", "SET", "proto-max-bulk-len", "10"),
    ("CONFIG", "SET", "proto-max-bulk-len", "lots"),
    ("CONFIG", "RESETSTAT", "x"),
    ("CONFIG", "REWRITE"),
    ("FLUSHDB", "x"),
    ("FLUSHDB", "ASYNC", "SYNC"),
    ("MEMORY",),
    ("MEMORY", "BOGUS"),
    ("MEMORY", "USAGE"),
    ("MEMORY", "USAGE", MISSING, "SAMPLES"),
    ("MEMORY", "USAGE", MISSING, "SAMPLES", "five"),
    ("MEMORY", "USAGE", MISSING, "SAMPLES", "-1"),
    ("MEMORY", "USAGE", MISSING, "BOGUS", "1"),
    ("RESET", "x"),
    ("CLIENT", "TRACKING"),
    ("CLIENT", "TRACKING", "BOGUS"),
    ("CLIENT", "TRACKING", "OFF", "BOGUS"),
    ("CLIENT", "TRACKING", "OFF", "REDIRECT", "abc"),
    ("CLIENT", "TRACKING", "OFF", "REDIRECT", "987654321"),
    ("CLIENT", "TRACKING", "ON", "REDIRECT", "987654321"),
    ("CLIENT", "CACHING", "YES"),
    ("CLIENT", "GETREDIR", "x"),
    ("CLIENT", "TRACKINGINFO", "x"),
    ("CLIENT", "NO-EVICT", "MAYBE"),
    ("COMMAND", "GETKEYS", "CONFIG", "GET", "x"),
    ("COMMAND", "GETKEYS", "MEMORY", "BOGUS", "k"),
    ("COMMAND", "GETKEYS", "MEMORY", "USAGE"),
]


def test_error_replies_match_redis(cluster: Cluster, real_redis: redis.Redis,
                                   resp2: tuple[list[redis.Redis], redis.Redis]) -> None:
    diffs = []
    for args in ERROR_CASES:
        want = wire(real_redis, *args)
        assert isinstance(want, Err), f"bad case {args}: redis-server answered {want!r}"
        assert wire(resp2[1], *args) == want
        for j in range(cluster.nodes):
            for proto, have in ((3, wire(cluster.client(j), *args)), (2, wire(resp2[0][j], *args))):
                if have != want:
                    diffs.append(f"  {args} via node {j} RESP{proto}: dynredis {have!r}, "
                                 f"redis-server {want!r}")
    assert not diffs, "error replies differ:\n" + "\n".join(diffs)
    # The same bytes on the wire too, in both protocols.
    for proto in (2, 3):
        same_bytes(cluster, real_redis, proto, proto - 1, *ERROR_CASES)
    # Nothing was written by any of them.
    assert wire(cluster.client(0), "EXISTS", "k", "j", MISSING) == 0


def test_error_replies_match_redis_byte_for_byte_in_redis_cli(
        cluster: Cluster, real_redis: redis.Redis) -> None:
    cases = [c for c in ERROR_CASES if "987654321" not in c][::3] + [
        ("SETRANGE", MISSING, "-1", "x"), ("CONFIG", "SET", "nosuch", "1"),
        ("GETEX", MISSING, "EX", "10", "PX", "10")]
    for args in cases:
        assert cli(cluster.ports[1], *args) == cli(real_redis.port, *args), args  # type: ignore[attr-defined]


# --- strings ---------------------------------------------------------------------------


def test_setnx_getset_getdel(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, other = key("snx"), key("snx-other")
    same(cluster, real_redis,
         ("SETNX", k, "first"), ("SETNX", k, "second"), ("GET", k),
         ("GETSET", k, "third"), ("GET", k), ("GETSET", other, "new"), ("GET", other),
         ("GETDEL", k), ("GETDEL", k), ("GET", k), ("EXISTS", k), ("TYPE", k),
         ("SETNX", k, "again"), ("GET", k), ("TYPE", k), ("STRLEN", k))


def test_setex_psetex(cluster: Cluster, real_redis: redis.Redis) -> None:
    k = key("setex")
    same(cluster, real_redis,
         ("SETEX", k, "100", "v"), ("GET", k), ("TTL", k),
         ("PSETEX", k, "200000", "w"), ("GET", k), ("TTL", k),
         ("SETEX", k, "0", "x"), ("GET", k),  # a refused SETEX leaves the key alone
         ("SET", k, "plain"), ("TTL", k),
         ("SET", k, "v", "EX", "10", "ex", "100"), ("TTL", k),  # Redis takes the last one
         ("SET", k, "v", "NX", "NX", "GET"), ("SET", k, "v", "XX", "XX", "PX", "5", "PX", "1e3"))
    same(cluster, real_redis, ("PSETEX", k, "150", "short"), ("GET", k))
    time.sleep(0.4)
    same(cluster, real_redis, ("GET", k), ("EXISTS", k), ("TTL", k))


def test_getex(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, gone = key("getex"), key("getex-gone")
    at = ms_from_now(3_600_000)
    same(cluster, real_redis,
         ("SET", k, "v"), ("GETEX", k), ("TTL", k),
         ("GETEX", k, "EX", "100"), ("TTL", k),
         ("GETEX", k, "ex", "100", "EX", "200"), ("TTL", k),  # the last one counts
         ("GETEX", k, "PERSIST"), ("TTL", k), ("GETEX", k, "PERSIST", "persist"),
         ("GETEX", k, "PXAT", str(at)), ("PEXPIRETIME", k),
         ("GETEX", k, "EXAT", str(at // 1000 + 60)), ("EXPIRETIME", k),
         ("GETEX", k), ("EXPIRETIME", k),
         ("GETEX", k, "PX", "0"), ("GETEX", k, "EX", "-5"), ("GETEX", k, "EX", "soon"),
         ("GETEX", k, "EX", "9223372036854775807"), ("EXPIRETIME", k),
         ("GETEX", gone, "EX", "0"), ("GETEX", gone, "EX", "soon"), ("GETEX", gone),
         ("GETEX", k, "EXAT", "1"), ("EXISTS", k), ("GETEX", k))
    same(cluster, real_redis,
         ("SET", k, "w"), ("GETEX", k, "PXAT", str(ms_from_now(-1000))), ("GET", k))


def test_msetnx(cluster: Cluster, real_redis: redis.Redis) -> None:
    a, b, c = key("mnx-a"), key("mnx-b"), key("mnx-c")
    same(cluster, real_redis,
         ("MSETNX", a, "1", b, "2"), ("MGET", a, b, c),
         ("MSETNX", a, "x", c, "3"), ("MGET", a, b, c), ("EXISTS", c),
         ("MSETNX", c, "first", c, "last"), ("GET", c),  # a repeated key: the last value
         ("DEL", a), ("MSETNX", a, "4", b, "5"), ("MGET", a, b, c))


def test_append_strlen(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, empty = key("app"), key("app-empty")
    same(cluster, real_redis,
         ("STRLEN", k), ("APPEND", k, "hello"), ("APPEND", k, " world"), ("GET", k),
         ("STRLEN", k), ("APPEND", k, ""), ("GET", k),
         ("APPEND", empty, ""), ("EXISTS", empty), ("GET", empty), ("STRLEN", empty),
         ("APPEND", k, "ü\x00\r\n"), ("GET", k), ("STRLEN", k))


def test_getrange(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, missing = key("gr"), key("gr-missing")
    cmds: list[Cmd] = [("SET", k, "Hello, world")]
    for start, end in [(0, 4), (-5, -1), (5, 2), (100, 200), (-100, -50), (-100, 2), (0, -100),
                       (-1, -5), (0, -1), (3, 3), (11, 11), (12, 12), (-12, -12), (-13, 0),
                       (0, 9223372036854775807), (-9223372036854775808, -1)]:
        cmds.append(("GETRANGE", k, str(start), str(end)))
    cmds += [("GETRANGE", missing, "0", "-1"), ("GETRANGE", missing, "0", "soon"),
             ("SET", k, ""), ("GETRANGE", k, "0", "-1"), ("GETRANGE", k, "-1", "0")]
    same(cluster, real_redis, *cmds)


def test_setrange(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, pad, none = key("sr"), key("sr-pad"), key("sr-none")
    same(cluster, real_redis,
         ("SET", k, "Hello World"), ("SETRANGE", k, "6", "Redis"), ("GET", k),
         ("SETRANGE", k, "0", "J"), ("SETRANGE", k, "9", "is fine"), ("GET", k),
         ("SETRANGE", k, "0", ""), ("SETRANGE", k, "536870911", ""), ("GET", k),
         ("SETRANGE", k, "536870912", "x"), ("SETRANGE", k, "-1", "x"), ("GET", k),
         ("SETRANGE", pad, "5", "hi"), ("GET", pad), ("STRLEN", pad),
         ("SETRANGE", pad, "9", "!"), ("GET", pad),
         ("SETRANGE", none, "0", ""), ("SETRANGE", none, "10", ""),
         ("SETRANGE", none, "536870912", ""), ("EXISTS", none))


def test_setrange_is_binary_safe(cluster: Cluster, real_redis: redis.Redis) -> None:
    raw = [redis.Redis(host=HOST, port=p, decode_responses=False, socket_timeout=10)
           for p in (cluster.ports[0], cluster.ports[2], real_redis.port)]  # type: ignore[attr-defined]
    try:
        out = []
        for r in raw:
            k = key("srbin")
            assert r.setrange(k, 3, b"\xff\x00\xfe") == 6
            assert r.append(k, bytes(range(256))) == 262
            out.append(r.getrange(k, 0, -1))
        assert out[0] == out[1] == out[2] == b"\x00\x00\x00\xff\x00\xfe" + bytes(range(256))
    finally:
        for r in raw:
            r.close()


def test_ttl_kept_or_reset_like_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, other = key("ttl"), key("ttl-other")
    at = ms_from_now(3_600_000)
    later = at + 5_000
    replies = same(
        cluster, real_redis,
        ("SET", k, "hello"), ("PEXPIREAT", k, str(at)), ("PEXPIRETIME", k),
        ("APPEND", k, " world"), ("PEXPIRETIME", k),      # 4: APPEND keeps the TTL
        ("SETRANGE", k, "0", "J"), ("PEXPIRETIME", k),    # 6: so does SETRANGE
        ("SETRANGE", k, "20", "!"), ("PEXPIRETIME", k),   # 8: ... also when it pads
        ("GETEX", k), ("PEXPIRETIME", k),                 # 10: GETEX without options
        ("SETNX", k, "no"), ("PEXPIRETIME", k),           # 12: a refused SETNX
        ("SET", k, "kept", "KEEPTTL"), ("PEXPIRETIME", k),  # 14
        ("PEXPIREAT", k, str(later), "GT"), ("PEXPIRETIME", k),  # 16
        ("PEXPIREAT", k, str(at), "GT"), ("PEXPIRETIME", k),     # 18: GT refuses
        ("PEXPIREAT", k, str(at), "LT"), ("PEXPIRETIME", k),     # 20
        ("GETSET", k, "reset"), ("PEXPIRETIME", k),        # 22: GETSET drops it
        ("SETEX", k, "1000", "again"), ("TTL", k),         # 24
        ("SETRANGE", k, "0", "A"), ("TTL", k),             # 26
        ("GETEX", k, "PERSIST"), ("PEXPIRETIME", k),       # 28
        ("SET", other, "x"), ("PEXPIREAT", other, str(at)),
        ("MSETNX", other, "y", k, "z"), ("PEXPIRETIME", other), ("GET", k))
    for i in (4, 6, 8, 10, 12, 14, 20):
        assert replies[i] == at, f"reply {i}: {replies[i]!r}"
    assert replies[16] == replies[18] == later
    assert replies[22] == replies[28] == -1
    assert replies[24] == replies[26] == 1000
    # And every node sees the same expiry (the writes were quorum writes).
    assert wire(cluster.client(0), "PEXPIREAT", k, str(at)) == 1
    assert wire(cluster.client(1), "APPEND", k, "+") == len("Again") + 1
    for j in range(cluster.nodes):
        assert wire(cluster.client(j), "PEXPIRETIME", k) == at
        assert wire(cluster.client(j), "GET", k) == "Again+"


def test_read_modify_write_supersedes_the_siblings_it_read(cluster: Cluster) -> None:
    k = key("sib")
    c0, c1, c2 = cluster.clients
    assert c0.execute_command("SETCTX", k, "", "first") == "OK"
    time.sleep(0.01)  # the second write is the newer one
    assert c1.execute_command("SETCTX", k, "", "second") == "OK"
    assert sorted(c2.execute_command("GETCTX", k)[1]) == ["first", "second"]
    assert c2.append(k, "!") == len("second!")
    for j in range(cluster.nodes):
        assert cluster.client(j).execute_command("GETCTX", k)[1] == ["second!"]
    # The same for a GETDEL: its tombstone covers every sibling it saw.
    assert c0.execute_command("SETCTX", k, "", "third") == "OK"
    assert len(c1.execute_command("GETCTX", k)[1]) == 2
    assert c1.getdel(k) in ("second!", "third")
    for j in range(cluster.nodes):
        assert cluster.client(j).execute_command("GETCTX", k)[1] == []


# --- key space -------------------------------------------------------------------------


def test_unlink_type_touch(cluster: Cluster, real_redis: redis.Redis) -> None:
    a, b, missing = key("ul-a"), key("ul-b"), key("ul-missing")
    same(cluster, real_redis,
         ("SET", a, "1"), ("SET", b, "2"), ("TYPE", a), ("TYPE", missing),
         ("TOUCH", a, a, missing, b), ("TOUCH", missing),
         ("UNLINK", a, a, b, missing), ("EXISTS", a, b), ("TYPE", a),
         ("UNLINK", a), ("SET", a, "again"), ("UNLINK", a, a), ("TOUCH", a))


def test_expireat_pexpireat(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, missing = key("eat"), key("eat-missing")
    t = int(time.time()) + 3600
    same(cluster, real_redis,
         ("EXPIREAT", missing, str(t)), ("EXPIRETIME", missing), ("PEXPIRETIME", missing),
         ("SET", k, "v"), ("EXPIRETIME", k), ("PEXPIRETIME", k),
         ("EXPIREAT", k, str(t), "XX"), ("EXPIREAT", k, str(t), "GT"),
         ("EXPIREAT", k, str(t), "LT"), ("EXPIRETIME", k), ("PEXPIRETIME", k), ("TTL", k),
         ("EXPIREAT", k, str(t + 1), "NX"), ("EXPIREAT", k, str(t + 10), "XX", "GT"),
         ("EXPIRETIME", k), ("EXPIREAT", k, str(t), "gt"), ("EXPIREAT", k, str(t), "xx", "lt"),
         ("EXPIRETIME", k), ("EXPIREAT", k, str(t), "NX"),
         ("PEXPIREAT", k, str(t * 1000 + 500)), ("EXPIRETIME", k), ("PEXPIRETIME", k),
         ("PEXPIREAT", k, str(t * 1000 + 499)), ("EXPIRETIME", k),
         ("PEXPIREAT", k, "9223372036854775807"), ("PEXPIRETIME", k),
         ("EXPIREAT", k, "9223372036854775"), ("EXPIRETIME", k),
         ("PERSIST", k), ("EXPIRETIME", k),
         ("EXPIREAT", k, "1", "NX", "NX"), ("EXISTS", k), ("GET", k),  # the past deletes
         ("SET", k, "v"), ("PEXPIREAT", k, "0"), ("EXISTS", k),
         ("SET", k, "v"), ("EXPIREAT", k, "-9223372036854775"), ("EXISTS", k),
         ("SET", k, "v"), ("EXPIRE", k, "-9223372036854775"), ("EXISTS", k),
         ("SET", k, "v"), ("PEXPIRE", k, "-9223372036854775808"), ("EXISTS", k),
         ("SET", k, "v"), ("EXPIREAT", k, str(t - 7200), "GT"), ("EXISTS", k),
         ("EXPIREAT", k, str(t - 7200), "LT"), ("EXISTS", k))


# --- server ----------------------------------------------------------------------------


def test_time_and_lastsave(cluster: Cluster, real_redis: redis.Redis,
                           resp2: tuple[list[redis.Redis], redis.Redis]) -> None:
    for j in range(cluster.nodes):
        sec, usec = wire(resp2[0][j], "TIME")  # type: ignore[misc]
        rsec, rusec = wire(real_redis, "TIME")  # type: ignore[misc]
        assert isinstance(sec, str) and isinstance(usec, str)
        assert abs(int(sec) - int(rsec)) <= 2
        assert 0 <= int(usec) < 1_000_000
        last = wire(cluster.client(j), "LASTSAVE")
        assert isinstance(last, int) and isinstance(wire(real_redis, "LASTSAVE"), int)
        assert time.time() - 3600 < last <= time.time()
    assert cluster.client(0).time()[0] > 0  # redis-py's own parsing works too
    assert cli(cluster.ports[0], "TIME").count("\n") == 2


SHARED_SETTINGS = ("maxmemory", "maxmemory-policy", "save", "appendonly", "proto-max-bulk-len",
                   "maxclients", "client-query-buffer-limit", "client-output-buffer-limit",
                   "busy-reply-threshold", "lua-time-limit", "notify-keyspace-events",
                   "slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold",
                   "latency-tracking", "latency-tracking-info-percentiles", "io-threads",
                   "enable-debug-command", "hash-max-listpack-entries",
                   "hash-max-listpack-value", "set-max-intset-entries",
                   "zset-max-listpack-entries", "zset-max-listpack-value")
OWN_SETTINGS = {"object-cache-max-memory"}  # dynredis' own, which Redis does not have


def test_config_get(cluster: Cluster, real_redis: redis.Redis,
                    resp2: tuple[list[redis.Redis], redis.Redis]) -> None:
    dyn2, real2 = resp2
    one = (("CONFIG", "GET", "nosuch"), ("CONFIG", "GET", "nosuch*"),
           ("CONFIG", "GET", "maxmemory", "MAXMEMORY"), ("CONFIG", "GET", "appendon[l]y"),
           ("CONFIG", "GET", "appendonl?"), ("CONFIG", "GET", "appendonly", "appendonl*"),
           ("CONFIG", "GET", "[a-b]ppendonly"), ("CONFIG", "GET", "[^b]ppendonly"))
    for name in SHARED_SETTINGS:
        one += (("CONFIG", "GET", name), ("CONFIG", "GET", name.upper()))
    same(cluster, real_redis, *one)  # RESP3: a map
    for cmd in one:  # RESP2: a flat array
        assert wire(dyn2[0], *cmd) == wire(real2, *cmd), cmd
    assert isinstance(wire(cluster.client(0), "CONFIG", "GET", "save"), dict)
    assert wire(dyn2[1], "CONFIG", "GET", "save") == ["save", ""]
    # Several names: Redis orders them by its hash table, so compare as maps.
    for patterns in (SHARED_SETTINGS, ("save", "appendonly"), ("*e*",)):
        want = wire(real_redis, "CONFIG", "GET", *patterns)
        got = wire(cluster.client(1), "CONFIG", "GET", *patterns)
        assert isinstance(want, dict) and isinstance(got, dict)
        flat = wire(dyn2[2], "CONFIG", "GET", *patterns)
        assert isinstance(flat, list)
        assert dict(zip(flat[::2], flat[1::2], strict=True)) == got
        assert set(got) - OWN_SETTINGS <= set(want)  # Redis has many more settings
        assert {k: v for k, v in got.items() if k in SHARED_SETTINGS} == {
            k: v for k, v in want.items() if k in SHARED_SETTINGS}
    # Globs see only what this node has, with what it runs with.
    ours = cluster.client(2).config_get("*")
    assert ours == {"maxmemory": "0", "maxmemory-policy": "noeviction", "save": "",
                    "appendonly": "no", "stop-writes-on-bgsave-error": "no",
                    "proto-max-bulk-len": "536870912", "databases": "16", "cluster-enabled": "no",
                    "port": str(cluster.ports[2]), "maxclients": "10000",
                    "client-query-buffer-limit": "1073741824",
                    "client-output-buffer-limit":
                        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
                    "maxmemory-clients": "2147483648", "busy-reply-threshold": "5000",
                    "lua-time-limit": "5000", "object-cache-max-memory": "67108864",
                    "notify-keyspace-events": "", "slowlog-log-slower-than": "10000",
                    "slowlog-max-len": "128", "latency-monitor-threshold": "0",
                    "latency-tracking": "yes",
                    "latency-tracking-info-percentiles": "50 99 99.9", "io-threads": "1",
                    "enable-debug-command": "no", "enable-module-command": "no",
                    "hash-max-listpack-entries": "512",
                    "hash-max-listpack-value": "64", "set-max-intset-entries": "512",
                    "zset-max-listpack-entries": "128", "zset-max-listpack-value": "64"}
    assert dyn2[0].config_get("max*") == {"maxmemory": "0", "maxmemory-policy": "noeviction",
                                          "maxclients": "10000",
                                          "maxmemory-clients": "2147483648"}
    assert cluster.client(1).config_get("*port*") == {"port": str(cluster.ports[1])}
    # What redis-benchmark and redis-cli ask for.
    assert cli(cluster.ports[0], "CONFIG", "GET", "save") == "save\n\n"
    assert cli(cluster.ports[0], "CONFIG", "GET", "appendonly") == \
        cli(real_redis.port, "CONFIG", "GET", "appendonly")  # type: ignore[attr-defined]


def test_config_set(cluster: Cluster, real_redis: redis.Redis) -> None:
    # Values the node already runs with are accepted (redis-server is at its defaults too).
    same(cluster, real_redis,
         ("CONFIG", "SET", "maxmemory", "0"), ("CONFIG", "SET", "MAXMEMORY", "0kb"),
         ("CONFIG", "SET", "maxmemory-policy", "NoEviction"), ("CONFIG", "SET", "save", ""),
         ("CONFIG", "SET", "appendonly", "NO"), ("CONFIG", "SET", "proto-max-bulk-len", "512mb"),
         ("CONFIG", "SET", "appendonly", "no", "save", "", "maxmemory", "0"),
         ("CONFIG", "GET", "maxmemory"), ("CONFIG", "RESETSTAT"))
    port = str(cluster.ports[0])
    c = cluster.client(0)
    assert wire(c, "CONFIG", "SET", "port", port) == "OK"
    # A failed sync stops no writes here (compat/DIFFERENCES.md): "no" is what it runs with.
    assert wire(c, "CONFIG", "SET", "stop-writes-on-bgsave-error", "NO") == "OK"
    before = c.config_get("*")
    # Anything else would not be honoured: refused the way Redis refuses unknown settings.
    for name, value in (("maxmemory", "1gb"), ("maxmemory-policy", "allkeys-lru"),
                        ("save", "3600 1"), ("appendonly", "yes"), ("port", "6390"),
                        ("proto-max-bulk-len", "1mb"), ("stop-writes-on-bgsave-error", "yes")):
        assert wire(c, "CONFIG", "SET", name, value) == Err(
            f"ResponseError: Unknown option or number of arguments for CONFIG SET - '{name}'")
    # ... even when a valid value for another setting comes first; nothing changed.
    assert isinstance(wire(c, "CONFIG", "SET", "maxmemory", "0", "appendonly", "yes"), Err)
    assert c.config_get("*") == before


def test_config_set_of_client_limits_as_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    # Refusals, in Redis' words.
    same(cluster, real_redis,
         ("CONFIG", "SET", "maxclients", "0"), ("CONFIG", "SET", "maxclients", "abc"),
         ("CONFIG", "SET", "client-query-buffer-limit", "100"),
         ("CONFIG", "SET", "client-query-buffer-limit", "lots"),
         ("CONFIG", "SET", "client-output-buffer-limit", "bogus 1 2 3"),
         ("CONFIG", "SET", "client-output-buffer-limit", "master 1 2 3"),
         ("CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"),
         ("CONFIG", "SET", "client-output-buffer-limit", "normal x 2 3"),
         ("CONFIG", "SET", "client-output-buffer-limit", "normal 1 2 3 pubsub x 1 1"))
    # Values taken, and shown, the same way (one node; restored after).
    node = cluster.client(0)
    changes = (("client-output-buffer-limit", "normal 1mb 512kb 10 replica 1 2 3"),
               ("client-query-buffer-limit", "2mb"), ("maxclients", "5000"))
    try:
        for name, value in changes:
            assert wire(node, "CONFIG", "SET", name, value) == \
                wire(real_redis, "CONFIG", "SET", name, value) == "OK"
            assert wire(node, "CONFIG", "GET", name) == wire(real_redis, "CONFIG", "GET", name)
    finally:
        for client in (node, real_redis):
            client.config_set("client-output-buffer-limit", "normal 0 0 0 slave 268435456 "
                              "67108864 60 pubsub 33554432 8388608 60")
            client.config_set("client-query-buffer-limit", "1gb")
            client.config_set("maxclients", "10000")


def test_config_resetstat_clears_counters(cluster: Cluster) -> None:
    c = cluster.client(2)
    for _ in range(3):
        c.get(key("rs"))
    assert c.config_resetstat() is True
    stats = c.info("stats")
    assert stats["total_commands_processed"] <= 2
    assert stats["coordinated_gets"] + stats.get("forwarded", 0) <= 2


def test_flushdb(cluster: Cluster, real_redis: redis.Redis) -> None:
    ks = [key(f"fdb{i}") for i in range(5)]
    same(cluster, real_redis, ("MSET", *[x for k in ks for x in (k, "v")]),
         ("EXISTS", *ks), ("FLUSHDB",), ("EXISTS", *ks),
         ("SET", ks[0], "v"), ("FLUSHDB", "ASYNC"), ("EXISTS", ks[0]),
         ("SET", ks[0], "v"), ("FLUSHDB", "sync"), ("EXISTS", ks[0]))
    for j in range(cluster.nodes):
        assert cluster.client(j).exists(*ks) == 0
        assert cluster.client(j).dbsize() == 0


def test_memory_usage(cluster: Cluster, real_redis: redis.Redis) -> None:
    k, missing = key("mem"), key("mem-missing")
    value = "x" * 1000
    replies = same(cluster, real_redis,
                   ("MEMORY", "USAGE", missing), ("MEMORY", "USAGE", missing, "SAMPLES", "5"),
                   ("SET", k, value), ("DEL", k), ("MEMORY", "USAGE", k),
                   ("COMMAND", "GETKEYS", "MEMORY", "USAGE", k))
    assert replies[0] is None and replies[-1] == [k]
    for j in range(cluster.nodes):
        c = cluster.client(j)
        c.set(k, value)
        n = wire(c, "MEMORY", "USAGE", k)
        assert isinstance(n, int) and len(k) + len(value) < n < len(k) + len(value) + 200
        assert wire(c, "MEMORY", "USAGE", k, "SAMPLES", "0") == n
        assert c.memory_usage(k) == n
    assert isinstance(wire(real_redis, "MEMORY", "USAGE", k), type(None))  # not set there


def test_reset(cluster: Cluster, real_redis: redis.Redis) -> None:
    for port in (cluster.ports[0], real_redis.port):  # type: ignore[attr-defined]
        r = redis.Redis(host=HOST, port=port, protocol=3, decode_responses=True,
                        socket_timeout=10, single_connection_client=True)
        try:
            assert wire(r, "CLIENT", "SETNAME", "before-reset") == "OK"
            assert wire(r, "CLIENT", "TRACKING", "OFF") == "OK"
            assert wire(r, "CLIENT", "NO-EVICT", "ON") == "OK"
            assert wire(r, "RESET") == "RESET"
            assert wire(r, "CLIENT", "GETNAME") is None
            assert "resp=2" in str(wire(r, "CLIENT", "INFO")).split()
            assert wire(r, "GET", key("after-reset")) is None
            assert wire(r, "RESET") == "RESET"
        finally:
            r.close()
    assert cli(cluster.ports[2], "RESET") == cli(real_redis.port, "RESET") == "RESET\n"  # type: ignore[attr-defined]


def test_reset_drops_authentication_when_a_password_is_set(
        cluster_factory: ClusterFactory) -> None:
    secured = cluster_factory("--requirepass", "s3cret", "--n", "1", "--r", "1", "--w", "1",
                              nodes=1)
    port = secured.ports[0]
    assert cli(port, "RESET") == "RESET\n"  # allowed before AUTH, as in Redis
    assert cli(port, "GET", "k").strip() == "NOAUTH Authentication required."
    r = redis.Redis(host=HOST, port=port, password="s3cret", decode_responses=True,
                    socket_timeout=10, single_connection_client=True)
    try:
        assert wire(r, "SET", "k", "v") == "OK"
        assert wire(r, "RESET") == "RESET"
        assert wire(r, "GET", "k") == Err("AuthenticationError: Authentication required.")
        assert wire(r, "AUTH", "s3cret") == "OK"
        assert wire(r, "GET", "k") == "v"
    finally:
        r.close()


def test_client_tracking_and_flags(cluster: Cluster, real_redis: redis.Redis,
                                   resp2: tuple[list[redis.Redis], redis.Redis]) -> None:
    same(cluster, real_redis,
         ("CLIENT", "TRACKING", "OFF"), ("CLIENT", "TRACKING", "off", "BCAST", "NOLOOP"),
         ("CLIENT", "TRACKING", "OFF", "PREFIX", "a", "PREFIX", "b", "OPTIN"),
         ("CLIENT", "GETREDIR"), ("CLIENT", "TRACKINGINFO"),
         ("CLIENT", "NO-EVICT", "ON"), ("CLIENT", "NO-EVICT", "off"))
    assert wire(resp2[0][0], "CLIENT", "TRACKINGINFO") == wire(resp2[1], "CLIENT", "TRACKINGINFO")
    for j in range(cluster.nodes):
        c = cluster.client(j)
        refused = wire(c, "CLIENT", "TRACKING", "ON")
        assert isinstance(refused, Err) and "TRACKING ON is not supported" in refused
        assert wire(c, "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p") == refused
        assert wire(c, "CLIENT", "GETREDIR") == -1  # still off
        assert wire(c, "CLIENT", "NO-TOUCH", "ON") == "OK"  # Redis 7.2's
        assert wire(c, "CLIENT", "NO-TOUCH", "OFF") == "OK"


# --- command table: what cluster-aware clients read -------------------------------------

NEW_COMMANDS = ("setnx", "setex", "psetex", "getset", "getdel", "getex", "msetnx", "append",
                "strlen", "getrange", "setrange", "unlink", "type", "expireat", "pexpireat",
                "expiretime", "pexpiretime", "touch", "time", "lastsave", "config", "flushdb",
                "memory", "reset", "client", "set", "expire", "pexpire")
CORE_FLAGS = {"write", "readonly", "denyoom", "fast", "loading", "stale"}


def _info(client: redis.Redis, name: str) -> list:
    reply = wire(client, "COMMAND", "INFO", name)
    assert isinstance(reply, list) and reply[0] is not None, f"COMMAND INFO {name}: {reply!r}"
    return reply[0]


def test_command_info_matches_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    dyn = cluster.client(0)
    for name in NEW_COMMANDS:
        ours, theirs = _info(dyn, name), _info(real_redis, name)
        assert ours[:2] == theirs[:2], name  # name, arity
        assert ours[3:6] == theirs[3:6], name  # first key, last key, step
        if name not in ("config", "memory", "client", "reset"):
            assert set(ours[2]) & CORE_FLAGS == set(theirs[2]) & CORE_FLAGS, name
        subs = {s[0]: s for s in theirs[9]}
        for sub in ours[9]:
            if sub[0] in subs:  # CLIENT NO-TOUCH is newer than redis-server 7.0
                assert sub[:2] == subs[sub[0]][:2] and sub[3:6] == subs[sub[0]][3:6], sub[0]
    assert {s[0] for s in _info(dyn, "config")[9]} >= {"config|get", "config|set",
                                                        "config|resetstat"}
    assert _info(dyn, "memory|usage")[:6] == _info(real_redis, "memory|usage")[:6]
    assert _info(dyn, "config|get")[:2] == ["config|get", -3]


GETKEYS_CASES = [
    ("MSETNX", "a", "1", "b", "2", "c", "3"), ("UNLINK", "a", "b"), ("TOUCH", "a", "b", "c"),
    ("GETEX", "a", "EX", "10"), ("SETRANGE", "a", "0", "x"), ("EXPIREAT", "a", "1", "NX"),
    ("PEXPIRETIME", "a"), ("GETDEL", "a"), ("SETEX", "a", "1", "v"), ("TYPE", "a"),
    ("MEMORY", "USAGE", "a"), ("MEMORY", "USAGE", "a", "SAMPLES", "5"),
]


def test_command_getkeys_and_redis_py_key_routing(cluster: Cluster,
                                                  real_redis: redis.Redis) -> None:
    same(cluster, real_redis, *[("COMMAND", "GETKEYS", *case) for case in GETKEYS_CASES])
    # redis-py's cluster client finds keys from COMMAND's table, subcommands included.
    ours, theirs = CommandsParser(cluster.client(1)), CommandsParser(real_redis)
    for case in GETKEYS_CASES:
        assert ours.get_keys(cluster.client(1), *case) == theirs.get_keys(real_redis, *case)
    assert ours.get_keys(cluster.client(1), "MEMORY USAGE", "k") == ["k"]
    assert ours.get_keys(cluster.client(1), "CONFIG GET", "maxmemory") is None


@pytest.mark.parametrize("proto", [2, 3])
def test_replies_are_byte_identical(cluster: Cluster, real_redis: redis.Redis,
                                    proto: int) -> None:
    k, j, missing = key("raw"), key("raw-j"), key("raw-missing")
    at = ms_from_now(3_600_000)
    same_bytes(
        cluster, real_redis, proto, proto - 1,
        ("SETNX", k, "hello"), ("SETNX", k, "x"), ("TYPE", k), ("TYPE", missing),
        ("APPEND", k, " world"), ("STRLEN", k), ("GETRANGE", k, "0", "4"),
        ("GETRANGE", missing, "0", "4"), ("SETRANGE", k, "0", "J"), ("GETSET", k, "v"),
        ("GETSET", missing, "v"), ("GETDEL", missing), ("GETEX", k, "PXAT", str(at)),
        ("PEXPIRETIME", k), ("EXPIRETIME", k), ("EXPIRETIME", missing),
        ("PEXPIREAT", k, str(at), "GT"), ("EXPIREAT", k, str(at // 1000 - 10), "LT"),
        ("SETEX", j, "100", "v"), ("PSETEX", j, "100000", "v"), ("MSETNX", j, "1", k, "2"),
        ("TOUCH", k, j, missing), ("UNLINK", j, missing), ("GETDEL", k), ("GETDEL", k),
        ("MEMORY", "USAGE", missing), ("CONFIG", "GET", "appendonly"),
        ("CONFIG", "GET", "nosuch"), ("CONFIG", "SET", "save", ""), ("CONFIG", "RESETSTAT"),
        ("CLIENT", "TRACKING", "OFF"), ("CLIENT", "TRACKINGINFO"), ("CLIENT", "GETREDIR"),
        ("CLIENT", "CACHING", "NO"), ("SETRANGE", missing, "-1", "x"), ("GETEX", k, "BOGUS"),
        ("COMMAND", "GETKEYS", "MEMORY", "USAGE", k), ("DEL", missing), ("RESET",),
        ("GET", missing), ("CONFIG", "GET", "save"))
