"""Ranges of a sorted set: by rank, by score, by member (lex), as Redis 7.0 answers them.

A sorted set's members are held in order, (score, member bytes) as Redis orders them, in
a SortedList (KeyView.zorder): a range is found by bisection and read by index, so its
cost is O(log n + the range), whatever the set's size. The readers here take that list
and return positions or (member, score) pairs; the geo commands reuse them
(`zrange_by_score`).

Lex ranges assume, as Redis documents, that every member has the same score; Redis then
compares members only. When scores differ, Redis' answer for a small set is what a walk
in set order gives (the first member >= min, then on while <= max); it is reproduced
here by that walk (O(n), for this undefined use only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice, takewhile
from operator import itemgetter
from typing import Any

from ..resp import encode as resp
from . import zfloat

ERR_NOT_FLOAT_RANGE = resp.error("ERR min or max is not a float")
ERR_NOT_LEX_RANGE = resp.error("ERR min or max not valid string range item")

Pair = tuple[bytes, float]


@dataclass(frozen=True)
class ScoreRange:
    min: float
    max: float
    minex: bool = False
    maxex: bool = False

    def contains(self, x: float) -> bool:
        return (x > self.min if self.minex else x >= self.min) and \
            (x < self.max if self.maxex else x <= self.max)


def parse_score_range(lo: bytes, hi: bytes) -> ScoreRange | None:
    a, b = zfloat.parse_bound(lo), zfloat.parse_bound(hi)
    if a is None or b is None:
        return None
    return ScoreRange(a[0], b[0], a[1], b[1])


# Lex bounds: a member, or the smallest/greatest of all strings (`-`, `+`).
MIN_STRING = 0
MAX_STRING = 2
_MEMBER = itemgetter(1)


def _always(member: bytes) -> bool:
    return True


def _never(member: bytes) -> bool:
    return False


def _test(b: LexBound, holds_all: int, exclusive: Callable[[bytes], bool],
          inclusive: Callable[[bytes], bool]) -> Callable[[bytes], bool]:
    """A bound's member test: for "-" or "+", every member passes if it is `holds_all`,
    none otherwise; for a member bound, the exclusive or the inclusive comparison."""
    if b.edge != 1:
        return _always if b.edge == holds_all else _never
    return exclusive if b.exclusive else inclusive


@dataclass(frozen=True)
class LexBound:
    edge: int  # MIN_STRING, 1 (a member), MAX_STRING
    member: bytes
    exclusive: bool


def parse_lex_bound(raw: bytes) -> LexBound | None:
    """`[x`, `(x`, `-` or `+`, as Redis' zslParseLexRangeItem reads them."""
    c = raw[:1]
    if c in (b"+", b"-"):
        if raw[1:2] not in (b"", b"\0"):  # Redis reads a C string: "+\0..." is "+"
            return None
        return LexBound(MAX_STRING if c == b"+" else MIN_STRING, b"", True)
    if c == b"(":
        return LexBound(1, raw[1:], True)
    if c == b"[":
        return LexBound(1, raw[1:], False)
    return None


@dataclass(frozen=True)
class LexRange:
    min: LexBound
    max: LexBound

    def gte_min(self, member: bytes) -> bool:
        b = self.min
        if b.edge != 1:
            return b.edge == MIN_STRING
        return member > b.member if b.exclusive else member >= b.member

    def lte_max(self, member: bytes) -> bool:
        b = self.max
        if b.edge != 1:
            return b.edge == MAX_STRING
        return member < b.member if b.exclusive else member <= b.member

    # The same tests as predicates the walks hand to C (bytes' own comparisons, no
    # Python call a member): members inside from the min on, still below it, inside
    # up to the max, already above it.
    def from_min(self) -> Callable[[bytes], bool]:
        b = self.min
        return _test(b, MIN_STRING, b.member.__lt__, b.member.__le__)

    def below_min(self) -> Callable[[bytes], bool]:
        b = self.min
        return _test(b, MAX_STRING, b.member.__ge__, b.member.__gt__)

    def to_max(self) -> Callable[[bytes], bool]:
        b = self.max
        return _test(b, MAX_STRING, b.member.__gt__, b.member.__ge__)

    def above_max(self) -> Callable[[bytes], bool]:
        b = self.max
        return _test(b, MIN_STRING, b.member.__le__, b.member.__lt__)

    def may_hold(self) -> bool:
        """False for ranges that are always empty (min above max, or equal and open)."""
        a, b = self.min, self.max
        if a.edge != 1 or b.edge != 1:
            cmp = (a.edge > b.edge) - (a.edge < b.edge)
        else:
            cmp = (a.member > b.member) - (a.member < b.member)
        return cmp < 0 or (cmp == 0 and not (a.exclusive or b.exclusive))


def parse_lex_range(lo: bytes, hi: bytes) -> LexRange | None:
    a, b = parse_lex_bound(lo), parse_lex_bound(hi)
    if a is None or b is None:
        return None
    return LexRange(a, b)


# --- positions ---------------------------------------------------------------------------


def score_span(zl: Any, r: ScoreRange) -> tuple[int, int]:
    """[lo, hi): the positions of the members whose score is in range."""
    lo_v, hi_v = r.min, r.max
    if r.minex:
        if lo_v == math.inf:
            return 0, 0
        lo_v = math.nextafter(lo_v, math.inf)  # first score > min: first >= its successor
    lo = zl.bisect_left((lo_v, b""))
    if r.maxex:
        hi = zl.bisect_left((hi_v, b""))
    elif hi_v == math.inf:
        hi = len(zl)
    else:
        hi = zl.bisect_left((math.nextafter(hi_v, math.inf), b""))
    return lo, max(lo, hi)


def _same_score(zl: Any) -> bool:
    return len(zl) == 0 or zl[0][0] == zl[-1][0]


def lex_span(zl: Any, r: LexRange, reverse: bool = False, most: int = -1
             ) -> tuple[int, int]:
    """[lo, hi): the positions of the members in range (Redis' walk: module docstring;
    `reverse` walks from the tail, as ZREVRANGEBYLEX does). With `most` >= 0 a walk
    stops `most` members past the range's first (LIMIT offset count needs no more)."""
    n = len(zl)
    # Redis' first check: the range can hold members, the last member is not below min
    # and the first is not above max (not implied when scores differ).
    if not n or not r.may_hold() or not r.gte_min(zl[-1][1]) or not r.lte_max(zl[0][1]):
        return 0, 0
    if _same_score(zl):
        s = zl[0][0]
        b = r.min
        if b.edge != 1:
            lo = 0 if b.edge == MIN_STRING else n
        else:
            lo = zl.bisect_right((s, b.member)) if b.exclusive else zl.bisect_left((s, b.member))
        b = r.max
        if b.edge != 1:
            hi = n if b.edge == MAX_STRING else 0
        else:
            hi = zl.bisect_left((s, b.member)) if b.exclusive else zl.bisect_right((s, b.member))
        return lo, max(lo, hi)
    # (walked by iterators: indexing the SortedList costs a bisection per member; an
    # open end, "-" or "+", holds every member on its side: not walked; a walk of
    # 100,000 members with a Python test each took 20 ms, 10 pipelined ones a node 120)
    open_min, open_max = r.min.edge == MIN_STRING, r.max.edge == MAX_STRING
    cap = None if most < 0 else most
    if not reverse:
        i = 0 if open_min else _count_while(iter(zl), r.below_min())
        j = n if open_max else i + _count_while(islice(zl.islice(i), cap), r.to_max())
        return i, j
    j = n if open_max else n - _count_while(reversed(zl), r.above_max())
    i = 0 if open_min else j - _count_while(islice(zl.islice(0, j, reverse=True), cap),
                                            r.from_min())
    return i, j


def _count_while(pairs: Any, ok: Callable[[bytes], bool]) -> int:
    """How many (score, member) pairs from the start of `pairs` have `ok(member)`."""
    return len(list(takewhile(ok, map(_MEMBER, pairs))))


def rank_span(n: int, start: int, end: int) -> tuple[int, int]:
    """[lo, hi) of ranks start..end (negative: from the end), as Redis sanitizes them."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return 0, 0
    if end >= n:
        end = n - 1
    return start, end + 1


def limited(lo: int, hi: int, offset: int, limit: int, reverse: bool) -> tuple[int, int]:
    """The positions LIMIT offset count keeps of [lo, hi), walking forward or (reverse)
    backward: a negative offset keeps nothing, a negative count everything after it."""
    if offset < 0 or offset >= hi - lo:
        return lo, lo
    take = hi - lo - offset if limit < 0 else min(limit, hi - lo - offset)
    if reverse:
        return hi - offset - take, hi - offset
    return lo + offset, lo + offset + take


def pairs(zl: Any, lo: int, hi: int, reverse: bool = False) -> list[Pair]:
    """(member, score) of positions [lo, hi), in order or reversed."""
    if hi <= lo:
        return []
    return [(m, s) for s, m in zl.islice(lo, hi, reverse=reverse)]


# --- readers: the positions [lo, hi) a range reads ---------------------------------------


def by_score(zl: Any, r: ScoreRange, reverse: bool = False, offset: int = 0,
             limit: int = -1) -> tuple[int, int]:
    """The members whose score is in `r`, after LIMIT offset count (walking down when
    `reverse`)."""
    lo, hi = score_span(zl, r)
    return limited(lo, hi, offset, limit, reverse)


def by_lex(zl: Any, r: LexRange, reverse: bool = False, offset: int = 0,
           limit: int = -1) -> tuple[int, int]:
    lo, hi = lex_span(zl, r, reverse, offset + limit if offset >= 0 and limit >= 0 else -1)
    return limited(lo, hi, offset, limit, reverse)


def by_rank(zl: Any, start: int, end: int, reverse: bool = False) -> tuple[int, int]:
    n = len(zl)
    lo, hi = rank_span(n, start, end)
    if reverse:
        lo, hi = n - hi, n - lo
    return lo, hi


def zrange_by_score(zl: Any, r: ScoreRange, reverse: bool = False, offset: int = 0,
                    limit: int = -1) -> list[Pair]:
    """(member, score) of the members whose score is in `r`, ascending (or descending),
    after LIMIT offset count."""
    lo, hi = by_score(zl, r, reverse, offset, limit)
    return pairs(zl, lo, hi, reverse)


def zrange_by_lex(zl: Any, r: LexRange, reverse: bool = False, offset: int = 0,
                  limit: int = -1) -> list[Pair]:
    lo, hi = by_lex(zl, r, reverse, offset, limit)
    return pairs(zl, lo, hi, reverse)


def zrange_by_rank(zl: Any, start: int, end: int, reverse: bool = False) -> list[Pair]:
    lo, hi = by_rank(zl, start, end, reverse)
    return pairs(zl, lo, hi, reverse)
