"""A radius or box search over a sorted set of geohash scores, read through a callback.

Redis answers GEOSEARCH by reading at most nine score ranges (geohash.score_ranges),
keeping the members inside the shape, then sorting them by distance with C's sorts
(csort.py: equal distances stay in Redis' order) and cutting at COUNT. The sorted set is
read only through `read(min, max)`, so any backend can serve it: a dict in tests, the
replicated sorted sets of a node.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable, Iterable
from typing import NamedTuple

from . import csort
from .geohash import Shape, decode, score_ranges
from .geohash import within as within_shape

# The scan of a score range in C (dynredis/csrc/geoscan.c), built with the compiled
# modules; else the loop in `find`. `_scan_flat`: the same, without objects per match.
_scan: Callable[..., None] | None
_scan_flat: Callable[..., bytes] | None
try:
    from .._geoscan import scan as _scan
    from .._geoscan import scan_flat as _scan_flat
except ImportError:
    _scan = _scan_flat = None

# The stable order of positions by weight in C (dynredis/csrc/weightorder.c).
_weight_order: Callable[[list[float], bool], tuple[bytes, bool]] | None
try:
    from .._weightorder import order as _weight_order
except ImportError:
    _weight_order = None

Reader = Callable[[float, float], Iterable[tuple[float, bytes]]]
"""`read(min, max)`: the (score, member) pairs with min <= score < max, in sorted-set
order (score, then member bytes). It may be lazy: a search with ANY stops early."""

UNSORTED, ASC, DESC = 0, 1, 2
# COUNTs up to this take `_nearest` (objects for the kept matches only, each made in
# Python: ~3 us); a larger one the C scan's objects for every match (~1 us each).
NEAREST_MOST = 1024


class Match(NamedTuple):
    """A member inside the search area: its score, cell centre and distance from the
    search centre (meters while searching; in the request's unit once returned)."""

    member: bytes
    score: float
    lon: float
    lat: float
    dist: float


def find(shape: Shape, read: Reader, limit: int = 0) -> list[Match]:
    """Every member inside `shape`, in scan order (membersOfAllNeighbors); with `limit`
    (ANY), stop as soon as that many were found."""
    found: list[Match] = []
    c_shape = _c_shape(shape)
    for lo, hi in score_ranges(shape):
        if limit and len(found) >= limit:
            break
        pairs = read(float(lo), float(hi))
        if _scan is None:
            scan_python(pairs, shape, limit, found)
        else:
            _scan(pairs, *c_shape, limit, found, Match)
    return found


def _c_shape(shape: Shape) -> tuple[bool, float, float, float, float, float]:
    """The shape as the C scans take it: box, centre, radius and half sizes in meters
    (computed as geohash.within computes them, so the same doubles)."""
    c = shape.conversion
    return (shape.box, shape.lon, shape.lat, shape.radius * c, shape.width * c / 2,
            shape.height * c / 2)


def scan_python(pairs: Iterable[tuple[float, bytes]], shape: Shape, limit: int,
                found: list[Match]) -> None:
    """What the C scan does (csrc/geoscan.c): each of `pairs` inside the shape appended
    to `found`, until it holds `limit` (0: all)."""
    if limit and len(found) >= limit:
        return
    for score, member in pairs:
        lon, lat = decode(score)
        d = within_shape(shape, lon, lat)
        if d is not None:
            found.append(Match(member, score, lon, lat, d))
            if limit and len(found) >= limit:
                break


def _nearest(shape: Shape, read: Reader, count: int, order: int) -> list[Match]:
    """`search` with COUNT (without ANY), by C: every match's distance found without an
    object per match, and objects made for the `count` kept only, in the C stable
    sort's order; where a distance is NaN or two are equal (Redis' partial sort then
    decides their order) every match is made and ordered as `_order` does."""
    assert _scan_flat is not None and _weight_order is not None
    c_shape = _c_shape(shape)
    members: list[bytes] = []
    quads = array("d", b"".join([_scan_flat(read(float(lo), float(hi)), *c_shape, members)
                                 for lo, hi in score_ranges(shape)]))
    n = len(members)
    keep = min(count, n)

    def match(i: int) -> Match:
        return Match(members[i], *quads[4 * i:4 * i + 4])

    try:
        positions, ties = _weight_order(quads[3::4].tolist(), order == DESC)
    except TypeError:  # a NaN distance
        return _order(list(map(match, range(n))), order, keep)
    if ties and keep < n:
        return _order(list(map(match, range(n))), order, keep)
    return list(map(match, memoryview(positions).cast("I")[:keep]))


def _cmp_asc(a: Match, b: Match) -> int:
    return 1 if a.dist > b.dist else 0 if a.dist == b.dist else -1


def _cmp_desc(a: Match, b: Match) -> int:
    return -_cmp_asc(a, b)


def _order(found: list[Match], order: int, keep: int) -> list[Match]:
    """The first `keep` matches as Redis sorts them: qsort when it keeps all (glibc's is
    stable), its partial pqsort otherwise, whose order of equal distances only the
    algorithm decides. A stable sort gives the same answer where nothing can tie: the
    C one of SORT BY (csrc/weightorder.c) where it is built and no distance is NaN
    (Python's took 40-60 ms of 100,000 matches), else Python's."""
    cmp = _cmp_asc if order == ASC else _cmp_desc
    dists = [m.dist for m in found]
    if _weight_order is not None:
        try:
            positions, ties = _weight_order(dists, order == DESC)
        except TypeError:
            pass  # a NaN distance (asin just past 1): Redis' comparisons below
        else:
            if keep == len(found) or not ties:
                return list(map(found.__getitem__, memoryview(positions).cast("I")[:keep]))
            items = list(found)
            csort.pqsort(items, cmp, 0, keep - 1)
            return items[:keep]
    has_nan = any(d != d for d in dists)
    if keep == len(found):
        if has_nan:
            return csort.qsort(found, cmp)
        return sorted(found, key=lambda m: m.dist, reverse=order == DESC)
    if not has_nan and len(set(dists)) == len(dists):
        pick = heapq.nsmallest if order == ASC else heapq.nlargest
        return pick(keep, found, key=lambda m: m.dist)
    items = list(found)
    csort.pqsort(items, cmp, 0, keep - 1)
    return items[:keep]


def search(shape: Shape, read: Reader, count: int = 0, any_: bool = False,
           order: int = UNSORTED) -> list[Match]:
    """The matches a search replies with, in order, distances in meters (a reply or a
    STORE converts those it shows to the shape's unit, as Redis does: a second object
    per match here, made whether or not the distances are shown, cost 100,000 matches
    50-150 ms). COUNT without ANY sorts ASC unless an order is given, as Redis does."""
    if count and order == UNSORTED and not any_:
        order = ASC
    if 0 < count <= NEAREST_MOST and not any_ and _scan_flat is not None and \
            _weight_order is not None:
        return _nearest(shape, read, count, order)
    found = find(shape, read, count if any_ else 0)
    keep = len(found) if count == 0 or len(found) < count else count
    if order != UNSORTED and found:
        found = _order(found, order, keep)
    return found[:keep] if keep < len(found) else found
