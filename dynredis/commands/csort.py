"""The orders C sorts leave equal elements in, for replies that must match Redis exactly.

GEOSEARCH sorts its matches by distance with the C library's qsort, or, when COUNT keeps
fewer than all of them, with Redis' own partial quicksort (src/pqsort.c, from NetBSD).
Members at the same distance (the same position, say) come out in an order only the
algorithm decides, so both are reproduced here step for step over a Python list, with
C's three-way comparator semantics (a NaN compares as "less" both ways).

`qsort` is glibc's merge sort (what glibc up to 2.36, the one redis-server runs on here,
uses for arrays that fit in memory): stable, so with no NaN it equals Python's sort.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Cmp = Callable[[T, T], int]


def qsort(items: list[T], cmp: Cmp[T]) -> list[T]:
    """glibc's msort_with_tmp: halves of n // 2 and the rest, merged taking the left
    element unless it compares greater."""
    n = len(items)
    if n <= 1:
        return list(items)
    left = qsort(items[:n // 2], cmp)
    right = qsort(items[n // 2:], cmp)
    out: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def pqsort(items: list[T], cmp: Cmp[T], lrange: int, rrange: int) -> None:
    """Redis' pqsort: sorts `items` in place enough that positions lrange..rrange hold
    what a full sort would put there (Bentley & McIlroy's quicksort, skipping the
    partitions that lie outside the wanted range)."""
    _pqsort(items, 0, len(items), cmp, lrange, rrange)


def _med3(a: list[T], i: int, j: int, k: int, cmp: Cmp[T]) -> int:
    if cmp(a[i], a[j]) < 0:
        return j if cmp(a[j], a[k]) < 0 else (k if cmp(a[i], a[k]) < 0 else i)
    return j if cmp(a[j], a[k]) > 0 else (i if cmp(a[i], a[k]) < 0 else k)


def _swap(a: list[T], i: int, j: int) -> None:
    a[i], a[j] = a[j], a[i]


def _vecswap(a: list[T], i: int, j: int, n: int) -> None:
    for k in range(n):
        _swap(a, i + k, j + k)


def _wanted(first: int, last: int, lrange: int, rrange: int) -> bool:
    """Whether the partition first..last overlaps the wanted range (C's pointer test)."""
    return not ((lrange < first and rrange < first) or (lrange > last and rrange > last))


def _pqsort(a: list[T], base: int, n: int, cmp: Cmp[T], lrange: int, rrange: int) -> None:
    while True:
        if n < 7:
            for pm in range(base + 1, base + n):
                pl = pm
                while pl > base and cmp(a[pl - 1], a[pl]) > 0:
                    _swap(a, pl, pl - 1)
                    pl -= 1
            return
        pm = base + n // 2
        if n > 7:
            pl = base
            pn = base + n - 1
            if n > 40:
                d = n // 8
                pl = _med3(a, pl, pl + d, pl + 2 * d, cmp)
                pm = _med3(a, pm - d, pm, pm + d, cmp)
                pn = _med3(a, pn - 2 * d, pn - d, pn, cmp)
            pm = _med3(a, pl, pm, pn, cmp)
        _swap(a, base, pm)
        pa = pb = base + 1
        pc = pd = base + n - 1
        while True:
            while pb <= pc:
                r = cmp(a[pb], a[base])
                if r > 0:
                    break
                if r == 0:
                    _swap(a, pa, pb)
                    pa += 1
                pb += 1
            while pb <= pc:
                r = cmp(a[pc], a[base])
                if r < 0:
                    break
                if r == 0:
                    _swap(a, pc, pd)
                    pd -= 1
                pc -= 1
            if pb > pc:
                break
            _swap(a, pb, pc)
            pb += 1
            pc -= 1
        pn = base + n
        r = min(pa - base, pb - pa)
        _vecswap(a, base, pb - r, r)
        r = min(pd - pc, pn - pd - 1)
        _vecswap(a, pb, pn - r, r)
        r = pb - pa
        if r > 1 and _wanted(base, base + r - 1, lrange, rrange):
            _pqsort(a, base, r, cmp, lrange, rrange)
        r = pd - pc
        if r > 1:
            base, n = pn - r, r
            if _wanted(base, base + r - 1, lrange, rrange):
                continue
        return
