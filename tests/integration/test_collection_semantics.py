"""Collection commands on one replica's view against a real redis-server, reply for reply.

The same hypothesis-drawn command sequences go to redis-server and to `LocalRunner`
(tests/collharness.py: the command builders and operations a coordinator runs, on an
in-memory store). Replies are compared exactly as parsed from RESP, except that replies
Redis orders by its hash table (HGETALL, HKEYS, HVALS, SMEMBERS ...) are compared as
sorted lists. The cluster paths (sync, replication, forwarding) are compared the same
way against real nodes in compat/test_differential.py.
"""

from __future__ import annotations

import socket

import hiredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collharness import LocalRunner
from tests.integration.conftest import HOST, resp_command

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
UNORDERED = {b"HGETALL", b"HKEYS", b"HVALS", b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF"}


class Real:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.reader = hiredis.Reader()

    def call(self, *args: bytes) -> object:
        self.sock.sendall(resp_command(*args))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            self.reader.feed(self.sock.recv(65536))


def parse(data: bytes) -> object:
    r = hiredis.Reader()
    r.feed(data)
    out = r.gets()
    assert r.gets() is False, "one reply expected"
    return out


def normal(cmd: tuple[bytes, ...], reply: object) -> object:
    if isinstance(reply, hiredis.ReplyError):
        return ("error", str(reply))
    name = cmd[0].upper()
    if name in UNORDERED and isinstance(reply, list):
        if name == b"HGETALL":
            return sorted(zip(reply[::2], reply[1::2], strict=True))
        return sorted(reply)
    if name in (b"HSCAN", b"SSCAN") and isinstance(reply, list):
        inner = reply[1]
        if name == b"HSCAN":
            return [reply[0], sorted(zip(inner[::2], inner[1::2], strict=True))]
        return [reply[0], sorted(inner)]
    return reply


@pytest.fixture(scope="module")
def real(real_redis) -> Real:
    return Real(real_redis.port)


def check(real: Real, seq: list[tuple[bytes, ...]]) -> None:
    real.call(b"FLUSHALL")
    local = LocalRunner()
    for i, cmd in enumerate(seq):
        want = normal(cmd, real.call(*cmd))
        got = normal(cmd, parse(local.run(*cmd)))
        assert got == want, f"step {i}: {cmd!r}: dynredis {got!r}, redis {want!r}"


KEYS = [b"h1", b"h2", b"str"]
FIELDS = [b"a", b"b", b"c", b"n", b""]
VALUES = [b"1", b"-5", b"x", b"", b"3.5", b"9223372036854775807", b"1e3"]
INCRS = [b"1", b"-1", b"100", b"9223372036854775807", b"x", b"0x10"]
FLOATS = [b"1.5", b"-0.25", b"1e3", b"inf", b"x", b"0"]

key = st.sampled_from(KEYS)
field = st.sampled_from(FIELDS)
value = st.sampled_from(VALUES)

hash_cmd = st.one_of(
    st.builds(lambda k, fv: (b"HSET", k, *[x for p in fv for x in p]), key,
              st.lists(st.tuples(field, value), min_size=1, max_size=3)),
    st.builds(lambda k, fv: (b"HMSET", k, *[x for p in fv for x in p]), key,
              st.lists(st.tuples(field, value), min_size=1, max_size=3)),
    st.builds(lambda k, f, v: (b"HSETNX", k, f, v), key, field, value),
    st.builds(lambda k, fs: (b"HDEL", k, *fs), key, st.lists(field, min_size=1, max_size=3)),
    st.builds(lambda k, f: (b"HGET", k, f), key, field),
    st.builds(lambda k, fs: (b"HMGET", k, *fs), key, st.lists(field, min_size=1, max_size=3)),
    st.builds(lambda k, f: (b"HEXISTS", k, f), key, field),
    st.builds(lambda k, f: (b"HSTRLEN", k, f), key, field),
    st.builds(lambda k, f, n: (b"HINCRBY", k, f, n), key, field, st.sampled_from(INCRS)),
    st.builds(lambda k, f, n: (b"HINCRBYFLOAT", k, f, n), key, field, st.sampled_from(FLOATS)),
    st.builds(lambda k: (b"HLEN", k), key),
    st.builds(lambda k: (b"HGETALL", k), key),
    st.builds(lambda k: (b"HKEYS", k), key),
    st.builds(lambda k: (b"HVALS", k), key),
    st.builds(lambda k: (b"HSCAN", k, b"0"), key),
    st.builds(lambda k: (b"HSCAN", k, b"0", b"MATCH", b"[ab]*", b"COUNT", b"1000"), key),
    st.builds(lambda k: (b"HRANDFIELD", k, b"0"), key),
    st.builds(lambda k: (b"TYPE", k), key),
    st.builds(lambda k: (b"EXISTS", k), key),
    st.builds(lambda k: (b"DEL", k), key),
    st.just((b"SET", b"str", b"v")),
    st.just((b"GET", b"str")),
)


@SETTINGS
@given(st.lists(hash_cmd, max_size=25))
def test_hashes(real, seq):
    check(real, seq)


def test_hash_errors_and_edges(real):
    check(real, [
        (b"HSET", b"h", b"f"),
        (b"HSET", b"h", b"f", b"1", b"g"),
        (b"HINCRBY", b"h", b"f", b"9223372036854775807"),
        (b"HINCRBY", b"h", b"f", b"-9223372036854775808"),
        (b"HINCRBY", b"h", b"f", b"1"),
        (b"HINCRBYFLOAT", b"h", b"f", b"1e400"),
        (b"HINCRBYFLOAT", b"h", b"g", b"nan"),
        (b"HRANDFIELD", b"h", b"1", b"WITHSCORES"),
        (b"HRANDFIELD", b"h", b"1", b"WITHVALUES"),
        (b"HRANDFIELD", b"nokey", b"-3"),
        (b"HRANDFIELD", b"nokey"),
        (b"HSCAN", b"h", b"x"),
        (b"HSCAN", b"h", b"0", b"COUNT", b"0"),
        (b"HSCAN", b"h", b"0", b"COUNT"),
        (b"HSCAN", b"h", b"0", b"FOO", b"1"),
        (b"HDEL", b"h", b"f", b"g", b"f"),
        (b"EXISTS", b"h"),
    ])
