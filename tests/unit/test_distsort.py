"""The C sorts of GEO distances (csrc/distsort.c) leave every position where the steps
of csort.py leave it: glibc's merge sort and Redis' partial quicksort, equal distances,
NaNs (less than anything, both ways) and -0.0 included. Those Python steps are what the
differential test against redis-server checks in a pure run; the C ones replaced them on
the request path (100,000 members at one distance: 230-260 ms of one handler in Python)."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dynredis.commands import csort, geosearch

try:
    from dynredis import _distsort
except ImportError:
    _distsort = None  # type: ignore[assignment]

# Few distinct values, so that most lists hold equal ones (the case the steps decide).
DISTS = st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.5, 3.0, float("inf"), float("nan"),
                                  1e-300, 7.0]) | st.floats(0, 10), max_size=300)
needs_c = pytest.mark.skipif(_distsort is None, reason="the C helper is not built (pure run)")


def _cmp(desc: bool):  # type: ignore[no-untyped-def]
    def asc(a: tuple[float, int], b: tuple[float, int]) -> int:
        return 1 if a[0] > b[0] else 0 if a[0] == b[0] else -1
    return (lambda a, b: -asc(a, b)) if desc else asc


def _positions(raw: bytes) -> list[int]:
    return list(memoryview(raw).cast("I"))


@needs_c
@settings(max_examples=400, deadline=None)
@given(DISTS, st.booleans())
@example([1.0] * 50 + [0.0] * 50, False)
@example([float("nan"), 1.0, float("nan"), 0.0] * 20, True)
def test_the_c_merge_sort_leaves_what_glibc_leaves(dists: list[float], desc: bool) -> None:
    items = [(d, i) for i, d in enumerate(dists)]
    want = [i for _, i in csort.qsort(items, _cmp(desc))]
    assert _positions(_distsort.qsort(array("d", dists), desc)) == want


@needs_c
@settings(max_examples=400, deadline=None)
@given(DISTS, st.booleans(), st.data())
@example([2.0] * 100 + [1.0] * 100, False, None)
def test_the_c_partial_sort_leaves_what_redis_pqsort_leaves(
        dists: list[float], desc: bool, data: st.DataObject | None) -> None:
    n = len(dists)
    keep = data.draw(st.integers(1, max(1, n))) if data is not None and n else max(1, n // 3)
    lo = data.draw(st.integers(0, keep - 1)) if data is not None else 0
    items = [(d, i) for i, d in enumerate(dists)]
    csort.pqsort(items, _cmp(desc), lo, keep - 1)
    got = _positions(_distsort.pqsort(array("d", dists), desc, lo, keep - 1))
    assert got == [i for _, i in items]  # every position, not only the wanted range


@needs_c
def test_the_c_sorts_refuse_what_is_not_doubles() -> None:
    with pytest.raises(TypeError):
        _distsort.qsort(array("f", [1.0]), False)
    with pytest.raises(TypeError):
        _distsort.pqsort([1.0, 2.0], False, 0, 0)  # type: ignore[arg-type]
    assert _distsort.qsort(array("d"), True) == b""


def test_a_search_keeps_redis_order_of_members_at_one_distance() -> None:
    """Many members at one place and COUNT: the order Redis' partial sort leaves them in
    (not their scan order), with or without the C helpers."""
    from dynredis.commands import geohash as gh

    score = float(gh.encode(13.361389, 38.115556))
    pairs = [(score, b"m%04d" % i) for i in range(500)] + [(score + 1, b"z")]

    def read(lo: float, hi: float) -> list[tuple[float, bytes]]:
        return [p for p in pairs if lo <= p[0] < hi]

    shape = gh.Shape(13.361389, 38.115556, 1000.0, radius=10.0)
    items = [(m.dist, m.member) for m in geosearch.find(shape, read)]
    csort.pqsort(items, _cmp(False), 0, 6)
    want = [member for _, member in items[:7]]
    got = [m.member for m in geosearch.search(shape, read, count=7)]
    assert got == want
    assert got != sorted(got)  # (the steps' order, not the members')
