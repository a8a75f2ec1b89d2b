"""RENAME, RENAMENX, COPY, SORT and SORT_RO across every type, against a real redis-server.

As tests/integration/test_collection_semantics.py: hypothesis draws histories over keys
of every type (lists, sets, sorted sets, hashes, strings, and the weight keys SORT's BY
and GET patterns name), mixing the key commands with writes and whole-key reads, and
sends each command to redis-server and to `LocalRunner` (the plans' steps on one
replica's view). Replies must be equal, and so must the keys' contents and TTLs after
them (PTTL compared as "has a TTL").

Where Redis' own order is not defined, the comparison says what must hold instead
(compat/DIFFERENCES.md): SORT ... BY nosort of a set lists it in its hash table's
order (compared as sorted; with LIMIT, only how many), and ALPHA with BY over a set or
a sorted set leaves equal weights in that order too (compared the same way; when it
is stored, the stored list is compared sorted (with LIMIT, its length) and the local one
made Redis' before the history goes on).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynredis.commands.sortspec import cstr
from tests.collharness import LocalRunner
from tests.integration.test_collection_semantics import SETTINGS, Real, normal, parse
from tests.integration.test_collection_semantics_lists import RawReal


@pytest.fixture(scope="module")
def real(real_redis) -> Real:
    return Real(real_redis.port)


def _sort_options(cmd: tuple[bytes, ...]) -> dict:
    """What a SORT's checker needs of its options (as sortspec.parse reads them)."""
    out = {"dontsort": False, "by": None, "alpha": False, "store": None, "limit": False,
           "gets": 0}
    i = 2
    while i < len(cmd):
        word = cstr(cmd[i]).lower()
        if word == b"by" and i + 1 < len(cmd):
            out["by"] = cmd[i + 1]
            out["dontsort"] |= b"*" not in cstr(cmd[i + 1])
            i += 1
        elif word == b"get" and i + 1 < len(cmd):
            out["gets"] += 1
            i += 1
        elif word == b"store" and i + 1 < len(cmd):
            out["store"] = cmd[i + 1]
            i += 1
        elif word == b"limit" and i + 2 < len(cmd):
            out["limit"] = True
            i += 2
        elif word == b"alpha":
            out["alpha"] = True
        i += 1
    return out


def sort_freedom(real: Real, cmd: tuple[bytes, ...]) -> str | None:
    """How free Redis is in the order of this SORT's reply: None (exact), "unordered"
    (any order of the elements: compare their groups sorted), "count" (any elements:
    compare how many), "stored" (the destination's order)."""
    if cmd[0].upper() not in (b"SORT", b"SORT_RO"):
        return None
    t = real.call(b"TYPE", cmd[1])
    opts = _sort_options(cmd)
    if t == b"set" and opts["dontsort"] and opts["store"] is None:
        return "count" if opts["limit"] else "unordered"
    if t in (b"set", b"zset") and not opts["dontsort"] and opts["alpha"] \
            and opts["by"] is not None:
        if opts["store"] is not None:
            return "stored"
        return "count" if opts["limit"] else "unordered"
    return None


def _groups(reply: list, size: int) -> list:
    return sorted((tuple(reply[i:i + size]) for i in range(0, len(reply), size)),
                  key=repr)


def check(real: Real, seq: list[tuple[bytes, ...]]) -> None:
    real.call(b"FLUSHALL")
    local = LocalRunner()
    for i, cmd in enumerate(seq):
        at = f"step {i}: {cmd!r}"
        freedom = sort_freedom(real, cmd)
        want = normal(cmd, real.call(*cmd))
        got = normal(cmd, parse(local.run(*cmd)))
        if cmd[0].upper() == b"PTTL":
            want, got = (x if not isinstance(x, int) or x < 0 else "ttl" for x in (want, got))
        if freedom is None or isinstance(want, tuple) or isinstance(got, tuple):
            assert got == want, f"{at}: dynredis {got!r}, redis {want!r}"
            continue
        if freedom == "stored":
            assert got == want, f"{at}: dynredis {got!r}, redis {want!r}"
            dst = _sort_options(cmd)["store"]
            theirs = real.call(b"LRANGE", dst, b"0", b"-1")
            ours = parse(local.run(b"LRANGE", dst, b"0", b"-1"))
            if _sort_options(cmd)["limit"]:  # which of the equal ones: Redis' choice
                assert len(ours) == len(theirs), at  # type: ignore[arg-type]
            else:
                assert sorted(ours) == sorted(theirs), at  # type: ignore[arg-type]
            local.run(b"DEL", dst)
            if theirs:
                local.run(b"RPUSH", dst, *theirs)  # type: ignore[misc]
            continue
        assert isinstance(want, list) and isinstance(got, list), at
        if freedom == "count":
            assert len(got) == len(want), f"{at}: dynredis {got!r}, redis {want!r}"
        else:
            size = max(_sort_options(cmd)["gets"], 1)
            assert _groups(got, size) == _groups(want, size), \
                f"{at}: dynredis {got!r}, redis {want!r}"


LISTS = [b"L1", b"L2"]
MAIN = [b"L1", b"L2", b"S1", b"Z1", b"H1", b"T1"]
ITEMS = [b"1", b"2", b"10", b"-3", b"1.5", b"a", b"b", b"", b"a\x00b"]
MEMBERS = [b"1", b"2", b"10", b"-3", b"1.5", b"a", b"b"]
WEIGHTS = [b"1", b"2", b"-1", b"x", b"1.5", b"", b"10", b"0x10", b" 3"]

anykey = st.sampled_from([*MAIN, *MAIN, *MAIN, b"nokey", b"w_a"])
member = st.sampled_from(MEMBERS)
weight = st.sampled_from(WEIGHTS)

writes = st.one_of(
    st.builds(lambda k, xs: (b"RPUSH", k, *xs), st.sampled_from(LISTS),
              st.lists(st.sampled_from(ITEMS), min_size=1, max_size=5)),
    st.builds(lambda ms: (b"SADD", b"S1", *ms), st.lists(member, min_size=1, max_size=5)),
    st.builds(lambda ps: (b"ZADD", b"Z1", *[x for p in ps for x in p]),
              st.lists(st.tuples(st.sampled_from([b"1", b"2", b"0", b"-1"]), member),
                       min_size=1, max_size=4)),
    st.builds(lambda f, v: (b"HSET", b"H1", f, v), member, weight),
    st.builds(lambda v: (b"SET", b"T1", v), weight),
    st.builds(lambda m, v: (b"SET", b"w_" + m, v), member, weight),
    st.builds(lambda m, v: (b"HSET", b"hw_" + m, b"f", v), member, weight),
    st.builds(lambda k: (b"DEL", k), anykey),
    st.builds(lambda k, ms: (b"PEXPIRE", k, ms), anykey, st.sampled_from([b"100000", b"5000"])),
)
reads = st.one_of(
    st.builds(lambda k: (b"LRANGE", k, b"0", b"-1"), anykey),
    st.builds(lambda k: (b"SMEMBERS", k), anykey),
    st.builds(lambda k: (b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"), anykey),
    st.builds(lambda k: (b"HGETALL", k), anykey),
    st.builds(lambda k: (b"GET", k), anykey),
    st.builds(lambda k: (b"TYPE", k), anykey),
    st.builds(lambda k: (b"EXISTS", k), anykey),
    st.builds(lambda k: (b"PTTL", k), anykey),
)
copy_options = st.lists(st.sampled_from([(b"REPLACE",), (b"DB", b"0"), (b"DB", b"x"),
                                         (b"DB",), (b"FOO",)]), max_size=2)
moves = st.one_of(
    st.builds(lambda a, b: (b"RENAME", a, b), anykey, anykey),
    st.builds(lambda a, b: (b"RENAMENX", a, b), anykey, anykey),
    st.builds(lambda a, b, o: (b"COPY", a, b, *[x for g in o for x in g]), anykey, anykey,
              copy_options),
)

BY = [b"nosort", b"w_*", b"hw_*->f", b"nokey_*", b"w_*->", b"W_*"]
GET = [b"#", b"w_*", b"hw_*->f", b"nostar", b"hw_*->g"]
LIMIT_START = [b"0", b"1", b"2", b"-1", b"5"]
LIMIT_COUNT = [b"-1", b"0", b"1", b"3", b"x"]

sort_option = st.one_of(
    st.builds(lambda p: (b"BY", p), st.sampled_from(BY)),
    st.builds(lambda p: (b"GET", p), st.sampled_from(GET)),
    st.builds(lambda a, b: (b"LIMIT", a, b), st.sampled_from(LIMIT_START),
              st.sampled_from(LIMIT_COUNT)),
    st.sampled_from([(b"ASC",), (b"DESC",), (b"ALPHA",), (b"alpha",), (b"ALPHA",)]),
    st.builds(lambda p: (b"BY", p), st.sampled_from(BY)),
    st.builds(lambda k: (b"STORE", k), st.sampled_from([*MAIN, b"dst"])),
)
sorts = st.builds(lambda name, k, opts: (name, k, *[x for o in opts for x in o]),
                  st.sampled_from([b"SORT", b"SORT", b"SORT_RO"]),
                  st.sampled_from([*LISTS, *LISTS, b"S1", b"S1", b"Z1", b"Z1", b"H1", b"T1",
                                   b"nokey", b"dst"]),
                  st.lists(sort_option, max_size=5))

# Every key holds something at first, and most members have weights.
setup = st.builds(
    lambda items, ms, zs, hs, t, ws, hws: [
        (b"RPUSH", b"L1", *items), (b"SADD", b"S1", *ms),
        (b"ZADD", b"Z1", *[x for p in zs for x in p]),
        (b"HSET", b"H1", *[x for p in hs for x in p]), (b"SET", b"T1", t),
        *[(b"SET", b"w_" + m, w) for m, w in ws], *[(b"HSET", b"hw_" + m, b"f", w)
                                                     for m, w in hws]],
    st.lists(st.sampled_from(ITEMS), min_size=1, max_size=8),
    st.lists(member, min_size=1, max_size=6),
    st.lists(st.tuples(st.sampled_from([b"1", b"2", b"0", b"-1"]), member), min_size=1,
             max_size=5),
    st.lists(st.tuples(member, weight), min_size=1, max_size=3), weight,
    st.lists(st.tuples(member, weight), max_size=7),
    st.lists(st.tuples(member, weight), max_size=5))

history = st.lists(st.one_of(writes, reads, moves, moves, sorts), min_size=8, max_size=25)
sort_history = st.lists(st.one_of(writes, sorts, sorts, sorts), min_size=5, max_size=25)


@SETTINGS
@given(setup, history)
def test_key_commands_across_types(real, start, seq):
    check(real, start + seq)


@SETTINGS
@given(setup, sort_history)
def test_sort_histories(real, start, seq):
    check(real, start + seq)


def test_rename_and_copy_of_every_type_keep_value_and_ttl(real):
    check(real, [
        (b"RPUSH", b"L1", b"c", b"a", b"b"), (b"SADD", b"S1", b"x", b"y"),
        (b"ZADD", b"Z1", b"1.5", b"a", b"2", b"b"), (b"HSET", b"H1", b"f", b"1", b"g", b"x"),
        (b"SET", b"T1", b"v"),
        *[(b"PEXPIRE", k, b"100000") for k in (b"L1", b"S1", b"Z1", b"H1", b"T1")],
        *[(op, a, b) for op in (b"RENAME", b"COPY") for a, b in
          ((b"L1", b"L2"), (b"S1", b"L1"), (b"Z1", b"S1"), (b"H1", b"Z1"), (b"T1", b"H1"))],
        *[(cmd, k) for k in MAIN for cmd in (b"TYPE", b"PTTL")],
        (b"LRANGE", b"L2", b"0", b"-1"), (b"SMEMBERS", b"L1"),
        (b"ZRANGE", b"S1", b"0", b"-1", b"WITHSCORES"), (b"HGETALL", b"Z1"), (b"GET", b"H1"),
    ])


def test_key_command_errors(real):
    check(real, [
        (b"SET", b"T1", b"v"), (b"RPUSH", b"L1", b"b", b"a"),
        (b"RENAME", b"nokey", b"T1"), (b"RENAME", b"nokey", b"nokey"),
        (b"RENAME", b"T1", b"T1"), (b"RENAMENX", b"T1", b"T1"), (b"RENAMENX", b"nokey", b"x"),
        (b"RENAMENX", b"T1", b"L1"), (b"COPY", b"T1", b"T1"), (b"COPY", b"nokey", b"nokey"),
        (b"COPY", b"T1", b"L1"), (b"COPY", b"nokey", b"x"), (b"COPY", b"T1", b"x", b"DB"),
        (b"COPY", b"T1", b"x", b"DB", b"-1"), (b"COPY", b"T1", b"x", b"DB", b"2147483648"),
        (b"COPY", b"T1", b"x", b"DB", b"0", b"REPLACE", b"replace"), (b"GET", b"x"),
        (b"SORT", b"T1"), (b"SORT", b"T1", b"FOO"), (b"SORT", b"nokey", b"LIMIT", b"1"),
        (b"SORT", b"L1", b"LIMIT", b"x", b"1"), (b"SORT", b"L1", b"LIMIT", b"1", b"x"),
        (b"SORT", b"L1", b"LIMIT", b"1", b"9223372036854775808"), (b"SORT", b"L1", b"STORE"),
        (b"SORT_RO", b"L1", b"STORE", b"d"), (b"SORT", b"L1", b"BY"), (b"SORT", b"L1", b"GET"),
        (b"SORT", b"L1"), (b"SORT", b"L1", b"STORE", b"d"), (b"EXISTS", b"d"),
        (b"SORT", b"L1", b"ALPHA", b"STORE", b"d"), (b"LRANGE", b"d", b"0", b"-1"),
        (b"SORT", b"L1", b"ALPHA", b"LIMIT", b"9223372036854775807", b"9223372036854775807"),
        (b"SORT", b"L1", b"ALPHA", b"LIMIT", b"-9223372036854775808", b"-1"),
    ])


def test_sort_weights_and_orders(real):
    """Weights read as SORT's strtod reads them, ties, C strings, LIMIT with BY."""
    check(real, [
        (b"RPUSH", b"N", b"3", b" 2", b"1e2", b"0x10", b"", b"-inf", b"1.5", b"5\x00x",
         b"infinity", b"-0", b"0", b"0x1p-1074", b"2.2250738585072014e-308", b"9", b"9.0"),
        (b"SORT", b"N"), (b"SORT", b"N", b"DESC"), (b"SORT", b"N", b"LIMIT", b"2", b"3"),
        (b"RPUSH", b"A", b"a\x00b", b"a\x00a", b"a", b"a\x00c", b"\x80", b"\xc3\xa9", b"\xc3"),
        (b"SORT", b"A", b"ALPHA"), (b"SORT", b"A", b"ALPHA", b"DESC"),
        (b"SORT", b"A", b"ALPHA", b"STORE", b"d"), (b"LRANGE", b"d", b"0", b"-1"),
        (b"SORT", b"A"), (b"SORT", b"N", b"BY", b"w_*"),
        (b"RPUSH", b"M", *[bytes([c]) for c in b"gfedcbaqponmlkjih"]),
        *[(b"SORT", b"M", b"BY", b"nokey_*", *alpha, *desc, b"LIMIT", s, n)
          for alpha in ((), (b"ALPHA",)) for desc in ((), (b"DESC",))
          for s, n in ((b"2", b"3"), (b"0", b"5"), (b"9", b"20"), (b"1", b"1"))],
        (b"SET", b"w_a", b"3"), (b"SET", b"w_b", b"3"), (b"SET", b"w_c", b"1"),
        (b"HSET", b"hw_d", b"f", b"2"), (b"HSET", b"hw_e", b"f->g", b"deep"),
        (b"SORT", b"M", b"BY", b"w_*", b"GET", b"#", b"GET", b"w_*", b"GET", b"hw_*->f"),
        (b"SORT", b"M", b"BY", b"w_*", b"ALPHA", b"LIMIT", b"1", b"4", b"GET", b"hw_*->f->g"),
        (b"SORT", b"M", b"BY", b"hw_*->f", b"DESC", b"GET", b"w_*->", b"GET", b"*->*"),
        (b"SORT", b"M", b"BY", b"nosort", b"BY", b"w_*", b"DESC", b"LIMIT", b"3", b"4"),
        (b"SORT", b"M", b"BY", b"w_*", b"STORE", b"d", b"GET", b"nostar", b"GET", b"hw_*->f"),
        (b"LRANGE", b"d", b"0", b"-1"),
        (b"SORT", b"M", b"BY", b"w_*", b"ALPHA", b"LIMIT", b"0", b"0", b"STORE", b"d"),
        (b"EXISTS", b"d"),
        (b"SADD", b"I", b"3", b"1", b"2", b"10", b"-5"), (b"SORT", b"I", b"BY", b"nosort"),
        (b"SORT", b"I", b"BY", b"nosort", b"DESC", b"LIMIT", b"1", b"2"),
        (b"SORT", b"I", b"BY", b"nosort", b"STORE", b"d"), (b"LRANGE", b"d", b"0", b"-1"),
        (b"ZADD", b"Z", b"3", b"a", b"1", b"b", b"2", b"c", b"2", b"d"),
        (b"SORT", b"Z", b"BY", b"nosort"), (b"SORT", b"Z", b"BY", b"nosort", b"DESC"),
        (b"SORT", b"Z", b"BY", b"nosort", b"DESC", b"LIMIT", b"1", b"2"),
        (b"SORT", b"Z", b"BY", b"w_*", b"GET", b"#", b"GET", b"w_*"),
        (b"SORT_RO", b"Z", b"ALPHA", b"DESC", b"LIMIT", b"1", b"-1"),
    ])


@pytest.mark.parametrize("native", [True, False])
def test_sorts_over_loop_turns_as_redis(real, monkeypatch, native):
    """A list long enough to be sorted over loop turns (slices made small here): the
    weights, equal ones among them (-0 and 0, inf), the NUL-byte check, the order by
    weight in C or by Python's sort, and the elements picked a slice a turn give
    Redis' replies, with BY, DESC, ALPHA, LIMIT and GET."""
    from dynredis.commands import sortcmd

    monkeypatch.setattr(sortcmd, "SLICE", 16)
    monkeypatch.setattr(sortcmd, "TURN_ELEMENTS", 16)
    monkeypatch.setattr(sortcmd, "RESOLVE_TURN", 16)
    if not native:
        monkeypatch.setattr(sortcmd, "_weight_order", None)
    distinct = [b"%d" % (i * 37 % 101 - 50) for i in range(101)]
    ties = [b"%d" % (i % 7) for i in range(60)] + [b"-0", b"0", b"inf", b"-inf", b"1e3",
                                                   b"1000", b"0.5", b".5"] * 3
    check(real, [
        (b"RPUSH", b"D", *distinct), (b"RPUSH", b"T", *ties),
        (b"RPUSH", b"A", *[b"a%d" % (i * 7 % 50) for i in range(50)], b"a\x00b", b"a\x00a"),
        *[(b"SET", b"w_" + x, b"%d" % (i % 5)) for i, x in enumerate(distinct[::3])],
        *[(b"SORT", k, *o) for k in (b"D", b"T") for o in
          ((), (b"DESC",), (b"LIMIT", b"3", b"40"), (b"BY", b"w_*"), (b"BY", b"w_*", b"DESC"),
           (b"DESC", b"GET", b"#", b"GET", b"w_*"), (b"ALPHA",))],
        (b"SORT", b"A", b"ALPHA"), (b"SORT", b"A", b"ALPHA", b"DESC"),
        (b"SORT", b"T", b"STORE", b"d"), (b"LRANGE", b"d", b"0", b"-1"),
    ])


def test_sort_replies_in_resp3(real_redis):
    """A missing GET value is RESP3's null, as in Redis."""
    conn = RawReal(real_redis.port, 3)
    try:
        conn.call(b"FLUSHALL")
        local = LocalRunner()
        for cmd in ((b"RPUSH", b"L", b"2", b"1"), (b"SET", b"w_1", b"x"),
                    (b"SORT", b"L", b"GET", b"#", b"GET", b"w_*"),
                    (b"SORT_RO", b"L", b"LIMIT", b"5", b"1"),
                    (b"SORT", b"L", b"GET", b"w_*", b"STORE", b"d")):
            assert local.run(*cmd, proto=3) == conn.call(*cmd), cmd
    finally:
        conn.close()



GETKEYS_CASES = [
    (b"SORT", b"k"), (b"SORT", b"k", b"STORE", b"d"), (b"SORT", b"k", b"STORE"),
    (b"SORT", b"k", b"STORE", b"a", b"store", b"b"), (b"SORT", b"k", b"LIMIT", b"1", b"STORE",
                                                       b"b"),
    (b"SORT", b"k", b"GET", b"STORE", b"b"), (b"SORT", b"k", b"BY", b"w_*", b"GET", b"#"),
    (b"SORT_RO", b"k", b"ALPHA"), (b"SORT_RO", b"k", b"STORE", b"d"),
    (b"RENAME", b"a", b"b"), (b"RENAMENX", b"a", b"b"), (b"COPY", b"a", b"b", b"REPLACE"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_command_getkeys_finds_keys_as_redis(real_redis, proto):
    """Cluster clients ask COMMAND GETKEYS where SORT's STORE destination is."""
    from types import SimpleNamespace

    from dynredis.commands.server import cmd_command_getkeys

    conn = RawReal(real_redis.port, proto)
    try:
        for case in GETKEYS_CASES:
            args = [b"COMMAND", b"GETKEYS", *case]
            client = SimpleNamespace(proto=proto)
            assert cmd_command_getkeys(client, args) == conn.call(*args), case
    finally:
        conn.close()
