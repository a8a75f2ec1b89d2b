"""The pure GEO layer (dynredis.commands.geo, geosearch, geohash, csort, doubles).

Expected replies here were taken from Redis 7.0 (its tests/unit/geo.tcl and a real
redis-server); tests/integration/test_geo_redis.py compares against a live server at
random. Searches run over an in-memory sorted set read through the same kind of
score-range reader the sorted-set backend will supply.
"""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dynredis.commands import csort, geo, geosearch
from dynredis.commands import geohash as gh
from dynredis.commands.doubles import parse_double
from dynredis.resp import bulks
from dynredis.resp import encode as resp

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

LON_CELL = 360.0 / 2**26
LAT_CELL = (gh.LAT_MAX - gh.LAT_MIN) / 2**26


def reader(zset: dict[bytes, float]) -> geosearch.Reader:
    """ZRANGEBYSCORE over a dict: min <= score < max, by score then member."""
    rows = sorted((s, m) for m, s in zset.items())
    scores = [s for s, _ in rows]

    def read(lo: float, hi: float) -> list[tuple[float, bytes]]:
        i, j = bisect.bisect_left(scores, lo), bisect.bisect_left(scores, hi)
        return rows[i:j]

    return read


def geoset(*items: tuple[float, float, str]) -> dict[bytes, float]:
    return {name.encode(): float(gh.encode(lon, lat)) for lon, lat, name in items}


def names(matches: list[geosearch.Match]) -> list[str]:
    return [m.member.decode() for m in matches]


def request(zset: dict[bytes, float] | None, *words: str) -> geo.Search:
    """Parse a search command against `zset` (None: the key does not exist)."""
    args = [w.encode() for w in words]
    req = geo.parse_search(args, zset is not None, lambda m: (zset or {}).get(m))
    assert isinstance(req, geo.Search), req
    return req


def query(zset: dict[bytes, float], *words: str, proto: int = 2) -> bytes:
    req = request(zset, *words)
    return bulks.whole(geo.search_reply(req, geo.run(req, reader(zset)), proto))


def flat(reply: bytes) -> object:
    import hiredis

    r = hiredis.Reader()
    r.feed(reply)
    return r.gets()


# --- scores, positions, geohash strings, distances -------------------------------------

SICILY = geoset((13.361389, 38.115556, "Palermo"), (15.087269, 37.502669, "Catania"))


def test_scores_positions_and_hashes_are_redis_own() -> None:
    assert SICILY[b"Palermo"] == 3479099956230698
    assert geo.geopos_reply([SICILY[b"Palermo"], None], 2) == (
        b"*2\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*-1\r\n")
    assert geo.geopos_reply([SICILY[b"Palermo"], None], 3) == (
        b"*2\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n_\r\n")
    assert geo.geohash_reply([SICILY[b"Palermo"], None], 2) == b"*2\r\n$11\r\nsqc8b49rny0\r\n$-1\r\n"
    assert geo.geohash_reply([None], 3) == b"*1\r\n_\r\n"
    # Wikipedia's example, as in Redis' test suite.
    assert gh.hash_string(float(gh.encode(-5.6, 42.6))) == b"ezs42e44yx0"


def test_geodist_has_four_decimals_in_the_unit() -> None:
    p, c = SICILY[b"Palermo"], SICILY[b"Catania"]
    assert geo.geodist_reply(p, c, 1.0, 2) == b"$11\r\n166274.1516\r\n"
    assert geo.geodist_reply(p, c, 1000.0, 3) == b"$8\r\n166.2742\r\n"
    assert geo.geodist_reply(p, p, 1.0, 2) == b"$6\r\n0.0000\r\n"
    assert geo.geodist_reply(p, None, 1.0, 2) == resp.NIL2
    assert geo.geodist_reply(None, c, 1.0, 3) == resp.NIL3


def test_the_edges_encode_one_past_the_last_cell_as_in_redis() -> None:
    assert gh.encode(180, 85.05112878) == 3 * 2**52
    # Within rounding of the top the offset is 1.0 too (redis-server: 6755399441055744).
    assert gh.encode(0, 85.05112877999998) == 6755399441055744
    assert gh.encode(-180, -85.05112878) == 0
    assert gh.decode(3 * 2**52) == (180.0, gh.LAT_MAX)
    assert geo.human(gh.decode(3 * 2**52)[1]) == b"85.0511287799999991"


@pytest.mark.parametrize("score, lon, lat", [
    # Scores no GEOADD makes (a plain ZADD can): Redis converts with x86's (uint64_t).
    (-1.0, b"180", b"85.0511287799999991"),
    (-0.5, b"-179.99999731779098511", b"-85.05112751263942528"),
    (1.5, b"-179.99999731779098511", b"-85.05112497791824921"),
    (2.0**53, b"180", b"-85.05112751263942528"),
    (2.0**63, b"180", b"-85.05112751263942528"),
    (1e19, b"180", b"85.0511287799999991"),
    (math.inf, b"-179.99999731779098511", b"-85.05112751263942528"),
    (-math.inf, b"180", b"-85.05112751263942528"),
    (3.9e15, b"62.44011193513870239", b"77.58079984655682892"),
])
def test_any_score_decodes_as_redis_decodes_it(score: float, lon: bytes, lat: bytes) -> None:
    x, y = gh.decode(score)
    assert (geo.human(x), geo.human(y)) == (lon, lat)


valid_lon = st.floats(-180, 180)
valid_lat = st.floats(gh.LAT_MIN, gh.LAT_MAX)


@SETTINGS
@given(valid_lon, valid_lat)
def test_a_position_decodes_to_the_centre_of_its_cell(lon: float, lat: float) -> None:
    assume(lon < 180 - 1e-9 and lat < gh.LAT_MAX - 1e-9)  # the edges: see above
    score = gh.encode(lon, lat)
    assert 0 <= score < 2**52
    x, y = gh.decode(score)
    # Half a cell, give or take the rounding of the offset into the range.
    assert abs(x - lon) <= LON_CELL / 2 + 1e-12
    assert abs(y - lat) <= LAT_CELL / 2 + 1e-12
    assert gh.encode(x, y) == score  # the centre lies in the same cell


@SETTINGS
@given(st.integers(0, 2**52 - 1))
def test_every_score_is_the_cell_of_its_centre(score: int) -> None:
    assert gh.encode(*gh.decode(score)) == score


@SETTINGS
@given(st.one_of(st.integers(0, 2**54).map(float), st.floats(allow_nan=False)))
def test_decode_is_the_clamped_centre_of_the_cell(score: float) -> None:
    area = gh.decode_cell(gh.Cell(gh.to_uint64(score), gh.STEP_MAX))
    lon = min(max((area.lon_min + area.lon_max) / 2, gh.LON_MIN), gh.LON_MAX)
    lat = min(max((area.lat_min + area.lat_max) / 2, gh.LAT_MIN), gh.LAT_MAX)
    assert gh.decode(score) == (lon, lat)


@SETTINGS
@given(valid_lon, valid_lat, valid_lon, valid_lat)
def test_distance_is_symmetric_and_bounded(lon1: float, lat1: float, lon2: float,
                                           lat2: float) -> None:
    d = gh.distance(lon1, lat1, lon2, lat2)
    assert d == pytest.approx(gh.distance(lon2, lat2, lon1, lat1), rel=1e-12, abs=1e-6)
    assert 0 <= d <= math.pi * gh.EARTH_RADIUS_M * (1 + 1e-12)
    assert gh.distance(lon1, lat1, lon1, lat1) == 0


def test_invalid_pairs_are_redis_errors() -> None:
    assert geo.parse_geoadd([b"geoadd", b"k", b"200", b"10", b"x"]) == (
        b"-ERR invalid longitude,latitude pair 200.000000,10.000000\r\n")
    assert geo.parse_geoadd([b"geoadd", b"k", b"1", b"85.06", b"x"]) == (
        b"-ERR invalid longitude,latitude pair 1.000000,85.060000\r\n")
    assert geo.parse_geoadd([b"geoadd", b"k", b"inf", b"1", b"x"]) == (
        b"-ERR invalid longitude,latitude pair inf,1.000000\r\n")
    assert geo.parse_geoadd([b"geoadd", b"k", b"nan", b"1", b"x"]) == (
        b"-ERR value is not a valid float\r\n")


# --- GEOADD ----------------------------------------------------------------------------


def test_geoadd_becomes_redis_zadd() -> None:
    req = geo.parse_geoadd([b"GEOADD", b"k", b"ch", b"NX", b"13.361389", b"38.115556",
                            b"Palermo", b"15.087269", b"37.502669", b"Catania"])
    assert isinstance(req, geo.GeoAdd)
    assert (req.nx, req.xx, req.ch) == (True, False, True)
    assert req.zadd_args() == [b"zadd", b"k", b"ch", b"NX", b"3479099956230698", b"Palermo",
                               b"3479447370796909", b"Catania"]


@pytest.mark.parametrize("args, error", [
    ("GEOADD k 1 2", "ERR wrong number of arguments for 'geoadd' command"),
    ("GEOADD k 1 2 a 3", "ERR syntax error"),
    ("GEOADD k NX XX 1 2 a", "ERR syntax error"),
    ("GEOADD k GT 1 2 a", "ERR syntax error"),
    ("GEOADD k CH CH CH", "ERR syntax error"),
    ("GEOADD k abc 2 a", "ERR value is not a valid float"),
    ("GEOADD k 1 2 a 500 2 b", "ERR invalid longitude,latitude pair 500.000000,2.000000"),
])
def test_geoadd_errors(args: str, error: str) -> None:
    assert geo.parse_geoadd([w.encode() for w in args.split()]) == resp.error(error)


def test_double_arguments_are_read_as_strtod_reads_them() -> None:
    ok = {b"1": 1.0, b"-1.5": -1.5, b"+1": 1.0, b"1.": 1.0, b".5": 0.5, b"1e3": 1000.0,
          b"0x1p3": 8.0, b"0X.8": 0.5, b"inf": math.inf, b"-Infinity": -math.inf,
          b"0e-400": 0.0, b"4.9e-324": 5e-324}
    for raw, value in ok.items():
        assert parse_double(raw) == value, raw
    for raw in (b"", b" 1", b"1 ", b"1\x00", b"nan", b"1_0", b"1e400", b"1e-400", b"0x",
                b"0x1p-1075", b"e5", b".", b"infinit", b"--1"):
        assert parse_double(raw) is None, raw


# --- searches: Redis' own cases (tests/unit/geo.tcl) -----------------------------------

NYC = geoset((-73.9454966, 40.747533, "lic market"),
             (-73.9733487, 40.7648057, "central park n/q/r"),
             (-73.9903085, 40.7362513, "union square"), (-74.0131604, 40.7126674, "wtc one"),
             (-73.7858139, 40.6428986, "jfk"), (-73.9375699, 40.7498929, "q4"),
             (-73.9564142, 40.7480973, "4545"))
PARK = ("-73.9798091", "40.7598464")


def test_nyc_scores_are_redis_own() -> None:
    assert sorted((s, m.decode()) for m, s in NYC.items()) == [
        (1791873972053020, "wtc one"), (1791875485187452, "union square"),
        (1791875761332224, "central park n/q/r"), (1791875796750882, "4545"),
        (1791875804419201, "lic market"), (1791875830079666, "q4"),
        (1791895905559723, "jfk")]


def test_radius_and_box_searches_sorted() -> None:
    assert flat(query(NYC, "georadius", "nyc", *PARK, "3", "km", "asc")) == [
        b"central park n/q/r", b"4545", b"union square"]
    assert flat(query(NYC, "geosearch", "nyc", "fromlonlat", *PARK, "bybox", "6", "6", "km",
                      "asc")) == [b"central park n/q/r", b"4545", b"union square",
                                  b"lic market"]
    assert flat(query(NYC, "geosearch", "nyc", "fromlonlat", *PARK, "bybox", "6", "6", "km",
                      "withdist", "asc")) == [
        [b"central park n/q/r", b"0.7750"], [b"4545", b"2.3651"],
        [b"union square", b"2.7697"], [b"lic market", b"3.1991"]]


def test_count_any_and_order() -> None:
    base = ("georadius", "nyc", *PARK, "10", "km")
    assert flat(query(NYC, *base, "COUNT", "3")) == [
        b"central park n/q/r", b"4545", b"union square"]
    assert flat(query(NYC, *base, "COUNT", "3", "ANY")) == [
        b"wtc one", b"union square", b"central park n/q/r"]
    assert flat(query(NYC, *base, "COUNT", "3", "ANY", "ASC")) == [
        b"central park n/q/r", b"union square", b"wtc one"]
    assert flat(query(NYC, *base, "COUNT", "2", "DESC")) == [b"wtc one", b"q4"]


def test_georadiusbymember_withdist() -> None:
    assert flat(query(NYC, "georadiusbymember", "nyc", "wtc one", "7", "km", "withdist")) == [
        [b"wtc one", b"0.0000"], [b"union square", b"3.2544"],
        [b"central park n/q/r", b"6.7000"], [b"4545", b"6.1975"],
        [b"lic market", b"6.8969"]]


def test_searches_across_the_pole_and_in_oblique_cells() -> None:
    cases = [
        (((-0.15307903289794921875, 85, "n1"), (0.3515625, 85.00019260486917005437, "n2")),
         "4891.94"),
        (((-4.95211958885192871094, 85, "n1"), (11.25, 85.0511, "n2")), "156544"),
        (((-45, 65.50900022111811438208, "n1"), (90, 85.0511, "n2")), "5009431"),
        (((45, 65, "n1"), (-135, 85.05, "n2")), "5009431"),
    ]
    for points, radius in cases:
        z = geoset(*points)
        assert flat(query(z, "georadiusbymember", "k", "n1", radius, "m")) == [b"n1", b"n2"]


def test_box_corners_and_narrow_boxes() -> None:
    z = geoset((12.758489, 38.788135, "edge1"), (17.241510, 38.788135, "edge2"),
               (17.250000, 35.202000, "edge3"), (12.750000, 35.202000, "edge4"),
               (12.748489955781654, 37, "edge5"), (15, 38.798135872540925, "edge6"),
               (17.251510044218346, 37, "edge7"), (15, 35.201864127459075, "edge8"),
               (12.692799634687903, 38.798135872540925, "corner1"),
               (12.692799634687903, 38.798135872540925, "corner2"),
               (17.200560937451133, 35.201864127459075, "corner3"),
               (12.799439062548865, 35.201864127459075, "corner4"))
    got = flat(query(z, "geosearch", "k", "fromlonlat", "15", "37", "bybox", "400", "400",
                     "km", "asc"))
    assert sorted(got) == [b"edge1", b"edge2", b"edge5", b"edge7"]
    z = geoset((12.75, 36.995, "test1"), (12.75, 36.50, "test2"), (13.00, 36.50, "test3"))
    assert flat(query(z, "geosearch", "k", "fromlonlat", "15", "37", "bybox", "400", "2",
                      "km")) == [b"test1"]


def test_a_huge_radius_finds_the_far_side() -> None:
    z = geoset((-47.271613776683807, -54.534504198047678, "user_000000"))
    assert len(flat(query(z, "georadius", "users", "0", "0", "50000", "km",
                          "WITHCOORD"))) == 1


def test_with_options_reply_in_redis_order_in_both_protocols() -> None:
    words = ("geosearch", "k", "fromlonlat", "15", "37", "byradius", "200", "km",
             "withcoord", "withhash", "withdist", "asc")
    assert query(SICILY, *words, proto=2) == (
        b"*2\r\n*4\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n:3479447370796909\r\n*2\r\n"
        b"$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n*4\r\n$7\r\n"
        b"Palermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n*2\r\n$20\r\n"
        b"13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n")
    assert query(SICILY, *words, proto=3) == (
        b"*2\r\n*4\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n:3479447370796909\r\n*2\r\n"
        b",15.08726745843887329\r\n,37.50266842333162032\r\n*4\r\n$7\r\n"
        b"Palermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n*2\r\n"
        b",13.36138933897018433\r\n,38.11555639549629859\r\n")
    assert query(SICILY, "geosearch", "k", "fromlonlat", "15", "37", "byradius", "1",
                 "m") == b"*0\r\n"


def test_store_variants_store_scores_or_distances() -> None:
    req = request(SICILY, "georadius", "k", "15", "37", "200", "km", "STOREDIST", "d")
    assert (req.store, req.storedist) == (b"d", True)
    entries = geo.store_entries(req, geo.run(req, reader(SICILY)))
    assert [(m, round(d, 4)) for m, d in entries] == [(b"Palermo", 190.4424),
                                                     (b"Catania", 56.4413)]
    req = request(SICILY, "geosearchstore", "d", "k", "fromlonlat", "15", "37", "byradius",
                  "200", "km", "count", "1")
    assert list(geo.store_entries(req, geo.run(req, reader(SICILY)))) == [
        (b"Catania", SICILY[b"Catania"])]


def test_a_missing_source_key_searches_nothing() -> None:
    req = request(None, "georadiusbymember", "nokey", "m", "-1", "cm")
    assert req.shape is None and geo.run(req, reader({})) == []
    req = request(None, "geosearchstore", "d", "nokey", "frommember", "x", "byradius", "1", "m")
    assert (req.store, geo.run(req, reader({}))) == (b"d", [])


# --- search requests: errors in Redis' order -------------------------------------------

MISSING = object()


@pytest.mark.parametrize("words, zset, error", [
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS -1 m", SICILY, "ERR radius cannot be negative"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS abc m", SICILY, "ERR need numeric radius"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 cm", SICILY,
     "ERR unsupported unit provided. please use M, KM, FT, MI"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYBOX 1 abc m", SICILY, "ERR need numeric height"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYBOX -1 1 m", SICILY, "ERR height or width cannot be negative"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 m COUNT 0", SICILY, "ERR COUNT must be > 0"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 m COUNT x", SICILY,
     "ERR value is not an integer or out of range"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 m COUNT", SICILY, "ERR syntax error"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 m ANY", SICILY,
     "ERR the ANY argument requires COUNT argument"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 m STORE x", SICILY, "ERR syntax error"),
    ("GEOSEARCH k FROMLONLAT 1 2 BYRADIUS 1 m BYBOX 1 1 m", SICILY, "ERR syntax error"),
    ("GEOSEARCH k FROMMEMBER nope FROMLONLAT 1 2 BYRADIUS 1 m", SICILY,
     "ERR could not decode requested zset member"),
    ("geoSearch k BYRADIUS 1 m WITHDIST WITHHASH", SICILY,
     "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geoSearch"),
    ("GeoSearchStore d k FROMLONLAT 1 2 ASC ASC", SICILY,
     "ERR exactly one of BYRADIUS and BYBOX can be specified for GeoSearchStore"),
    ("GEOSEARCHSTORE d k FROMLONLAT 1 2 BYRADIUS 1 m WITHDIST", SICILY,
     "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"),
    ("GEORADIUS k 1 2 1 m STORE x WITHDIST", SICILY,
     "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and "
     "WITHCOORD options"),
    ("GEORADIUS_RO k 1 2 1 m STORE x", SICILY, "ERR syntax error"),
    ("GEORADIUS k 1 200 1 m", SICILY, "ERR invalid longitude,latitude pair 1.000000,200.000000"),
    ("GEORADIUSBYMEMBER k nope -1 m", SICILY, "ERR could not decode requested zset member"),
    ("GEORADIUSBYMEMBER k Palermo 1 cm", SICILY,
     "ERR unsupported unit provided. please use M, KM, FT, MI"),
    ("GEORADIUS nokey 1 2 -1 m", MISSING, "ERR radius cannot be negative"),
    ("GEORADIUSBYMEMBER nokey m -1 m COUNT 0", MISSING, "ERR COUNT must be > 0"),
    ("GEOSEARCH k FROMLONLAT 1 2", SICILY,
     "ERR wrong number of arguments for 'geosearch' command"),
])
def test_search_errors_come_in_redis_order(words: str, zset: object, error: str) -> None:
    z = None if zset is MISSING else zset
    args = [w.encode() for w in words.split()]
    got = geo.parse_search(args, z is not None, lambda m: z.get(m) if z else None)
    assert got == resp.error(error)


def test_options_are_read_up_to_a_nul_byte_in_any_case() -> None:
    args = [b"GEORADIUS", b"k", b"1", b"2", b"1", b"KM\x00x", b"count", b"1",
            b"store\x00", b"d"]
    req = geo.parse_search(args, True, lambda m: None)
    assert isinstance(req, geo.Search)
    assert (req.store, req.count, req.order) == (b"d", 1, geosearch.UNSORTED)
    assert req.shape is not None and req.shape.conversion == 1000.0


def test_members_to_read_names_every_lookup_the_arguments_can_reach() -> None:
    assert geo.members_to_read([b"georadiusbymember", b"k", b"m1", b"1", b"km"]) == [b"m1"]
    assert geo.members_to_read([b"geosearch", b"k", b"frommember", b"a", b"frommember", b"b",
                                b"byradius", b"1", b"m"]) == [b"a", b"b"]
    assert geo.members_to_read([b"geosearch", b"k", b"fromlonlat", b"1", b"2", b"byradius",
                                b"1", b"m"]) == []


# --- searches: properties --------------------------------------------------------------


@st.composite
def shapes(draw: st.DrawFn, max_lat: float = 70.0, max_km: float = 5000.0) -> gh.Shape:
    # A centre at longitude 180 lies past the last cell (see the test below).
    lon = draw(st.floats(-180, 180 - 1e-9))
    lat = draw(st.floats(-max_lat, max_lat))
    unit = draw(st.sampled_from(sorted(geo.UNITS.values())))
    size = st.floats(0, max_km * 1000 / unit)
    if draw(st.booleans()):
        return gh.Shape(lon, lat, unit, radius=draw(size))
    return gh.Shape(lon, lat, unit, width=draw(size), height=draw(size), box=True)


@st.composite
def points_around(draw: st.DrawFn, shape: gh.Shape, max_lat: float = 70.0
                  ) -> dict[bytes, float]:
    """Points near the shape's edge and centre (where a search can go wrong), and a few
    anywhere; some share a position."""
    extent = max(shape.radius, shape.width, shape.height) * shape.conversion
    deg = min(extent / gh.EARTH_RADIUS_M / (math.pi / 180), 90)
    out = {}
    n = draw(st.integers(0, 40))
    for i in range(n):
        if draw(st.integers(0, 4)) == 0:
            lon = draw(st.floats(-180, 180 - 1e-9))  # 180 is past the last cell
            lat = draw(st.floats(-max_lat, max_lat))
        else:
            f = draw(st.floats(0, 1.6))
            a = draw(st.floats(0, 2 * math.pi))
            lat = min(max(shape.lat + f * deg * math.sin(a), -max_lat), max_lat)
            stretch = 1 / max(math.cos(math.radians(lat)), 0.05)
            lon = shape.lon + f * deg * stretch * math.cos(a)
            lon = (lon + 180) % 360 - 180
        out[b"p%d" % i] = float(gh.encode(lon, lat))
        if draw(st.integers(0, 5)) == 0:
            out[b"q%d" % i] = out[b"p%d" % i]
    return out


def brute_force(shape: gh.Shape, zset: dict[bytes, float]) -> dict[bytes, float]:
    out = {}
    for member, score in zset.items():
        d = gh.within(shape, *gh.decode(score))
        if d is not None:
            out[member] = d
    return out


@st.composite
def scenes(draw: st.DrawFn, max_lat: float = 70.0, max_km: float = 5000.0
           ) -> tuple[gh.Shape, dict[bytes, float]]:
    shape = draw(shapes(max_lat, max_km))
    return shape, draw(points_around(shape, max_lat))


@SETTINGS
@given(scenes())
def test_a_search_finds_exactly_the_members_inside_the_shape(
        scene: tuple[gh.Shape, dict[bytes, float]]) -> None:
    """Within Redis' own fuzz-test domain (latitudes within 70 degrees, sizes up to
    5000 km) the nine cells cover the whole shape: nothing inside is missed."""
    shape, zset = scene
    found = geosearch.find(shape, reader(zset))
    assert len(found) == len({m.member for m in found})
    assert {m.member: m.dist for m in found} == brute_force(shape, zset)


@SETTINGS
@given(scenes(max_lat=gh.LAT_MAX, max_km=25000))
def test_anywhere_a_search_returns_only_members_inside(
        scene: tuple[gh.Shape, dict[bytes, float]]) -> None:
    """Near the poles and for huge shapes Redis' nine cells may miss members (so may
    this); what it returns is always inside, once, with its exact distance."""
    shape, zset = scene
    found = geosearch.find(shape, reader(zset))
    inside = brute_force(shape, zset)
    assert len(found) == len({m.member for m in found})
    for m in found:
        assert m.member in inside
        assert m.dist == inside[m.member] or (m.dist != m.dist and inside[m.member] != m.dist)
        assert (m.lon, m.lat) == gh.decode(m.score)


@SETTINGS
@given(scenes(), st.integers(1, 50), st.sampled_from([geosearch.UNSORTED, geosearch.ASC, geosearch.DESC]))
def test_count_keeps_the_nearest_or_farthest(
        scene: tuple[gh.Shape, dict[bytes, float]], count: int, order: int) -> None:
    shape, zset = scene
    everything = geosearch.find(shape, reader(zset))
    got = geosearch.search(shape, reader(zset), count=count, order=order)
    assert len(got) == min(count, len(everything))
    dists = sorted((m.dist for m in everything), reverse=order == geosearch.DESC)
    assert [m.dist for m in got] == dists[:count]  # (in meters, as found)
    if order == geosearch.UNSORTED:  # COUNT alone sorts ascending
        assert [m.dist for m in got] == sorted(m.dist for m in got)


@SETTINGS
@given(scenes(), st.integers(1, 50))
def test_any_stops_at_the_first_members_found(
        scene: tuple[gh.Shape, dict[bytes, float]], count: int) -> None:
    shape, zset = scene
    everything = geosearch.find(shape, reader(zset))
    got = geosearch.search(shape, reader(zset), count=count, any_=True)
    assert [m.member for m in got] == [m.member for m in everything[:count]]


def test_any_reads_no_range_after_the_count_is_reached() -> None:
    z = geoset(*[(15 + i * 1e-4, 37, f"m{i}") for i in range(10)])
    shape = gh.Shape(15, 37, 1000.0, radius=100)
    calls = []

    def read(lo: float, hi: float) -> list[tuple[bytes, float]]:
        calls.append((lo, hi))
        return reader(z)(lo, hi)

    assert len(geosearch.search(shape, read, count=3, any_=True)) == 3
    assert len(calls) == 1
    assert len(gh.score_ranges(shape)) > 1


def test_a_centre_on_the_antimeridian_edge_misses_what_redis_misses() -> None:
    # redis-server: GEOADD t -180 0 p0; GEOSEARCH t FROMLONLAT 180 0 BYBOX 2 1 ft -> empty
    # (180 encodes one cell past the last), while from 179.9999999 it finds p0.
    z = geoset((-180, 0, "p0"))
    assert flat(query(z, "geosearch", "t", "fromlonlat", "180", "0", "bybox", "2", "1",
                      "ft")) == []
    assert flat(query(z, "geosearch", "t", "fromlonlat", "179.9999999", "0", "bybox", "200",
                      "100", "km", "withdist")) == [[b"p0", b"0.0003"]]
    # And a member added at longitude 180 is past every range a search reads
    # (redis-server: empty).
    z = geoset((180, 0, "p0"))
    assert flat(query(z, "geosearch", "t", "fromlonlat", "166", "0", "bybox", "3115", "1",
                      "km", "withdist")) == []


def test_ranges_are_nine_cells_at_most_and_never_repeat_in_a_row() -> None:
    for shape in (gh.Shape(0, 0, 1000.0, radius=20000), gh.Shape(15, 37, 1.0, radius=10),
                  gh.Shape(179.9, -85, 1000.0, width=5000, height=5000, box=True)):
        ranges = gh.score_ranges(shape)
        assert 1 <= len(ranges) <= 9
        assert all(lo < hi for lo, hi in ranges)
        assert all(a != b for a, b in zip(ranges, ranges[1:], strict=False))


# --- the C sorts -----------------------------------------------------------------------


def cmp_key(a: tuple[int, int], b: tuple[int, int]) -> int:
    return 1 if a[0] > b[0] else 0 if a[0] == b[0] else -1


@SETTINGS
@given(st.lists(st.integers(0, 5), max_size=80))
def test_glibc_qsort_is_a_stable_sort(keys: list[int]) -> None:
    items = [(k, i) for i, k in enumerate(keys)]
    assert csort.qsort(items, cmp_key) == sorted(items, key=lambda x: x[0])


@SETTINGS
@given(st.lists(st.integers(0, 8), min_size=1, max_size=120), st.data())
def test_pqsort_puts_the_wanted_range_in_order(keys: list[int], data: st.DataObject) -> None:
    items = [(k, i) for i, k in enumerate(keys)]
    right = data.draw(st.integers(0, len(items) - 1))
    out = list(items)
    csort.pqsort(out, cmp_key, 0, right)
    assert sorted(out) == sorted(items)
    assert [k for k, _ in out[:right + 1]] == sorted(keys)[:right + 1]


def test_pqsort_leaves_ties_where_redis_leaves_them() -> None:
    # Bentley-McIlroy partitioning moves equal keys around: not a stable order.
    items = [(1, i) for i in range(10)] + [(0, 10)]
    out = list(items)
    csort.pqsort(out, cmp_key, 0, 4)
    assert [i for _, i in out[:5]] == [10, 1, 2, 3, 4]
