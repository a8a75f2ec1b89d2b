"""GEO replies computed by dynredis.commands.geo, byte for byte against a real redis-server.

The pure module is exercised here through a small model of its wiring: sorted sets as
dicts in memory, read through a score-range reader, with the pure module doing
everything else (the commands as nodes run them, over replicated sorted sets, are
compared with redis-server in test_collection_semantics_geo.py). The
same commands go to a real redis-server over raw RESP2 and RESP3 connections, and every
reply must be the same bytes: scores (also checked with ZSCORE), GEOPOS, GEOHASH,
GEODIST, searches of every variant (members, order, distances, hashes, coordinates),
STORE results, GEOADD counts, and the error reply of malformed arguments.
"""

from __future__ import annotations

import bisect
import math
import random
import socket
from collections import Counter
from collections.abc import Iterator

import hiredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.commands import geo, geosearch
from dynredis.commands import geohash as gh
from dynredis.commands.table import ERR_WRONGTYPE, err_arity
from dynredis.resp import bulks
from dynredis.resp import encode as resp

from .conftest import HOST

pytestmark = pytest.mark.timeout(120)

KEY = b"geo"  # the search data set
SOUP = b"soup"  # the key random argument lists may change
STRING_KEY = b"str"


class Raw:
    """One RESP connection; each call returns the reply's bytes exactly as sent."""

    def __init__(self, port: int, proto: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        if proto == 3:
            self(b"HELLO", b"3")

    def __call__(self, *args: bytes) -> bytes:
        self.sock.sendall(b"*%d\r\n" % len(args)
                          + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args))
        reader, got = hiredis.Reader(), b""
        while True:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "redis-server closed the connection"
            got += chunk
            reader.feed(chunk)
            if reader.gets() is not False:
                return got

    def close(self) -> None:
        self.sock.close()


# --- the model: sorted sets in memory, GEO commands by the pure module ------------------


def reader(zset: dict[bytes, float]) -> geosearch.Reader:
    """ZRANGEBYSCORE over a dict: min <= score < max, by score then member."""
    rows = sorted((s, m) for m, s in zset.items())
    scores = [s for s, _ in rows]

    def read(lo: float, hi: float) -> Iterator[tuple[float, bytes]]:
        yield from rows[bisect.bisect_left(scores, lo):bisect.bisect_left(scores, hi)]

    return read


class Model:
    """What a node will do once GEO is wired onto sorted sets."""

    def __init__(self) -> None:
        # A sorted set is replaced, never changed in place, so its reader can be kept.
        self.zsets: dict[bytes, dict[bytes, float]] = {}
        self.strings: dict[bytes, bytes] = {}
        self.readers: dict[int, tuple[dict[bytes, float], geosearch.Reader]] = {}

    def reader(self, z: dict[bytes, float]) -> geosearch.Reader:
        kept = self.readers.get(id(z))
        if kept is None or kept[0] is not z:
            kept = self.readers[id(z)] = (z, reader(z))
        return kept[1]

    def call(self, args: list[bytes], proto: int) -> bytes:
        name = args[0].lower().decode("latin-1")
        spec = geo.COMMANDS[name]
        if not (len(args) == spec.arity if spec.arity > 0 else len(args) >= -spec.arity):
            return err_arity(name)
        if name == "geoadd":
            return self.geoadd(args)
        if name == "geodist":
            req = geo.parse_geodist(args)
            if isinstance(req, bytes):
                return req
            if req.key in self.strings:
                return ERR_WRONGTYPE
            z = self.zsets.get(req.key, {})
            return geo.geodist_reply(z.get(req.member1), z.get(req.member2), req.conversion,
                                     proto)
        if name in ("geopos", "geohash"):
            if args[1] in self.strings:
                return ERR_WRONGTYPE
            z = self.zsets.get(args[1], {})
            scores = [z.get(m) for m in args[2:]]
            return (geo.geopos_reply if name == "geopos" else geo.geohash_reply)(scores, proto)
        return self.search(args, proto)

    def geoadd(self, args: list[bytes]) -> bytes:
        req = geo.parse_geoadd(args)
        if isinstance(req, bytes):
            return req
        if req.key in self.strings:
            return ERR_WRONGTYPE
        z = dict(self.zsets.get(req.key, {}))
        added = changed = 0
        for score, member in req.items:
            if member in z:
                if not req.nx and z[member] != score:
                    z[member] = float(score)
                    changed += 1
            elif not req.xx:
                z[member] = float(score)
                added += 1
        if z:
            self.zsets[req.key] = z
        return resp.integer(added + changed if req.ch else added)

    def search(self, args: list[bytes], proto: int) -> bytes:
        source = args[2] if args[0].lower() == b"geosearchstore" else args[1]
        if source in self.strings:
            return ERR_WRONGTYPE
        z = self.zsets.get(source)
        req = geo.parse_search(args, z is not None, lambda m: (z or {}).get(m))
        if isinstance(req, bytes):
            return req
        matches = geo.run(req, self.reader(z or {}))
        if req.store is None:
            return bulks.whole(geo.search_reply(req, matches, proto))
        entries = geo.store_entries(req, matches)
        self.strings.pop(req.store, None)
        self.zsets.pop(req.store, None)
        if entries:
            self.zsets[req.store] = dict(entries)
        return resp.integer(len(entries))


# --- the data set ----------------------------------------------------------------------

CLUSTERS = [(13.36, 38.11), (-73.98, 40.76), (151.2, -33.86), (179.9, -16.5),
            (-179.95, 65.0), (25.0, 81.5), (-60.0, -84.9), (0.0, 0.0)]


def data_set(rng: random.Random) -> list[tuple[float, float, bytes]]:
    """Points anywhere, dense clusters (one on each side of the antimeridian, some near
    the poles), positions shared by several members (equal distances), and the edges."""
    points = []
    for i in range(1200):
        points.append((rng.uniform(-180, 180), rng.uniform(gh.LAT_MIN, gh.LAT_MAX),
                       b"w%d" % i))
    for c, (lon, lat) in enumerate(CLUSTERS):
        for i in range(150):
            dlat = rng.gauss(0, 0.15)
            dlon = rng.gauss(0, 0.15) / max(math.cos(math.radians(lat)), 0.1)
            y = min(max(lat + dlat, gh.LAT_MIN), gh.LAT_MAX)
            x = (lon + dlon + 180) % 360 - 180
            points.append((x, y, b"c%d:%d" % (c, i)))
    for i in range(300):  # members sharing a position with another
        x, y, _ = rng.choice(points)
        points.append((x, y, b"t%d" % i))
    points += [(180, 0, b"e:east"), (-180, 0, b"e:west"), (0, gh.LAT_MAX, b"e:north"),
               (0, gh.LAT_MIN, b"e:south"), (180, gh.LAT_MAX, b"e:corner"),
               (179.9999999, 0, b"e:near")]
    return points


def number(x: float, rng: random.Random) -> bytes:
    return (repr(x) if rng.random() < 0.8 else f"{x:.4f}").encode()


@pytest.fixture(scope="module")
def server(real_redis: redis.Redis) -> Iterator[tuple[Model, dict[int, Raw], list]]:
    rng = random.Random(20240607)
    points = data_set(rng)
    model = Model()
    conns = {2: Raw(real_redis.port, 2), 3: Raw(real_redis.port, 3)}  # type: ignore[attr-defined]
    conns[2](b"FLUSHALL")
    for i in range(0, len(points), 500):
        args = [b"GEOADD", KEY]
        for x, y, m in points[i:i + 500]:
            args += [repr(x).encode(), repr(y).encode(), m]
        want = conns[2](*args)
        assert model.call(args, 2) == want
    conns[2](b"SET", STRING_KEY, b"x")
    model.strings[STRING_KEY] = b"x"
    try:
        yield model, conns, points
    finally:
        for c in conns.values():
            c.close()


# --- scores, positions, hashes, distances ----------------------------------------------


def test_scores_are_redis_scores(server: tuple[Model, dict[int, Raw], list],
                                 real_redis: redis.Redis) -> None:
    model, _, points = server
    mine = model.zsets[KEY]
    theirs = {m.encode(): s for m, s in real_redis.zrange(KEY, 0, -1, withscores=True)}
    assert len(mine) == len(theirs) == len({m for _, _, m in points})
    diffs = [(m, s, theirs.get(m)) for m, s in mine.items() if theirs.get(m) != s]
    assert not diffs, diffs[:10]
    pipe = real_redis.pipeline(transaction=False)
    sample = random.Random(1).sample(sorted(mine), 200)
    for m in sample:
        pipe.zscore(KEY, m)
    assert pipe.execute() == [mine[m] for m in sample]


def test_geopos_and_geohash_are_redis_bytes(server: tuple[Model, dict[int, Raw], list]
                                            ) -> None:
    model, conns, _ = server
    members = sorted(model.zsets[KEY]) + [b"missing", b""]
    for proto, conn in conns.items():
        for cmd in (b"GEOPOS", b"GEOHASH"):
            for i in range(0, len(members), 400):
                args = [cmd, KEY, *members[i:i + 400]]
                assert model.call(args, proto) == conn(*args), (cmd, proto, i)
            for args in ([cmd, b"nokey", b"a", b"b"], [cmd, KEY], [cmd, STRING_KEY, b"a"]):
                assert model.call(args, proto) == conn(*args), args


def test_geodist_is_redis_bytes(server: tuple[Model, dict[int, Raw], list]) -> None:
    model, conns, _ = server
    rng = random.Random(7)
    members = sorted(model.zsets[KEY])
    for _ in range(400):
        args = [b"GEODIST", KEY, rng.choice(members), rng.choice(members)]
        if rng.random() < 0.7:
            args.append(rng.choice([b"m", b"km", b"mi", b"ft", b"KM", b"Mi"]))
        for proto, conn in conns.items():
            assert model.call(args, proto) == conn(*args), args
    for args in ([b"GEODIST", KEY, b"w1", b"missing"], [b"GEODIST", b"nokey", b"a", b"b"],
                 [b"GEODIST", KEY, b"w1", b"w2", b"cm"], [b"GEODIST", KEY, b"w1", b"w2", b"m",
                                                         b"x"],
                 [b"GEODIST", STRING_KEY, b"a", b"b"], [b"GEODIST", STRING_KEY, b"a", b"b",
                                                        b"cm"]):
        for proto, conn in conns.items():
            assert model.call(args, proto) == conn(*args), args


# --- searches --------------------------------------------------------------------------

VARIANTS = [b"GEOSEARCH", b"GEORADIUS", b"GEORADIUS_RO", b"GEORADIUSBYMEMBER",
            b"georadiusbymember_ro", b"geosearch"]


def random_search(rng: random.Random, members: list[bytes]) -> list[bytes]:
    """A search of any variant around a cluster, a member or anywhere, with a size from
    a meter to half the earth in any unit, and options in any order."""
    variant = rng.choice(VARIANTS)
    by_member = b"MEMBER" in variant.upper() or (variant.upper() == b"GEOSEARCH"
                                                 and rng.random() < 0.3)
    if rng.random() < 0.7:
        lon, lat = rng.choice(CLUSTERS)
        lon = (lon + rng.gauss(0, 0.3) + 180) % 360 - 180
        lat = min(max(lat + rng.gauss(0, 0.3), gh.LAT_MIN), gh.LAT_MAX)
    else:
        lon, lat = rng.uniform(-180, 180), rng.uniform(gh.LAT_MIN, gh.LAT_MAX)
    unit = rng.choice([b"m", b"km", b"mi", b"ft"])
    per_unit = geo.UNITS[unit]
    meters = 0.0 if rng.random() < 0.03 else 10 ** rng.uniform(0, 7.3)
    size = number(meters / per_unit, rng)
    box = variant.upper() == b"GEOSEARCH" and rng.random() < 0.5
    other = number(10 ** rng.uniform(0, 7.3) / per_unit, rng)
    options: list[list[bytes]] = []
    if rng.random() < 0.5:
        options.append([b"COUNT", b"%d" % rng.randint(1, 60)]
                       + ([b"ANY"] if rng.random() < 0.3 else []))
    if rng.random() < 0.6:
        options.append([rng.choice([b"ASC", b"DESC", b"asc"])])
    for word in (b"WITHDIST", b"WITHHASH", b"WITHCOORD"):
        if rng.random() < 0.4:
            options.append([word])
    if variant.upper() == b"GEOSEARCH":
        centre = ([b"FROMMEMBER", rng.choice(members)] if by_member
                  else [b"FROMLONLAT", number(lon, rng), number(lat, rng)])
        shape = ([b"BYBOX", size, other, unit] if box else [b"BYRADIUS", size, unit])
        options += [centre, shape]
        rng.shuffle(options)
        return [variant, KEY, *[w for o in options for w in o]]
    rng.shuffle(options)
    head = [rng.choice(members)] if by_member else [number(lon, rng), number(lat, rng)]
    return [variant, KEY, *head, size, unit, *[w for o in options for w in o]]


def test_searches_are_redis_bytes(server: tuple[Model, dict[int, Raw], list]) -> None:
    model, conns, _ = server
    rng = random.Random(11)
    members = sorted(model.zsets[KEY]) + [b"missing"]
    seen: Counter[str] = Counter()
    for _ in range(700):
        args = random_search(rng, members)
        proto = rng.choice([2, 3])
        want = conns[proto](*args)
        assert model.call(args, proto) == want, (args, proto)
        reply = hiredis.Reader()
        reply.feed(want)
        got = reply.gets()
        if isinstance(got, list):
            seen["results"] += len(got) > 1
            seen["many results"] += len(got) >= 20
            upper = [a.upper() for a in args]
            if b"COUNT" in upper and b"ANY" not in upper and len(got) > 1:
                seen["count"] += 1
            dists = [r[1] for r in got if isinstance(r, list) and b"WITHDIST" in upper]
            seen["equal distances"] += len(dists) != len(set(dists))
    # Not a vacuous comparison: many searches found several members, some with COUNT
    # (partial sorts) and some with equal distances (the sorts' tie order).
    assert seen["results"] > 250 and seen["many results"] > 50, seen
    assert seen["count"] > 50 and seen["equal distances"] > 10, seen


def test_store_variants_store_what_redis_stores(
        server: tuple[Model, dict[int, Raw], list], real_redis: redis.Redis) -> None:
    model, conns, _ = server
    rng = random.Random(13)
    members = sorted(model.zsets[KEY]) + [b"missing"]
    for i in range(150):
        args = random_search(rng, members)
        variant = args[0].upper()
        if variant.endswith(b"_RO"):
            continue
        args = [a for a in args if a.upper() not in (b"WITHDIST", b"WITHHASH", b"WITHCOORD")]
        dest = b"dest%d" % (i % 3)
        if variant == b"GEOSEARCH":
            args = [b"GEOSEARCHSTORE", dest, *args[1:]]
            if rng.random() < 0.5:
                args.append(b"STOREDIST")
        else:
            args += [rng.choice([b"STORE", b"STOREDIST"]), dest]
        want = conns[2](*args)
        assert model.call(args, 2) == want, args
        stored = real_redis.zrange(dest, 0, -1, withscores=True)
        mine = sorted(model.zsets.get(dest, {}).items(), key=lambda e: (e[1], e[0]))
        assert [(m.encode(), s) for m, s in stored] == mine, args


ODD_SCORES = [b"-1", b"0", b"1.5", b"-0.5", b"4503599627370495", b"4503599627370496",
              b"9007199254740992", b"9223372036854775808", b"1e19", b"1e300", b"-1e300",
              b"inf", b"-inf", b"13510798882111488", b"3.9e15", b"3479099956230698.5",
              b"3479099956230699"]


def test_members_at_the_edges_and_odd_scores(server: tuple[Model, dict[int, Raw], list]
                                             ) -> None:
    """Scores no GEOADD makes (a plain ZADD can), members on the edges, searches from
    them: positions, hashes, distances and searches decode them as Redis does."""
    model, conns = server[0], server[1]
    odd = {b"o%d" % i: float(score) for i, score in enumerate(ODD_SCORES)}
    args = [b"ZADD", b"odd", *[w for m, score in zip(odd, ODD_SCORES, strict=True)
                                for w in (score, m)]]
    assert conns[2](*args) == b":%d\r\n" % len(odd)
    model.zsets[b"odd"] = odd
    members = sorted(odd)
    edges = [m for m in sorted(model.zsets[KEY]) if m.startswith(b"e:")]
    cases = [[b"GEOPOS", b"odd", *members], [b"GEOHASH", b"odd", *members]]
    cases += [[b"GEODIST", b"odd", a, b, b"km"] for a in members for b in members[::3]]
    for key, names in ((b"odd", members), (KEY, edges)):
        for m in names:
            for shape in ([b"BYRADIUS", b"1", b"km"], [b"BYRADIUS", b"3000", b"km"],
                          [b"BYBOX", b"500", b"20000", b"km"], [b"BYRADIUS", b"inf", b"m"]):
                cases.append([b"GEOSEARCH", key, b"FROMMEMBER", m, *shape, b"WITHDIST",
                              b"WITHHASH", b"WITHCOORD", b"DESC"])
    for x, y in ((b"180", b"0"), (b"-180", b"0"), (b"0", b"85.05112878"),
                 (b"180", b"-85.05112878"), (b"179.99999", b"85.05"), (b"-179.99999", b"-85.05")):
        for size in (b"10", b"500", b"5000"):
            cases.append([b"GEORADIUS", KEY, x, y, size, b"km", b"WITHDIST", b"ASC"])
            cases.append([b"GEOSEARCH", b"odd", b"FROMLONLAT", x, y, b"BYBOX", size, size,
                          b"km", b"WITHHASH", b"WITHCOORD"])
    found = 0
    for args in cases:
        for proto in (2, 3):
            got = model.call(args, proto)
            assert got == conns[proto](*args), (args, proto)
            found += args[0] != b"GEODIST" and got != b"*0\r\n"
    assert found > len(cases)  # most of them found something


# --- any argument list -----------------------------------------------------------------

# Where the order of Redis' checks decides which error comes back (and when none does).
ORDER_CASES = """\
GEOADD soup NX XX 1 2 a|GEOADD soup CH CH NX 1 2 a|GEOADD soup xx ch 1 2 s1|GEOADD soup CH 1 2
GEOADD soup 1 2 a 500 2 b|GEOADD str 500 2 a|GEOADD str 1 2 a|GEOADD soup 1 2 a 1 2 a
GEODIST nokey a b cm|GEODIST str a b cm|GEODIST str a b|GEODIST soup s1 s2 km x
GEOSEARCH soup FROMLONLAT 1 2 BYRADIUS 1 m COUNT 0 BYBOX
GEOSEARCH soup FROMLONLAT 1 2 BYRADIUS 1 cm COUNT 0|GEOSEARCH soup FROMLONLAT 1 2 COUNT 0 BYRADIUS 1 cm
GEOSEARCH soup ANY FROMLONLAT 1 2 BYRADIUS 1 m|GEOSEARCH soup ANY BYRADIUS 1 m WITHDIST
GEOSEARCH soup FROMMEMBER nope FROMLONLAT 1 2 BYRADIUS 1 m|GEOSEARCH nokey FROMMEMBER nope BYRADIUS 1 m
GEOSEARCH soup FROMLONLAT 1 2 BYRADIUS 1 m BYRADIUS 2 km|GEOSEARCH soup FROMLONLAT 1 2 FROMLONLAT 15 37 BYRADIUS 9 km
GEOSEARCH soup FROMMEMBER s1 FROMMEMBER s2 BYRADIUS 2 km WITHDIST|GEOSEARCH soup FROMLONLAT 1 2 BYRADIUS inf m
GEOSEARCH soup FROMLONLAT 1 2 BYBOX inf 1 km COUNT 3|GEOSEARCH str FROMLONLAT 1 2 BYRADIUS -1 m
GEOSEARCH soup frommember s1 byradius 1 KM withdist withcoord withhash any count 1 desc
GEOSEARCHSTORE dst soup FROMLONLAT 1 2 BYRADIUS 1 m STOREDIST STORE x
GEOSEARCHSTORE dst nokey FROMMEMBER x BYRADIUS 1 m|GEOSEARCHSTORE dst soup FROMLONLAT 15 37 BYRADIUS 2 km STOREDIST
GEOSEARCHSTORE dst soup FROMLONLAT 15 37 BYRADIUS 2 km STOREDIST WITHHASH|GEOSEARCHSTORE soup soup FROMMEMBER s3 BYBOX 3 3 km
GEORADIUS soup 1 2 1 m ANY|GEORADIUS nokey 1 2 -1 m|GEORADIUS nokey 300 2 1 m|GEORADIUS soup abc 2 -1 m
GEORADIUS soup 15 37 9 km STOREDIST dst WITHHASH|GEORADIUS soup 15 37 9 km STORE dst COUNT 2 DESC
GEORADIUS soup 15 37 9 km STORE|GEORADIUS_RO soup 15 37 9 km STOREDIST dst
GEORADIUSBYMEMBER nokey nope 1 m WITHDIST STORE x|GEORADIUSBYMEMBER nokey nope -1 cm
GEORADIUSBYMEMBER soup nope 1 m STORE x WITHDIST|GEORADIUSBYMEMBER soup s1 -1 m|GEORADIUSBYMEMBER str s1 1 m
GEORADIUSBYMEMBER_RO soup s1 100 km STORE x|GEORADIUSBYMEMBER soup s1 1 km COUNT 99999999999999999999"""


def test_checks_come_in_redis_order(server: tuple[Model, dict[int, Raw], list]) -> None:
    model, conns = server[0], server[1]
    for case in ORDER_CASES.replace("\n", "|").split("|"):
        for proto in (2, 3):
            reset_soup(model, conns[2])
            args = [w.encode() for w in case.split()]
            assert model.call(args, proto) == conns[proto](*args), (case, proto)

SOUP_POINTS = [(15.0 + 0.01 * (i % 7), 37.0 + 0.01 * (i // 7), b"s%d" % i) for i in range(28)]
NUMBERS = [b"0", b"1", b"-1", b"2.5", b"15.02", b"37.03", b"180", b"-180", b"85.05112878",
           b"85.06", b"200", b"1e3", b"1e400", b"1e-400", b"-0", b"0x1p3", b"inf", b"-inf",
           b"nan", b"abc", b"", b" 1", b"1 ", b"10", b"5000", b"99999999999999999999", b"1.5"]
UNIT_WORDS = [b"m", b"km", b"ft", b"mi", b"KM", b"Mi", b"cm", b"m\x00x"]
OPTION_WORDS = [b"withdist", b"WITHHASH", b"withcoord", b"any", b"ASC", b"desc", b"count",
                b"store", b"STOREDIST", b"frommember", b"FROMLONLAT", b"byradius", b"BYBOX",
                b"nx", b"XX", b"ch", b"gt", b"foo"]
MEMBER_WORDS = [b"s0", b"s5", b"s27", b"nope"]
KEY_WORDS = [SOUP, b"nokey", STRING_KEY, b"dst"]


@st.composite
def argument_lists(draw: st.DrawFn) -> list[bytes]:
    """A GEO command with plausible clauses, each value drawn from valid and invalid ones,
    and random words anywhere."""
    num = st.sampled_from(NUMBERS)
    unit = st.sampled_from(UNIT_WORDS)
    member = st.sampled_from(MEMBER_WORDS)
    clauses = st.one_of(
        st.tuples(st.just(b"FROMLONLAT"), num, num), st.tuples(st.just(b"frommember"), member),
        st.tuples(st.just(b"BYRADIUS"), num, unit), st.tuples(st.just(b"bybox"), num, num, unit),
        st.tuples(st.just(b"COUNT"), num), st.tuples(st.sampled_from(OPTION_WORDS)),
        st.tuples(st.sampled_from(OPTION_WORDS)), st.tuples(st.sampled_from(OPTION_WORDS)),
        st.tuples(st.just(b"STORE"), st.sampled_from(KEY_WORDS)), st.tuples(num),
        st.tuples(unit), st.tuples(member))
    lname = draw(st.sampled_from(sorted(geo.COMMANDS))).encode()
    name = bytes(c ^ 32 if draw(st.booleans()) and 97 <= c <= 122 else c for c in lname)
    key = draw(st.sampled_from(KEY_WORDS))
    head: list[bytes] = []
    if lname == b"geoadd":
        head = draw(st.lists(st.sampled_from([b"NX", b"xx", b"CH", b"gt"]), max_size=2))
        for _ in range(draw(st.integers(0, 3))):
            head += [draw(num), draw(num), draw(member)]
    elif lname in (b"georadius", b"georadius_ro"):
        head = [draw(num), draw(num), draw(num), draw(unit)]
    elif lname.startswith(b"georadiusbymember"):
        head = [draw(member), draw(num), draw(unit)]
    elif lname == b"geosearchstore":
        head = [draw(st.sampled_from([SOUP, b"dst"]))]
    elif lname == b"geodist":
        head = [draw(member), draw(member)]
    tail = [w for c in draw(st.lists(clauses, max_size=6)) for w in c]
    cut = draw(st.integers(0, 2))  # sometimes drop the last words: arity and missing values
    args = [name, key, *head, *tail]
    return args[:len(args) - cut] if cut < len(args) - 1 else args


def reset_soup(model: Model, conn: Raw) -> None:
    """Every example starts from the same keys: the soup points, a string, nothing else."""
    conn(b"DEL", SOUP, b"nokey", b"dst", STRING_KEY)
    conn(b"SET", STRING_KEY, b"x")
    for key in (SOUP, b"nokey", b"dst", STRING_KEY):
        model.zsets.pop(key, None)
    model.strings[STRING_KEY] = b"x"
    args = [b"GEOADD", SOUP, *[w for x, y, m in SOUP_POINTS for w in (b"%r" % x, b"%r" % y, m)]]
    args += [b"15.0", b"37.0", b"s-twin"]  # shares s0's position
    assert model.call(args, 2) == conn(*args)


def stored_state(model: Model, key: bytes) -> bytes:
    """TYPE and ZRANGE WITHSCORES of `key` as redis-server would answer them."""
    if key in model.strings:
        return b"+string\r\n"
    z = model.zsets.get(key)
    if z is None:
        return b"+none\r\n"
    ordered = sorted(z.items(), key=lambda e: (e[1], e[0]))
    return b"+zset\r\n" + resp.array([resp.bulk(x) for m, s in ordered
                                         for x in (m, b"%.17g" % s)])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=argument_lists(), proto=st.sampled_from([2, 3]))
def test_any_argument_list_gets_redis_reply(server: tuple[Model, dict[int, Raw], list],
                                            args: list[bytes], proto: int) -> None:
    model, conns, _ = server
    reset_soup(model, conns[2])
    want = conns[proto](*args)
    assert model.call(args, proto) == want, args
    for key in KEY_WORDS:  # writes (GEOADD, STORE) left the same keys behind
        state = conns[2](b"TYPE", key)
        if state == b"+zset\r\n":
            state += conns[2](b"ZRANGE", key, b"0", b"-1", b"WITHSCORES")
        assert state == stored_state(model, key), (args, key)
