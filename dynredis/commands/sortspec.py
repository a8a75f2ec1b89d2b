"""SORT's options, patterns and orders, as Redis 7.0's sort.c reads and applies them.

Pure functions, no I/O: `parse` reads the options (same errors, same order of checks),
`resolve` says which key (and hash field) a BY or GET pattern names for an element,
`sort_score` reads a weight as SORT's strtod does, and `order` sorts the elements as
glibc's qsort (stable) or Redis' partial quicksort (BY with LIMIT) would leave them.

Redis reads patterns and option words as C strings: a NUL byte ends them where Redis
searches them (the `*`, the `->`, `#`, a keyword), so they are read the same way here.
ALPHA compares bytes, as Redis does under the C or C.UTF-8 locale (strcoll, which stops
at a NUL byte; with STORE, whole strings).
"""

from __future__ import annotations

from fractions import Fraction
from itertools import compress
from operator import eq, not_
from typing import Any

from ..resp import encode as resp
from . import csort, zfloat
from .table import ERR_NOT_INT, ERR_SYNTAX, parse_int

ERR_BY_ACL = resp.error("ERR BY option of SORT denied due to insufficient ACL permissions.")
ERR_GET_ACL = resp.error("ERR GET option of SORT denied due to insufficient ACL permissions.")
ERR_SCORE = resp.error("ERR One or more scores can't be converted into double")

SMALLEST_NORMAL = 2.2250738585072014e-308


def cstr(data: bytes) -> bytes:
    """What C code sees of a string: up to its first NUL byte."""
    i = data.find(b"\0")
    return data if i < 0 else data[:i]


class SortSpec:
    """What SORT's options asked for."""

    __slots__ = ("desc", "alpha", "start", "count", "store", "by", "dontsort", "gets")

    def __init__(self) -> None:
        self.desc = False
        self.alpha = False
        self.start = 0
        self.count = -1
        self.store: bytes | None = None
        self.by: bytes | None = None
        self.dontsort = False  # a BY pattern without '*': nothing to sort by
        self.gets: list[bytes] = []


def parse(args: list[bytes], readonly: bool, full_key_access: bool) -> SortSpec | bytes:
    """SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
    [STORE destination] (SORT_RO: no STORE), or the error reply."""
    spec = SortSpec()
    j = 2
    n = len(args)
    while j < n:
        left = n - j - 1
        word = cstr(args[j]).lower()
        if word == b"asc":
            spec.desc = False
        elif word == b"desc":
            spec.desc = True
        elif word == b"alpha":
            spec.alpha = True
        elif word == b"limit" and left >= 2:
            start, count = parse_int(args[j + 1]), parse_int(args[j + 2])
            if start is None or count is None:
                return ERR_NOT_INT
            spec.start, spec.count = start, count
            j += 2
        elif word == b"store" and not readonly and left >= 1:
            spec.store = args[j + 1]
            j += 1
        elif word == b"by" and left >= 1:
            spec.by = args[j + 1]
            if b"*" not in cstr(spec.by):
                spec.dontsort = True  # for good: a later BY with '*' does not undo it
            elif not full_key_access:
                return ERR_BY_ACL
            j += 1
        elif word == b"get" and left >= 1:
            if not full_key_access:
                return ERR_GET_ACL
            spec.gets.append(args[j + 1])
            j += 1
        else:
            return ERR_SYNTAX
        j += 1
    return spec


def sort_keys(args: list[bytes]) -> list[bytes]:
    """SORT's keys as Redis' sortGetKeys finds them: the key, and the last STORE's
    destination (the arguments of LIMIT, GET and BY are skipped)."""
    keys = [args[1]]
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(args):
        word = cstr(args[i]).lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(args):
            store = args[i + 1]
        i += 1
    return keys + ([store] if store is not None else [])


# --- patterns ------------------------------------------------------------------------------

ELEMENT = 0  # the pattern "#": the element itself
NOTHING = 1  # no '*': nothing is looked up (the reply holds a nil)


def fixed(pattern: bytes) -> int | None:
    """ELEMENT or NOTHING when `pattern` names that for every element (`#`, or no '*'),
    else None (it names a key or field per element)."""
    text = cstr(pattern)
    if text == b"#":
        return ELEMENT
    return NOTHING if b"*" not in text else None


def resolve(pattern: bytes, element: bytes) -> tuple[bytes, bytes | None] | int:
    """What `pattern` names for `element` (Redis' lookupKeyByPattern): ELEMENT, NOTHING,
    or (key, hash field or None): the first '*' replaced by the element, and what
    follows a '->' after it (if anything does) a field of the hash at that key."""
    text = cstr(pattern)
    if text == b"#":
        return ELEMENT
    star = text.find(b"*")
    if star < 0:
        return NOTHING
    arrow = text.find(b"->", star + 1)
    field = None
    fieldlen = 0
    if arrow >= 0 and arrow + 2 < len(text):
        field = pattern[arrow + 2:]
        fieldlen = len(field) + 2
    postfix = pattern[star + 1:len(pattern) - fieldlen]
    return pattern[:star] + element + postfix, field


# --- weights and order ---------------------------------------------------------------------


def _exact(word: bytes, value: float) -> bool:
    """Whether the number `word` (strtod's text) is exactly the double `value`."""
    body = word.strip().lstrip(b"+-")
    if body[:2].lower() != b"0x":
        return Fraction(body.decode()) == Fraction(abs(value))
    mantissa, _, exp = body[2:].lower().partition(b"p")
    whole, _, frac = mantissa.partition(b".")
    digits = int(whole + frac or b"0", 16)
    scale = int(exp or b"0") - 4 * len(frac)
    exact = Fraction(digits) * (Fraction(2) ** scale)
    return exact == Fraction(abs(value))


def sort_score(raw: bytes) -> float | None:
    """The weight SORT reads from `raw` (C's strtod over the C string), or None where
    Redis answers "One or more scores can't be converted into double": characters
    left unread, NaN, or a result out of range (overflow, or a nonzero number that
    underflows to zero or to an inexact subnormal, as glibc reports). An empty string
    reads as 0."""
    text = cstr(raw)
    value, end, erange = zfloat.strtod(text)
    if end != len(text) or value != value or erange:
        return None
    if 0 < abs(value) < SMALLEST_NORMAL and not _exact(text[:end], value):
        return None
    return value


_NUMBER_BYTES = b"0123456789.eE+-"


def sort_scores(raws: list[bytes]) -> list[float | None]:
    """sort_score of each, by C loops where that reads the same: the elements made of
    digits, signs, points and exponents only (what float() reads then, it reads as
    strtod does, both rounding correctly) and reading as a normal finite double; the
    others (float() refusing one of them, zeros not written as zeros, infinities,
    subnormals) one by one.
    SORT of 200,000 numbers spent 300 ms reading them one call at a time."""
    if b"".join(raws).translate(None, _NUMBER_BYTES):
        return [sort_score(r) for r in raws]
    try:
        values: list[float | None] = list(map(float, raws))
    except ValueError:
        return [sort_score(r) for r in raws]
    # Zeros: written as zeros (digits 0 only, no exponent) they read the same either
    # way; others may be underflows strtod refuses ("1e-400"). Then the rest, in C loops.
    zeros = list(compress(range(len(values)), map(not_, values)))
    if zeros and b"".join(map(raws.__getitem__, zeros)).translate(None, b"0.+-"):
        for i in zeros:
            values[i] = sort_score(raws[i])
    nonzero = list(filter(None, values))
    if not nonzero or (min(map(abs, nonzero)) >= SMALLEST_NORMAL  # type: ignore[arg-type]
                       and _INF not in nonzero and -_INF not in nonzero):
        return values
    for i, v in enumerate(values):
        if v and not SMALLEST_NORMAL <= abs(v) < _INF:
            values[i] = sort_score(raws[i])
    return values


_INF = float("inf")


def has_nul(elements: list[bytes]) -> bool:
    """Whether an element holds a NUL byte: one C join and search (a million elements:
    a few ms; a `in` call per element took ~10 times as long)."""
    return b"\0" in b"".join(elements)


def order(elements: list[bytes], weights: list[Any] | None, alpha: bool, desc: bool,
          store: bool, partial: tuple[int, int] | None, nul: bool | None = None
          ) -> list[bytes]:
    """The elements in SORT's order. `weights`: per element, its weight (a float: read
    from the element or its BY value, 0 for a missing one) or, with ALPHA, its BY value
    (bytes, or None where missing), or None for ALPHA without BY. `partial`: the range
    (start, end) to get right when Redis sorts partially (BY with LIMIT). `nul`, for
    ALPHA without BY: whether they are compared as C strings (not `store` and one holds
    a NUL byte), if the caller knows already."""
    keys: list[Any]
    if not alpha:
        # Equal weights: the elements' bytes decide (Redis' compareStringObjects), so
        # equal pairs are equal bytes and a partial sort's range is the whole order's.
        assert weights is not None
        return _by_weight(elements, weights, desc)
    if weights is None:
        if nul is None:
            nul = not store and has_nul(elements)
        if not nul and partial is None:
            # The elements are their own keys: equal ones are the same bytes, so their
            # order among themselves does not show.
            return sorted(elements, reverse=desc)
        keys = [cstr(e) for e in elements] if nul else elements
    else:
        # A missing BY value sorts first; missing values are equal to each other.
        keys = [(0, b"") if w is None else (1, w if store else cstr(w)) for w in weights]
    index = list(range(len(elements)))
    if partial is None:
        index.sort(key=keys.__getitem__, reverse=desc)
    else:
        sign = -1 if desc else 1

        def cmp(a: int, b: int) -> int:
            ka, kb = keys[a], keys[b]
            return sign * ((ka > kb) - (ka < kb))

        csort.pqsort(index, cmp, partial[0], partial[1])
    return list(map(elements.__getitem__, index))


def _by_weight(elements: list[bytes], weights: list[Any], desc: bool) -> list[bytes]:
    """The elements by (weight, bytes), as a sort of those pairs would order them, with
    floats and bytes compared apart (a pair's comparison cost three times theirs):
    by weight alone when no two are equal (seen in the weights so sorted: a set of a
    million floats took longer than their sort), else by bytes first and then, stably,
    by weight."""
    index = list(range(len(elements)))
    index.sort(key=weights.__getitem__, reverse=desc)
    ordered = list(map(weights.__getitem__, index))
    if any(map(eq, ordered[1:], ordered)):
        index = list(range(len(elements)))
        index.sort(key=elements.__getitem__, reverse=desc)
        index.sort(key=weights.__getitem__, reverse=desc)
    return list(map(elements.__getitem__, index))


def is_intset(members: list[bytes]) -> bool:
    """Whether Redis would hold these set members as an intset (at most 512 integers in
    canonical form), which it walks in ascending order."""
    if len(members) > 512:
        return False
    for m in members:
        n = parse_int(m)
        if n is None:
            return False
    return True


def set_order(members: list[bytes]) -> list[bytes]:
    """The order SORT ... BY nosort lists a set in: Redis walks an intset in ascending
    order, a hash table in an order of its own; here, bytes order for those."""
    if is_intset(members):
        return sorted(members, key=int)
    return sorted(members)

