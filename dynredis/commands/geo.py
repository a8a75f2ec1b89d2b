"""The GEO commands over any sorted-set backend: parsing, search and replies, no I/O.

Redis keeps geo data in an ordinary sorted set whose scores are geohashes (geohash.py),
so every GEO command is a sorted-set read or write framed by pure work done here:

- GEOADD: `parse_geoadd` checks the arguments and turns them into the ZADD that Redis
  itself runs (`GeoAdd.zadd_args()`); its reply is ZADD's.
- GEOPOS, GEOHASH, GEODIST: read the named members' scores (ZSCORE-like; None for a
  missing key or member) and render them (`geopos_reply`, `geohash_reply`,
  `geodist_reply`; `parse_geodist` first, as Redis checks the unit before the key).
- GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and the _RO forms:
  `parse_search(args, exists, score_of)` needs to know whether the source key exists and
  the scores of the members the arguments name (FROMMEMBER, GEORADIUSBYMEMBER's member:
  `members_to_read(args)` lists them), because Redis looks them up while it parses and
  its error replies depend on the order. `run(request, read)` then searches through
  `read(min, max)`, a ZRANGEBYSCORE (geosearch.py), and returns the matches in Redis'
  order; `search_reply` renders them, or `store_entries` gives the sorted set a STORE
  variant writes.

Each handler checks the key type first (WRONGTYPE) except GEOADD and GEODIST, whose
argument errors come first in Redis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..resp import bulks
from ..resp import encode as resp
from .collection import Snapshot
from .doubles import parse_double
from .geohash import Shape, decode, distance, encode, hash_string, to_int64
from .geohash import valid as valid_lonlat
from .geosearch import ASC, DESC, UNSORTED, Flat, Match, Reader, members_of, search
from .table import ERR_NOT_FLOAT, ERR_NOT_INT, ERR_SYNTAX, err_arity, parse_int

ScoreOf = Callable[[bytes], float | None]
"""`score_of(member)`: the member's score in the source key, or None."""

UNITS: dict[bytes, float] = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
ERR_UNIT = resp.error("ERR unsupported unit provided. please use M, KM, FT, MI")
ERR_MEMBER = resp.error("ERR could not decode requested zset member")
ERR_COUNT = resp.error("ERR COUNT must be > 0")
ERR_ANY = resp.error("ERR the ANY argument requires COUNT argument")
ERR_NEGATIVE_RADIUS = resp.error("ERR radius cannot be negative")
ERR_NEGATIVE_BOX = resp.error("ERR height or width cannot be negative")


@dataclass(frozen=True)
class Spec:
    """What the command table needs to register a GEO command (Redis 7.0's values)."""

    arity: int
    flags: tuple[str, ...]
    first_key: int
    last_key: int
    step: int
    summary: str
    since: str


_W = ("write", "denyoom")
_R = ("readonly",)
COMMANDS: dict[str, Spec] = {
    "geoadd": Spec(-5, _W, 1, 1, 1, "Add one or more geospatial items in the geospatial "
                   "index represented using a sorted set", "3.2.0"),
    "geodist": Spec(-4, _R, 1, 1, 1, "Returns the distance between two members of a "
                    "geospatial index", "3.2.0"),
    "geohash": Spec(-2, _R, 1, 1, 1, "Returns members of a geospatial index as standard "
                    "geohash strings", "3.2.0"),
    "geopos": Spec(-2, _R, 1, 1, 1, "Returns longitude and latitude of members of a "
                   "geospatial index", "3.2.0"),
    "georadius": Spec(-6, (*_W, "movablekeys"), 1, 1, 1, "Query a sorted set representing a "
                      "geospatial index to fetch members matching a given maximum distance "
                      "from a point", "3.2.0"),
    "georadius_ro": Spec(-6, _R, 1, 1, 1, "A read-only variant for GEORADIUS", "3.2.10"),
    "georadiusbymember": Spec(-5, (*_W, "movablekeys"), 1, 1, 1, "Query a sorted set "
                              "representing a geospatial index to fetch members matching a "
                              "given maximum distance from a member", "3.2.0"),
    "georadiusbymember_ro": Spec(-5, _R, 1, 1, 1, "A read-only variant for GEORADIUSBYMEMBER",
                                 "3.2.10"),
    "geosearch": Spec(-7, _R, 1, 1, 1, "Query a sorted set representing a geospatial index "
                      "to fetch members inside an area of a box or a circle.", "6.2.0"),
    "geosearchstore": Spec(-8, _W, 1, 2, 1, "Query a sorted set representing a geospatial "
                           "index to fetch members inside an area of a box or a circle, and "
                           "store the result in another key.", "6.2.0"),
}


def _arity_ok(name: str, nargs: int) -> bool:
    a = COMMANDS[name].arity
    return nargs == a if a > 0 else nargs >= -a


def _word(arg: bytes) -> bytes:
    """An option word as strcasecmp sees it: up to a NUL byte, any case."""
    return arg.split(b"\0", 1)[0].lower()


# --- number formats --------------------------------------------------------------------


def human(x: float) -> bytes:
    """Redis' LD_STR_HUMAN ("%.17Lf", trailing zeros and dot cut): GEOPOS and WITHCOORD."""
    text = b"%.17f" % x
    if b"." in text:
        text = text.rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text


def distance_text(d: float) -> bytes:
    """"%.4f" as glibc prints it (NaN keeps its sign): GEODIST and WITHDIST."""
    if d != d:
        return b"-nan" if math.copysign(1.0, d) < 0 else b"nan"
    return b"%.4f" % d


def _coord_line(x: float, proto: int) -> bytes:
    """A coordinate's reply without its last CRLF (as a row of bulks.lines)."""
    text = human(x)
    return b",%b" % text if proto >= 3 else b"$%d\r\n%b" % (len(text), text)


def _coord(x: float, proto: int) -> bytes:
    return _coord_line(x, proto) + b"\r\n"


# --- argument helpers ------------------------------------------------------------------


def _lonlat(lon_arg: bytes, lat_arg: bytes) -> tuple[float, float] | bytes:
    """extractLongLatOrReply."""
    lon = parse_double(lon_arg)
    if lon is None:
        return ERR_NOT_FLOAT
    lat = parse_double(lat_arg)
    if lat is None:
        return ERR_NOT_FLOAT
    if not valid_lonlat(lon, lat):
        return resp.error(f"ERR invalid longitude,latitude pair {lon:f},{lat:f}")
    return lon, lat


def _unit(arg: bytes) -> float | None:
    return UNITS.get(_word(arg))


def _radius(value: bytes, unit: bytes) -> tuple[float, float] | bytes:
    """extractDistanceOrReply: (radius, meters per unit)."""
    r = parse_double(value)
    if r is None:
        return resp.error("ERR need numeric radius")
    if r < 0:
        return ERR_NEGATIVE_RADIUS
    conversion = _unit(unit)
    return ERR_UNIT if conversion is None else (r, conversion)


def _box(width: bytes, height: bytes, unit: bytes) -> tuple[float, float, float] | bytes:
    """extractBoxOrReply: (width, height, meters per unit)."""
    w = parse_double(width)
    if w is None:
        return resp.error("ERR need numeric width")
    h = parse_double(height)
    if h is None:
        return resp.error("ERR need numeric height")
    if h < 0 or w < 0:
        return ERR_NEGATIVE_BOX
    conversion = _unit(unit)
    return ERR_UNIT if conversion is None else (w, h, conversion)


# --- GEOADD ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GeoAdd:
    key: bytes
    options: tuple[bytes, ...]  # NX / XX / CH words as given, for ZADD
    nx: bool
    xx: bool
    ch: bool
    items: tuple[tuple[int, bytes], ...]  # (score, member), in argument order

    def zadd_args(self) -> list[bytes]:
        """The ZADD Redis runs for this GEOADD (its reply is GEOADD's)."""
        args = [b"zadd", self.key, *self.options]
        for score, member in self.items:
            args += [b"%d" % score, member]
        return args


def parse_geoadd(args: list[bytes]) -> GeoAdd | bytes:
    """GEOADD key [NX|XX] [CH] lon lat member [...]: the request, or Redis' error."""
    if not _arity_ok("geoadd", len(args)):
        return err_arity("geoadd")
    nx = xx = ch = False
    first = 2
    while first < len(args):
        word = _word(args[first])
        if word == b"nx":
            nx = True
        elif word == b"xx":
            xx = True
        elif word == b"ch":
            ch = True
        else:
            break
        first += 1
    if (len(args) - first) % 3 or (nx and xx) or first == len(args):
        return ERR_SYNTAX
    items = []
    for i in range(first, len(args), 3):
        xy = _lonlat(args[i], args[i + 1])
        if isinstance(xy, bytes):
            return xy
        items.append((encode(*xy), args[i + 2]))
    return GeoAdd(args[1], tuple(args[2:first]), nx, xx, ch, tuple(items))


# --- GEOPOS, GEOHASH, GEODIST ----------------------------------------------------------


def geopos_reply(scores: list[float | None], proto: int) -> bytes:
    """GEOPOS: each member's cell centre, or a null for a missing one."""
    out = []
    for score in scores:
        if score is None:
            out.append(resp.NIL3 if proto >= 3 else resp.NIL_ARRAY2)
        else:
            lon, lat = decode(score)
            out.append(b"*2\r\n" + _coord(lon, proto) + _coord(lat, proto))
    return resp.array(out)


def geohash_reply(scores: list[float | None], proto: int) -> bytes:
    """GEOHASH: each member's 11-character geohash, or a null for a missing one."""
    return resp.array([resp.nil(proto) if s is None else resp.bulk(hash_string(s))
                       for s in scores])


@dataclass(frozen=True)
class GeoDist:
    key: bytes
    member1: bytes
    member2: bytes
    conversion: float  # meters per unit


def parse_geodist(args: list[bytes]) -> GeoDist | bytes:
    """GEODIST key member1 member2 [M|KM|FT|MI]."""
    if not _arity_ok("geodist", len(args)):
        return err_arity("geodist")
    conversion = 1.0
    if len(args) == 5:
        unit = _unit(args[4])
        if unit is None:
            return ERR_UNIT
        conversion = unit
    elif len(args) > 5:
        return ERR_SYNTAX
    return GeoDist(args[1], args[2], args[3], conversion)


def geodist_reply(score1: float | None, score2: float | None, conversion: float,
                  proto: int) -> bytes:
    """GEODIST: the distance with 4 decimals, or a null if either member is missing."""
    if score1 is None or score2 is None:
        return resp.nil(proto)
    lon1, lat1 = decode(score1)
    lon2, lat2 = decode(score2)
    return resp.bulk(distance_text(distance(lon1, lat1, lon2, lat2) / conversion))


# --- search requests -------------------------------------------------------------------

_COORDS, _MEMBER, _NOSTORE, _SEARCH, _SEARCHSTORE = 1, 2, 4, 8, 16
_VARIANTS = {
    "georadius": _COORDS,
    "georadius_ro": _COORDS | _NOSTORE,
    "georadiusbymember": _MEMBER,
    "georadiusbymember_ro": _MEMBER | _NOSTORE,
    "geosearch": _SEARCH,
    "geosearchstore": _SEARCH | _SEARCHSTORE,
}


@dataclass(frozen=True)
class Search:
    """A parsed GEOSEARCH / GEOSEARCHSTORE / GEORADIUS* request."""

    command: str  # lower-case name
    key: bytes  # the source sorted set
    shape: Shape | None  # None: the source key does not exist
    store: bytes | None = None  # destination of STORE / STOREDIST / GEOSEARCHSTORE
    storedist: bool = False
    count: int = 0  # 0: all
    any: bool = False
    order: int = UNSORTED
    withdist: bool = False
    withhash: bool = False
    withcoord: bool = False


@dataclass
class _Options:
    """georadiusGeneric's locals while it parses."""

    lon: float = 0.0
    lat: float = 0.0
    conversion: float = 0.0
    radius: float = 0.0
    width: float = 0.0
    height: float = 0.0
    box: bool = False
    store: bytes | None = None
    storedist: bool = False
    withdist: bool = False
    withhash: bool = False
    withcoord: bool = False
    frommember: bool = False
    fromloc: bool = False
    byradius: bool = False
    bybox: bool = False
    order: int = UNSORTED
    any: bool = False
    count: int = 0


def parse_search(args: list[bytes], exists: bool, score_of: ScoreOf) -> Search | bytes:
    """Parse any search command as georadiusGeneric does, errors in its order.

    `exists`: whether the source key exists (its type already checked); `score_of`: the
    source's member scores, asked only for members the arguments name."""
    name = args[0].decode("latin-1").lower()
    flags = _VARIANTS[name]
    if not _arity_ok(name, len(args)):
        return err_arity(name)
    o = _Options()
    if flags & _COORDS:
        base = 6
        xy = _lonlat(args[2], args[3])
        if isinstance(xy, bytes):
            return xy
        o.lon, o.lat = xy
        r = _radius(args[4], args[5])
        if isinstance(r, bytes):
            return r
        o.radius, o.conversion = r
    elif flags & _MEMBER:
        base = 5
        if exists:
            score = score_of(args[2])
            if score is None:
                return ERR_MEMBER
            o.lon, o.lat = decode(score)
            r = _radius(args[3], args[4])
            if isinstance(r, bytes):
                return r
            o.radius, o.conversion = r
    else:
        base = 2
        if flags & _SEARCHSTORE:
            base = 3
            o.store = args[1]
    err = _parse_options(args, base, flags, exists, score_of, o)
    if err is not None:
        return err
    if o.store is not None and (o.withdist or o.withhash or o.withcoord):
        what = "GEOSEARCHSTORE" if flags & _SEARCHSTORE else "STORE option in GEORADIUS"
        return resp.error(f"ERR {what} is not compatible with WITHDIST, WITHHASH and "
                          "WITHCOORD options")
    typed = args[0].split(b"\0", 1)[0].decode("utf-8", "replace")
    if flags & _SEARCH and not (o.frommember or o.fromloc):
        return resp.error(
            f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {typed}")
    if flags & _SEARCH and not (o.byradius or o.bybox):
        return resp.error(
            f"ERR exactly one of BYRADIUS and BYBOX can be specified for {typed}")
    if o.any and not o.count:
        return ERR_ANY
    shape = Shape(o.lon, o.lat, o.conversion, o.radius, o.width, o.height, o.box)
    key = args[2] if flags & _SEARCHSTORE else args[1]
    return Search(name, key, shape if exists else None, o.store, o.storedist, o.count,
                  o.any, o.order, o.withdist, o.withhash, o.withcoord)


def _parse_options(args: list[bytes], base: int, flags: int, exists: bool,
                   score_of: ScoreOf, o: _Options) -> bytes | None:
    """The option loop of georadiusGeneric; fills `o`, or returns the error reply."""
    remaining = len(args) - base
    i = 0
    while i < remaining:
        arg = _word(args[base + i])
        search = bool(flags & _SEARCH)
        can_store = not flags & (_NOSTORE | _SEARCH)
        if arg == b"withdist":
            o.withdist = True
        elif arg == b"withhash":
            o.withhash = True
        elif arg == b"withcoord":
            o.withcoord = True
        elif arg == b"any":
            o.any = True
        elif arg == b"asc":
            o.order = ASC
        elif arg == b"desc":
            o.order = DESC
        elif arg == b"count" and i + 1 < remaining:
            n = parse_int(args[base + i + 1])
            if n is None:
                return ERR_NOT_INT
            if n <= 0:
                return ERR_COUNT
            o.count = n
            i += 1
        elif arg in (b"store", b"storedist") and i + 1 < remaining and can_store:
            o.store = args[base + i + 1]
            o.storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & _SEARCHSTORE:
            o.storedist = True
        elif arg == b"frommember" and i + 1 < remaining and search and not o.fromloc:
            if exists:
                score = score_of(args[base + i + 1])
                if score is None:
                    return ERR_MEMBER
                o.lon, o.lat = decode(score)
            o.frommember = True
            i += 1
        elif arg == b"fromlonlat" and i + 2 < remaining and search and not o.frommember:
            xy = _lonlat(args[base + i + 1], args[base + i + 2])
            if isinstance(xy, bytes):
                return xy
            o.lon, o.lat = xy
            o.fromloc = True
            i += 2
        elif arg == b"byradius" and i + 2 < remaining and search and not o.bybox:
            r = _radius(args[base + i + 1], args[base + i + 2])
            if isinstance(r, bytes):
                return r
            o.radius, o.conversion = r
            o.box = False
            o.byradius = True
            i += 2
        elif arg == b"bybox" and i + 3 < remaining and search and not o.byradius:
            b = _box(args[base + i + 1], args[base + i + 2], args[base + i + 3])
            if isinstance(b, bytes):
                return b
            o.width, o.height, o.conversion = b
            o.box = True
            o.bybox = True
            i += 3
        else:
            return ERR_SYNTAX
        i += 1
    return None


def members_to_read(args: list[bytes]) -> list[bytes]:
    """The members whose scores `parse_search` may ask for (a superset: every lookup the
    arguments could reach), so a caller can fetch them before parsing."""
    asked: list[bytes] = []

    def record(member: bytes) -> float:
        asked.append(member)
        return 0.0

    parse_search(args, True, record)
    return asked


def run(request: Search, read: Reader) -> Sequence[Match]:
    """The matches of a parsed request (none when the source key does not exist)."""
    if request.shape is None:
        return []
    return search(request.shape, read, request.count, request.any, request.order)


NESTED_ROWS_PER_TURN = 2048
"""Matches of a WITHDIST / WITHHASH / WITHCOORD reply encoded a loop turn (about 5 us
each: all 16,000 of a whole-world search took 80-120 ms in one turn)."""


def search_reply(request: Search, matches: Sequence[Match], proto: int
                 ) -> bytes | bulks.SlicedReply:
    """The reply of a search without STORE: members, or per member an array of the
    member, then WITHDIST, WITHHASH, WITHCOORD as asked (in that order). A long one is
    encoded over loop turns (bulks.SlicedReply)."""
    nested = request.withdist + request.withhash + request.withcoord
    n = len(matches)
    head = b"*%d" % n
    if not nested:
        members = members_of(matches)
        return bulks.reply(head, n, lambda lo, hi: [bulks.heads(members[lo:hi]),
                                                    members[lo:hi]])
    row_head = b"*%d" % (nested + 1)
    withdist, withhash, withcoord = request.withdist, request.withhash, request.withcoord
    conversion = _conversion(request)

    def row(m: Match) -> bytes:
        parts = [row_head, b"$%d" % len(m.member), m.member]
        if withdist:
            dist = distance_text(m.dist / conversion)
            parts += (b"$%d" % len(dist), dist)
        if withhash:
            parts.append(b":%d" % to_int64(m.score))
        if withcoord:
            parts += (b"*2", _coord_line(m.lon, proto), _coord_line(m.lat, proto))
        return bulks.CRLF.join(parts)

    return bulks.reply(head, n, lambda lo, hi: [[row(m) for m in matches[lo:hi]]],
                       per_turn=NESTED_ROWS_PER_TURN)


def store_entries(request: Search, matches: Sequence[Match]) -> Sequence[tuple[bytes, float]]:
    """The (member, score) pairs a STORE variant writes to `request.store`: the geo
    score, or the distance with STOREDIST. Empty: Redis deletes the destination. The
    reply is their count. From the C scan, made a slice at a time as the store's steps
    take them (`FlatEntries`)."""
    at = 3 if request.storedist else 0  # (of score, lon, lat, dist)
    conversion = _conversion(request) if request.storedist else None
    if isinstance(matches, Flat):
        return FlatEntries(matches, at, conversion)
    values = [m.dist if at else m.score for m in matches]
    if conversion is not None:
        values = [d / conversion for d in values]
    return list(zip(members_of(matches), values, strict=True))


class FlatEntries(Snapshot):
    """A C search's matches as the (member, score) pairs a STORE variant writes, each
    slice's pairs made when taken (a slice a store step, slicedwrite.py): made at once,
    100,000 of them held the search's turn 20-50 ms more (STOREDIST: the most). Listed
    whole when the search ran for another node's plan (collection.Snapshot)."""

    __slots__ = ("flat", "at", "conversion")

    def __init__(self, flat: Flat, at: int, conversion: float | None) -> None:
        self.flat = flat
        self.at = at  # (the score's or the distance's place in a match's quad)
        self.conversion = conversion  # (STOREDIST: meters per unit of the request)

    def __len__(self) -> int:
        return len(self.flat)

    def __getitem__(self, i: Any) -> Any:
        flat = self.flat
        positions = flat.positions()
        members, quads, at, conversion = flat.members, flat.quads, self.at, self.conversion
        if not isinstance(i, slice):
            j = positions[i]
            value = quads[4 * j + at]
            return members[j], value if conversion is None else value / conversion
        if conversion is None:
            return [(members[j], quads[4 * j + at]) for j in positions[i]]
        return [(members[j], quads[4 * j + at] / conversion) for j in positions[i]]

    def listed(self) -> list[Any]:
        return self[0:len(self)]  # type: ignore[no-any-return]


def _conversion(request: Search) -> float:
    """Meters per unit of the request (matches carry their distances in meters)."""
    return request.shape.conversion if request.shape is not None else 1.0
