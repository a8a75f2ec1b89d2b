"""Set commands beyond what one history against redis-server shows: concurrent updates
through two replicas (add wins), what multi-key plans move between nodes, random picks,
and the bound on SRANDMEMBER's negative counts."""

from __future__ import annotations

import random
from collections import Counter

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynredis.commands import collection, sets
from dynredis.commands.sets import RANDOM_REPEATS_MAX, random_members
from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core import records as rec
from tests.collharness import LocalRunner


def parse(data: bytes) -> object:
    r = hiredis.Reader()
    r.feed(data)
    return r.gets()


def ship(src: LocalRunner, dst: LocalRunner, since: int) -> None:
    """Apply the deltas of src's commands from `since` on to dst, as a replica takes
    them (element records merged, headers synced, events noted)."""
    for deltas, events in src.writes[since:]:
        written = []
        p, key = 0, b""
        for part, rkey, enc, _base in deltas:
            if rec.is_elem_partition(part):
                dst.store.merge(part, rkey, enc)
                p, key = rec.base_partition(part), rec.split(rkey)[0]
            else:
                local = dst.engine.get(part, rkey)
                merged = enc if local is None else objmod.encode(
                    dvv.sync(objmod.decode(local), objmod.decode(enc)))
                dst.engine.put(part, rkey, merged)
                p, key = part, rkey
            written.append((part, rkey))
        if events:
            dst.store.applied(p, key, events, written)


def members(r: LocalRunner, key: bytes) -> list:
    return sorted(parse(r.run(b"SMEMBERS", key)))  # type: ignore[arg-type]


def test_a_member_added_again_survives_a_concurrent_removal():
    a, b = LocalRunner(name=b"A"), LocalRunner(name=b"B")
    a.run(b"SADD", b"s", b"m", b"x")
    ship(a, b, 0)
    na, nb = len(a.writes), len(b.writes)
    # Concurrently: B removes m; A adds m again (already there: SADD answers 0).
    assert b.run(b"SREM", b"s", b"m") == b":1\r\n"
    assert a.run(b"SADD", b"s", b"m") == b":0\r\n"
    ship(a, b, na)
    ship(b, a, nb)
    assert members(a, b"s") == members(b, b"s") == [b"m", b"x"]
    # A removal that saw the re-addition removes it everywhere.
    na = len(a.writes)
    a.run(b"SREM", b"s", b"m")
    ship(a, b, na)
    assert members(a, b"s") == members(b, b"s") == [b"x"]


def test_spop_removes_only_what_it_saw_a_concurrent_addition_stays():
    a, b = LocalRunner(name=b"A"), LocalRunner(name=b"B")
    a.run(b"SADD", b"s", b"m")
    ship(a, b, 0)
    na, nb = len(a.writes), len(b.writes)
    assert a.run(b"SPOP", b"s") == b"$1\r\nm\r\n"  # the whole set: a delete
    assert a.run(b"EXISTS", b"s") == b":0\r\n"
    b.run(b"SADD", b"s", b"n", b"m")
    ship(a, b, na)
    ship(b, a, nb)
    assert members(a, b"s") == members(b, b"s") == [b"m", b"n"]


class Recording(LocalRunner):
    """A LocalRunner that keeps the steps plans run."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[list[bytes]] = []

    def run(self, *args, proto: int = 2) -> bytes:  # type: ignore[override]
        words = [a.encode() if isinstance(a, str) else a for a in args]
        name = words[0].decode().lower()
        if name not in collection.PLANS:
            return super().run(*words, proto=proto)
        plan = collection.PLANS[name](words, proto)
        assert not isinstance(plan, bytes)
        out: list[bytes] = []

        def step(args, cb):
            self.steps.append(args)
            cb((None, self.step(args, proto)))

        collection.drive(plan, step, out.append)
        return out[0]


def test_an_intersection_moves_only_the_smallest_sets_members():
    r = Recording()
    r.run(b"SADD", b"big", *[b"m%d" % i for i in range(500)])
    r.run(b"SADD", b"mid", *[b"m%d" % i for i in range(0, 500, 5)])
    r.run(b"SADD", b"small", b"m0", b"m5", b"m7", b"zz")
    assert sorted(parse(r.run(b"SINTER", b"big", b"mid", b"small"))) == [b"m0", b"m5"]
    reads = [s[1] for s in r.steps if s[0] == b"dyn.read"]
    assert reads == [b"small"]  # only the smallest set is read whole
    filters = [s[1] for s in r.steps if s[0] == b"dyn.sfilter"]
    assert filters == [b"mid", b"big"]  # then the others, smallest first
    r.steps.clear()
    assert r.run(b"SINTERCARD", b"2", b"big", b"small", b"LIMIT", b"1") == b":1\r\n"
    assert [s[1] for s in r.steps if s[0] == b"dyn.read"] == [b"small"]


def test_a_difference_asks_every_key_even_when_nothing_is_left():
    r = Recording()
    r.run(b"SADD", b"a", b"x")
    r.run(b"SET", b"str", b"v")
    assert r.run(b"SDIFF", b"a", b"a", b"str").startswith(b"-WRONGTYPE")
    assert [s[:2] for s in r.steps] == [[b"dyn.read", b"a"], [b"dyn.sfilter", b"a"],
                                        [b"dyn.sfilter", b"str"]]


def test_random_members_follow_redis_count_rules():
    rng_state = random.getstate()
    random.seed(7)
    try:
        pool = {b"m%d" % i: b"" for i in range(50)}.keys()
        for count in (1, 2, 49, 50, 51, 1000):
            got = random_members(pool, count)
            assert len(got) == len(set(got)) == min(count, 50)
            assert set(got) <= set(pool)
        got = random_members(pool, -200)
        assert len(got) == 200 and set(got) <= set(pool) and len(set(got)) < 200
        assert random_members(pool, 0) == [] and random_members({}.keys(), -3) == []
        # Every member can come up, in any position.
        seen = Counter(m for _ in range(200) for m in random_members(pool, 3))
        assert set(seen) == set(pool)
        firsts = Counter(random_members(pool, 2)[0] for _ in range(400))
        assert len(firsts) > 25
    finally:
        random.setstate(rng_state)


def test_a_huge_negative_srandmember_count_is_refused_not_built():
    """Redis builds a reply of any size for SRANDMEMBER key -count (a count of -2^62
    exhausts its memory); a node refuses beyond RANDOM_REPEATS_MAX members."""
    r = LocalRunner()
    r.run(b"SADD", b"s", b"a", b"b")
    got = parse(r.run(b"SRANDMEMBER", b"s", b"-%d" % RANDOM_REPEATS_MAX))
    assert len(got) == RANDOM_REPEATS_MAX and set(got) == {b"a", b"b"}  # type: ignore[arg-type]
    for count in (b"-%d" % (RANDOM_REPEATS_MAX + 1), b"-4611686018427387904"):
        err = parse(r.run(b"SRANDMEMBER", b"s", count))
        assert isinstance(err, hiredis.ReplyError)
        assert str(err).startswith("ERR value is out of range")


def test_a_huge_negative_hrandfield_count_is_refused_not_built():
    """The same for HRANDFIELD key -count (with or without WITHVALUES); Redis' own
    errors for the counts it refuses stay its own."""
    r = LocalRunner()
    r.run(b"HSET", b"h", b"a", b"1", b"b", b"2")
    got = parse(r.run(b"HRANDFIELD", b"h", b"-%d" % RANDOM_REPEATS_MAX))
    assert len(got) == RANDOM_REPEATS_MAX and set(got) == {b"a", b"b"}  # type: ignore[arg-type]
    for args in ((b"-%d" % (RANDOM_REPEATS_MAX + 1),), (b"-4611686018427387904",),
                 (b"-4611686018427387904", b"WITHVALUES")):
        err = parse(r.run(b"HRANDFIELD", b"h", *args))
        assert isinstance(err, hiredis.ReplyError)
        assert str(err).startswith("ERR value is out of range"), err
    err = parse(r.run(b"HRANDFIELD", b"h", b"-9223372036854775808"))
    assert str(err) == ("ERR value is out of range, value must between "
                        "-9223372036854775807 and 9223372036854775807")


def test_a_big_union_is_made_over_loop_turns_each_member_once(monkeypatch) -> None:
    from dynredis.commands import sets

    monkeypatch.setattr(sets, "UNION_SLICE", 16)
    r = Recording()
    r.run(b"SADD", b"a", *[b"m%d" % i for i in range(100)])
    r.run(b"SADD", b"b", *[b"m%d" % i for i in range(50, 170)])
    r.run(b"SADD", b"c", b"m1", b"x")
    got = parse(r.run(b"SUNION", b"a", b"b", b"c"))
    assert sorted(got) == sorted([b"m%d" % i for i in range(170)] + [b"x"])
    assert len(got) == 171
    turns = sum(1 for s in r.steps if s == collection.TURN)
    # the slices after each set's first, then the union listed a slice a turn
    assert turns == (100 // 16) + (120 // 16) + 171 // 16
    assert r.run(b"SUNIONSTORE", b"d", b"a", b"b") == b":170\r\n"


def test_big_intersections_and_differences_filter_a_slice_a_step(monkeypatch) -> None:
    from dynredis.commands import sets

    monkeypatch.setattr(sets, "FILTER_SLICE", 8)
    r = Recording()
    r.run(b"SADD", b"a", *[b"m%d" % i for i in range(40)])
    r.run(b"SADD", b"b", *[b"m%d" % i for i in range(0, 100, 3)])
    r.run(b"SADD", b"c", *[b"m%d" % i for i in range(0, 100, 2)])
    r.steps.clear()
    assert sorted(parse(r.run(b"SINTER", b"a", b"b", b"c"))) == sorted(
        b"m%d" % i for i in range(0, 40, 6))
    # b's 34 members through a by slices of 8, the 14 left through c
    assert [s[1] for s in r.steps if s[0] == b"dyn.sfilter"] == [b"a"] * 5 + [b"c"] * 2
    r.steps.clear()
    assert sorted(parse(r.run(b"SDIFF", b"a", b"b", b"c"))) == sorted(
        b"m%d" % i for i in range(40) if i % 3 and i % 2)
    # a's 40 through b, the 26 left through c
    assert [s[1] for s in r.steps if s[0] == b"dyn.sfilter"] == [b"b"] * 5 + [b"c"] * 4
    r.run(b"SET", b"s", b"x")
    assert r.run(b"SDIFF", b"a", b"s").startswith(b"-WRONGTYPE")
    assert r.run(b"SINTERSTORE", b"d", b"a", b"b") == b":14\r\n"


def test_zintercard_reads_the_smallest_key_and_filters_it_a_slice_a_step(monkeypatch) -> None:
    """ZINTERCARD of sets and sorted sets: only the smallest key's members are read
    whole; the others are asked which of them they hold, FILTER_SLICE at a time."""
    from dynredis.commands import sets

    monkeypatch.setattr(sets, "FILTER_SLICE", 8)
    r = Recording()
    r.run(b"ZADD", b"z", *[x for i in range(60) for x in (b"%d" % i, b"m%d" % i)])
    r.run(b"SADD", b"s", *[b"m%d" % i for i in range(0, 100, 3)])
    r.run(b"ZADD", b"y", *[x for i in range(0, 100, 2) for x in (b"1", b"m%d" % i)])
    r.steps.clear()
    assert r.run(b"ZINTERCARD", b"3", b"z", b"s", b"y") == b":%d\r\n" % len(range(0, 60, 6))
    assert [s[1] for s in r.steps if s[0] == b"dyn.members"] == [b"s"]
    # s's 34 members through y (50) by slices of 8, the 17 left through z
    assert [s[1] for s in r.steps if s[0] == b"dyn.zfilter"] == [b"y"] * 5 + [b"z"] * 3
    assert r.run(b"ZINTERCARD", b"3", b"z", b"s", b"y", b"LIMIT", b"4") == b":4\r\n"
    assert r.run(b"ZINTERCARD", b"2", b"z", b"nokey") == b":0\r\n"
    r.run(b"SET", b"str", b"x")
    assert r.run(b"ZINTERCARD", b"2", b"nokey", b"str").startswith(b"-WRONGTYPE")
    # every key's type is judged before the options, as Redis does
    assert r.run(b"ZINTERCARD", b"2", b"z", b"str", b"LIMIT", b"x").startswith(b"-WRONGTYPE")
    assert r.run(b"ZINTERCARD", b"1", b"z", b"LIMIT", b"x").startswith(b"-ERR")


def test_random_picks_with_repeats_are_drawn_a_slice_at_a_time(monkeypatch) -> None:
    """HRANDFIELD -count WITHVALUES and SRANDMEMBER -count of more than a reply's slice:
    every field comes with its own value, and the picks spread over the whole key."""
    from dynredis.resp import bulks

    monkeypatch.setattr(bulks, "STREAM_ROWS", 100)
    r = LocalRunner()
    r.run(b"HSET", b"h", *[w for i in range(200) for w in (b"f%d" % i, b"v%d" % i)])
    r.run(b"SADD", b"s", *[b"m%d" % i for i in range(200)])
    for proto in (2, 3):
        for words in ([b"HRANDFIELD", b"h", b"-5000", b"WITHVALUES"],
                      [b"SRANDMEMBER", b"s", b"-5000"]):
            key, op = collection.BUILDERS[words[0].decode().lower()](words, proto)
            reply = op(r.view(key))
            assert isinstance(reply, bulks.SlicedReply)
            data = [reply.before]
            while (part := reply.next_slice()) is not None:
                data.append(part)
            got = parse(b"".join(data))
            assert isinstance(got, list)
            if words[0] == b"SRANDMEMBER":
                assert len(got) == 5000 and len(set(got)) > 150
                continue
            pairs = got if proto == 3 else list(zip(got[::2], got[1::2], strict=True))
            assert len(pairs) == 5000 and len({f for f, _ in pairs}) > 150
            assert all(v == b"v" + f[1:] for f, v in pairs)


@given(st.integers(0, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_distinct_positions_are_k_distinct_positions_of_the_range(nk: tuple[int, int]) -> None:
    """HRANDFIELD, SRANDMEMBER and ZRANDMEMBER with a count under the size pick their
    positions by C loops (sets.distinct_indexes): k of them, distinct, in range."""
    n, k = nk
    picked = sets.distinct_indexes(n, k)
    assert len(picked) == k and len(set(picked)) == k and all(0 <= i < n for i in picked)


def test_distinct_positions_are_a_uniform_sample_in_random_order() -> None:
    """Every ordered pair of 2 positions out of 4 comes about as often (drawn with
    repeats, each kept at its first draw), and 3 of 4 leaves each one out as often."""
    pairs = Counter(tuple(sets.distinct_indexes(4, 2)) for _ in range(12_000))
    assert len(pairs) == 12 and min(pairs.values()) > 800
    left_out = Counter(({0, 1, 2, 3} - set(sets.distinct_indexes(4, 3))).pop()
                       for _ in range(8_000))
    assert len(left_out) == 4 and min(left_out.values()) > 1_700


def _run_streamed(r: LocalRunner, *words: bytes, proto: int = 2) -> object:
    """A command's reply as a client reads it, asserting it is written over loop turns
    (bulks.SlicedReply) and not encoded whole in the command's turn."""
    from dynredis.resp import bulks

    key, op = collection.BUILDERS[words[0].decode().lower()](list(words), proto)
    reply = op(r.view(key))
    assert isinstance(reply, bulks.SlicedReply), reply[:40]
    data = [reply.before]
    while (part := reply.next_slice()) is not None:
        data.append(part)
    return parse(b"".join(data))


def test_zrandmember_of_the_whole_set_streams_as_zrevrange(monkeypatch) -> None:
    """ZRANDMEMBER with a count of the size or more answers the whole sorted set from
    the highest score, as Redis and as ZREVRANGE 0 -1 do, over loop turns: a million
    pairs listed and encoded in one turn held the coordinator 436 ms."""
    from dynredis.resp import bulks

    monkeypatch.setattr(bulks, "STREAM_ROWS", 100)
    r = LocalRunner()
    r.run(b"ZADD", b"z", *[w for i in range(300) for w in (b"%d.5" % i, b"m%d" % i)])
    for proto in (2, 3):
        for extra in ([], [b"WITHSCORES"]):
            want = parse(r.run(b"ZREVRANGE", b"z", b"0", b"-1", *extra, proto=proto))
            for count in (b"300", b"1000000"):
                got = _run_streamed(r, b"ZRANDMEMBER", b"z", count, *extra, proto=proto)
                assert got == want


def test_zrandmember_picks_stream_each_member_with_its_score(monkeypatch) -> None:
    """ZRANDMEMBER of many distinct members, or with repeats, gathers its picks a reply
    slice at a time (RESP2 and RESP3): distinct when the count is positive, each with
    its own score."""
    from dynredis.resp import bulks

    monkeypatch.setattr(bulks, "STREAM_ROWS", 100)
    r = LocalRunner()
    r.run(b"ZADD", b"z", *[w for i in range(300) for w in (b"%d" % i, b"m%d" % i)])
    for proto in (2, 3):
        for count, size in ((b"250", 250), (b"-5000", 5000)):
            got = _run_streamed(r, b"ZRANDMEMBER", b"z", count, b"WITHSCORES", proto=proto)
            assert isinstance(got, list)
            pairs = got if proto == 3 else list(zip(got[::2], got[1::2], strict=True))
            assert len(pairs) == size
            assert all(float(s) == int(m[1:]) for m, s in pairs)
            members = {m for m, _ in pairs}
            assert len(members) == (size if size == 250 else len(members)) > 150
        plain = _run_streamed(r, b"ZRANDMEMBER", b"z", b"200", proto=proto)
        assert isinstance(plain, list) and len(set(plain)) == 200


def test_srandmember_and_hrandfield_of_many_gather_their_picks_over_turns(monkeypatch
                                                                         ) -> None:
    """SRANDMEMBER and HRANDFIELD of more picks than a walk over the view is for, with or
    without repeats, gather them a reply slice at a time (the walk's Python step a pick
    held SRANDMEMBER k -249999 of a million members in one turn)."""
    from dynredis.resp import bulks

    monkeypatch.setattr(bulks, "STREAM_ROWS", 20)
    monkeypatch.setattr(sets, "WALK_MAX", 50)
    r = LocalRunner()
    r.run(b"SADD", b"s", *[b"m%d" % i for i in range(10_000)])
    r.run(b"HSET", b"h", *[w for i in range(1000) for w in (b"f%d" % i, b"v%d" % i)])
    for count, distinct in ((b"-200", False), (b"60", True), (b"6000", True)):
        got = _run_streamed(r, b"SRANDMEMBER", b"s", count)
        assert isinstance(got, list) and len(got) == abs(int(count)) and \
            set(got) <= {b"m%d" % i for i in range(10_000)}
        assert len(set(got)) == len(got) if distinct else len(set(got)) > 100
    got = _run_streamed(r, b"HRANDFIELD", b"h", b"600", b"WITHVALUES", proto=3)
    assert isinstance(got, list) and len({f for f, _ in got}) == 600
    assert all(v == b"v" + f[1:] for f, v in got)


def _distinct_in_c(n: int, k: int) -> list[int]:
    try:
        from dynredis import _randpick
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    return list(memoryview(_randpick.distinct(n, k, random.getrandbits(64))).cast("Q"))


def _distinct_in_python(n: int, k: int) -> list[int]:
    return sets.distinct_in_python(n, k)


DISTINCT_IMPLEMENTATIONS = [_distinct_in_python, _distinct_in_c]


@pytest.mark.parametrize("distinct", DISTINCT_IMPLEMENTATIONS)
@given(nk=st.integers(0, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_both_ways_give_k_distinct_positions_of_the_range(distinct, nk) -> None:
    n, k = nk
    picked = distinct(n, k)
    assert len(picked) == k and len(set(picked)) == k and all(0 <= i < n for i in picked)
    if k * 2 > n:  # the left-out ones drawn: the others in position order
        assert picked == sorted(picked)


@pytest.mark.parametrize("distinct", DISTINCT_IMPLEMENTATIONS)
def test_both_ways_give_a_uniform_sample_in_random_order(distinct) -> None:
    """Every ordered pair of 2 positions out of 5 comes about as often, and 3 of 5
    leaves out each pair as often (Python's way and the C helper's)."""
    pairs = Counter(tuple(distinct(5, 2)) for _ in range(20_000))
    assert len(pairs) == 20 and min(pairs.values()) > 800 and max(pairs.values()) < 1200
    left_out = Counter(tuple(sorted({0, 1, 2, 3, 4} - set(distinct(5, 3))))
                       for _ in range(10_000))
    assert len(left_out) == 10 and min(left_out.values()) > 800


def test_many_distinct_positions_are_drawn_in_c_where_it_is_built(monkeypatch) -> None:
    """distinct_indexes takes the C helper's picks for more than a few (the Python
    way's dict.fromkeys over half a million draws held one loop turn ~110 ms)."""
    _distinct_in_c(1, 1)  # skips a pure run
    # Watched at random.getrandbits: the C helper takes one seed of 64 bits, the Python
    # way 64 bits a draw. (A patched sets.distinct_in_python is not what a compiled
    # distinct_indexes calls: compiled calls within a module are bound at build time.)
    asked: list[int] = []
    draw = random.getrandbits

    def recorded(bits: int) -> int:
        asked.append(bits)
        return draw(bits)

    monkeypatch.setattr(sets.random, "getrandbits", recorded)
    for n, k in ((1000, 500), (1000, 900), (100_000, 70_000)):
        asked.clear()
        picked = sets.distinct_indexes(n, k)
        assert len(picked) == k == len(set(picked))
        assert asked == [64], asked[:3]
