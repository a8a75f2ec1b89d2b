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
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, overload

from . import csort
from .geohash import Shape, decode, score_ranges
from .geohash import within as within_shape

# The scan of a score range in C (dynredis/csrc/geoscan.c), built with the compiled
# modules; else the loop in `find`. `_scan_flat`: the same, without objects per match;
# `_scan_lists`: scan_flat over a SortedList's sublists in place (a reader's `segments`).
_scan: Callable[..., None] | None
_scan_flat: Callable[..., bytes] | None
_scan_lists: Callable[..., bytes] | None
try:
    from .._geoscan import scan as _scan
    from .._geoscan import scan_flat as _scan_flat
    from .._geoscan import scan_lists as _scan_lists
except ImportError:
    _scan = _scan_flat = _scan_lists = None

# Redis' two sorts of distances in C (dynredis/csrc/distsort.c), step for step as csort.py.
_dist_qsort: Callable[[array, bool], bytes] | None
_dist_pqsort: Callable[[array, bool, int, int], bytes] | None
try:
    from .._distsort import pqsort as _dist_pqsort
    from .._distsort import qsort as _dist_qsort
except ImportError:
    _dist_qsort = _dist_pqsort = None

Reader = Callable[[float, float], Iterable[tuple[float, bytes]]]
"""`read(min, max)`: the (score, member) pairs with min <= score < max, in sorted-set
order (score, then member bytes). It may be lazy: a search with ANY stops early."""

UNSORTED, ASC, DESC = 0, 1, 2


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


class Flat(Sequence[Match]):
    """The matches of a search by the C scan, in reply order, without an object per
    match: the members, their (score, lon, lat, dist) quads in scan order, and the
    positions of the kept ones in order (None: scan order). A Match is made only for a
    match a reply shows with its details (a reply slice at a time); members and scores
    come out as lists (100,000 Match objects cost a whole-world search ~30 ms)."""

    __slots__ = ("members", "quads", "order", "size")

    def __init__(self, members: list[bytes], quads: array, order: memoryview | None,
                 size: int) -> None:
        self.members = members
        self.quads = quads
        self.order = order
        self.size = size

    def __len__(self) -> int:
        return self.size

    def positions(self) -> Sequence[int]:
        """The kept matches' places in scan order (in `members`, and a quad each in
        `quads`), in reply order."""
        return self.order if self.order is not None else range(self.size)

    @overload
    def __getitem__(self, i: int) -> Match: ...

    @overload
    def __getitem__(self, i: slice) -> list[Match]: ...

    def __getitem__(self, i: int | slice) -> Match | list[Match]:
        at = self.positions()
        if isinstance(i, slice):
            return [self._match(j) for j in at[i]]
        return self._match(at[i])

    def _match(self, j: int) -> Match:
        return Match(self.members[j], *self.quads[4 * j:4 * j + 4])

    def member_list(self) -> list[bytes]:
        if self.order is None:
            return self.members[:self.size]
        return list(map(self.members.__getitem__, self.order))

    def column(self, k: int) -> list[float]:
        """The k-th of each kept match's (score, lon, lat, dist), in order."""
        values = self.quads[k::4]
        if self.order is None:
            return values[:self.size].tolist()
        return list(map(values.__getitem__, self.order))


def members_of(matches: Sequence[Match]) -> list[bytes]:
    """The members of a search's matches, in order."""
    if isinstance(matches, Flat):
        return matches.member_list()
    return [m.member for m in matches]


def _flat(shape: Shape, read: Reader, count: int, order: int) -> Flat:
    """`search` without ANY, by C: the scan without an object per match, then the sort
    (`_c_order`) where one is asked."""
    assert _scan_flat is not None
    c_shape = _c_shape(shape)
    members: list[bytes] = []
    segments = getattr(read, "segments", None)
    if segments is not None and _scan_lists is not None:
        parts = [_scan_lists(segments(float(lo), float(hi)), *c_shape, members)
                 for lo, hi in score_ranges(shape)]
    else:
        parts = [_scan_flat(read(float(lo), float(hi)), *c_shape, members)
                 for lo, hi in score_ranges(shape)]
    quads = array("d", b"".join(parts))
    n = len(members)
    keep = n if count == 0 or n < count else count
    if order == UNSORTED:
        return Flat(members, quads, None, keep)
    return Flat(members, quads, _c_order(quads[3::4], order, keep)[:keep], keep)


def _c_order(dists: array, order: int, keep: int) -> memoryview:
    """The positions of `dists` in the order Redis' sort leaves them, by C: glibc's
    qsort when every match is kept, Redis' partial sort of the first `keep` otherwise
    (equal distances and NaNs come out where those algorithms put them)."""
    assert _dist_qsort is not None and _dist_pqsort is not None
    desc = order == DESC
    if keep == len(dists):
        return memoryview(_dist_qsort(dists, desc)).cast("I")
    return memoryview(_dist_pqsort(dists, desc, 0, keep - 1)).cast("I")


def _cmp_asc(a: Match, b: Match) -> int:
    return 1 if a.dist > b.dist else 0 if a.dist == b.dist else -1


def _cmp_desc(a: Match, b: Match) -> int:
    return -_cmp_asc(a, b)


def _order(found: list[Match], order: int, keep: int) -> list[Match]:
    """The first `keep` matches as Redis sorts them: qsort when it keeps all (glibc's is
    stable), its partial pqsort otherwise, whose order of equal distances only the
    algorithm decides. In C where built (`_c_order`: the steps of csort.py's in Python
    took 230-260 ms of 100,000 matches at one distance); else a stable sort where
    nothing can tie, csort.py's steps where something can."""
    if _dist_qsort is not None:
        return list(map(found.__getitem__,
                        _c_order(array("d", [m.dist for m in found]), order, keep)[:keep]))
    cmp = _cmp_asc if order == ASC else _cmp_desc
    dists = [m.dist for m in found]
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
           order: int = UNSORTED) -> Sequence[Match]:
    """The matches a search replies with, in order, distances in meters (a reply or a
    STORE converts those it shows to the shape's unit, as Redis does: a second object
    per match here, made whether or not the distances are shown, cost 100,000 matches
    50-150 ms). COUNT without ANY sorts ASC unless an order is given, as Redis does."""
    if count and order == UNSORTED and not any_:
        order = ASC
    if not any_ and _scan_flat is not None and _dist_qsort is not None:
        return _flat(shape, read, count, order)
    found = find(shape, read, count if any_ else 0)
    keep = len(found) if count == 0 or len(found) < count else count
    if order != UNSORTED and found:
        found = _order(found, order, keep)
    return found[:keep] if keep < len(found) else found
