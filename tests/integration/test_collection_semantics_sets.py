"""Set commands on one replica's view against a real redis-server, reply for reply.

As tests/integration/test_collection_semantics.py (whose helpers this uses): the same
hypothesis-drawn histories go to redis-server and to `LocalRunner`, mixing every set
command with DEL, TYPE, EXISTS, SET and HSET on the same keys, and replies must be equal
(members in Redis' hash-table order compared sorted). SPOP and SRANDMEMBER answer at
random on both sides, so their replies are checked by what they must satisfy (how many,
distinct or not, drawn from the set as it was) and, for SPOP, by what remains; then the
local set is brought to the members redis-server kept, so the history goes on from the
same state on both sides.
"""

from __future__ import annotations

import socket

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynredis.commands.server import cmd_command_getkeys
from tests.collharness import LocalRunner
from tests.integration.conftest import HOST, resp_command
from tests.integration.test_collection_semantics import SETTINGS, Real, normal, parse

RANDOM = {b"SPOP", b"SRANDMEMBER"}


@pytest.fixture(scope="module")
def real(real_redis) -> Real:
    return Real(real_redis.port)


def members_of(reply: object) -> list[bytes] | None:
    """The members an SMEMBERS reply lists, or None for an error (another type)."""
    return None if isinstance(reply, hiredis.ReplyError) else list(reply)  # type: ignore[arg-type]


def check_random(real: Real, local: LocalRunner, cmd: tuple[bytes, ...], at: str) -> None:
    """Run SPOP/SRANDMEMBER on both sides and check each reply by its rules."""
    key = cmd[1]
    before = members_of(real.call(b"SMEMBERS", key))
    want = real.call(*cmd)
    got = parse(local.run(*cmd))
    if isinstance(want, hiredis.ReplyError) or isinstance(got, hiredis.ReplyError):
        assert normal(cmd, got) == normal(cmd, want), f"{at}: dynredis {got!r}, redis {want!r}"
        return
    assert before is not None, at
    pool = set(before)
    count = int(cmd[2]) if len(cmd) > 2 else None
    for reply in (want, got):
        if count is None:
            assert (reply is None) == (not pool), f"{at}: {reply!r} from {pool!r}"
            assert reply is None or reply in pool, f"{at}: {reply!r} from {pool!r}"
            continue
        assert isinstance(reply, list) and set(reply) <= pool, f"{at}: {reply!r}"
        if count >= 0:
            assert len(set(reply)) == len(reply) == min(count, len(pool)), f"{at}: {reply!r}"
        else:
            assert len(reply) == (-count if pool else 0), f"{at}: {reply!r}"
    if cmd[0].upper() != b"SPOP":
        return
    popped_real = {want} if count is None else set(want)  # type: ignore[arg-type]
    popped_local = {got} if count is None else set(got)  # type: ignore[arg-type]
    popped_real.discard(None)
    popped_local.discard(None)
    left_real = members_of(real.call(b"SMEMBERS", key))
    left_local = members_of(parse(local.run(b"SMEMBERS", key)))
    assert sorted(left_real) == sorted(pool - popped_real), at  # type: ignore[arg-type]
    assert sorted(left_local) == sorted(pool - popped_local), at  # type: ignore[arg-type]
    # Make the local set what redis-server kept: put back what only dynredis popped
    # first, so the key never empties on the way.
    if popped_local - popped_real:
        local.run(b"SADD", key, *sorted(popped_local - popped_real))
    if popped_real - popped_local:
        local.run(b"SREM", key, *sorted(popped_real - popped_local))
    assert sorted(members_of(parse(local.run(b"SMEMBERS", key)))) == sorted(left_real), at


def check(real: Real, seq: list[tuple[bytes, ...]]) -> None:
    real.call(b"FLUSHALL")
    local = LocalRunner()
    for i, cmd in enumerate(seq):
        at = f"step {i}: {cmd!r}"
        if cmd[0].upper() in RANDOM:
            check_random(real, local, cmd, at)
            continue
        want = normal(cmd, real.call(*cmd))
        got = normal(cmd, parse(local.run(*cmd)))
        assert got == want, f"{at}: dynredis {got!r}, redis {want!r}"


SET_KEYS = [b"s1", b"s2", b"s3"]
OTHER_KEYS = [b"str", b"h"]
MEMBERS = [b"a", b"b", b"c", b"1", b"2", b"10", b""]

skey = st.sampled_from(SET_KEYS)
# Mostly sets, sometimes a string or a hash (WRONGTYPE) or a key never written.
anykey = st.one_of(skey, skey, skey, st.sampled_from([*OTHER_KEYS, b"nokey"]))
member = st.sampled_from(MEMBERS)
members = st.lists(member, min_size=1, max_size=4)
# Sources of multi-key commands: another type only now and then, or the result would
# mostly be WRONGTYPE.
source = st.one_of(skey, skey, skey, skey, st.sampled_from([*OTHER_KEYS, b"nokey"]))
sources = st.lists(source, min_size=1, max_size=4)
limit = st.one_of(st.sampled_from([b"1", b"2", b"0"]), st.sampled_from([b"5", b"-1", b"x"]))
numkeys = st.one_of(st.none(), st.none(), st.none(), st.integers(-1, 5))


def _sintercard(keys: list[bytes], numkeys: int | None, lim: bytes | None) -> tuple:
    n = b"%d" % (len(keys) if numkeys is None else numkeys)
    return (b"SINTERCARD", n, *keys, *((b"LIMIT", lim) if lim is not None else ()))


set_cmd = st.one_of(
    st.builds(lambda k, ms: (b"SADD", k, *ms), anykey, members),
    st.builds(lambda k, ms: (b"SADD", k, *ms), skey, members),
    st.builds(lambda k, ms: (b"SREM", k, *ms), anykey, members),
    st.builds(lambda k: (b"SMEMBERS", k), anykey),
    st.builds(lambda k, m: (b"SISMEMBER", k, m), anykey, member),
    st.builds(lambda k, ms: (b"SMISMEMBER", k, *ms), anykey, members),
    st.builds(lambda k: (b"SCARD", k), anykey),
    st.builds(lambda k: (b"SPOP", k), anykey),
    st.builds(lambda k, n: (b"SPOP", k, b"%d" % n), anykey, st.integers(-1, 8)),
    st.builds(lambda k: (b"SRANDMEMBER", k), anykey),
    st.builds(lambda k, n: (b"SRANDMEMBER", k, b"%d" % n), anykey, st.integers(-8, 8)),
    st.builds(lambda a, b, m: (b"SMOVE", a, b, m), anykey, anykey, member),
    st.builds(lambda ks: (b"SINTER", *ks), sources),
    st.builds(lambda ks: (b"SUNION", *ks), sources),
    st.builds(lambda ks: (b"SDIFF", *ks), sources),
    st.builds(lambda d, ks: (b"SINTERSTORE", d, *ks), anykey, sources),
    st.builds(lambda d, ks: (b"SUNIONSTORE", d, *ks), anykey, sources),
    st.builds(lambda d, ks: (b"SDIFFSTORE", d, *ks), anykey, sources),
    st.builds(_sintercard, sources, numkeys, st.one_of(st.none(), limit)),
    st.builds(lambda k: (b"SSCAN", k, b"0"), anykey),
    st.builds(lambda k, p: (b"SSCAN", k, b"0", b"MATCH", p, b"COUNT", b"100"), anykey,
              st.sampled_from([b"*", b"[ab]*", b"1*", b""])),
    st.builds(lambda k: (b"TYPE", k), anykey),
    st.builds(lambda k: (b"EXISTS", k), anykey),
    st.builds(lambda k: (b"DEL", k), anykey),
    # Expired at once: the set's members stay in storage until a write replaces them,
    # and no command may see them.
    st.builds(lambda k: (b"PEXPIRE", k, b"-1"), anykey),
    st.builds(lambda k: (b"SET", k, b"v"), st.sampled_from([b"str", b"s1"])),
    st.builds(lambda f: (b"HSET", b"h", f, b"v"), member),
)


# Histories start from drawn sets (shrinking empties them), so that intersections and
# differences have members to work on.
setup = st.builds(lambda *ms: [(b"SADD", k, *m) for k, m in zip(SET_KEYS, ms, strict=True)
                               if m],
                  *(st.lists(member, max_size=6) for _ in SET_KEYS))


@SETTINGS
@given(setup, st.lists(set_cmd, min_size=10, max_size=40))
def test_sets(real, start, seq):
    check(real, start + seq)


algebra_cmd = st.one_of(
    st.builds(lambda ks: (b"SINTER", *ks), st.lists(skey, min_size=1, max_size=4)),
    st.builds(lambda ks: (b"SUNION", *ks), st.lists(skey, min_size=1, max_size=4)),
    st.builds(lambda ks: (b"SDIFF", *ks), st.lists(skey, min_size=1, max_size=4)),
    st.builds(lambda d, ks: (b"SINTERSTORE", d, *ks), skey,
              st.lists(skey, min_size=1, max_size=3)),
    st.builds(lambda d, ks: (b"SUNIONSTORE", d, *ks), skey,
              st.lists(skey, min_size=1, max_size=3)),
    st.builds(lambda d, ks: (b"SDIFFSTORE", d, *ks), skey,
              st.lists(skey, min_size=1, max_size=3)),
    st.builds(lambda ks, lim: _sintercard(ks, None, lim),
              st.lists(skey, min_size=1, max_size=3),
              st.one_of(st.none(), st.sampled_from([b"0", b"1", b"2", b"3"]))),
    st.builds(lambda a, b, m: (b"SMOVE", a, b, m), skey, skey, member),
    st.builds(lambda k: (b"SMEMBERS", k), skey),
    st.builds(lambda k, ms: (b"SADD", k, *ms), skey, members),
)


@SETTINGS
@given(st.tuples(*(st.lists(st.sampled_from(MEMBERS[:5]), min_size=2, max_size=5)
                   for _ in SET_KEYS)),
       st.lists(algebra_cmd, min_size=1, max_size=12))
def test_set_algebra(real, start, seq):
    """Intersections, unions, differences and moves over sets that overlap."""
    check(real, [(b"SADD", k, *m) for k, m in zip(SET_KEYS, start, strict=True)] + seq)


def test_set_errors_and_edges(real):
    check(real, [
        (b"SADD", b"s", b"a", b"b", b"c", b"a"),
        (b"SADD", b"t", b"b", b"c", b"d"),
        (b"SET", b"str", b"v"),
        (b"HSET", b"h", b"f", b"v"),
        # SINTERCARD: numkeys, then LIMIT, all before any key is looked up
        (b"SINTERCARD", b"0", b"s"),
        (b"SINTERCARD", b"-1", b"s"),
        (b"SINTERCARD", b"x", b"s"),
        (b"SINTERCARD", b"+1", b"s"),
        (b"SINTERCARD", b"99999999999999999999", b"s"),
        (b"SINTERCARD", b"2", b"s"),
        (b"SINTERCARD", b"2147483648", b"s"),
        (b"SINTERCARD", b"1", b"s", b"LIMIT"),
        (b"SINTERCARD", b"1", b"s", b"LIMIT", b"-1"),
        (b"SINTERCARD", b"1", b"s", b"LIMIT", b"x"),
        (b"SINTERCARD", b"1", b"str", b"FOO", b"1"),
        (b"SINTERCARD", b"1", b"s", b"LIMIT", b"1", b"LIMIT", b"2"),
        (b"SINTERCARD", b"1", b"s", b"LIMIT", b"0"),
        (b"SINTERCARD", b"2", b"s", b"t", b"LIMIT", b"1"),
        (b"SINTERCARD", b"2", b"nokey", b"str"),
        (b"SINTERCARD", b"2", b"s", b"h"),
        # Every source is looked up: a missing (empty) one does not hide a wrong type
        (b"SINTER", b"nokey", b"str"),
        (b"SINTER", b"str", b"nokey"),
        (b"SINTER", b"s", b"nokey"),
        (b"SUNION", b"nokey", b"h"),
        (b"SDIFF", b"nokey", b"str"),
        (b"SDIFF", b"s", b"t", b"nokey", b"h"),
        (b"SDIFF", b"nokey", b"s"),
        (b"SDIFF", b"s", b"s"),
        (b"SINTERSTORE", b"dst", b"nokey", b"str"),
        (b"EXISTS", b"dst"),
        # A destination of another type is overwritten; an empty result deletes it
        (b"SINTERSTORE", b"str", b"s", b"t"),
        (b"TYPE", b"str"),
        (b"SMEMBERS", b"str"),
        (b"SUNIONSTORE", b"h", b"nokey"),
        (b"EXISTS", b"h"),
        (b"SDIFFSTORE", b"s2", b"s"),
        (b"SDIFFSTORE", b"s2", b"s2", b"s"),
        (b"EXISTS", b"s2"),
        (b"SINTERSTORE", b"t", b"t", b"s"),
        (b"SMEMBERS", b"t"),
        (b"SUNIONSTORE", b"t", b"t", b"s", b"nokey"),
        (b"SMEMBERS", b"t"),
        (b"SET", b"str", b"v"),
        (b"HSET", b"h", b"f", b"v"),
        # SMOVE: a missing source answers 0 before the destination's type counts
        (b"SMOVE", b"nokey", b"str", b"a"),
        (b"SMOVE", b"str", b"nokey", b"a"),
        (b"SMOVE", b"s", b"str", b"a"),
        (b"SMOVE", b"s", b"h", b"zz"),
        (b"SMOVE", b"s", b"s", b"zz"),
        (b"SMOVE", b"s", b"s", b"b"),
        (b"SMOVE", b"s", b"new", b"zz"),
        (b"EXISTS", b"new"),
        (b"SMOVE", b"s", b"new", b"b"),
        (b"SMOVE", b"new", b"s", b"b"),
        (b"EXISTS", b"new"),
        (b"SMEMBERS", b"s"),
        # SPOP / SRANDMEMBER counts are parsed before the key is looked up
        (b"SPOP", b"s", b"-1"),
        (b"SPOP", b"str", b"-1"),
        (b"SPOP", b"s", b"x"),
        (b"SPOP", b"s", b"1.0"),
        (b"SPOP", b"s", b"9223372036854775808"),
        (b"SPOP", b"s", b"1", b"2"),
        (b"SPOP", b"str", b"0"),
        (b"SPOP", b"s", b"0"),
        (b"SPOP", b"nokey", b"0"),
        (b"SPOP", b"nokey", b"3"),
        (b"SPOP", b"nokey"),
        (b"SRANDMEMBER", b"s", b"x"),
        (b"SRANDMEMBER", b"str", b"x"),
        (b"SRANDMEMBER", b"s", b"+1"),
        (b"SRANDMEMBER", b"s", b"1", b"2"),
        (b"SRANDMEMBER", b"s", b"-9223372036854775808"),
        (b"SRANDMEMBER", b"str", b"0"),
        (b"SRANDMEMBER", b"nokey"),
        (b"SRANDMEMBER", b"nokey", b"-3"),
        (b"SRANDMEMBER", b"s", b"0"),
        (b"SRANDMEMBER", b"s", b"9223372036854775807"),
        (b"SPOP", b"s", b"9223372036854775807"),
        (b"EXISTS", b"s"),
        # SSCAN: the cursor first; its options only once the key is a set
        (b"SADD", b"s", b"a", b"b", b"c"),
        (b"SSCAN", b"s", b"x"),
        (b"SSCAN", b"nokey", b"x"),
        (b"SSCAN", b"nokey", b"0", b"COUNT", b"0"),
        (b"SSCAN", b"nokey", b"0", b"FOO"),
        (b"SSCAN", b"str", b"0", b"FOO"),
        (b"SSCAN", b"s", b"0", b"COUNT", b"0"),
        (b"SSCAN", b"s", b"0", b"COUNT", b"x"),
        (b"SSCAN", b"s", b"0", b"FOO"),
        (b"SSCAN", b"s", b"0", b"MATCH"),
        (b"SSCAN", b"s", b"18446744073709551616"),
        (b"SSCAN", b"s", b"0", b"count", b"5", b"match", b"[ab]"),
        (b"SMISMEMBER", b"nokey", b"a", b"b"),
        (b"SMISMEMBER", b"s", b"a", b"x", b"a"),
        (b"SMISMEMBER", b"str", b"a"),
        (b"SREM", b"nokey", b"a"),
        (b"SREM", b"s", b"a", b"a", b"x"),
        (b"SREM", b"h", b"a"),
        (b"SCARD", b"s"),
        (b"SREM", b"s", b"b", b"c"),
        (b"EXISTS", b"s"),
        (b"SADD", b"s", b""),
        (b"SISMEMBER", b"s", b""),
        (b"SMEMBERS", b"s"),
    ])


def test_an_expired_set_is_gone_for_every_command(real):
    def expired(cmd: tuple[bytes, ...]) -> list[tuple[bytes, ...]]:
        """`cmd` right after s expired, then what s and t hold."""
        return [(b"SADD", b"s", b"a", b"b"), (b"SADD", b"t", b"b"),
                (b"PEXPIRE", b"s", b"-1"), cmd, (b"SMEMBERS", b"s"), (b"SMEMBERS", b"t"),
                (b"DEL", b"s", b"t", b"d")]

    check(real, [step for cmd in [
        (b"TYPE", b"s"), (b"SCARD", b"s"), (b"SMEMBERS", b"s"), (b"SISMEMBER", b"s", b"a"),
        (b"SMISMEMBER", b"s", b"a", b"b"), (b"SRANDMEMBER", b"s"),
        (b"SRANDMEMBER", b"s", b"-2"), (b"SPOP", b"s"), (b"SPOP", b"s", b"2"),
        (b"SSCAN", b"s", b"0"), (b"SREM", b"s", b"a"), (b"SADD", b"s", b"a", b"c"),
        (b"SINTER", b"t", b"s"), (b"SINTERCARD", b"1", b"s"), (b"SUNION", b"s", b"t"),
        (b"SDIFF", b"s", b"t"), (b"SDIFF", b"t", b"s"), (b"SDIFFSTORE", b"d", b"t", b"s"),
        (b"SMOVE", b"s", b"t", b"a"), (b"SMOVE", b"t", b"s", b"b"),
    ] for step in expired(cmd)] + [
        (b"SADD", b"s", b"a", b"b"), (b"PEXPIRE", b"s", b"-1"), (b"SADD", b"s", b"b", b"c"),
        (b"SMEMBERS", b"s"), (b"SCARD", b"s"),
    ])


class RawReal:
    """A redis-server connection that returns each reply's bytes (RESP3 types kept)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)

    def call(self, *args: bytes) -> bytes:
        self.sock.sendall(resp_command(*args) + resp_command(b"PING"))
        got = b""
        while not got.endswith(b"+PONG\r\n"):
            chunk = self.sock.recv(65536)
            assert chunk, got
            got += chunk
        return got[: -len(b"+PONG\r\n")]


@pytest.mark.parametrize("proto", [2, 3])
def test_reply_types_are_redis_own(real_redis, proto):
    """Byte for byte, in both protocols: sets (`~` in RESP3) for SMEMBERS, SINTER,
    SUNION, SDIFF and SPOP with a count; arrays for SRANDMEMBER with a count, SMISMEMBER
    and SSCAN; nulls for a missing member."""
    raw = RawReal(real_redis.port)
    raw.call(b"HELLO", b"%d" % proto)
    raw.call(b"FLUSHALL")
    local = LocalRunner()
    for cmd in [
        (b"SADD", b"s", b"a"),
        (b"SADD", b"t", b"a", b"b"),
        (b"SMEMBERS", b"s"), (b"SMEMBERS", b"nokey"),
        (b"SINTER", b"s", b"t"), (b"SINTER", b"nokey", b"s"),
        (b"SUNION", b"s", b"nokey"), (b"SDIFF", b"t", b"s"), (b"SDIFF", b"nokey"),
        (b"SINTERCARD", b"2", b"s", b"t"),
        (b"SPOP", b"nokey"), (b"SPOP", b"nokey", b"2"), (b"SPOP", b"s", b"0"),
        (b"SRANDMEMBER", b"nokey"), (b"SRANDMEMBER", b"nokey", b"2"),
        (b"SRANDMEMBER", b"s", b"1"), (b"SRANDMEMBER", b"s", b"-2"),
        (b"SMISMEMBER", b"s", b"a", b"x"), (b"SISMEMBER", b"s", b"a"),
        (b"SSCAN", b"s", b"0"), (b"SSCAN", b"nokey", b"0"),
        (b"SMOVE", b"t", b"u", b"b"), (b"SCARD", b"u"),
        (b"SPOP", b"s", b"1"), (b"SPOP", b"u"),
        (b"SINTERSTORE", b"d", b"t", b"t"), (b"SREM", b"d", b"a"),
    ]:
        assert local.run(*cmd, proto=proto) == raw.call(*cmd), cmd


class _Client:
    proto = 2


def test_command_getkeys_finds_the_keys_redis_finds(real_redis):
    """Cluster clients (redis-py's RedisCluster) ask COMMAND GETKEYS where the keys of a
    `movablekeys` command such as SINTERCARD are."""
    raw = RawReal(real_redis.port)
    for case in [
        (b"SINTERCARD", b"2", b"a", b"b", b"LIMIT", b"1"), (b"SINTERCARD", b"1", b"a", b"x"),
        (b"SINTERCARD", b"0", b"a"), (b"SINTERCARD", b"3", b"a", b"b"),
        (b"SINTERCARD", b"x", b"a"), (b"SINTERCARD", b"1"),
        (b"SINTER", b"a", b"b", b"c"), (b"SINTERSTORE", b"d", b"a"), (b"SMOVE", b"a", b"b", b"m"),
        (b"SADD", b"a", b"m"), (b"SSCAN", b"a", b"0"),
    ]:
        args = [b"COMMAND", b"GETKEYS", *case]
        assert cmd_command_getkeys(_Client(), args) == raw.call(*args), case


def test_an_expired_hash_is_gone_too(real):
    """The view hides an expired collection's elements for every type (core/collview)."""
    check(real, [
        (b"HSET", b"h", b"f", b"v", b"g", b"1"), (b"PEXPIRE", b"h", b"-1"),
        (b"HGET", b"h", b"f"), (b"HLEN", b"h"), (b"HEXISTS", b"h", b"g"), (b"HGETALL", b"h"),
        (b"HDEL", b"h", b"f"), (b"HINCRBY", b"h", b"g", b"5"), (b"HSET", b"h", b"f", b"w"),
        (b"HGETALL", b"h"), (b"TYPE", b"h"),
    ])
