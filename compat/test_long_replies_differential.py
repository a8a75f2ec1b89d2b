"""Long collection replies inside EXEC and scripts, byte for byte against a real
`redis-server` (a 1-node and a 3-node dynredis, test_differential.py's targets): replies
of more rows than a loop turn encodes (resp/bulks.py STREAM_ROWS) are written over
turns in EXEC (streamed.ChainReply), encoded over turns for a script's redis.call
(calls.ScriptCall.send_streamed) and, over STREAM_SLICE bytes, a script's own reply is
written over turns; the bytes must stay Redis' own, in RESP2 and RESP3."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import BinaryIO

import pytest

from compat.test_differential import Conn, targets  # noqa: F401  (a fixture)
from dynredis.resp.bulks import STREAM_ROWS
from tests.integration.conftest import HOST, resp_command

pytestmark = pytest.mark.timeout(600)

LIST_ITEMS = 3 * STREAM_ROWS + 5  # over 1 MB as a script's reply of it twice
ZSET_MEMBERS = 2 * STREAM_ROWS + 3
BATCH = 2000

LIBRARY = (b"#!lua name=longreplies\n"
           b"redis.register_function('lrange_all', function(keys) "
           b"return redis.call('LRANGE', keys[1], 0, -1) end)")
TWICE = (b"local a = redis.call('LRANGE', KEYS[1], 0, -1) "
         b"local b = redis.call('LRANGE', KEYS[1], 0, -1) "
         b"local n = #a for i = 1, #b do a[n + i] = b[i] end return a")

CORPUS: list[tuple[bytes, ...]] = [
    (b"MULTI",), (b"LRANGE", b"l", b"0", b"-1"), (b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"),
    (b"LRANGE", b"l", b"0", b"99"), (b"ZREVRANGE", b"z", b"0", b"-1"), (b"EXEC",),
    (b"EVAL", b"return redis.call('LRANGE', KEYS[1], 0, -1)", b"1", b"l"),
    (b"EVAL", b"return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", b"1", b"z"),
    (b"EVAL", b"redis.setresp(3) return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
     b"1", b"z"),
    (b"EVAL", b"return #redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf')", b"1", b"z"),
    (b"EVAL", TWICE, b"1", b"l"),
    (b"FUNCTION", b"LOAD", b"REPLACE", LIBRARY), (b"FCALL", b"lrange_all", b"1", b"l"),
    (b"MULTI",), (b"EVAL", b"return redis.call('LRANGE', KEYS[1], 0, -1)", b"1", b"l"),
    (b"LRANGE", b"l", b"0", b"-1"), (b"EXEC",),
    (b"FUNCTION", b"DELETE", b"longreplies"),
]


def _raw(f: BinaryIO, sock: socket.socket, *args: bytes) -> bytes:
    """One command's reply as it comes off the wire."""
    sock.sendall(resp_command(*args))
    out: list[bytes] = []
    _read(f, out)
    return b"".join(out)


def _read(f: BinaryIO, out: list[bytes]) -> None:
    """One RESP2/RESP3 value's bytes, read from `f` into `out`."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"closed ({line!r})")
    out.append(line)
    kind, n = line[:1], line[1:-2]
    if kind in b"$=!" and int(n) >= 0:
        out.append(f.read(int(n) + 2))
    elif kind in b"*~>" and int(n) > 0:
        for _ in range(int(n)):
            _read(f, out)
    elif kind in b"%|":
        for _ in range(2 * int(n)):
            _read(f, out)
        if kind == b"|":
            _read(f, out)  # (an attribute comes before the reply it describes)


def _fill(f: BinaryIO, sock: socket.socket) -> None:
    _raw(f, sock, b"FLUSHALL")
    for at in range(0, LIST_ITEMS, BATCH):
        _raw(f, sock, b"RPUSH", b"l", *[b"item-%06d" % i
                                     for i in range(at, min(LIST_ITEMS, at + BATCH))])
    for at in range(0, ZSET_MEMBERS, BATCH):
        _raw(f, sock, b"ZADD", b"z", *[w for i in range(at, min(ZSET_MEMBERS, at + BATCH))
                                    for w in (b"%d.25" % (i % 977), b"m%d" % i)])


@pytest.mark.compat(client="differential", family="transactions")
@pytest.mark.parametrize("proto", [2, 3])
def test_long_replies_in_exec_and_scripts_are_redis_own(
        targets: list[Conn], proto: int) -> None:  # noqa: F811
    _compare(targets, proto, _fill, CORPUS)


def _compare(targets: list[Conn], proto: int,  # noqa: F811
             fill: Callable[[BinaryIO, socket.socket], None],
             corpus: list[tuple[bytes, ...]]) -> None:
    """Every target, `fill`ed, answers each command of `corpus` as redis-server does."""
    socks = [socket.create_connection((HOST, t.port), timeout=60) for t in targets]
    files = [s.makefile("rb") for s in socks]
    try:
        for f, s in zip(files, socks, strict=True):
            _raw(f, s, b"HELLO", b"%d" % proto)
            fill(f, s)
        for args in corpus:
            want = _raw(files[0], socks[0], *args)
            for t, f, s in zip(targets[1:], files[1:], socks[1:], strict=True):
                got = _raw(f, s, *args)
                assert got == want, (f"{t.name} differs from redis-server on "
                                     f"{args[:3]!r:.200}: {len(got)} bytes against {len(want)}, "
                                     f"first at {_first_difference(got, want)}")
    finally:
        for f, s in zip(files, socks, strict=True):
            _raw(f, s, b"FLUSHALL")
            f.close()
            s.close()


def _first_difference(a: bytes, b: bytes) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
              min(len(a), len(b)))
    return f"{at}: {a[at:at + 40]!r} against {b[at:at + 40]!r}"


BIG = bytes(range(251)) * ((9 << 20) // 251) + b"the end"  # large, and not cached
BIG_CORPUS: list[tuple[bytes, ...]] = [
    (b"SET", b"str", BIG),
    (b"EVAL", b"return redis.call('GET', KEYS[1])", b"1", b"str"),
    (b"EVAL", b"return redis.call('GETRANGE', KEYS[1], 0, -1)", b"1", b"str"),
    (b"EVAL", b"return redis.call('GETRANGE', KEYS[1], 5, -8)", b"1", b"str"),
    (b"EVAL", b"local v = redis.pcall('GET', KEYS[1]) return {#v, string.sub(v, -9)}",
     b"1", b"str"),
    (b"EVAL", b"redis.setresp(3) return redis.call('GET', KEYS[1])", b"1", b"str"),
    (b"EVAL", b"return redis.call('MGET', KEYS[1], 'nokey', KEYS[1])", b"1", b"str"),
    (b"EVAL", b"return redis.call('GETSET', KEYS[1], 'small')", b"1", b"str"),
    (b"SET", b"str", BIG),
    (b"EVAL", b"return #redis.call('GETDEL', KEYS[1])", b"1", b"str"),
    (b"EXISTS", b"str"),
]


@pytest.mark.compat(client="differential", family="scripting")
@pytest.mark.parametrize("proto", [2, 3])
def test_a_scripts_reads_of_a_large_string_are_redis_own(
        targets: list[Conn], proto: int) -> None:  # noqa: F811
    """A script's GET, GETRANGE, MGET, GETSET and GETDEL of a value of 9 MiB (taken from
    the store a slice a loop turn, handed to the script in parts: calls.ScriptCall
    .send_stored) and its reply of it: the bytes redis-server's give."""
    _compare(targets, proto, _flush, BIG_CORPUS)


def _flush(f: BinaryIO, sock: socket.socket) -> None:
    _raw(f, sock, b"FLUSHALL")
