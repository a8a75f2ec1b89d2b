"""The C scan of a GEO search (csrc/geoscan.c) keeps what the Python scan keeps, bit for
bit: members, scores, decoded positions and distances (NaN's sign included), for any
score a sorted set can hold and any shape a request can ask for, and stops at a limit
where Python stops. The Python scan is the one test_geo.py and the differential test
against redis-server check in a pure run."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands import geo, geosearch
from dynredis.commands import geohash as gh


def _c_scan():  # type: ignore[no-untyped-def]
    try:
        from dynredis import _geoscan
    except ImportError:
        return None
    return _geoscan.scan


VALID = st.integers(0, (1 << 52) - 1).map(float)
ODD = st.one_of(st.floats(), st.sampled_from([-0.0, 2.0**52, 2.0**63, 2.0**64, -1.0,
                                               float("inf"), float("-inf"), float("nan")]))
SIZES = st.one_of(st.floats(0, 3e7), st.sampled_from([0.0, float("inf"), 1e300]))


@st.composite
def shapes(draw: st.DrawFn) -> gh.Shape:
    lon = draw(st.floats(gh.LON_MIN, gh.LON_MAX))
    lat = draw(st.floats(gh.LAT_MIN, gh.LAT_MAX))
    unit = draw(st.sampled_from(sorted(geo.UNITS.values())))
    if draw(st.booleans()):
        return gh.Shape(lon, lat, unit, radius=draw(SIZES))
    return gh.Shape(lon, lat, unit, width=draw(SIZES), height=draw(SIZES), box=True)


def _bits(m: geosearch.Match) -> tuple:
    return (m.member, *(struct.pack("<d", x) for x in (m.score, m.lon, m.lat, m.dist)))


@settings(max_examples=400, deadline=None)
@given(shapes(), st.lists(st.one_of(VALID, ODD), max_size=60), st.integers(0, 8))
def test_the_c_scan_keeps_what_python_keeps(shape: gh.Shape, scores: list[float],
                                            limit: int) -> None:
    scan = _c_scan()
    if scan is None:
        pytest.skip("the C helper is not built (pure Python run)")
    pairs = sorted((s, b"m%d" % i) for i, s in enumerate(scores) if s == s) + \
        [(s, b"nan%d" % i) for i, s in enumerate(scores) if s != s]
    want: list[geosearch.Match] = []
    geosearch.scan_python(iter(pairs), shape, limit, want)
    got: list[geosearch.Match] = []
    c = shape.conversion
    scan(iter(pairs), shape.box, shape.lon, shape.lat, shape.radius * c, shape.width * c / 2,
         shape.height * c / 2, limit, got, geosearch.Match)
    assert [_bits(m) for m in got] == [_bits(m) for m in want]
    assert all(type(m) is geosearch.Match for m in got)


def test_the_c_scan_of_the_whole_world_keeps_every_member_with_its_distance() -> None:
    scan = _c_scan()
    if scan is None:
        pytest.skip("the C helper is not built (pure Python run)")
    pairs = [(float(gh.encode(lon, lat)), b"%d,%d" % (lon, lat))
             for lon in range(-180, 180, 7) for lat in range(-85, 86, 5)]
    pairs.sort()
    shape = gh.Shape(0.0, 0.0, 1000.0, radius=40000.0)
    got: list[geosearch.Match] = []
    scan(pairs, False, 0.0, 0.0, 4e7, 0.0, 0.0, 0, got, geosearch.Match)
    assert [m.member for m in got] == [m for _, m in pairs]
    for m in got:
        assert m.dist == gh.within(shape, *gh.decode(m.score))
    some: list[geosearch.Match] = []
    scan(pairs, False, 0.0, 0.0, 4e7, 0.0, 0.0, 5, some, geosearch.Match)
    assert some == got[:5]


def test_the_c_scan_refuses_what_it_cannot_read() -> None:
    scan = _c_scan()
    if scan is None:
        pytest.skip("the C helper is not built (pure Python run)")
    out: list[geosearch.Match] = []
    with pytest.raises(TypeError):
        scan([(1.0, b"m", b"extra")], False, 0.0, 0.0, 1.0, 0.0, 0.0, 0, out, geosearch.Match)
    with pytest.raises(TypeError):
        scan([("x", b"m")], False, 0.0, 0.0, 1.0, 0.0, 0.0, 0, out, geosearch.Match)
    with pytest.raises(TypeError):
        scan([], False, 0.0, 0.0, 1.0, 0.0, 0.0, 0, out, dict)
    assert out == []


@settings(max_examples=300, deadline=None)
@given(shapes(), st.lists(st.one_of(VALID, ODD), max_size=60))
def test_the_flat_c_scan_finds_what_python_finds(shape: gh.Shape, scores: list[float]) -> None:
    """scan_flat (a search with COUNT: no object per match) gives the members and the
    (score, lon, lat, dist) doubles the Python scan's matches hold, bit for bit."""
    try:
        from dynredis._geoscan import scan_flat
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    pairs = sorted((s, b"m%d" % i) for i, s in enumerate(scores) if s == s) + \
        [(s, b"nan%d" % i) for i, s in enumerate(scores) if s != s]
    want: list[geosearch.Match] = []
    geosearch.scan_python(iter(pairs), shape, 0, want)
    members: list[bytes] = []
    c = shape.conversion
    quads = scan_flat(iter(pairs), shape.box, shape.lon, shape.lat, shape.radius * c,
                      shape.width * c / 2, shape.height * c / 2, members)
    got = [geosearch.Match(m, *struct.unpack_from("=4d", quads, 32 * i))
           for i, m in enumerate(members)]
    assert len(quads) == 32 * len(members)
    assert [_bits(m) for m in got] == [_bits(m) for m in want]


@settings(max_examples=300, deadline=None)
@given(shapes(), st.lists(st.one_of(VALID, st.sampled_from([2.0**40, 2.0**40 + 1])),
                          max_size=60),
       st.sampled_from([0, 1, 3, 100]), st.sampled_from([geosearch.UNSORTED, geosearch.ASC,
                                                          geosearch.DESC]))
def test_a_search_by_the_flat_scan_replies_what_python_replies(
        shape: gh.Shape, scores: list[float], count: int, order: int) -> None:
    """A search without ANY (geosearch.Flat: no object per match, made when a reply row
    asks) keeps the matches, their order and their columns that the Python search keeps
    (its scan, then csort.py's steps): what GEOSEARCH replies and GEOSEARCHSTORE stores."""
    if geosearch._scan_flat is None or geosearch._dist_qsort is None:
        pytest.skip("the C helpers are not built (pure Python run)")
    pairs = sorted((s, b"m%d" % i) for i, s in enumerate(scores))

    def read(lo: float, hi: float) -> list[tuple[float, bytes]]:
        return [p for p in pairs if lo <= p[0] < hi]

    got = geosearch.search(shape, read, count, False, order)
    assert isinstance(got, geosearch.Flat)
    scan, qsort = geosearch._scan_flat, geosearch._dist_qsort
    try:
        geosearch._scan_flat = geosearch._dist_qsort = None
        geosearch._scan = None
        want = geosearch.search(shape, read, count, False, order)
    finally:
        geosearch._scan_flat, geosearch._dist_qsort = scan, qsort
        geosearch._scan = _c_scan()
    assert [_bits(m) for m in got] == [_bits(m) for m in want]
    assert [_bits(m) for m in got[1:3]] == [_bits(m) for m in want[1:3]]
    assert geosearch.members_of(got) == [m.member for m in want]
    assert got.column(0) == [m.score for m in want]
    assert _bits_of(got.column(3)) == _bits_of([m.dist for m in want])
    # What GEOSEARCHSTORE writes (with STOREDIST: the distances in the request's unit),
    # made a slice at a time from the flat scan (geo.FlatEntries), listed whole when the
    # search ran for another node: the pairs the Python search gives.
    for storedist in (False, True):
        req = SimpleNamespace(storedist=storedist, shape=shape)
        lazy = geo.store_entries(req, got)  # type: ignore[arg-type]
        pairs_want = geo.store_entries(req, want)  # type: ignore[arg-type]
        assert isinstance(lazy, geo.FlatEntries) and isinstance(pairs_want, list)
        assert len(lazy) == len(pairs_want)
        for taken in (list(lazy), lazy[:], lazy.listed(),
                      [*lazy[:2], *lazy[2:5], *lazy[5:]]):
            assert [(m, *_bits_of([v])) for m, v in taken] == [
                (m, *_bits_of([v])) for m, v in pairs_want]


def _bits_of(values: list[float]) -> list[bytes]:
    return [struct.pack("=d", v) for v in values]


@settings(max_examples=300, deadline=None)
@given(shapes(), st.lists(st.one_of(VALID, ODD), max_size=80), st.integers(1, 9),
       st.data())
def test_the_scan_of_sublists_in_place_finds_what_the_flat_scan_finds(
        shape: gh.Shape, scores: list[float], load: int, data: st.DataObject) -> None:
    """scan_lists reads a SortedList's own sublists between the bounds a reader's
    `segments` gives (no iterator, pairs fetched ahead) and keeps what scan_flat keeps
    of the same pairs, bit for bit, for any positions asked."""
    try:
        from dynredis._geoscan import scan_flat, scan_lists
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    from dynredis.core.quietlist import QuietSortedList, sublists

    zl = QuietSortedList((s, b"m%d" % i) for i, s in enumerate(scores) if s == s)
    zl._reset(load)  # sublists of `load` pairs: many segments even for a few pairs
    first = data.draw(st.integers(0, len(zl)))
    last = data.draw(st.integers(first, len(zl)))
    c = shape.conversion
    args = (shape.box, shape.lon, shape.lat, shape.radius * c, shape.width * c / 2,
            shape.height * c / 2)
    want_members: list[bytes] = []
    want = scan_flat(iter(zl.islice(first, last)), *args, want_members)
    got_members: list[bytes] = []
    got = scan_lists(sublists(zl, first, last), *args, got_members)
    assert (got, got_members) == (want, want_members)


def test_a_search_near_a_pole_reads_the_sorted_set_in_place() -> None:
    """A GEOSEARCH with COUNT (no ANY) over a sorted set's order goes through the reader's
    segments (scan_lists), and replies what the iterator's scan replies: near a pole
    a 500 km search reads most of a 100,000-member key."""
    try:
        from dynredis import _geoscan
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    from dynredis.commands.geocmds import SortedReader
    from dynredis.core.quietlist import QuietSortedList

    zl = QuietSortedList((float(gh.encode(lon / 10, lat / 10)), b"%d,%d" % (lon, lat))
                         for lon in range(-1800, 1800, 37) for lat in range(-850, -700, 3))
    read = SortedReader(zl)
    shape = gh.Shape(-177.05, -84.9, 1000.0, radius=500.0)
    calls: list[int] = []
    real = _geoscan.scan_lists

    def spy(segments, *rest):  # type: ignore[no-untyped-def]
        calls.append(len(segments))
        return real(segments, *rest)

    try:
        geosearch._scan_lists = spy
        by_lists = geosearch.search(shape, read, count=5)
    finally:
        geosearch._scan_lists = real
    by_iterator = geosearch.search(shape, lambda lo, hi: iter(read(lo, hi)), count=5)
    assert calls and sum(calls) > 1
    assert geosearch.members_of(by_lists) == geosearch.members_of(by_iterator)
    assert len(by_lists) == 5


def test_the_scan_of_sublists_survives_a_score_that_empties_its_list() -> None:
    """A score that is not a float is read through its __float__, which may run any
    code: one that empties the list being read ends the scan there, no pair read after
    it is freed (the loop holds each pair while it reads it, and reads the list's size
    again at each step)."""
    try:
        from dynredis._geoscan import scan_lists
    except ImportError:
        pytest.skip("the C helper is not built (pure Python run)")
    pairs: list[tuple[object, bytes]] = []

    class Emptying:
        def __float__(self) -> float:
            pairs.clear()
            return 0.0

    pairs += [(0.0, b"a"), (Emptying(), b"b"), (0.0, b"c"), (0.0, b"d")]
    members: list[bytes] = []
    quads = scan_lists([(pairs, 0, 4)], False, 0.0, 0.0, 1e9, 0.0, 0.0, members)
    assert members == [b"a", b"b"] and len(quads) == 2 * 32
