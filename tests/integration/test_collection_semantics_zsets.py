"""Sorted-set commands on one replica's view against a real redis-server, reply for reply.

The same hypothesis-drawn command sequences go to redis-server and to `LocalRunner`
(tests/collharness.py), as in test_collection_semantics.py. Replies are compared exactly
(scores as the bytes Redis prints), in RESP2 and, byte for byte, in RESP3; ZRANDMEMBER's
random picks are checked by what Redis promises of them. Sets stay small (Redis' listpack
encoding), where Redis' answers are deterministic.
"""

from __future__ import annotations

import socket

import hiredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collharness import LocalRunner
from tests.integration.conftest import HOST, resp_command
from tests.integration.test_collection_semantics import Real, parse

SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

KEYS = [b"z1", b"z2", b"z3", b"str"]
MEMBERS = [b"a", b"b", b"c", b"d", b"e", b""]
SCORES = [b"0", b"1", b"-1", b"0.1", b"0.2", b"0.3", b"1.1", b"2.2", b"1e21", b"-0", b"inf",
          b"-inf", b"5", b"x", b"1e400", b"0x10", b" 1", b"1e-320", b"3"]
BOUNDS = [b"-inf", b"+inf", b"0", b"(0", b"1", b"(1", b"0.1", b"(1.1", b"5", b"x", b"",
          b"(", b"nan", b"1e400", b" 2"]
LEX = [b"-", b"+", b"[a", b"(a", b"[c", b"(c", b"[", b"(", b"a", b"[e", b"(e", b"+x"]
RANKS = [b"0", b"1", b"-1", b"-2", b"2", b"10", b"-10", b"x"]
COUNTS = [b"0", b"1", b"2", b"5", b"-1", b"-3", b"x"]
TIMEOUTS = [b"0.001", b"0.001", b"0.0001", b"-1", b"x", b"inf"]

key = st.sampled_from(KEYS)
member = st.sampled_from(MEMBERS)
score = st.sampled_from(SCORES)
bound = st.sampled_from(BOUNDS)
lex = st.sampled_from(LEX)
rank = st.sampled_from(RANKS)
count = st.sampled_from(COUNTS)


def flat(*parts: object) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for p in parts:
        if isinstance(p, bytes):
            out.append(p)
        else:
            out.extend(flat(*p))  # type: ignore[misc]
    return tuple(out)


zadd_opts = st.lists(st.sampled_from([b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"]), max_size=3)
pairs = st.lists(st.tuples(score, member), min_size=1, max_size=3)
limit = st.one_of(st.just(()), st.tuples(st.just(b"LIMIT"), st.sampled_from(COUNTS),
                                         st.sampled_from(COUNTS)))
withscores = st.sampled_from([(), (b"WITHSCORES",)])
range_args = st.one_of(
    st.tuples(rank, rank, st.just(())),
    st.tuples(bound, bound, st.just((b"BYSCORE",))),
    st.tuples(lex, lex, st.just((b"BYLEX",))),
)
rev = st.sampled_from([(), (b"REV",)])

writes = st.one_of(
    st.builds(lambda k, o, p: flat(b"ZADD", k, o, p), key, zadd_opts, pairs),
    st.builds(lambda k, p: flat(b"ZADD", k, p), key, pairs),
    st.builds(lambda k, s, m: (b"ZINCRBY", k, s, m), key, score, member),
    st.builds(lambda k, ms: flat(b"ZREM", k, ms), key, st.lists(member, min_size=1, max_size=3)),
    st.builds(lambda k, a, b: (b"ZREMRANGEBYRANK", k, a, b), key, rank, rank),
    st.builds(lambda k, a, b: (b"ZREMRANGEBYSCORE", k, a, b), key, bound, bound),
    st.builds(lambda k, a, b: (b"ZREMRANGEBYLEX", k, a, b), key, lex, lex),
    st.builds(lambda c, k, n: flat(c, k, n), st.sampled_from([b"ZPOPMIN", b"ZPOPMAX"]), key,
              st.sampled_from([(), (b"1",), (b"2",), (b"0",), (b"-1",), (b"x",)])),
    st.builds(lambda ks, w, c: flat(b"ZMPOP", b"%d" % len(ks), ks, w, c),
              st.lists(key, min_size=1, max_size=3), st.sampled_from([b"MIN", b"MAX", b"X"]),
              st.sampled_from([(), (b"COUNT", b"2"), (b"COUNT", b"0"), (b"COUNT", b"10")])),
    # Blocking pops, with timeouts that end (nobody else writes) or that Redis refuses.
    st.one_of(
        st.builds(lambda c, ks, t: flat(c, ks, t), st.sampled_from([b"BZPOPMIN", b"BZPOPMAX"]),
                  st.lists(key, min_size=1, max_size=3), st.sampled_from(TIMEOUTS)),
        st.builds(lambda t, ks, w, c: flat(b"BZMPOP", t, b"%d" % len(ks), ks, w, c),
                  st.sampled_from(TIMEOUTS), st.lists(key, min_size=1, max_size=3),
                  st.sampled_from([b"MIN", b"MAX", b"X"]),
                  st.sampled_from([(), (b"COUNT", b"2"), (b"COUNT", b"0")]))),
)
reads = st.one_of(
    st.builds(lambda k, m: (b"ZSCORE", k, m), key, member),
    st.builds(lambda k, ms: flat(b"ZMSCORE", k, ms), key, st.lists(member, min_size=1,
                                                                    max_size=3)),
    st.builds(lambda k: (b"ZCARD", k), key),
    st.builds(lambda k, a, b: (b"ZCOUNT", k, a, b), key, bound, bound),
    st.builds(lambda k, a, b: (b"ZLEXCOUNT", k, a, b), key, lex, lex),
    st.builds(lambda c, k, m: (c, k, m), st.sampled_from([b"ZRANK", b"ZREVRANK"]), key, member),
    st.builds(lambda k, r, v, lim, w: flat(b"ZRANGE", k, r[0], r[1], r[2], v, lim, w),
              key, range_args, rev, limit, withscores),
    st.builds(lambda k, a, b, w: flat(b"ZREVRANGE", k, a, b, w), key, rank, rank, withscores),
    st.builds(lambda c, k, a, b, w, lim: flat(c, k, a, b, w, lim),
              st.sampled_from([b"ZRANGEBYSCORE", b"ZREVRANGEBYSCORE"]), key, bound, bound,
              withscores, limit),
    st.builds(lambda c, k, a, b, lim: flat(c, k, a, b, lim),
              st.sampled_from([b"ZRANGEBYLEX", b"ZREVRANGEBYLEX"]), key, lex, lex, limit),
    st.builds(lambda k, c, w: flat(b"ZRANDMEMBER", k, c, w), key,
              st.sampled_from([(), (b"1",), (b"3",), (b"10",), (b"-4",), (b"0",)]),
              st.sampled_from([(), (b"WITHSCORES",)])),
    st.builds(lambda k, m: flat(b"ZSCAN", k, b"0", m), key,
              st.sampled_from([(), (b"MATCH", b"[ab]*"), (b"COUNT", b"1")])),
)
weights = st.sampled_from([(), (b"1", b"2"), (b"-1", b"0.5"), (b"inf", b"0"), (b"x", b"1")])
setops = st.one_of(
    st.builds(lambda c, ks, w, a, ws: flat(c, b"%d" % len(ks), ks,
                                           (b"WEIGHTS", w) if w and len(ks) == 2 else (), a, ws),
              st.sampled_from([b"ZUNION", b"ZINTER"]), st.lists(key, min_size=1, max_size=3),
              weights, st.sampled_from([(), (b"AGGREGATE", b"MIN"), (b"AGGREGATE", b"MAX"),
                                        (b"AGGREGATE", b"SUM"), (b"AGGREGATE", b"AVG")]),
              withscores),
    st.builds(lambda c, d, ks, w, a: flat(c, d, b"%d" % len(ks), ks,
                                          (b"WEIGHTS", w) if w and len(ks) == 2 else (), a),
              st.sampled_from([b"ZUNIONSTORE", b"ZINTERSTORE"]), key,
              st.lists(key, min_size=1, max_size=3), weights,
              st.sampled_from([(), (b"AGGREGATE", b"MAX")])),
    st.builds(lambda ks, ws: flat(b"ZDIFF", b"%d" % len(ks), ks, ws),
              st.lists(key, min_size=1, max_size=3), withscores),
    st.builds(lambda d, ks: flat(b"ZDIFFSTORE", d, b"%d" % len(ks), ks), key,
              st.lists(key, min_size=1, max_size=3)),
    st.builds(lambda ks, lim: flat(b"ZINTERCARD", b"%d" % len(ks), ks, lim),
              st.lists(key, min_size=1, max_size=3),
              st.sampled_from([(), (b"LIMIT", b"1"), (b"LIMIT", b"0"), (b"LIMIT", b"-1")])),
    st.builds(lambda d, s, r, v, lim: flat(b"ZRANGESTORE", d, s, r[0], r[1], r[2], v, lim),
              key, key, range_args, rev, limit),
)
keycmds = st.one_of(
    st.builds(lambda k: (b"TYPE", k), key),
    st.builds(lambda k: (b"EXISTS", k), key),
    st.builds(lambda k: (b"DEL", k), key),
    st.builds(lambda k: (b"SET", k, b"v"), key),
    st.just((b"SET", b"str", b"v")),
    st.just((b"GET", b"str")),
)
any_cmd = st.one_of(writes, reads, setops, keycmds)


def normal(reply: object) -> object:
    if isinstance(reply, hiredis.ReplyError):
        return ("error", str(reply))
    return reply


def check_random(cmd: tuple[bytes, ...], got: object, want: object, members: dict) -> None:
    """ZRANDMEMBER: what Redis promises (members of the set, distinct for a positive
    count, how many), and Redis' exact reply where it is not random (the whole set)."""
    if isinstance(want, tuple) or isinstance(got, tuple):
        assert got == want
        return
    if len(cmd) == 2:
        assert (got is None) == (want is None) and (got is None or got in members)
        return
    n = int(cmd[2])
    withscores = len(cmd) == 4
    assert isinstance(got, list)
    picked = list(zip(got[::2], got[1::2], strict=True)) if withscores else \
        [(m, members.get(m)) for m in got]
    for m, s in picked:
        assert m in members and members[m] == s
    if n >= 0:
        assert len(picked) == min(n, len(members))
        assert len({m for m, _ in picked}) == len(picked)
        if n >= len(members) and n > 1:
            assert got == want  # the whole set, from the highest score
    else:
        assert len(picked) == (-n if members else 0)


def check(real: Real, seq: list[tuple[bytes, ...]]) -> None:
    real.call(b"FLUSHALL")
    local = LocalRunner()
    for i, cmd in enumerate(seq):
        want = normal(real.call(*cmd))
        got = normal(parse(local.run(*cmd)))
        if cmd[0] == b"ZRANDMEMBER":
            state = real.call(b"ZRANGE", cmd[1], b"0", b"-1", b"WITHSCORES")
            members = dict(zip(state[::2], state[1::2], strict=True)) \
                if isinstance(state, list) else {}
            check_random(cmd, got, want, members)
            continue
        assert got == want, f"step {i}: {cmd!r}: dynredis {got!r}, redis {want!r}"


@pytest.fixture(scope="module")
def real(real_redis) -> Real:
    return Real(real_redis.port)


@SETTINGS
@given(st.lists(any_cmd, max_size=25))
def test_sorted_sets(real, seq):
    check(real, seq)


@SETTINGS
@given(st.lists(st.one_of(writes, writes, reads), min_size=5, max_size=25))
def test_sorted_set_writes_and_reads(real, seq):
    check(real, seq)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.builds(lambda k, p: flat(b"ZADD", k, p), key, pairs), min_size=2,
                max_size=8), st.lists(setops, min_size=1, max_size=8))
def test_set_operations(real, fill, ops):
    check(real, fill + ops)


def test_incrementing_rounds_at_every_step_as_redis_does(real):
    check(real, [
        (b"ZADD", b"z", b"0.1", b"m"),
        (b"ZINCRBY", b"z", b"0.2", b"m"),
        (b"ZINCRBY", b"z", b"0.3", b"m"),  # 0.60000000000000009, not 0.1 + (0.2 + 0.3)
        (b"ZADD", b"z", b"INCR", b"1.1", b"m"),
        (b"ZSCORE", b"z", b"m"),
        (b"ZINCRBY", b"z", b"-0", b"new"),  # replies -0, stores 0
        (b"ZSCORE", b"z", b"new"),
        (b"ZINCRBY", b"z", b"inf", b"m"),
        (b"ZINCRBY", b"z", b"-inf", b"m"),
        (b"ZADD", b"z", b"INCR", b"-inf", b"m"),
        (b"ZSCORE", b"z", b"m"),
        (b"ZADD", b"z", b"1e-320", b"tiny", b"1.7976931348623157e308", b"big"),
        (b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"),
        (b"ZSCAN", b"z", b"0"),
    ])


def test_errors_and_edges(real):
    check(real, [
        (b"ZADD", b"z", b"1", b"a", b"2", b"b", b"3", b"c", b"4", b"d"),
        (b"SET", b"s", b"v"),
        (b"ZADD", b"z", b"NX", b"XX", b"1", b"a"),
        (b"ZADD", b"z", b"GT", b"LT", b"1", b"a"),
        (b"ZADD", b"z", b"INCR", b"1", b"a", b"2", b"b"),
        (b"ZADD", b"z", b"1", b"a", b"x"),
        (b"ZADD", b"s", b"x", b"a"),  # the score is judged before the key's type
        (b"ZADD", b"s", b"1", b"a"),
        (b"ZADD", b"nokey", b"XX", b"INCR", b"1", b"a"),
        (b"ZADD", b"z", b"CH", b"GT", b"5", b"a", b"0", b"b", b"1", b"new"),
        (b"ZADD", b"z", b"1", b"dup", b"2", b"dup"),
        (b"ZRANGEBYSCORE", b"z", b"1\x00junk", b"(3"),
        (b"ZRANGEBYSCORE", b"z", b"-inf", b"+inf", b"LIMIT", b"-1", b"2"),
        (b"ZRANGEBYSCORE", b"z", b"-inf", b"+inf", b"LIMIT", b"1", b"-5"),
        (b"ZRANGEBYSCORE", b"z", b"-inf", b"+inf", b"WITHSCORES", b"LIMIT"),
        (b"ZRANGEBYSCORE", b"z", b"-inf", b"+inf", b"REV"),
        (b"ZRANGEBYSCORE", b"s", b"x", b"1"),
        (b"ZRANGEBYLEX", b"z", b"-", b"+", b"WITHSCORES"),
        (b"ZRANGEBYLEX", b"z", b"+\x00a", b"-"),
        (b"ZRANGE", b"z", b"0", b"-1", b"LIMIT", b"0", b"1"),
        (b"ZRANGE", b"z", b"0", b"-1", b"LIMIT", b"0", b"-1"),
        (b"ZRANGE", b"z", b"(1", b"3", b"BYSCORE", b"BYLEX"),
        (b"ZRANGE", b"z", b"3", b"(1", b"BYSCORE", b"REV", b"WITHSCORES"),
        (b"ZRANGE", b"z", b"0", b"1", b"REV", b"REV"),
        (b"ZRANGESTORE", b"d", b"z", b"0", b"-1", b"WITHSCORES"),
        (b"ZRANGESTORE", b"s", b"z", b"1", b"2"),
        (b"TYPE", b"s"),
        (b"ZRANGESTORE", b"s", b"nokey", b"0", b"-1"),
        (b"EXISTS", b"s"),
        (b"SET", b"s", b"v"),
        (b"ZRANGESTORE", b"d", b"s", b"0", b"-1"),
        (b"ZREVRANGE", b"z", b"0", b"1", b"LIMIT", b"0", b"1"),
        (b"ZPOPMIN", b"s", b"0"),
        (b"ZPOPMIN", b"s", b"-1"),
        (b"ZPOPMIN", b"nokey", b"0"),
        (b"ZPOPMIN", b"z", b"1", b"2"),
        (b"ZPOPMAX", b"z"),
        (b"ZMPOP", b"0", b"z", b"MIN"),
        (b"ZMPOP", b"x", b"z", b"MIN"),
        (b"ZMPOP", b"2", b"z", b"MIN"),
        (b"ZMPOP", b"1", b"z", b"MIN", b"COUNT", b"1", b"COUNT", b"1"),
        (b"ZMPOP", b"1", b"z", b"MIN", b"COUNT", b"x"),
        (b"ZMPOP", b"2", b"nokey", b"s", b"MIN"),
        (b"ZMPOP", b"2", b"nokey", b"z", b"MAX", b"COUNT", b"9"),
        (b"ZMPOP", b"1", b"nokey", b"MIN"),
        (b"ZADD", b"z", b"1", b"a", b"2", b"b", b"3", b"c"),
        (b"ZUNION", b"0", b"z"),
        (b"ZUNION", b"x", b"z"),
        (b"ZUNION", b"3", b"z"),
        (b"ZUNION", b"1", b"s", b"WEIGHTS", b"x"),  # sources are read before options
        (b"ZUNION", b"1", b"z", b"WEIGHTS", b"x"),
        (b"ZUNION", b"1", b"z", b"WEIGHTS", b"1", b"2"),
        (b"ZUNION", b"1", b"z", b"AGGREGATE"),
        (b"ZUNION", b"1", b"z", b"WITHSCORES", b"WITHSCORES"),
        (b"ZUNIONSTORE", b"d", b"1", b"z", b"WITHSCORES"),
        (b"ZDIFF", b"1", b"z", b"WEIGHTS", b"1"),
        (b"ZDIFFSTORE", b"d", b"1", b"z", b"WITHSCORES"),
        (b"ZINTERCARD", b"0", b"z"),
        (b"ZINTERCARD", b"1", b"z", b"LIMIT", b"x"),
        (b"ZINTERCARD", b"1", b"z", b"LIMIT", b"1", b"LIMIT", b"2"),
        (b"ZINTERCARD", b"1", b"z", b"WITHSCORES"),
        (b"ZUNION", b"2", b"z", b"nokey", b"WEIGHTS", b"-1", b"1", b"WITHSCORES"),
        (b"ZUNIONSTORE", b"d", b"2", b"z", b"nokey", b"WEIGHTS", b"-0", b"1"),
        (b"ZRANGE", b"d", b"0", b"-1", b"WITHSCORES"),
        (b"ZUNION", b"2", b"z", b"z", b"WEIGHTS", b"inf", b"-inf", b"WITHSCORES"),
        (b"ZINTER", b"2", b"z", b"z", b"WEIGHTS", b"inf", b"0", b"WITHSCORES"),
        (b"ZUNIONSTORE", b"d", b"1", b"nokey"),
        (b"EXISTS", b"d"),
        (b"ZRANDMEMBER", b"z", b"-9223372036854775808"),
        (b"ZRANDMEMBER", b"z", b"4611686018427387904", b"WITHSCORES"),
        (b"ZRANDMEMBER", b"z", b"1", b"foo"),
        (b"ZRANDMEMBER", b"z", b"x", b"foo"),
        (b"ZRANDMEMBER", b"z", b"100", b"WITHSCORES"),
        (b"ZRANDMEMBER", b"nokey", b"1", b"WITHSCORES"),
        (b"ZRANDMEMBER", b"s"),
        (b"ZREMRANGEBYRANK", b"nokey", b"0", b"1"),
        (b"ZREMRANGEBYRANK", b"s", b"x", b"1"),
        (b"ZREMRANGEBYRANK", b"s", b"0", b"1"),
        (b"ZSCAN", b"z", b"0", b"MATCH", b"a*", b"COUNT", b"1"),
        (b"ZSCAN", b"z", b"x"),
        (b"ZINCRBY", b"s", b"1", b"a"),
        (b"ZREM", b"s", b"a"),
    ])


def test_scores_and_bounds_read_as_redis_reads_them(real):
    real.call(b"FLUSHALL")
    inputs = [b"", b" ", b"1", b" 1", b"1 ", b"+1", b".5", b"5.", b".", b"1e", b"1e+", b"1E-5",
              b"1e400", b"-1e400", b"1e-400", b"1e-310", b"0e500", b"inf", b"-Infinity",
              b"infinit", b"nan", b"nan(12)", b"0x10", b"0X1p3", b"0x.8", b"0x", b"0x1p",
              b"0x1p99999", b"0x1p-99999", b"1\x00", b"\t1", b"(1", b"((1", b"(", b"( 1",
              b"(inf", b"1_0", b"-0", b"2.4e-324", b"2.5e-324", b"1.7976931348623159e308"]
    seq: list[tuple[bytes, ...]] = [
        (b"ZADD", b"r", b"-inf", b"a", b"0", b"b", b"1e-320", b"c", b"0.5", b"d", b"1", b"e",
         b"16", b"f", b"inf", b"g")]
    for i, text in enumerate(inputs):
        seq.append((b"ZADD", b"k", text, b"m%d" % i))
        seq.append((b"ZRANGEBYSCORE", b"r", text, b"+inf"))
        seq.append((b"ZCOUNT", b"r", b"-inf", text))
    seq.append((b"ZRANGE", b"k", b"0", b"-1", b"WITHSCORES"))
    check(real, seq)


# --- RESP3, byte for byte --------------------------------------------------------------


class Raw:
    """A RESP3 connection that returns each reply's bytes (PING marks where it ends)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.call(b"HELLO", b"3")

    def call(self, *args: bytes) -> bytes:
        self.sock.sendall(resp_command(*args) + b"PING\r\n")
        got = b""
        while not got.endswith(b"+PONG\r\n"):
            chunk = self.sock.recv(1 << 16)
            assert chunk
            got += chunk
        return got[:-len(b"+PONG\r\n")]


RESP3_SEQUENCE = [
    (b"ZADD", b"z", b"0", b"zero", b"1.5", b"a", b"2", b"b", b"1e21", b"c", b"-0.1", b"d"),
    (b"ZSCORE", b"z", b"a"), (b"ZSCORE", b"z", b"nope"), (b"ZSCORE", b"z", b"c"),
    (b"ZMSCORE", b"z", b"a", b"nope"),
    (b"ZRANGE", b"z", b"0", b"1", b"WITHSCORES"), (b"ZRANGE", b"z", b"0", b"1"),
    (b"ZRANGEBYSCORE", b"z", b"0", b"1", b"WITHSCORES"),
    (b"ZPOPMIN", b"z"), (b"ZPOPMIN", b"z", b"1"), (b"ZPOPMIN", b"nokey"),
    (b"ZADD", b"z", b"INCR", b"1", b"a"), (b"ZADD", b"z", b"XX", b"INCR", b"1", b"nope"),
    (b"ZINCRBY", b"z", b"1", b"a"), (b"ZINCRBY", b"z", b"-0", b"negzero"),
    (b"ZUNION", b"1", b"z", b"WITHSCORES"), (b"ZINTER", b"2", b"z", b"z", b"WITHSCORES"),
    (b"ZDIFF", b"1", b"z", b"WITHSCORES"),
    (b"ZRANDMEMBER", b"z", b"10", b"WITHSCORES"), (b"ZRANDMEMBER", b"nokey"),
    (b"ZRANDMEMBER", b"nokey", b"1"), (b"ZSCAN", b"z", b"0"),
    (b"ZMPOP", b"1", b"z", b"MIN"), (b"ZMPOP", b"1", b"nokey", b"MIN"),
    (b"ZRANK", b"z", b"nope"), (b"ZRANK", b"z", b"a"),
    (b"ZADD", b"z", b"1e-320", b"sub", b"123456789", b"i", b"0.30000000000000004", b"t"),
    (b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"), (b"ZPOPMAX", b"z", b"2"),
    (b"ZRANGESTORE", b"d", b"z", b"0", b"-1"),
]


def test_resp3_replies_are_redis_own(real_redis):
    raw = Raw(real_redis.port)
    raw.call(b"FLUSHALL")
    local = LocalRunner()
    for cmd in RESP3_SEQUENCE:
        assert local.run(*cmd, proto=3) == raw.call(*cmd), cmd


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(writes, setops, reads.filter(lambda c: c[0] != b"ZRANDMEMBER")),
                max_size=20))
def test_resp3_sequences(real_redis, seq):
    raw = Raw(real_redis.port)
    raw.call(b"FLUSHALL")
    local = LocalRunner()
    for i, cmd in enumerate(seq):
        want = raw.call(*cmd)
        assert local.run(*cmd, proto=3) == want, f"step {i}: {cmd!r}"
    raw.sock.close()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.builds(lambda k, r, v, lim, w: flat(b"ZRANGE", k, r[0], r[1], r[2], v, lim, w),
              st.just(b"big"), st.one_of(st.tuples(rank, rank, st.just(())),
                                         st.tuples(bound, bound, st.just((b"BYSCORE",)))),
              rev, limit, withscores),
    st.builds(lambda a, b: (b"ZCOUNT", b"big", a, b), bound, bound),
    st.builds(lambda m: (b"ZRANK", b"big", m), st.sampled_from([b"m0", b"m77", b"m199"])),
    st.builds(lambda c, n: (c, b"big", n), st.sampled_from([b"ZPOPMIN", b"ZPOPMAX"]),
              st.sampled_from([b"1", b"3"])),
    st.builds(lambda a, b: (b"ZREMRANGEBYSCORE", b"big", a, b), bound, bound),
    st.builds(lambda a, b: (b"ZREMRANGEBYRANK", b"big", a, b), rank, rank),
    st.builds(lambda s, m: (b"ZINCRBY", b"big", s, m), st.sampled_from([b"0.1", b"-3"]),
              st.sampled_from([b"m5", b"m150"])),
), max_size=15))
def test_sets_past_the_small_encoding(real, seq):
    """200 members (Redis keeps them in a skiplist, not a listpack): ranks, score ranges
    and their ties answer the same."""
    fill = flat(b"ZADD", b"big", [(b"%d" % (i % 7 - 3), b"m%d" % i) for i in range(200)])
    check(real, [fill, *seq, (b"ZRANGE", b"big", b"0", b"-1", b"WITHSCORES")])


def test_set_operations_take_plain_sets_as_redis_does(real):
    """ZINTERCARD, ZINTER and ZUNION of sets and sorted sets (a set's members score 1;
    ZINTERCARD counts on the members as read), with LIMIT, a missing key and a string."""
    real.call(b"FLUSHALL")
    check(real, [
        (b"SADD", b"s1", b"a", b"b", b"c", b"d"),
        (b"SADD", b"s2", b"b", b"c", b"x"),
        (b"ZADD", b"z1", b"1", b"a", b"2", b"b", b"3", b"c"),
        (b"ZADD", b"z2", b"1", b"c", b"2", b"q"),
        (b"SET", b"str", b"v"),
        (b"ZINTERCARD", b"2", b"s1", b"z1"),
        (b"ZINTERCARD", b"2", b"s1", b"s2"),
        (b"ZINTERCARD", b"3", b"s1", b"s2", b"z1"),
        (b"ZINTERCARD", b"2", b"s1", b"nokey"),
        (b"ZINTERCARD", b"2", b"s1", b"z1", b"LIMIT", b"1"),
        (b"ZINTERCARD", b"2", b"s1", b"str"),
        (b"ZINTERCARD", b"1", b"s2"),
        (b"ZINTERCARD", b"2", b"nokey", b"str"),
        (b"ZINTER", b"2", b"s1", b"z1", b"WITHSCORES"),
        (b"ZUNION", b"2", b"s1", b"z2", b"WITHSCORES"),
    ])
