"""Large values against real node processes (issue 12, finding 9): a node stays
responsive with large values in flight.

Two 100 MiB SETs of one key both failed NOQUORUM although stored everywhere, and the
cluster stayed degraded with no traffic (every node decoding the value in its
tombstone sweep each second, heartbeats stuck behind the value on the peer links);
1,000 pipelined GETs of a 1 MB value made the coordinator mark its peers down. These
tests use 64 MiB (the machine is shared); nothing here measures time: "responsive"
means other clients' small writes all succeed meanwhile and no node counts a peer
down.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from .conftest import Cluster, ClusterFactory, parse_info, raw_command, wait_until

pytestmark = pytest.mark.timeout(300)

BIG = 64 << 20


@pytest.fixture(scope="module")
def big_cluster(module_cluster_factory: ClusterFactory) -> Cluster:
    return module_cluster_factory("--tombstone-grace-ms", "1000")


class SmallWrites:
    """Small SETs through one node, one after another, in a thread, until stopped."""

    def __init__(self, cluster: Cluster, node: int) -> None:
        self.client = cluster.client(node, socket_timeout=30)
        self.done = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.client.set(f"small:{self.done % 100}", "x")
            except redis.RedisError as exc:
                self.errors.append(repr(exc))
            self.done += 1

    def __enter__(self) -> SmallWrites:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        self.client.close()


def members_down(cluster: Cluster) -> list[str]:
    return [cluster.info(j)["members_down"] for j in range(cluster.nodes)]


@pytest.fixture
def big_client(big_cluster: Cluster) -> Iterator[redis.Redis]:
    c = big_cluster.client(0, decode_responses=False, socket_timeout=120)
    yield c
    c.close()


def test_two_large_sets_of_one_key_succeed_while_small_writes_go_on(
        big_cluster: Cluster, big_client: redis.Redis) -> None:
    first = os.urandom(1 << 20) * (BIG >> 20)
    second = first[1:] + b"!"
    with SmallWrites(big_cluster, 1) as small:
        assert big_client.set("big", first) is True
        assert big_client.set("big", second) is True
        reader = big_cluster.client(2, decode_responses=False, socket_timeout=120)
        try:
            assert reader.get("big") == second
        finally:
            reader.close()
    assert small.errors == [] and small.done > 0
    assert members_down(big_cluster) == [""] * big_cluster.nodes

    # Deleted, it is reaped everywhere once the grace period is over.
    reaped_before = [int(big_cluster.info(j)["reaped"]) for j in range(big_cluster.nodes)]
    assert big_client.delete("big") == 1
    wait_until(lambda: all(int(big_cluster.info(j)["reaped"]) > reaped_before[j]
                           for j in range(big_cluster.nodes)), 60, what="the big key reaped")
    assert big_client.exists("big") == 0
    assert members_down(big_cluster) == [""] * big_cluster.nodes


def test_gets_and_a_delete_of_a_large_value_leave_every_node_serving(
        big_cluster: Cluster, big_client: redis.Redis) -> None:
    """A GET is a request of a few bytes: it must not stop any node serving others (a
    replica once read the whole value to say it held the same, a DEL made every replica
    read it). Small writes through every node, the coordinator's included, all succeed
    meanwhile and no node counts a peer down."""
    value = os.urandom(1 << 20) * (BIG >> 20)
    assert big_client.set("bigread", value) is True
    smalls = [SmallWrites(big_cluster, j) for j in range(big_cluster.nodes)]
    for small in smalls:
        small.__enter__()
    try:
        for j in range(big_cluster.nodes):
            reader = big_cluster.client(j, decode_responses=False, socket_timeout=120)
            try:
                assert reader.get("bigread") == value
            finally:
                reader.close()
        assert big_client.delete("bigread") == 1
        assert big_client.get("bigread") is None
    finally:
        for small in smalls:
            small.__exit__()
    assert [(s.errors, s.done > 0) for s in smalls] == [([], True)] * big_cluster.nodes
    assert members_down(big_cluster) == [""] * big_cluster.nodes


def test_a_thousand_pipelined_gets_of_a_1mb_value_keep_every_peer_up(
        big_cluster: Cluster, big_client: redis.Redis) -> None:
    value = os.urandom(1 << 20)
    assert big_client.set("onemb", value) is True
    with SmallWrites(big_cluster, 2) as small:
        pipe = big_client.pipeline(transaction=False)
        for _ in range(1000):
            pipe.get("onemb")
        replies = pipe.execute(raise_on_error=False)
    assert [repr(r)[:80] for r in replies if r != value] == []
    assert small.errors == [] and small.done > 0
    assert members_down(big_cluster) == [""] * big_cluster.nodes


def rss_anon_mb(cluster: Cluster, j: int) -> int:
    """The node's private memory (its heap: what its object cache holds), in MB; LMDB's
    mapped file pages are not in it."""
    pid = int(raw_info(cluster, j, "server")["process_id"])
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) >> 10
    raise AssertionError("no RssAnon in /proc/pid/status")


def raw_info(cluster: Cluster, j: int, section: str) -> dict[str, str]:
    return parse_info(raw_command(cluster.client(j), "INFO", section))


def test_the_object_cache_is_bounded_by_bytes(cluster_factory: ClusterFactory) -> None:
    """500 values of 1 MiB grew every node by 550-740 MB: the cache kept each of them.
    Now it keeps object-cache-max-memory (64 MB) of them, and CONFIG SET changes that."""
    cluster = cluster_factory()
    c = cluster.client(0, decode_responses=False, socket_timeout=60)
    assert c.config_get("object-cache-max-memory") == {"object-cache-max-memory": "67108864"}
    before = [rss_anon_mb(cluster, j) for j in range(cluster.nodes)]
    value = os.urandom(1 << 20)
    for batch in range(25):
        pipe = c.pipeline(transaction=False)
        for i in range(20):
            pipe.set(f"mb:{batch * 20 + i}", value[i:] + value[:i])
        assert pipe.execute() == [True] * 20
    assert c.get("mb:0") == value and c.get("mb:499") == value[19:] + value[:19]
    grown = [rss_anon_mb(cluster, j) - before[j] for j in range(cluster.nodes)]
    assert max(grown) < 200, f"nodes grew by {grown} MB"
    assert c.config_set("object-cache-max-memory", "8mb") is True
    assert c.config_get("object-cache-max-memory") == {"object-cache-max-memory": "8388608"}
    assert int(raw_info(cluster, 0, "dynamo")["object_cache_bytes"]) <= 8 << 20
    c.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_requests_of_a_few_bytes_about_a_large_value_answer_as_for_a_small_one(
        big_cluster: Cluster, protocol: int) -> None:
    """EXISTS, STRLEN, TYPE, TTL, EXPIRE, PERSIST, GETRANGE, GETCTX, GET and MGET of a large
    value through every node, in RESP2 and RESP3 (some of them now read only its header
    and clock), APPEND and SETRANGE (which write it from the store), GETDEL (alone and in
    EXEC); then UNLINK, and every node reads nil. The object caches keep less than
    the value, so it is read from the store, as a 100 MB one is."""
    value = os.urandom(1 << 20) * 8
    key = f"fewbytes:{protocol}"
    clients = [big_cluster.client(j, decode_responses=False, socket_timeout=120,
                                  protocol=protocol) for j in range(big_cluster.nodes)]
    for c in clients:
        assert c.config_set("object-cache-max-memory", "1mb") is True
    try:
        assert clients[0].set(key, value) is True
        for c in clients:
            assert c.exists(key) == 1
            assert c.strlen(key) == len(value)
            assert c.type(key) in (b"string", "string")
            assert c.ttl(key) == -1
            assert c.getrange(key, 0, 10) == value[:11]
            assert c.get(key) == value
            assert c.mget(key, "fewbytes:none", key) == [value, None, value]  # streamed
            assert c.getrange(key, 0, -1) == value  # streamed too
            assert c.getrange(key, 3, -5) == value[3:-4]
            ctx, sibs = c.execute_command("GETCTX", key)
            assert list(sibs) == [value]
        assert clients[1].expire(key, 100) is True
        for c in clients:
            assert 0 < c.ttl(key) <= 100
        assert clients[2].persist(key) is True
        assert clients[0].ttl(key) == -1
        assert clients[0].get(key) == value
        assert clients[1].append(key, b"tail") == len(value) + 4
        assert clients[2].setrange(key, 5, b"MID") == len(value) + 4
        assert clients[0].setrange(key, len(value) + 10, b"far") == len(value) + 13
        value = value[:5] + b"MID" + value[8:] + b"tail" + bytes(6) + b"far"
        assert [c.get(key) for c in clients] == [value] * big_cluster.nodes
        assert clients[1].ttl(key) == -1
        assert clients[1].getdel(key) == value  # sent from the store once deleted
        assert [c.get(key) for c in clients] == [None] * big_cluster.nodes
        assert clients[0].getdel(key) is None
        assert clients[0].set(key, value) is True
        tx = clients[2].pipeline(transaction=True)  # EXEC's replies are given whole
        tx.mget(key, "fewbytes:none")
        tx.getrange(key, 1, -1)
        tx.getdel(key)
        tx.exists(key)
        assert tx.execute() == [[value, None], value[1:], value, 0]
        assert clients[0].set(key, value) is True
        assert clients[1].unlink(key) == 1
        for c in clients:
            assert c.get(key) is None
            assert c.exists(key) == 0
            assert c.strlen(key) == 0
            assert c.ttl(key) == -2
        assert clients[0].set(key, value) is True
        assert clients[2].delete(key) == 1
        assert [c.get(key) for c in clients] == [None] * big_cluster.nodes
    finally:
        for c in clients:
            c.config_set("object-cache-max-memory", "64mb")
            c.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_around_a_large_get_keep_their_order(big_cluster: Cluster,
                                                     protocol: int) -> None:
    """A GET of a large value is sent from the store a slice at a time: the replies
    pipelined before and after it come in order, byte-exact, and a client that stops
    reading halfway gets the rest when it reads on."""
    value = os.urandom(1 << 20) * 12
    key = f"ordered:{protocol}"
    c = big_cluster.client(0, decode_responses=False, socket_timeout=120, protocol=protocol)
    for j in range(big_cluster.nodes):
        big_cluster.client(j).config_set("object-cache-max-memory", "1mb")
    try:
        assert c.set(key, value) is True
        pipe = c.pipeline(transaction=False)
        pipe.set("small:before", "b")
        pipe.get(key)
        pipe.ping()
        pipe.get(key)
        pipe.getrange(key, len(value) - 3, -1)
        pipe.get("small:before")
        assert pipe.execute() == [True, value, True, value, value[-3:], b"b"]
        raw = raw_socket(big_cluster, 0)
        try:
            raw.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n"
                        % (len(key), key.encode()))
            head = raw.recv(64)
            time.sleep(1.0)  # the node meanwhile: its transport over its high mark
            want = b"$%d\r\n" % len(value) + value + b"\r\n+PONG\r\n"
            got = bytearray(head)
            while len(got) < len(want):
                chunk = raw.recv(1 << 20)
                assert chunk
                got += chunk
            assert bytes(got) == want
        finally:
            raw.close()
    finally:
        for j in range(big_cluster.nodes):
            big_cluster.client(j).config_set("object-cache-max-memory", "64mb")
        c.close()


def raw_socket(cluster: Cluster, j: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", cluster.ports[j]), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    return s


@pytest.mark.parametrize("protocol", [2, 3])
def test_ranges_and_siblings_of_large_values_read_as_before(big_cluster: Cluster,
                                                            protocol: int) -> None:
    """GETRANGE's quirks over a large value (read in place), and GETCTX and GET of a key
    whose siblings are large values (one sent from the store, or several read whole);
    DELCTX with the context read removes them all everywhere."""
    value = os.urandom(1 << 20) * 4
    other = os.urandom(1 << 20) * 3
    key = f"sibs:{protocol}"
    clients = [big_cluster.client(j, decode_responses=False, socket_timeout=120,
                                  protocol=protocol) for j in range(big_cluster.nodes)]
    for c in clients:
        c.config_set("object-cache-max-memory", "1mb")
    try:
        c = clients[0]
        assert c.set(key, value) is True
        for lo, hi in [(-3, -1), (5, 2), (-5, -10), (len(value) - 2, len(value) + 9),
                       (0, -1), (-len(value) - 7, 3), (len(value), len(value) + 1)]:
            want = getrange(value, lo, hi)
            assert [x.getrange(key, lo, hi) for x in clients] == [want] * len(clients)
        ctx, sibs = c.execute_command("GETCTX", key)
        assert c.execute_command("SETCTX", key, ctx, b"small") == b"OK"  # covers it
        assert c.execute_command("SETCTX", key, ctx, other) == b"OK"  # concurrent
        for x in clients:
            ctx, sibs = x.execute_command("GETCTX", key)
            assert sorted(sibs) == sorted([b"small", other])
            assert x.get(key) in (b"small", other)
        assert c.execute_command("SETCTX", key, ctx, value) == b"OK"
        assert c.execute_command("SETCTX", key, b"", other) == b"OK"  # two large ones
        for x in clients:
            ctx, sibs = x.execute_command("GETCTX", key)
            assert sorted(sibs) == sorted([value, other])
            assert x.strlen(key) in (len(value), len(other))
        assert clients[1].execute_command("DELCTX", key, ctx) in (1, b"OK", True)
        assert [x.get(key) for x in clients] == [None] * len(clients)
    finally:
        for c in clients:
            c.config_set("object-cache-max-memory", "64mb")
            c.close()


def getrange(data: bytes, start: int, end: int) -> bytes:
    """Redis' GETRANGE (the server's own copy of the arithmetic is what is tested)."""
    n = len(data)
    if start < 0 and end < 0 and start > end:
        return b""
    start, end = max(start + n if start < 0 else start, 0), max(end + n if end < 0 else end, 0)
    end = min(end, n - 1)
    return b"" if start > end or n == 0 else data[start:end + 1]


def _answer(c: redis.Redis, *words: object) -> object:
    """A command's reply, or its error's text."""
    try:
        return c.execute_command(*words)
    except redis.ResponseError as e:
        return f"error: {e}"


def _differences(theirs: redis.Redis, ours: list[redis.Redis],
                 cmds: list[tuple[object, ...]]) -> list[str]:
    """Each command run on redis-server and on our nodes in turn: where the replies
    differ."""
    diffs = []
    for i, cmd in enumerate(cmds):
        want, have = _answer(theirs, *cmd), _answer(ours[i % len(ours)], *cmd)
        if have != want:
            diffs.append(f"{cmd[:4]!r} via node {i % len(ours)}: "
                         f"{repr(have)[:80]} != redis-server's {repr(want)[:80]}")
    return diffs


def _clean(theirs: redis.Redis, ours: list[redis.Redis], *keys: str) -> None:
    """Delete the keys on both sides, give our nodes their object cache back, close."""
    theirs.delete(*keys)
    theirs.close()
    for c in ours:
        c.delete(*keys)
        c.config_set("object-cache-max-memory", "64mb")
        c.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_bitmap_commands_on_a_large_value_answer_as_redis(
        big_cluster: Cluster, real_redis: redis.Redis, protocol: int) -> None:
    """GETBIT, SETBIT, BITCOUNT, BITPOS (with a range and without), BITFIELD,
    BITFIELD_RO and BITOP of a 200 KB value (read from the store in place: the object caches
    keep less) through every node, in EXEC and in a script, answer as a real
    redis-server, errors included, and after each write every node reads the value
    redis-server holds."""
    value = bytearray(os.urandom(200_000))
    value[100:103] = b"\xff\xff\xff"
    value[-2:] = b"\xff\xff"
    n = len(value)
    key = f"bits:{protocol}"
    theirs = redis.Redis(host="127.0.0.1", port=real_redis.port,  # type: ignore[attr-defined]
                         decode_responses=False, protocol=protocol)
    clients = [big_cluster.client(j, decode_responses=False, socket_timeout=120,
                                  protocol=protocol) for j in range(big_cluster.nodes)]
    for c in clients:
        assert c.config_set("object-cache-max-memory", "1mb") is True
    reads: list[tuple[object, ...]] = [
        ("GETBIT", 5), ("GETBIT", 8 * n - 1), ("GETBIT", 8 * n + 3), ("GETBIT", -1),
        ("BITCOUNT",), ("BITCOUNT", 0, 9), ("BITCOUNT", -10, -3), ("BITCOUNT", 5, 2),
        ("BITCOUNT", 3, 70, "BIT"), ("BITCOUNT", -3, -5), ("BITCOUNT", 0), ("BITCOUNT", 0, 1, "x"),
        ("BITPOS", 1), ("BITPOS", 0), ("BITPOS", 0, 100, 102), ("BITPOS", 0, 800, 823, "BIT"),
        ("BITPOS", 0, -2), ("BITPOS", 0, -2, -1), ("BITPOS", 1, 3, 77, "bit"), ("BITPOS", 2),
        ("BITFIELD_RO", "GET", "u8", 0, "GET", "i13", "#7", "GET", "i64", 8 * n - 20),
        ("BITFIELD_RO", "SET", "u8", 0, 1), ("BITFIELD", "GET", "u63", 8 * n + 99),
    ]
    writes: list[tuple[object, ...]] = [
        ("SETBIT", 5, 1), ("SETBIT", 5, 0), ("SETBIT", 5, 0), ("SETBIT", 8 * n - 1, 0),
        ("SETBIT", 8 * n + 20, 0), ("SETBIT", 7, 2),
        ("BITFIELD", "SET", "u8", 0, 255, "GET", "u4", 2),
        ("BITFIELD", "INCRBY", "i5", 100, 30, "OVERFLOW", "FAIL", "INCRBY", "u2", "#7", 9,
         "OVERFLOW", "SAT", "INCRBY", "i16", 7, -70000, "GET", "u8", 8 * n + 40),
        ("BITFIELD", "SET", "i16", 8 * n + 210, -2, "GET", "u8", 7),
        ("BITFIELD", "OVERFLOW", "FAIL", "SET", "u2", 8 * n + 700, 9),
        ("BITFIELD", "INCRBY", "u64", 0, 1), ("SETBIT", 8 * (n + 5000), 1),
    ]
    try:
        assert clients[0].set(key, bytes(value)) is True
        assert theirs.set(key, bytes(value)) is True
        for words in reads:
            want = _answer(theirs, words[0], key, *words[1:])
            assert [_answer(c, words[0], key, *words[1:]) for c in clients] == [want] * len(
                clients), words
        # in EXEC and in a script too, of 3 MiB (a count of all of it: 3 loop turns)
        longer = bytes(value) * 16
        assert clients[0].set(key + "l", longer) is True
        assert theirs.set(key + "l", longer) is True
        tx = clients[1].pipeline(transaction=True)
        tx.bitcount(key + "l")
        tx.bitpos(key, 0, 100)
        tx.getbit(key, 7)
        assert tx.execute() == [theirs.bitcount(key + "l"), theirs.bitpos(key, 0, 100),
                                theirs.getbit(key, 7)]
        script = ("return {redis.call('BITCOUNT', KEYS[1]), redis.call('BITPOS', KEYS[1], 0),"
                  "redis.call('BITFIELD_RO', KEYS[1], 'GET', 'u8', 3)}")
        assert clients[2].eval(script, 1, key + "l") == theirs.eval(script, 1, key + "l")
        # BITOP of large values (read in place) and a missing key, then in EXEC
        for i, (op, keys) in enumerate([("AND", [key, key + "l"]), ("OR", [key + "l", key]),
                                        ("XOR", [key, "nokey", key + "l"]), ("NOT", [key])]):
            want = _answer(theirs, "BITOP", op, key + "d", *keys)
            assert _answer(clients[i % len(clients)], "BITOP", op, key + "d", *keys) == want
            held = theirs.get(key + "d")
            assert [c.get(key + "d") for c in clients] == [held] * len(clients), op
        tx = clients[1].pipeline(transaction=True)
        tx.bitop("XOR", key + "d", key + "l", key)
        tx.strlen(key + "d")
        assert tx.execute() == [theirs.bitop("XOR", key + "d", key + "l", key),
                                theirs.strlen(key + "d")]
        assert clients[0].get(key + "d") == theirs.get(key + "d")
        for i, words in enumerate(writes):
            want = _answer(theirs, words[0], key, *words[1:])
            assert _answer(clients[i % len(clients)], words[0], key, *words[1:]) == want, words
            held = theirs.get(key)
            assert [c.get(key) for c in clients] == [held] * len(clients), words
        assert len(held) > n + 5000  # type: ignore[arg-type]
        for words in reads:
            want = _answer(theirs, words[0], key, *words[1:])
            assert _answer(clients[2], words[0], key, *words[1:]) == want, words
    finally:
        theirs.delete(key, key + "l", key + "d")
        theirs.close()
        for c in clients:
            c.delete(key, key + "l", key + "d")
            c.config_set("object-cache-max-memory", "64mb")
            c.close()


def _replies(c: redis.Redis, commands: list[tuple[object, ...]]) -> list[object]:
    """Each command's reply, an error as its text."""
    out: list[object] = []
    for cmd in commands:
        try:
            out.append(c.execute_command(*cmd))
        except redis.ResponseError as exc:
            out.append(f"error: {exc}")
    return out


@pytest.mark.parametrize("cache", ["1mb", "64mb"])
def test_copy_and_rename_of_a_large_value_answer_as_redis_does(
        big_cluster: Cluster, real_redis: redis.Redis, cache: str) -> None:
    """COPY (with and without REPLACE), RENAME, RENAMENX and MOVE of a 200 KB value
    (moved on the plain string paths, heldmoves.py), the value read from the store or
    from the object cache, answer as redis-server does, through every node, and leave
    the value and its expiry under the new names on every node."""
    value = os.urandom(200_000)
    k = f"moves:{cache}:"
    theirs = redis.Redis(host="127.0.0.1", port=real_redis.port,  # type: ignore[attr-defined]
                         decode_responses=False)
    clients = [big_cluster.client(j, decode_responses=False, socket_timeout=120)
               for j in range(big_cluster.nodes)]
    for c in clients:
        c.config_set("object-cache-max-memory", cache)
    commands: list[tuple[object, ...]] = [
        ("SET", k + "a", value), ("COPY", k + "a", k + "b"), ("COPY", k + "a", k + "b"),
        ("COPY", k + "a", k + "b", "REPLACE"), ("GET", k + "b"),
        ("RENAME", k + "b", k + "c"), ("EXISTS", k + "b"), ("GET", k + "c"),
        ("RENAMENX", k + "a", k + "c"), ("RENAMENX", k + "c", k + "d"), ("GET", k + "d"),
        ("PEXPIRE", k + "a", 100_000), ("COPY", k + "a", k + "e"), ("RENAME", k + "e", k + "f"),
        ("RENAME", k + "a", k + "a"), ("RENAMENX", k + "a", k + "a"),
        ("RENAME", k + "none", k + "x"), ("COPY", k + "none", k + "x"),
        ("SET", k + "small", "v"), ("RENAME", k + "d", k + "small"), ("GET", k + "small"),
        ("MOVE", k + "small", 1), ("EXISTS", k + "small"), ("MOVE", k + "f", 1),
    ]
    try:
        ours = [_replies(clients[i % len(clients)], [cmd])[0] for i, cmd in enumerate(commands)]
        assert ours == _replies(theirs, commands)
        for c in clients:
            assert 99 <= c.ttl(k + "a") <= 100 and c.get(k + "a") == value
            assert [c.exists(k + n) for n in "bcdef"] == [0] * 5
        moved = [big_cluster.client(j, decode_responses=False, db=1)
                 for j in range(big_cluster.nodes)]
        for c in moved:
            assert c.get(k + "small") == value and c.get(k + "f") == value
            assert 99 <= c.ttl(k + "f") <= 100
        assert moved[0].delete(k + "small", k + "f") == 2
        for c in moved:
            c.close()
    finally:
        clients[0].delete(k + "a")
        for c in clients:
            c.config_set("object-cache-max-memory", "64mb")
            c.close()
        theirs.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_string_requests_about_a_large_value_answer_as_redis_server_does(
        big_cluster: Cluster, real_redis: redis.Redis, protocol: int) -> None:
    """GETEX with each option, SET NX/XX/GET/KEEPTTL, GETSET, SETNX, MSETNX, the INCR
    family, SUBSTR, LCS and the HyperLogLog commands of a value of 200 KB (left in the
    store by the requests that need not read it, sent from there by those that reply
    with it) through every node, and in EXEC: the replies redis-server gives, and every
    node reads the value it holds."""
    value = os.urandom(200_000)
    key, other = f"strsmall:{protocol}", f"strsmall-other:{protocol}"
    ours = [big_cluster.client(j, decode_responses=False, socket_timeout=60,
                               protocol=protocol) for j in range(big_cluster.nodes)]
    theirs = redis.Redis(host="127.0.0.1", port=real_redis.port,  # type: ignore[attr-defined]
                         protocol=protocol, socket_timeout=60)
    for c in ours:
        assert c.config_set("object-cache-max-memory", "1mb") is True  # not cached
    at = int(time.time()) + 3600
    try:
        cmds: list[tuple[object, ...]] = [
            ("SET", key, value), ("GETEX", key), ("GETEX", key, "EX", "100"), ("TTL", key),
            ("GETEX", key, "PX", "100000"), ("GETEX", key, "PERSIST"), ("TTL", key),
            ("GETEX", key, "PERSIST"), ("GETEX", key, "EXAT", str(at)), ("EXPIRETIME", key),
            ("GETEX", key, "PXAT", str(at * 1000 + 5)), ("PEXPIRETIME", key),
            ("GETEX", key, "EX", "soon"), ("GETEX", key, "PX", "0"), ("GETEX", key, "BAD"),
            ("SET", key, "v", "NX"), ("SET", key, "v", "NX", "GET"), ("SETNX", key, "v"),
            ("MSETNX", other, "1", key, "2"), ("EXISTS", other), ("STRLEN", key),
            ("LCS", key, other), ("LCS", other, key, "IDX"), ("LCS", key, key, "LEN"),
            ("PFCOUNT", key), ("PFCOUNT", other, key), ("PFADD", key, "x"),
            ("PFMERGE", other, key), ("EXISTS", other),
            ("INCR", key), ("DECR", key), ("INCRBY", key, "5"), ("DECRBY", key, "5"),
            ("INCRBYFLOAT", key, "1.5"), ("SUBSTR", key, "5", "20"),
            ("SUBSTR", key, "-10", "-1"), ("SUBSTR", key, "199990", "300000"),
            ("SET", key, "v", "XX", "KEEPTTL", "GET"), ("PEXPIRETIME", key), ("GET", key),
            ("SET", key, value), ("GETSET", key, "small"), ("GET", key),
            ("SET", key, value, "EX", "100"), ("SET", key, "w", "GET"), ("TTL", key),
            ("SET", key, value), ("SET", key, "x", "XX"), ("GET", key),
            ("SET", key, value), ("GETEX", key, "PXAT", "1"), ("EXISTS", key),
            ("GETEX", key, "EX", "10"), ("SET", key, value, "NX", "GET"), ("STRLEN", key)]
        assert _differences(theirs, ours, cmds) == []
        assert [c.get(key) for c in ours] == [value] * len(ours)
        sizes = {c.memory_usage(key) for c in ours}  # counted where it is stored
        assert len(sizes) == 1 and sizes.pop() > len(value)
        for j, c in enumerate(ours):  # EXEC's replies are given whole
            tx, real = c.pipeline(transaction=True), theirs.pipeline(transaction=True)
            for p in (tx, real):
                p.getex(key, ex=100)
                p.set(key, b"tx%d" % j, get=True)
                p.getset(key, value)
            assert tx.execute() == real.execute() == [value, value, b"tx%d" % j]
        assert [c.get(key) for c in ours] == [value] * len(ours)
    finally:
        _clean(theirs, ours, key, other)


def _bytes_read(pids: list[int]) -> int:
    """Bytes the processes took in through read calls (sockets included: /proc io)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/io") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("rchar:"))
    return total


def test_collection_commands_on_a_large_string_answer_wrongtype_without_moving_it(
        big_cluster: Cluster, real_redis: redis.Redis) -> None:
    """Commands of the hash, set, sorted-set and list families (single keys, and the
    plans of SORT, SUNION, ZUNIONSTORE, LMOVE, SMOVE, LMPOP, BLPOP) on a key holding a 2 MB
    string, through every node: redis-server's WRONGTYPE replies, and the value is not
    sent between nodes to give them (each command's quorum sync carried it from both
    other replicas: 4 MB a command), nor changed."""
    value = os.urandom(2 << 20)
    key, other = "typed:big", "typed:other"
    ours = [big_cluster.client(j, decode_responses=False, socket_timeout=60)
            for j in range(big_cluster.nodes)]
    theirs = redis.Redis(host="127.0.0.1", port=real_redis.port,  # type: ignore[attr-defined]
                         socket_timeout=60)
    for c in ours:
        assert c.config_set("object-cache-max-memory", "1mb") is True  # not cached
    cmds: list[tuple[object, ...]] = [
        ("HGET", key, "f"), ("HSET", key, "f", "v"), ("HGETALL", key), ("HSCAN", key, "0"),
        ("SMEMBERS", key), ("SADD", key, "m"), ("SISMEMBER", key, "m"), ("SCARD", key),
        ("ZADD", key, "1", "m"), ("ZRANGE", key, "0", "-1"), ("ZSCORE", key, "m"),
        ("LPUSH", key, "a"), ("LRANGE", key, "0", "-1"), ("LLEN", key), ("LPOP", key),
        ("SORT", key), ("SUNION", key, other), ("SINTERSTORE", other, key),
        ("ZUNIONSTORE", other, "1", key), ("LMOVE", key, other, "LEFT", "RIGHT"),
        ("SMOVE", key, other, "m"), ("LMPOP", "1", key, "LEFT"), ("BLPOP", key, "0.1"),
        ("ZRANGESTORE", other, key, "0", "-1"), ("ZPOPMIN", key), ("GEOADD", key, "1", "2", "m"),
        ("LPOS", key, "a"), ("HINCRBY", key, "f", "1"), ("SPOP", key), ("ZINCRBY", key, "1", "m"),
        ("RPUSHX", key, "a"), ("SRANDMEMBER", key), ("ZCARD", key), ("HRANDFIELD", key)]
    try:
        for c in (ours[0], theirs):
            assert c.set(key, value) is True
        before = _bytes_read(big_cluster.pids)
        diffs = _differences(theirs, ours, cmds)
        moved = _bytes_read(big_cluster.pids) - before
        assert diffs == []
        assert moved < len(value), f"{moved} bytes read by the nodes"
        assert [c.get(key) for c in ours] == [value] * len(ours)
        assert [c.exists(other) for c in ours] == [0] * len(ours)
    finally:
        _clean(theirs, ours, key, other)


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_transaction_sends_large_values_from_the_store(
        big_cluster: Cluster, real_redis: redis.Redis, protocol: int) -> None:
    """MULTI/EXEC (redis-py's default pipeline) with GETs of a 2 MB value, its whole
    range, MGET, a 20,000-field HGETALL and small commands around them, through every
    node: redis-server's replies, in order (EXEC's reply now sends the value from the
    store and the hash's fields a slice at a time, between the other replies)."""
    value = os.urandom(2 << 20)
    key, hkey, small = f"txbig:{protocol}", f"txhash:{protocol}", f"txsmall:{protocol}"
    fields = {b"f%d" % i: b"v%d" % i for i in range(20_000)}
    ours = [big_cluster.client(j, decode_responses=False, socket_timeout=60,
                               protocol=protocol) for j in range(big_cluster.nodes)]
    theirs = redis.Redis(host="127.0.0.1", port=real_redis.port,  # type: ignore[attr-defined]
                         socket_timeout=60, protocol=protocol)
    for c in ours:
        assert c.config_set("object-cache-max-memory", "1mb") is True  # not cached

    def run(c: redis.Redis, j: int) -> list[object]:
        tx = c.pipeline(transaction=True)
        tx.set(small, b"s%d" % j)
        tx.get(key)
        tx.ping()
        tx.getrange(key, 0, -1)
        tx.mget(key, "txbig:missing", small)
        tx.hgetall(hkey)
        tx.get(small)
        return tx.execute()  # type: ignore[no-any-return]

    try:
        for c in (ours[0], theirs):
            assert c.set(key, value) is True
            assert c.hset(hkey, mapping=fields) == len(fields)
        for j, c in enumerate(ours):
            want, have = run(theirs, j), run(c, j)
            assert have == want
            assert have[1] == value and have[5] == fields
    finally:
        _clean(theirs, ours, key, hkey, small)


def test_a_large_value_replied_whole_through_any_node_is_the_value(
        big_cluster: Cluster) -> None:
    """GETDEL, GETSET, GETEX with an option and GET of a 40 MiB value through every node
    (a write is handed to the key's first replica, whose reply goes back whole in a peer
    message; so does EXEC's): the reply, joined from the pinned value 16 MiB a loop turn
    (commands/wholereply.py), is the value, and the key is as each command left it."""
    value = os.urandom(40 << 20)
    clients = [big_cluster.client(j, decode_responses=False, socket_timeout=120)
               for j in range(big_cluster.nodes)]
    key = "whole:40m"
    try:
        for j, c in enumerate(clients):
            assert c.set(key, value) is True
            assert c.getex(key, px=500_000) == value
            assert 0 < c.pttl(key) <= 500_000
            assert c.getset(key, b"small%d" % j) == value
            assert c.get(key) == b"small%d" % j
            assert c.set(key, value) is True
            tx = c.pipeline(transaction=True)
            tx.get(key)
            tx.getex(key, persist=True)
            assert tx.execute() == [value, value]
            assert c.getdel(key) == value
            assert [other.exists(key) for other in clients] == [0] * len(clients)
    finally:
        clients[0].delete(key)
        for c in clients:
            c.close()


def test_copy_rename_and_move_of_a_value_longer_than_a_turns_copy_keep_it_whole(
        big_cluster: Cluster) -> None:
    """COPY, RENAME and MOVE of a 40 MiB value through every node: where the plan runs on
    the plain string paths (heldmoves.py), the value pinned in the store is copied out
    16 MiB a loop turn before its write; the destinations hold it, with its expiry."""
    value = os.urandom(40 << 20)
    clients = [big_cluster.client(j, decode_responses=False, socket_timeout=120)
               for j in range(big_cluster.nodes)]
    moved = [big_cluster.client(j, decode_responses=False, db=1, socket_timeout=120)
             for j in range(big_cluster.nodes)]
    try:
        for j, c in enumerate(clients):
            a, b, d = (f"heldmove:{j}:{n}".encode() for n in "abd")
            assert c.set(a, value, px=500_000) is True
            assert c.copy(a, b) is True
            assert c.rename(b, d) is True
            assert c.execute_command("MOVE", d, 1) == 1
            for other, other_moved in zip(clients, moved, strict=True):
                assert other.get(a) == value and other.exists(b, d) == 0
                assert other_moved.get(d) == value
                assert 0 < other_moved.pttl(d) <= 500_000
            assert c.delete(a) == 1 and moved[0].delete(d) == 1
    finally:
        for c in (*clients, *moved):
            c.close()
