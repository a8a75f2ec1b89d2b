"""GEO commands on one replica's view against a real redis-server, reply for reply.

The same hypothesis-drawn command sequences go to redis-server and to `LocalRunner`
(tests/collharness.py: the command builders, plans and operations a coordinator runs,
on an in-memory store), as in test_collection_semantics.py: GEOADD and every search
variant, their STORE forms, mixed with ZADD/ZREM/ZRANGE, DEL, TYPE, SET and PEXPIRE on
the same keys. geo.py already answers as Redis does byte for byte (test_geo_redis.py),
so what these compare is the wiring: type checks and their order, reads of the sorted
set, what a STORE leaves in its destination (type, members, scores, no TTL). Replies
are compared exactly in RESP2 and, byte for byte, in RESP3; each sequence ends by
comparing every key's type, members, scores and TTL.
"""

from __future__ import annotations

from collections.abc import Iterator

import hiredis
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from dynredis.commands.metadata import spec_keys
from dynredis.commands.table import err_arity, lookup
from tests.collharness import LocalRunner
from tests.integration import test_geo_redis as pure
from tests.integration.test_collection_semantics import Real, parse
from tests.integration.test_collection_semantics_zsets import Raw, flat

pytestmark = pytest.mark.timeout(300)

SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

KEYS = [b"g1", b"g2", b"dst", b"str"]
MEMBERS = [b"a", b"b", b"c", b"d", b"e", b"f", b""]
# Most positions are near one another (searches find several members, some at equal
# distances); a few are far or on the edges. Every value is mostly valid, sometimes not
# (so that most commands get past their checks, and every check is still tried).
NEAR = [(b"15", b"37"), (b"15.01", b"37"), (b"15", b"37.02"), (b"15.1", b"37.1"),
        (b"14.8", b"36.9"), (b"15.5", b"37.5"), (b"15.01", b"37")]
FAR = [(b"13.361389", b"38.115556"), (b"-73.98", b"40.76"), (b"180", b"0"), (b"-180", b"0"),
       (b"0", b"85.05112878"), (b"179.99", b"-85.05112878"), (b"0", b"0")]
BAD = [(b"200", b"0"), (b"0", b"86"), (b"x", b"1"), (b"1", b"nan"), (b"1e400", b"0")]
ODD_SCORES = [b"0", b"1", b"-1", b"1.5", b"4503599627370496", b"1e300", b"inf", b"-inf",
              b"3479099956230698", b"3471579339700058"]


def mostly(valid: list, invalid: list, wild: bool) -> st.SearchStrategy:
    """Valid values, and with `wild` sometimes invalid ones."""
    if not wild:
        return st.sampled_from(valid)
    return st.one_of(*[st.sampled_from(valid)] * 4, st.sampled_from(invalid))


key = st.sampled_from(KEYS)
destination = st.sampled_from([b"dst", b"dst", b"g2", b"str", b"g1"])
member = st.sampled_from(MEMBERS)
position = st.one_of(st.sampled_from(NEAR), st.sampled_from(NEAR), st.sampled_from(FAR),
                     st.sampled_from(BAD))
good_position = st.one_of(st.sampled_from(NEAR), st.sampled_from(NEAR), st.sampled_from(FAR))



def filled(k: bytes) -> st.SearchStrategy:
    """GEOADD of at least four of the members to `k`, each somewhere."""
    return st.builds(
        lambda ms, ps: flat(b"GEOADD", k, [(x, y, m) for m, (x, y) in zip(ms, ps,
                                                                           strict=False)]),
        st.permutations(MEMBERS).map(lambda ms: ms[:4] + ms[4:][:2]),
        st.lists(good_position, min_size=7, max_size=7))


geoadd_fill = st.one_of(filled(b"g1"), filled(b"g2"))
fills = st.tuples(filled(b"g1"), filled(b"g2")).map(list)
geoadd = st.builds(
    lambda k, o, items: flat(b"GEOADD", k, o, [(x, y, m) for (x, y), m in items]),
    key, st.lists(st.sampled_from([b"NX", b"XX", b"CH", b"ch"]), max_size=2),
    st.lists(st.tuples(st.one_of(good_position, good_position, position), member),
             min_size=1, max_size=4))


class Values:
    """The strategies of search arguments: all valid, or (wild) sometimes not."""

    def __init__(self, wild: bool) -> None:
        self.source = mostly([b"g1", b"g1", b"g2"], [b"dst", b"str", b"nokey"], wild)
        self.position = position if wild else good_position
        self.radius = mostly([b"1", b"2", b"5", b"20", b"100", b"500", b"20000"],
                             [b"0", b"inf", b"-1", b"x", b"1e400"], wild)
        self.unit = mostly([b"km", b"km", b"km", b"m", b"mi", b"ft", b"KM"],
                           [b"cm", b"km\x00x"], wild)
        count = mostly([b"1", b"2", b"3", b"10"], [b"0", b"-1", b"x"], wild)
        count_clause = st.one_of(st.tuples(st.just(b"COUNT"), count),
                                 st.tuples(st.just(b"COUNT"), count, st.just(b"ANY")))
        order = st.sampled_from([(b"ASC",), (b"DESC",), (b"desc",)])
        with_clause = st.sampled_from([(b"WITHDIST",), (b"WITHHASH",), (b"WITHCOORD",),
                                       (b"withdist",)])
        self.options = st.lists(st.one_of(count_clause, order, with_clause), max_size=4)
        self.store_options = st.lists(st.one_of(count_clause, order, *[with_clause] * wild),
                                      max_size=3)
        self.centre = st.one_of(st.tuples(st.just(b"FROMMEMBER"), member),
                                st.builds(lambda p: (b"FROMLONLAT", *p), self.position))
        self.shape = st.one_of(st.tuples(st.just(b"BYRADIUS"), self.radius, self.unit),
                               st.tuples(st.just(b"BYBOX"), self.radius, self.radius,
                                         self.unit))


@st.composite
def geosearch(draw: st.DrawFn, v: Values) -> tuple[bytes, ...]:
    store = draw(st.booleans())
    clauses = [draw(v.centre), draw(v.shape), *draw(v.store_options if store else v.options)]
    if store and draw(st.booleans()):
        clauses.append((b"STOREDIST",))
    clauses = draw(st.permutations(clauses))
    if store:
        return flat(b"GEOSEARCHSTORE", draw(destination), draw(v.source), clauses)
    return flat(b"GEOSEARCH", draw(v.source), clauses)


@st.composite
def georadius(draw: st.DrawFn, v: Values) -> tuple[bytes, ...]:
    name = draw(st.sampled_from([b"GEORADIUS", b"GEORADIUS_RO", b"GEORADIUSBYMEMBER",
                                 b"GEORADIUSBYMEMBER_RO", b"georadius"]))
    head = (draw(member),) if b"MEMBER" in name else draw(v.position)
    store = not name.endswith(b"_RO") and draw(st.booleans())
    clauses = draw(v.store_options if store else v.options)
    if store:
        clauses.append((draw(st.sampled_from([b"STORE", b"STOREDIST"])), draw(destination)))
    clauses = draw(st.permutations(clauses))
    return flat(name, draw(v.source), head, draw(v.radius), draw(v.unit), clauses)


VALID, WILD = Values(False), Values(True)
point_reads = st.one_of(
    st.builds(lambda c, k, ms: flat(c, k, ms), st.sampled_from([b"GEOPOS", b"GEOHASH"]),
              WILD.source, st.lists(member, max_size=3)),
    st.builds(lambda k, a, b, u: flat(b"GEODIST", k, a, b, u), WILD.source, member, member,
              st.one_of(st.just(()), WILD.unit.map(lambda u: (u,)))),
)
searches = st.one_of(geosearch(VALID), georadius(VALID), geosearch(VALID), georadius(VALID),
                     geosearch(WILD), georadius(WILD))
zset_cmds = st.one_of(
    st.builds(lambda k, s, m: (b"ZADD", k, s, m), key, st.sampled_from(ODD_SCORES), member),
    st.builds(lambda k, ms: flat(b"ZREM", k, ms), key, st.lists(member, min_size=1,
                                                                max_size=2)),
    st.builds(lambda k: (b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"), key),
    st.builds(lambda k, m: (b"ZSCORE", k, m), key, member),
    st.builds(lambda k: (b"ZCARD", k), key),
)
key_cmds = st.one_of(
    st.builds(lambda k: (b"TYPE", k), key),
    st.builds(lambda k: (b"EXISTS", k), key),
    st.builds(lambda k: (b"DEL", k), key),
    st.builds(lambda k: (b"SET", k, b"v"), key),
    st.builds(lambda k: (b"PEXPIRE", k, b"100000"), key),
    st.builds(lambda k: (b"PTTL", k), key),
    st.just((b"GET", b"str")),
)
any_cmd = st.one_of(geoadd, point_reads, searches, searches, searches, zset_cmds,
                    key_cmds)


def normal(cmd: tuple[bytes, ...], reply: object) -> object:
    if isinstance(reply, hiredis.ReplyError):
        return ("error", str(reply))
    if cmd[0] == b"PTTL" and isinstance(reply, int) and reply > 0:
        return "expires"  # redis-server's clock moves; the harness' does not
    return reply


def final_state() -> list[tuple[bytes, ...]]:
    """What every key holds at the end: type, members and scores, TTL."""
    return [c for k in KEYS for c in ((b"TYPE", k), (b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"),
                                      (b"PTTL", k))]


def check(real: Real, seq: list[tuple[bytes, ...]]) -> int:
    """Run `seq` on both; returns how many search replies held members (so a test can
    show that its comparisons were not all of empty results)."""
    real.call(b"FLUSHALL")
    local = LocalRunner()
    found = 0
    for i, cmd in enumerate([*seq, *final_state()]):
        want = normal(cmd, real.call(*cmd))
        got = normal(cmd, parse(local.run(*cmd)))
        assert got == want, f"step {i}: {cmd!r}: dynredis {got!r}, redis {want!r}"
        name = cmd[0].upper()
        if name.startswith(b"GEO") and name != b"GEOADD":
            if isinstance(want, tuple):
                outcome = "error"
            elif isinstance(want, list) and any(x is not None for x in want) or \
                    isinstance(want, int) and want > 0 or isinstance(want, bytes):
                outcome = "found"
                found += 1
            else:
                outcome = "nothing"
            if currently_in_test_context():  # --hypothesis-show-statistics
                event(f"{name.decode()}: {outcome}")
    return found


@pytest.fixture(scope="module")
def real(real_redis) -> Real:
    return Real(real_redis.port)


@SETTINGS
@given(fills, st.lists(any_cmd, min_size=3, max_size=25))
def test_geo_sequences(real, fill, seq):
    check(real, fill + seq)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(geoadd_fill, geoadd), min_size=2, max_size=6),
       st.lists(st.one_of(searches, searches, point_reads, geoadd), max_size=12))
def test_searches_of_filled_sets(real, fill, ops):
    check(real, fill + ops)


def test_searches_find_members(real):
    """The drawn sequences are not all empty comparisons: on filled sets, searches and
    point reads of the kinds drawn above find members."""
    fill = [flat(b"GEOADD", k, [(x, y, m) for (x, y), m in zip(NEAR * 2, MEMBERS,
                                                                strict=False)])
            for k in (b"g1", b"g2")]
    ops = [
        (b"GEOSEARCH", b"g1", b"FROMMEMBER", b"a", b"BYRADIUS", b"20", b"km", b"WITHDIST"),
        (b"GEOSEARCH", b"g1", b"BYBOX", b"100", b"100", b"km", b"FROMLONLAT", b"15", b"37",
         b"ASC", b"WITHCOORD", b"WITHHASH"),
        (b"GEOSEARCH", b"g1", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"500", b"km",
         b"COUNT", b"2", b"DESC"),
        (b"GEOSEARCHSTORE", b"dst", b"g1", b"FROMMEMBER", b"b", b"BYRADIUS", b"100", b"km"),
        (b"GEOSEARCHSTORE", b"g2", b"g1", b"FROMMEMBER", b"b", b"BYRADIUS", b"100", b"km",
         b"STOREDIST", b"COUNT", b"3", b"ANY"),
        (b"GEORADIUS", b"g1", b"15", b"37", b"100", b"km", b"STOREDIST", b"str"),
        (b"GEORADIUSBYMEMBER", b"g1", b"c", b"2", b"km", b"STORE", b"dst", b"COUNT", b"1"),
        (b"GEORADIUSBYMEMBER_RO", b"g1", b"c", b"200", b"mi", b"WITHDIST", b"ASC"),
        (b"GEORADIUS_RO", b"g1", b"15", b"37", b"1", b"km"),
        (b"GEOPOS", b"g1", b"a", b"nope", b"b"), (b"GEOHASH", b"g1", b"", b"a"),
        (b"GEODIST", b"g1", b"a", b"e", b"mi"),
    ]
    assert check(real, fill + ops) == len(ops)


def test_store_replaces_any_destination(real):
    """A STORE overwrites a string, a set of another type and a TTL, as Redis' SET does;
    no match deletes the destination; the source may be the destination."""
    check(real, [
        (b"GEOADD", b"g1", b"15", b"37", b"a", b"15.01", b"37", b"b", b"-73.98", b"40.76",
         b"far"),
        (b"SET", b"str", b"v"), (b"PEXPIRE", b"str", b"100000"),
        (b"GEOSEARCHSTORE", b"str", b"g1", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"5",
         b"km"),
        (b"ZADD", b"dst", b"1", b"old"), (b"PEXPIRE", b"dst", b"100000"),
        (b"GEORADIUS", b"g1", b"15", b"37", b"5", b"km", b"STOREDIST", b"dst", b"DESC"),
        (b"ZSCORE", b"dst", b"old"), (b"PTTL", b"dst"),
        (b"GEORADIUS", b"g1", b"0", b"0", b"5", b"km", b"STORE", b"dst"),
        (b"EXISTS", b"dst"),
        (b"GEORADIUSBYMEMBER", b"g1", b"a", b"5", b"km", b"STORE", b"g1"),
        (b"GEOSEARCHSTORE", b"g2", b"nokey", b"FROMLONLAT", b"1", b"2", b"BYRADIUS", b"1",
         b"m"),
        (b"GEORADIUS", b"str", b"15", b"37", b"5", b"km", b"STORE", b"dst"),
        (b"GEOSEARCHSTORE", b"g2", b"str", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"5",
         b"km"),
        (b"GEOADD", b"str", b"1", b"2", b"x"),
    ])


def test_checks_come_in_redis_order(real):
    """Type before arguments for reads and searches; arguments before type for GEOADD
    and GEODIST's unit; a missing source before its members are looked up."""
    check(real, [
        (b"SET", b"str", b"v"), (b"GEOADD", b"g1", b"15", b"37", b"a"),
        (b"GEOADD", b"str", b"200", b"1", b"a"), (b"GEOADD", b"str", b"1", b"1", b"a"),
        (b"GEOADD", b"g1", b"NX", b"XX", b"1", b"1", b"a"),
        (b"GEOADD", b"g1", b"nx\x00junk", b"1", b"1", b"a"),
        (b"GEOADD", b"g1", b"XX", b"CH", b"1", b"1", b"a", b"2", b"2", b"new"),
        (b"GEODIST", b"str", b"a", b"b", b"cm"), (b"GEODIST", b"str", b"a", b"b"),
        (b"GEODIST", b"g1", b"a", b"b", b"km", b"x"), (b"GEOPOS", b"str"),
        (b"GEOHASH", b"str", b"a"), (b"GEOPOS", b"nokey", b"a"),
        (b"GEOSEARCH", b"str", b"FROMLONLAT", b"1", b"2", b"BYRADIUS", b"-1", b"cm"),
        (b"GEOSEARCH", b"g1", b"FROMMEMBER", b"nope", b"BYRADIUS", b"1", b"cm"),
        (b"GEOSEARCH", b"nokey", b"FROMMEMBER", b"nope", b"BYRADIUS", b"1", b"m"),
        (b"GEORADIUSBYMEMBER", b"nokey", b"nope", b"-1", b"m", b"STORE", b"dst"),
        (b"GEORADIUSBYMEMBER", b"g1", b"nope", b"1", b"m", b"STORE", b"dst"),
        (b"GEORADIUS", b"g1", b"15", b"37", b"1", b"km", b"STORE", b"dst", b"WITHDIST"),
        (b"GEORADIUS_RO", b"g1", b"15", b"37", b"1", b"km", b"STORE", b"dst"),
        (b"GEOSEARCHSTORE", b"dst", b"str", b"FROMLONLAT", b"1", b"2", b"BYRADIUS", b"x",
         b"m"),
        (b"GEOSEARCHSTORE", b"dst", b"g1", b"FROMLONLAT", b"1", b"2", b"BYRADIUS", b"1",
         b"m", b"WITHHASH"),
        (b"GEORADIUS", b"g1", b"15", b"37", b"1", b"km", b"COUNT", b"1", b"ANY", b"STORE"),
        (b"EXISTS", b"dst"),
    ])


# --- past the small encoding -------------------------------------------------------------

BIG = flat(b"GEOADD", b"big", [(b"%r" % (15 + 0.013 * (i % 20)), b"%r" % (37 + 0.011 * (i // 20)),
                                b"p%d" % i) for i in range(300)],
           [(b"15.0", b"37.0", b"twin%d" % i) for i in range(5)])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.builds(
    lambda c, s, opts, store: flat(c, b"big", s, opts, store),
    st.sampled_from([b"GEOSEARCH", b"GEOSEARCH"]),
    st.one_of(st.tuples(st.just(b"FROMMEMBER"), st.sampled_from([b"p0", b"p150", b"twin2"]),
                        st.just(b"BYRADIUS"), st.sampled_from([b"1", b"3", b"50"]),
                        st.just(b"km")),
              st.tuples(st.just(b"FROMLONLAT"), st.just(b"15.1"), st.just(b"37.1"),
                        st.just(b"BYBOX"), st.sampled_from([b"5", b"20", b"100"]),
                        st.sampled_from([b"5", b"30"]), st.just(b"km"))),
    st.lists(st.sampled_from([(b"COUNT", b"7"), (b"COUNT", b"200"), (b"COUNT", b"3", b"ANY"),
                              (b"ASC",), (b"DESC",), (b"WITHDIST",), (b"WITHHASH",)]),
             max_size=3),
    st.just(())), min_size=1, max_size=8))
def test_sets_past_the_small_encoding(real, seq):
    """305 members (a skiplist in Redis) and results of more than 128 members: order,
    ties at equal distances and the stored sets are the same."""
    stores = [(b"GEOSEARCHSTORE", b"dst", b"big", b"FROMLONLAT", b"15.1", b"37.1", b"BYRADIUS",
               b"100", b"km", b"STOREDIST"),
              (b"GEORADIUSBYMEMBER", b"big", b"p10", b"20", b"km", b"STORE", b"g1")]
    check(real, [BIG, *seq, *stores])


# --- RESP3, byte for byte ------------------------------------------------------------------

resp3_cmds = st.one_of(geoadd, point_reads, searches, searches,
                       st.builds(lambda k: (b"SET", k, b"v"), key),
                       st.builds(lambda k: (b"DEL", k), key))


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fills, st.lists(resp3_cmds, max_size=20))
def test_resp3_sequences(real_redis, fill, seq):
    raw = Raw(real_redis.port)
    raw.call(b"FLUSHALL")
    local = LocalRunner()
    final = [(b"ZRANGE", k, b"0", b"-1", b"WITHSCORES") for k in KEYS]
    for i, cmd in enumerate(fill + seq + final):
        want = raw.call(*cmd)
        assert local.run(*cmd, proto=3) == want, f"step {i}: {cmd!r}"
    raw.sock.close()


# --- COMMAND GETKEYS: where the keys are ---------------------------------------------------

GETKEYS_CASES = """\
GEORADIUS k 1 2 3 m|GEORADIUS k 1 2 3 m STORE d|GEORADIUS k 1 2 3 m storedist d STORE e
GEORADIUS k 1 2 3 m STORE|GEORADIUS k 1 2 3 STORE d|GEORADIUS k 1 2 3 m COUNT 1 Store d
GEORADIUS k 1 2 3 m STORE d STORE e|GEORADIUSBYMEMBER k m 3 m STORE d
GEORADIUSBYMEMBER k m 3 STORE d|GEORADIUSBYMEMBER k m 3 m x STOREDIST d
GEOSEARCHSTORE d s FROMLONLAT 1 2 BYRADIUS 1 m
GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 m|GEOADD k 1 2 m|GEOPOS k|GEODIST k a b"""


def test_keys_are_where_redis_finds_them(real):
    """What COMMAND GETKEYS answers (cluster clients route by it): GEORADIUS' STORE key
    is found after its keyword, as Redis' key specs find it."""
    cases = [[w.encode() for w in case.split()]
             for case in GETKEYS_CASES.replace("\n", "|").split("|")]
    cases += [[b"GEORADIUS", b"k", b"1", b"2", b"3", b"m", b"STORE\x00x", b"d"],
              [b"GEORADIUS", b"k", b"1", b"2", b"3", b"m", b"COUNT", b"STORE", b"STOREDIST",
               b"e"]]
    for words in cases:
        want = real.call(b"COMMAND", b"GETKEYS", *words)
        cmd = lookup(words[0])
        assert cmd is not None
        if "movablekeys" in cmd.flags:
            got = spec_keys(cmd.name, words)
        else:
            got = words[cmd.first_key:cmd.last_key + 1:cmd.step]
        assert got == want, words


# --- any argument list ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_conns(real_redis) -> Iterator[dict[int, pure.Raw]]:
    conns = {2: pure.Raw(real_redis.port, 2), 3: pure.Raw(real_redis.port, 3)}
    yield conns
    for c in conns.values():
        c.close()


SOUP_FILL = (b"GEOADD", pure.SOUP, *[w for x, y, m in pure.SOUP_POINTS
                                     for w in (b"%r" % x, b"%r" % y, m)],
             b"15.0", b"37.0", b"s-twin")


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(args=pure.argument_lists(), proto=st.sampled_from([2, 3]))
def test_any_argument_list_gets_redis_reply(raw_conns, args, proto):
    """test_geo_redis.py's argument lists (clauses with valid and invalid values, random
    words anywhere, words cut off the end) on a 29-member index: the same bytes, and the
    same keys left behind. Arity is the command table's check, made before a builder
    runs (the server answers it), so lists of a wrong length are compared with it."""
    redis_ = raw_conns[2]
    redis_(b"DEL", *pure.KEY_WORDS)
    redis_(b"SET", pure.STRING_KEY, b"x")
    redis_(*SOUP_FILL)
    local = LocalRunner()
    local.run(b"SET", pure.STRING_KEY, b"x")
    local.run(*SOUP_FILL)
    cmd = lookup(args[0])
    assert cmd is not None
    want = raw_conns[proto](*args)
    got = local.run(*args, proto=proto) if cmd.arity_ok(len(args)) else err_arity(cmd.name)
    assert got == want, args
    for k in pure.KEY_WORDS:
        for words in ((b"TYPE", k), (b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"), (b"PTTL", k)):
            assert local.run(*words) == redis_(*words), (args, words)


def test_searches_of_thousands_of_members_are_redis_bytes(real_redis):
    """A search whose reply is encoded over loop turns (more rows than a turn's share:
    geo.NESTED_ROWS_PER_TURN, bulks.STREAM_ROWS) answers the same bytes as Redis, in
    RESP2 and RESP3, nested or not, sorted or not."""
    from dynredis.commands import geo

    n = geo.NESTED_ROWS_PER_TURN * 2 + 77
    rows = [(b"%.6f" % (-179.5 + 359 * (i * 7919 % n) / n), b"%.6f" % (-84 + 168 * i / n),
             b"m%d" % i) for i in range(n)]
    fill = [flat(b"GEOADD", b"world", rows[i:i + 500]) for i in range(0, n, 500)]
    around = (b"GEOSEARCH", b"world", b"FROMLONLAT", b"0", b"0", b"BYRADIUS", b"40000", b"km")
    searches = [around, (*around, b"WITHDIST", b"WITHHASH", b"WITHCOORD"),
                (*around, b"WITHCOORD", b"DESC"), (*around, b"WITHDIST", b"ASC"),
                (*around, b"COUNT", b"3000", b"WITHHASH"),
                (b"GEORADIUS_RO", b"world", b"10", b"10", b"9000", b"km", b"WITHDIST")]
    raw = Raw(real_redis.port)
    raw.call(b"FLUSHALL")
    local = LocalRunner()
    for cmd in fill:
        assert local.run(*cmd) == raw.call(*cmd)
    for proto in (2, 3):
        raw.call(b"HELLO", b"%d" % proto)
        for cmd in searches:
            want = raw.call(*cmd)
            assert want.startswith(b"*"), want[:80]
            assert local.run(*cmd, proto=proto) == want, cmd
    raw.sock.close()
