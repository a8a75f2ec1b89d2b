"""Sorted lists of a million elements that the cyclic garbage collector does not walk.

A collection's orders (a sorted set's (score, member) pairs, a list's positions, a scan
order) are SortedLists: about a thousand Python lists of ~1,000 elements each. Lists
are always tracked by the collector, and a collection pass visits every element of
every tracked list in the generations it collects (one memory access each). With a
few orders of a million elements loaded, each full pass, and each young pass after a
big load, walked millions of elements: 85-300 ms with every client waiting.

The elements are bytes, numbers and tuples of them: they cannot refer back to a list,
so a sublist can never be part of a reference cycle and the collector has nothing to
find there. `QuietSortedList` takes each sublist off the collector's lists as it is
made (`PyObject_GC_UnTrack`, CPython's public C API, through ctypes); reference
counting still frees them. Without ctypes (another interpreter) it is a SortedList.
Only for elements that hold no mutable containers (a tuple of bytes and floats is fine).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

from sortedcontainers import SortedList


def _untracker() -> Callable[[Any], None] | None:
    try:
        import ctypes

        fn = ctypes.pythonapi.PyObject_GC_UnTrack
    except (ImportError, AttributeError):
        return None
    fn.argtypes = [ctypes.py_object]
    fn.restype = None
    return fn  # type: ignore[no-any-return]


_untrack = _untracker()


def untrack(obj: list[Any]) -> None:
    """Take a list of atomic values (bytes, numbers, tuples of them) off the collector's
    lists: it is never walked again, and freed by reference counting as before."""
    if _untrack is not None and gc.is_tracked(obj):
        _untrack(obj)


def quiet(obj: list[Any]) -> list[Any]:
    """`obj`, untracked (`untrack`): for a plan's lists of a hundred thousand bytes or
    numbers that live across loop turns (33 SORTs of 100,000 elements at once: young
    collections of 32-41 ms walking them)."""
    untrack(obj)
    return obj


def sublists(sl: SortedList, first: int, last: int) -> list[tuple[list[Any], int, int]]:
    """Positions first..last-1 of `sl` as (sublist, start, stop) of its own lists, for a
    C loop that reads them in place (geoscan.c's scan_lists)."""
    if first >= last:
        return []
    lists = sl._lists
    p0, i0 = sl._pos(first)
    p1, i1 = sl._pos(last - 1)
    if p0 == p1:
        return [(lists[p0], i0, i1 + 1)]
    return [(lists[p0], i0, len(lists[p0])),
            *[(lists[p], 0, len(lists[p])) for p in range(p0 + 1, p1)],
            (lists[p1], 0, i1 + 1)]


class QuietSortedList(SortedList):
    """A SortedList whose sublists the cyclic collector does not walk (module doc)."""

    def _expand(self, pos: int) -> None:
        lists = self._lists
        n = len(lists)
        SortedList._expand(self, pos)
        if len(lists) != n:  # split: the second half is a new list (the first, made
            untrack(lists[pos])  # by the first add, is untracked at its first split)
            untrack(lists[pos + 1])

    def update(self, iterable: Iterable[Any]) -> None:
        SortedList.update(self, iterable)
        for sub in self._lists:
            untrack(sub)

    _update = update

