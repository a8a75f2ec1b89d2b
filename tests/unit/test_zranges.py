"""Sorted-set scores and ranges: parsing as Redis' strtod rules, printing as Redis prints
doubles, and range readers that find a range by bisection, never by walking the set."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sortedcontainers import SortedList

from dynredis.commands import zfloat, zranges
from dynredis.commands.zranges import ScoreRange
from dynredis.core import records as rec
from tests.collharness import LocalRunner

# --- scores ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    (b"1", 1.0), (b"+1", 1.0), (b"-1.5", -1.5), (b".5", 0.5), (b"5.", 5.0), (b"1E-5", 1e-5),
    (b"inf", math.inf), (b"-Infinity", -math.inf), (b"+INF", math.inf), (b"0x10", 16.0),
    (b"0X1p3", 8.0), (b"0x.8", 0.5), (b"-0", -0.0), (b"1e-310", 1e-310),
    (b"0e500", 0.0), (b"1.7976931348623157e308", 1.7976931348623157e308),
])
def test_scores_redis_accepts(text, value):
    assert zfloat.parse_score(text) == value


@pytest.mark.parametrize("text", [
    b"", b" 1", b"1 ", b"\t1", b"x", b".", b"1e", b"1e+", b"0x", b"0x1p", b"nan", b"-nan",
    b"nan(1)", b"infinit", b"1e400", b"-1e400", b"1e-400", b"0x1p99999", b"0x1p-99999",
    b"1\x00", b"1_0", b"(1", b"\xef\xbc\x91", b"2.4e-324",
])
def test_scores_redis_refuses(text):
    assert zfloat.parse_score(text) is None


@pytest.mark.parametrize("text,bound", [
    (b"", (0.0, False)), (b"(", (0.0, True)), (b" 1", (1.0, False)), (b"( 1", (1.0, True)),
    (b"1e400", (math.inf, False)), (b"1e-400", (0.0, False)), (b"1\x00junk", (1.0, False)),
    (b"\x00(5", (0.0, False)), (b"(-inf", (-math.inf, True)), (b"+inf", (math.inf, False)),
])
def test_range_bounds_are_plain_strtod(text, bound):
    assert zfloat.parse_bound(text) == bound


@pytest.mark.parametrize("text", [b"x", b"((1", b" ", b"nan", b"(nan", b"1 ", b"+", b"-"])
def test_range_bounds_redis_refuses(text):
    assert zfloat.parse_bound(text) is None


@given(st.floats(allow_nan=False))
def test_printed_scores_read_back_exactly(x):
    text = zfloat.fmt(x)
    assert zfloat.parse_score(text) == x
    assert zfloat.reply(x, 3) == b"," + text + b"\r\n"
    assert zfloat.reply(x, 2) == b"$%d\r\n%b\r\n" % (len(text), text)


def test_scores_print_as_redis_prints_doubles():
    assert [zfloat.fmt(x) for x in (0.1, 1e21, -0.0, math.inf, -math.inf, 1e17, 3.0)] == \
        [b"0.10000000000000001", b"1e+21", b"-0", b"inf", b"-inf", b"1e+17", b"3"]
    # A small set's listpack holds integral scores up to 2^62 as integers (ZSCAN).
    assert [zfloat.listpack_text(x) for x in (1e17, 2.0**62, 2.0**62 + 1024, 0.5, -2.0**62)] \
        == [b"100000000000000000", b"4611686018427387904", b"4.6116860184273889e+18",
            b"0.5", b"-4611686018427387904"]


# --- ranges ------------------------------------------------------------------------------


def test_lex_bounds():
    assert zranges.parse_lex_bound(b"+\x00x").edge == zranges.MAX_STRING
    assert zranges.parse_lex_bound(b"-").edge == zranges.MIN_STRING
    assert zranges.parse_lex_bound(b"(a\x00b").member == b"a\x00b"
    assert not zranges.parse_lex_bound(b"[").exclusive
    for bad in (b"", b"a", b"+a", b"--"):
        assert zranges.parse_lex_bound(bad) is None


members = st.dictionaries(st.binary(max_size=3), st.sampled_from([-math.inf, -1.0, 0.0, 0.5,
                                                                  1.0, 2.0, math.inf]),
                          max_size=12)
bounds = st.tuples(st.sampled_from([-math.inf, -1.0, 0.0, 0.25, 0.5, 1.0, 2.0, math.inf]),
                   st.booleans())


@given(members, bounds, bounds, st.integers(-2, 5), st.integers(-2, 5), st.booleans())
def test_score_ranges_agree_with_a_walk(items, lo, hi, offset, limit, reverse):
    zl = SortedList((s, m) for m, s in items.items())
    r = ScoreRange(lo[0], hi[0], lo[1], hi[1])
    walk = [(m, s) for s, m in zl if r.contains(s)]
    if reverse:
        walk.reverse()
    want = [] if offset < 0 else walk[offset:] if limit < 0 else walk[offset:offset + limit]
    assert zranges.zrange_by_score(zl, r, reverse, offset, limit) == want
    assert zranges.score_span(zl, r)[1] - zranges.score_span(zl, r)[0] == len(walk)


lex_bound = st.one_of(st.sampled_from([b"-", b"+"]),
                      st.tuples(st.sampled_from([b"(", b"["]), st.binary(max_size=2)).map(
                          lambda t: t[0] + t[1]))


@given(st.lists(st.binary(max_size=3), max_size=12), lex_bound, lex_bound, st.booleans())
def test_lex_ranges_of_equal_scores_agree_with_a_walk(names, lo, hi, reverse):
    zl = SortedList((0.0, m) for m in set(names))
    r = zranges.parse_lex_range(lo, hi)
    walk = [(m, s) for s, m in zl if r.gte_min(m) and r.lte_max(m)]
    if reverse:
        walk.reverse()
    assert zranges.zrange_by_lex(zl, r, reverse) == walk


def redis_lex_walk(zl: SortedList, r: zranges.LexRange, reverse: bool) -> list:
    """Redis' walk over members of differing scores (zranges' module docstring), as the
    test of each member reads it: forward, skip while below min then take while up to
    max; reverse, skip while above max then take while from min."""
    n = len(zl)
    if not n or not r.may_hold() or not r.gte_min(zl[-1][1]) or not r.lte_max(zl[0][1]):
        return []
    order = list(zl)[::-1] if reverse else list(zl)
    skip, take = (r.lte_max, r.gte_min) if reverse else (r.gte_min, r.lte_max)
    i = 0
    while i < n and not skip(order[i][1]):
        i += 1
    out = []
    while i < n and take(order[i][1]):
        out.append((order[i][1], order[i][0]))
        i += 1
    return out


short_names = st.text("abc", max_size=3).map(str.encode)
dense_lex_bound = st.one_of(st.sampled_from([b"-", b"+"]),
                            st.tuples(st.sampled_from([b"(", b"["]), short_names).map(
                                lambda t: t[0] + t[1]))


@settings(max_examples=400)
@example([(0.0, b"a"), (1.0, b"b"), (2.0, b"c")], b"[a", b"[c", 0, 1, False)
@example([(0.0, b"a"), (1.0, b"b"), (2.0, b"c")], b"(a", b"+", 1, 1, True)
@example([(0.0, b"b"), (1.0, b"a"), (1.0, b"c"), (2.0, b"cc")], b"[b", b"[cc", 1, 2, False)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0]), short_names), min_size=1,
                max_size=14),
       dense_lex_bound, dense_lex_bound, st.integers(-1, 6), st.integers(-1, 6),
       st.booleans())
def test_lex_ranges_of_differing_scores_are_redis_walk_cut_by_limit(
        items, lo, hi, offset, limit, reverse):
    """The walks, made by C predicates and stopped once LIMIT's members are found,
    answer what Redis' walk answers, then cut by LIMIT offset count."""
    zl = SortedList((s, m) for m, s in {m: s for s, m in items}.items())
    r = zranges.parse_lex_range(lo, hi)
    walk = redis_lex_walk(zl, r, reverse)
    want = [] if offset < 0 else walk[offset:] if limit < 0 else walk[offset:offset + limit]
    assert zranges.zrange_by_lex(zl, r, reverse, offset, limit) == want
    lo_at, hi_at = zranges.lex_span(zl, r, reverse)
    assert hi_at - lo_at == len(walk)  # (ZLEXCOUNT's, uncut)


@given(st.integers(0, 12), st.integers(-15, 15), st.integers(-15, 15), st.booleans())
def test_rank_ranges_as_redis_sanitizes_them(n, start, end, reverse):
    zl = SortedList((float(i), b"m%02d" % i) for i in range(n))
    everything = [(m, s) for s, m in zl]
    if reverse:
        everything.reverse()
    s0 = start + n if start < 0 else start
    e0 = end + n if end < 0 else end
    s0 = max(s0, 0)
    want = [] if s0 > e0 or s0 >= n else everything[s0:min(e0, n - 1) + 1]
    assert zranges.zrange_by_rank(zl, start, end, reverse) == want


# --- cost: no range reader walks the set -------------------------------------------------


class NoWalk(SortedList):
    """A SortedList that refuses to be iterated whole (bisect, index, islice are fine)."""

    def __iter__(self):
        raise AssertionError("walked the whole set")

    def __reversed__(self):
        raise AssertionError("walked the whole set")


def test_range_commands_do_not_walk_the_set():
    r = LocalRunner()
    n = 5000
    words = [b"ZADD", b"big"]
    for i in range(n):
        words += [b"%d" % i, b"m%05d" % i]
    assert r.run(*words) == b":%d\r\n" % n
    state = r.store.states[b"big"]
    state.zorder = NoWalk(state.zorder)
    mid = b"%d" % (n // 2)
    assert r.run("ZRANGE", "big", mid, b"%d" % (n // 2 + 9)).startswith(b"*10\r\n")
    assert r.run("ZREVRANGE", "big", mid, b"%d" % (n // 2 + 9), "WITHSCORES"
                 ).startswith(b"*20\r\n")
    assert r.run("ZRANGEBYSCORE", "big", "(2500", "+inf", "LIMIT", "0", "10"
                 ).startswith(b"*10\r\n$6\r\nm02501")
    assert r.run("ZRANGE", "big", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "5", "3") == \
        b"*3\r\n$6\r\nm04994\r\n$6\r\nm04993\r\n$6\r\nm04992\r\n"
    assert r.run("ZCOUNT", "big", "100", "(200") == b":100\r\n"
    assert r.run("ZRANK", "big", "m02500") == b":2500\r\n"
    assert r.run("ZREVRANK", "big", "m02500") == b":2499\r\n"
    assert r.run("ZPOPMIN", "big", "2") == b"*4\r\n$6\r\nm00000\r\n$1\r\n0\r\n$6\r\nm00001\r\n$1\r\n1\r\n"
    assert r.run("ZREMRANGEBYRANK", "big", "-3", "-1") == b":3\r\n"
    assert r.run("ZCARD", "big") == b":%d\r\n" % (n - 5)
    flat_scores = [b"ZADD", b"lex"] + [x for i in range(n) for x in (b"0", b"w%05d" % i)]
    r.run(*flat_scores)
    r.store.states[b"lex"].zorder = NoWalk(r.store.states[b"lex"].zorder)
    assert r.run("ZRANGEBYLEX", "lex", "[w02500", "+", "LIMIT", "0", "2") == \
        b"*2\r\n$6\r\nw02500\r\n$6\r\nw02501\r\n"
    assert r.run("ZLEXCOUNT", "lex", "(w00100", "[w00200") == b":100\r\n"


def test_sets_are_sorted_sets_of_score_1_in_set_operations():
    r = LocalRunner()
    r.run("ZADD", "z", "2", "a", "5", "b")
    view = r.view(b"s")
    view.put(rec.SET, b"a", b"")
    view.put(rec.SET, b"c", b"")
    view.finish()
    assert r.run("ZUNION", "2", "z", "s", "WITHSCORES") == \
        b"*6\r\n$1\r\nc\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n5\r\n"
    assert r.run("ZINTER", "2", "s", "z", "WEIGHTS", "10", "1") == b"*1\r\n$1\r\na\r\n"
    assert r.run("ZDIFF", "2", "s", "z", "WITHSCORES") == b"*2\r\n$1\r\nc\r\n$1\r\n1\r\n"
    assert r.run("ZRANGE", "s", "0", "-1").startswith(b"-WRONGTYPE")


def test_huge_repeated_random_picks_are_refused_not_built():
    r = LocalRunner()
    r.run("ZADD", "z", "1", "a")
    assert r.run("ZRANDMEMBER", "z", "-1000000").startswith(b"*1000000\r\n")
    assert r.run("ZRANDMEMBER", "z", "-1000001") == b"-ERR value is out of range\r\n"
    assert r.run("ZRANDMEMBER", "z", "-9223372036854775807") == \
        b"-ERR value is out of range\r\n"
    assert r.run("ZRANDMEMBER", "z", "9223372036854775807") == b"*1\r\n$1\r\na\r\n"


@pytest.mark.parametrize("proto", [2, 3])
def test_a_pop_of_many_members_is_answered_over_loop_turns(monkeypatch, proto: int) -> None:
    """ZPOPMIN/ZPOPMAX with a count over a reply's slice: the reply is encoded a slice
    a loop turn (bulks.SlicedReply), from the popped pairs as the set held them (ZPOPMIN
    z 250000 encoded its reply whole in the command's turn, ~100 ms), and is what one
    encoding of the whole gives."""
    from dynredis.resp import bulks
    from tests.unit.test_sets import _run_streamed

    monkeypatch.setattr(bulks, "STREAM_ROWS", 10)
    r = LocalRunner()
    r.run("ZADD", "z", *[w for i in range(60) for w in (str(i / 4), f"m{i:02d}")])
    for words, order in (([b"ZPOPMIN", b"z", b"25"], range(25)),
                         ([b"ZPOPMAX", b"z", b"25"], range(59, 34, -1))):
        rows = _run_streamed(r, *words, proto=proto)
        assert isinstance(rows, list)
        pairs = rows if proto == 3 else list(zip(rows[::2], rows[1::2], strict=True))
        assert [(m, float(s)) for m, s in pairs] == [(b"m%02d" % i, i / 4) for i in order]
