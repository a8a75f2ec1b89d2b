"""List commands on one replica's view against a real redis-server, byte for byte.

As in test_collection_semantics.py, hypothesis draws command sequences over a few keys
(list commands mixed with DEL, TYPE, EXISTS, SET, GET) and sends each to redis-server
and to `LocalRunner`. List replies have one order, so here the raw reply bytes are
compared, in RESP2 and in RESP3: a nil bulk string, a nil array and an empty array are
three different answers (LPOP key vs LPOP key 0 vs LPOP missing 2) that a parsed reply
would blur.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.collharness import LocalRunner
from tests.integration.conftest import HOST, resp_command
from tests.integration.test_collection_semantics import SETTINGS


class RawReal:
    """A connection to redis-server that answers each command with its raw bytes."""

    def __init__(self, port: int, proto: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.proto = proto
        if proto == 3:
            self.call(b"HELLO", b"3")

    def call(self, *args: bytes) -> bytes:
        self.sock.sendall(resp_command(*args))
        reader = hiredis.Reader()
        raw = b""
        while reader.gets() is False:  # one command in flight: its reply is every byte
            chunk = self.sock.recv(65536)
            assert chunk, "redis-server closed the connection"
            raw += chunk
            reader.feed(chunk)
        return raw

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module", params=[2, 3], ids=["resp2", "resp3"])
def real(real_redis, request) -> RawReal:
    conn = RawReal(real_redis.port, request.param)
    yield conn
    conn.close()


def check(real: RawReal, seq: list[tuple[bytes, ...]]) -> None:
    real.call(b"FLUSHALL")
    local = LocalRunner()
    for i, cmd in enumerate(seq):
        want = real.call(*cmd)
        got = local.run(*cmd, proto=real.proto)
        assert got == want, f"step {i}: {cmd!r}: dynredis {got!r}, redis {want!r}"


KEYS = [b"l1", b"l1", b"l2", b"str"]  # l1 most often: longer histories on one list
VALUES = [b"a", b"b", b"", b"1"]  # few values: LREM, LPOS and LINSERT find matches
INDEXES = [b"0", b"1", b"2", b"-1", b"-2", b"-3", b"5", b"-100", b"100",
           b"9223372036854775807", b"-9223372036854775808", b"x"]
COUNTS = [b"0", b"1", b"2", b"3", b"-1", b"-2", b"100", b"x"]
REM_COUNTS = [b"0", b"1", b"2", b"-1", b"-2", b"x"]
ENDS = [b"LEFT", b"RIGHT", b"left", b"Right"]

key = st.sampled_from(KEYS)
value = st.sampled_from(VALUES)
values = st.lists(value, min_size=1, max_size=6)
index = st.sampled_from(INDEXES)
count = st.sampled_from(COUNTS)
end = st.sampled_from(ENDS)

lpos_option = st.tuples(st.sampled_from([b"RANK", b"COUNT", b"MAXLEN"]),
                        st.sampled_from([b"1", b"2", b"-1", b"-2", b"0", b"3"]))

# Blocking pops with timeouts that end (a client alone: nobody pushes while it waits),
# and timeouts Redis refuses.
timeout = st.sampled_from([b"0.001", b"0.001", b"0.0001", b"0.01", b"1e-400", b"-1",
                           b"-0.002", b"x", b"inf", b"1e300", b" 1"])
blocking_cmd = st.one_of(
    st.builds(lambda c, ks, t: (c, *ks, t), st.sampled_from([b"BLPOP", b"BRPOP"]),
              st.lists(key, min_size=1, max_size=3), timeout),
    st.builds(lambda a, b, f, to, t: (b"BLMOVE", a, b, f, to, t), key, key, end,
              st.sampled_from(ENDS + [b"UP"]), timeout),
    st.builds(lambda a, b, t: (b"BRPOPLPUSH", a, b, t), key, key, timeout),
    st.builds(lambda t, ks, w, n: (b"BLMPOP", t, b"%d" % len(ks), *ks, w, *n), timeout,
              st.lists(key, min_size=1, max_size=3), end,
              st.sampled_from([(), (b"COUNT", b"1"), (b"COUNT", b"3"), (b"COUNT", b"0")])),
)

push_cmd = st.builds(lambda c, k, vs: (c, k, *vs),
                    st.sampled_from([b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"]), key, values)

list_cmd = st.one_of(
    push_cmd,
    push_cmd,
    st.builds(lambda c, k: (c, k), st.sampled_from([b"LPOP", b"RPOP"]), key),
    st.builds(lambda c, k, n: (c, k, n), st.sampled_from([b"LPOP", b"RPOP"]), key, count),
    st.builds(lambda k: (b"LLEN", k), key),
    st.builds(lambda k, a, b: (b"LRANGE", k, a, b), key, index, index),
    st.builds(lambda k: (b"LRANGE", k, b"0", b"-1"), key),
    st.builds(lambda k, i: (b"LINDEX", k, i), key, index),
    st.builds(lambda k, i, v: (b"LSET", k, i, v), key, index, value),
    st.builds(lambda k, side, p, v: (b"LINSERT", k, side, p, v), key,
              st.sampled_from([b"BEFORE", b"AFTER", b"after", b"MIDDLE"]), value, value),
    st.builds(lambda k, n, v: (b"LREM", k, n, v), key, st.sampled_from(REM_COUNTS), value),
    st.builds(lambda k, a, b: (b"LTRIM", k, a, b), key, index, index),
    st.builds(lambda k, v, opts: (b"LPOS", k, v, *[x for o in opts for x in o]), key, value,
              st.lists(lpos_option, max_size=3)),
    st.builds(lambda a, b, f, t: (b"LMOVE", a, b, f, t), key, key, end, end),
    st.builds(lambda a, b: (b"RPOPLPUSH", a, b), key, key),
    st.builds(lambda ks, w, n: (b"LMPOP", b"%d" % len(ks), *ks, w, *n),
              st.lists(key, min_size=1, max_size=3), end,
              st.sampled_from([(), (b"COUNT", b"1"), (b"COUNT", b"2"), (b"COUNT", b"10")])),
    st.builds(lambda k: (b"TYPE", k), key),
    st.builds(lambda k: (b"EXISTS", k), key),
    st.builds(lambda k: (b"DEL", k), key),
    st.builds(lambda k: (b"SET", k, b"v"), key),
    st.just((b"GET", b"str")),
    blocking_cmd,
)


# Each history starts with two lists of a few items, so that pops, LREM, LPOS, LINSERT and
# the moves between lists meet items (hypothesis favours short sequences).
history = st.builds(lambda a, b, rest: [(b"RPUSH", b"l1", *a), (b"LPUSH", b"l2", *b), *rest],
                    st.lists(value, min_size=1, max_size=8),
                    st.lists(value, min_size=1, max_size=4),
                    st.lists(list_cmd, max_size=30))


@settings(SETTINGS, max_examples=500)
@given(history)
def test_lists(real, seq):
    check(real, seq)


def test_pops_missing_keys_counts_and_arity(real):
    check(real, [
        (b"LPOP", b"nokey"),
        (b"LPOP", b"nokey", b"0"),
        (b"RPOP", b"nokey", b"2"),
        (b"RPUSH", b"l", b"a", b"b", b"c"),
        (b"LPOP", b"l", b"0"),
        (b"LPOP", b"l", b"-1"),
        (b"LPOP", b"l", b"x"),
        (b"LPOP", b"l", b"1", b"2"),
        (b"LPOP", b"l", b"1"),
        (b"RPOP", b"l", b"5"),
        (b"EXISTS", b"l"),
        (b"SET", b"s", b"v"),
        (b"LPOP", b"s", b"0"),
        (b"LPOP", b"s", b"x"),
        (b"RPOP", b"s"),
    ])


def test_indexes_and_ranges(real):
    check(real, [
        (b"LINDEX", b"nokey", b"x"),
        (b"LSET", b"nokey", b"x", b"v"),
        (b"LSET", b"nokey", b"0", b"v"),
        (b"RPUSH", b"l", b"a", b"b", b"c", b"d", b"e"),
        (b"LSET", b"l", b"5", b"x"),
        (b"LSET", b"l", b"-6", b"x"),
        (b"LSET", b"l", b"-5", b"X"),
        (b"LSET", b"l", b"x", b"X"),
        (b"LINDEX", b"l", b"-1"),
        (b"LINDEX", b"l", b"99"),
        (b"LINDEX", b"l", b"x"),
        (b"LINDEX", b"l", b"-9223372036854775808"),
        (b"LRANGE", b"l", b"-100", b"100"),
        (b"LRANGE", b"l", b"2", b"1"),
        (b"LRANGE", b"l", b"-1", b"-2"),
        (b"LRANGE", b"l", b"9223372036854775807", b"-9223372036854775808"),
        (b"LRANGE", b"l", b"x", b"1"),
        (b"LRANGE", b"nokey", b"0", b"x"),
        (b"LTRIM", b"nokey", b"0", b"x"),
        (b"LTRIM", b"nokey", b"0", b"1"),
        (b"LTRIM", b"l", b"-9223372036854775808", b"9223372036854775807"),
        (b"LTRIM", b"l", b"1", b"-2"),
        (b"LRANGE", b"l", b"0", b"-1"),
        (b"LTRIM", b"l", b"5", b"1"),
        (b"EXISTS", b"l"),
        (b"SET", b"s", b"v"),
        (b"LINDEX", b"s", b"x"),
        (b"LSET", b"s", b"x", b"v"),
        (b"LRANGE", b"s", b"x", b"1"),
        (b"LRANGE", b"s", b"0", b"1"),
        (b"LTRIM", b"s", b"0", b"1"),
        (b"LLEN", b"s"),
    ])


def test_insert_remove_and_positions(real):
    check(real, [
        (b"LINSERT", b"nokey", b"BEFORE", b"a", b"q"),
        (b"LINSERT", b"nokey", b"MIDDLE", b"a", b"q"),
        (b"RPUSH", b"l", b"a", b"b", b"a", b"c", b"a"),
        (b"LINSERT", b"l", b"BEFORE", b"zz", b"q"),
        (b"LINSERT", b"l", b"before", b"a", b"q"),
        (b"LINSERT", b"l", b"AFTER", b"a", b"q2"),
        (b"LINSERT", b"l", b"AFTER", b"a", b"q3"),
        (b"LINSERT", b"l", b"BEFORE", b"q2", b"q4"),
        (b"LRANGE", b"l", b"0", b"-1"),
        (b"LPOS", b"l", b"a"),
        (b"LPOS", b"l", b"a", b"RANK", b"0"),
        (b"LPOS", b"l", b"a", b"RANK", b"x"),
        (b"LPOS", b"l", b"a", b"RANK"),
        (b"LPOS", b"l", b"a", b"COUNT", b"-1"),
        (b"LPOS", b"l", b"a", b"COUNT", b"x"),
        (b"LPOS", b"l", b"a", b"MAXLEN", b"-1"),
        (b"LPOS", b"l", b"a", b"FOO", b"1"),
        (b"LPOS", b"l", b"a", b"COUNT", b"0"),
        (b"LPOS", b"l", b"a", b"RANK", b"-1", b"COUNT", b"2"),
        (b"LPOS", b"l", b"a", b"RANK", b"2", b"COUNT", b"0", b"MAXLEN", b"6"),
        (b"LPOS", b"l", b"a", b"RANK", b"-2", b"MAXLEN", b"3"),
        (b"LPOS", b"l", b"a", b"RANK", b"-9223372036854775808"),
        (b"LPOS", b"l", b"a", b"RANK", b"-9223372036854775808", b"COUNT", b"1"),
        (b"LPOS", b"l", b"a", b"RANK", b"-9223372036854775807"),
        (b"LPOS", b"l", b"a", b"RANK", b"9223372036854775807", b"COUNT", b"1"),
        (b"LPOS", b"l", b"zz"),
        (b"LPOS", b"l", b"zz", b"COUNT", b"1"),
        (b"LPOS", b"nokey", b"a"),
        (b"LPOS", b"nokey", b"a", b"COUNT", b"0"),
        (b"LREM", b"l", b"x", b"a"),
        (b"LREM", b"nokey", b"x", b"a"),
        (b"LREM", b"nokey", b"1", b"a"),
        (b"LREM", b"l", b"-1", b"a"),
        (b"LREM", b"l", b"1", b"a"),
        (b"LRANGE", b"l", b"0", b"-1"),
        (b"LREM", b"l", b"-9223372036854775808", b"q"),
        (b"LREM", b"l", b"0", b"a"),
        (b"LRANGE", b"l", b"0", b"-1"),
        (b"SET", b"s", b"v"),
        (b"LINSERT", b"s", b"BEFORE", b"a", b"b"),
        (b"LINSERT", b"s", b"MIDDLE", b"a", b"b"),
        (b"LPOS", b"s", b"a", b"RANK", b"0"),
        (b"LPOS", b"s", b"a"),
        (b"LREM", b"s", b"x", b"a"),
        (b"LREM", b"s", b"0", b"a"),
        (b"LPUSH", b"s", b"a"),
        (b"LPUSHX", b"s", b"a"),
        (b"LPUSHX", b"nokey", b"a"),
        (b"RPUSHX", b"nokey", b"a", b"b"),
        (b"EXISTS", b"nokey"),
    ])


def test_moves_and_multi_pops(real):
    check(real, [
        (b"LMOVE", b"nokey", b"l", b"LEFT", b"RIGHT"),
        (b"LMOVE", b"nokey", b"l", b"LEFT", b"MIDDLE"),
        (b"RPOPLPUSH", b"nokey", b"nokey"),
        (b"RPUSH", b"l", b"a", b"b", b"c"),
        (b"SET", b"s", b"v"),
        (b"LMOVE", b"s", b"l", b"LEFT", b"LEFT"),
        (b"LMOVE", b"l", b"s", b"LEFT", b"LEFT"),
        (b"LMOVE", b"nokey", b"s", b"LEFT", b"LEFT"),
        (b"LMOVE", b"l", b"l", b"LEFT", b"RIGHT"),
        (b"LMOVE", b"l", b"l", b"RIGHT", b"RIGHT"),
        (b"LMOVE", b"l", b"l", b"RIGHT", b"LEFT"),
        (b"LRANGE", b"l", b"0", b"-1"),
        (b"LMOVE", b"l", b"m", b"RIGHT", b"LEFT"),
        (b"LMOVE", b"l", b"m", b"LEFT", b"RIGHT"),
        (b"RPOPLPUSH", b"l", b"m"),
        (b"EXISTS", b"l"),
        (b"LRANGE", b"m", b"0", b"-1"),
        (b"RPOPLPUSH", b"m", b"m"),
        (b"LRANGE", b"m", b"0", b"-1"),
        (b"LMPOP", b"0", b"m", b"LEFT"),
        (b"LMPOP", b"-1", b"m", b"LEFT"),
        (b"LMPOP", b"x", b"m", b"LEFT"),
        (b"LMPOP", b"9223372036854775807", b"m", b"LEFT"),
        (b"LMPOP", b"3", b"m", b"LEFT"),
        (b"LMPOP", b"1", b"m", b"MIDDLE"),
        (b"LMPOP", b"1", b"m", b"LEFT", b"COUNT", b"0"),
        (b"LMPOP", b"1", b"m", b"LEFT", b"COUNT", b"-1"),
        (b"LMPOP", b"1", b"m", b"LEFT", b"COUNT", b"x"),
        (b"LMPOP", b"1", b"m", b"LEFT", b"COUNT"),
        (b"LMPOP", b"1", b"m", b"LEFT", b"COUNT", b"1", b"COUNT", b"2"),
        (b"LMPOP", b"1", b"m", b"LEFT", b"FOO"),
        (b"LMPOP", b"1", b"nokey", b"LEFT"),
        (b"LMPOP", b"3", b"nokey", b"s", b"m", b"RIGHT"),
        (b"LMPOP", b"3", b"nokey", b"m", b"s", b"RIGHT", b"COUNT", b"2"),
        (b"LMPOP", b"2", b"nokey", b"m", b"LEFT", b"COUNT", b"9223372036854775807"),
        (b"EXISTS", b"m"),
        (b"LMPOP", b"2", b"nokey", b"m", b"LEFT"),
    ])


GETKEYS_CASES = [
    (b"LMPOP", b"2", b"a", b"b", b"LEFT", b"COUNT", b"1"),
    (b"LMPOP", b"1", b"a", b"LEFT"),
    (b"LMPOP", b"2", b"a", b"LEFT"),
    (b"LMPOP", b"3", b"a", b"LEFT"),
    (b"LMPOP", b"0", b"a", b"LEFT"),
    (b"LMPOP", b"-1", b"a", b"LEFT"),
    (b"LMPOP", b"x", b"a", b"LEFT"),
    (b"LMPOP", b"1"),
    (b"LMOVE", b"a", b"b", b"LEFT", b"RIGHT"),
    (b"RPOPLPUSH", b"a", b"b"),
    (b"LPUSH", b"a", b"v"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_command_getkeys_finds_keys_as_redis(real_redis, proto):
    """Cluster clients ask COMMAND GETKEYS where LMPOP's keys are (its key count is an
    argument)."""
    from dynredis.commands.server import cmd_command_getkeys

    conn = RawReal(real_redis.port, proto)
    try:
        for case in GETKEYS_CASES:
            args = [b"COMMAND", b"GETKEYS", *case]
            client = SimpleNamespace(proto=proto)
            assert cmd_command_getkeys(client, args) == conn.call(*args), case
    finally:
        conn.close()
