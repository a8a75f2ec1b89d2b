"""Sorted-set range commands: ZRANGE and its older forms, ZCOUNT, ZLEXCOUNT, and the
ZREMRANGEBY* removals. Every argument is checked before the key is read, as Redis does;
ranges are found by bisection (zranges.py), so a range costs the same in a set of ten
members and of a million."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.collview import KeyView
from ..core.records import ZSET
from ..resp import encode as resp
from ..resp.bulks import SlicedReply
from . import zranges
from .collection import Built, collection_command, internal_step, on_string, typed_op
from .table import ERR_NOT_INT, ERR_SYNTAX, parse_int
from .zranges import ERR_NOT_FLOAT_RANGE, ERR_NOT_LEX_RANGE, LexRange, ScoreRange
from .zsets import ranked_reply

ERR_LIMIT_RANK = resp.error("ERR syntax error, LIMIT is only supported in combination with "
                            "either BYSCORE or BYLEX")
ERR_WITHSCORES_LEX = resp.error("ERR syntax error, WITHSCORES not supported in combination "
                                "with BYLEX")


@dataclass
class RangeQuery:
    """What a ZRANGE-family command asks for."""

    by: str  # "rank", "score" or "lex"
    reverse: bool
    withscores: bool
    start: int = 0
    end: int = 0
    score: ScoreRange | None = None
    lex: LexRange | None = None
    offset: int = 0
    limit: int = -1

    def span(self, zl: Any) -> tuple[int, int]:
        """The positions [lo, hi) of the set the range reads."""
        if self.by == "rank":
            return zranges.by_rank(zl, self.start, self.end, self.reverse)
        if self.by == "score":
            assert self.score is not None
            return zranges.by_score(zl, self.score, self.reverse, self.offset, self.limit)
        assert self.lex is not None
        return zranges.by_lex(zl, self.lex, self.reverse, self.offset, self.limit)

    def run(self, zl: Any) -> list[zranges.Pair]:
        lo, hi = self.span(zl)
        return zranges.pairs(zl, lo, hi, self.reverse)

    def ranked(self, zl: Any) -> list[tuple[float, bytes]]:
        """The range's (score, member) pairs, the set's own (none made), in order."""
        lo, hi = self.span(zl)
        return list(zl.islice(lo, hi, reverse=self.reverse)) if hi > lo else []

    def reply(self, zl: Any, proto: int) -> bytes | SlicedReply:
        """The range as ZRANGE answers it (over loop turns when it is long)."""
        lo, hi = self.span(zl)
        ranked = list(zl.islice(lo, hi, reverse=self.reverse)) if hi > lo else []
        return ranked_reply(ranked, self.withscores, proto, owned=True)


def parse_range_query(args: list[bytes], at: int, store: bool, by: str = "",
                      reverse: bool | None = None) -> RangeQuery | bytes:
    """Redis' zrangeGenericCommand argument checks: `args[at]` is the source key, then
    min and max, then options (`by`/`reverse` fixed by the older command forms)."""
    withscores = False
    offset, limit = 0, -1
    j = at + 3
    while j < len(args):
        word = args[j].lower()
        left = len(args) - j - 1
        if not store and word == b"withscores":
            withscores = True
        elif word == b"limit" and left >= 2:
            o, n = parse_int(args[j + 1]), parse_int(args[j + 2])
            if o is None or n is None:
                return ERR_NOT_INT
            offset, limit = o, n
            j += 2
        elif reverse is None and word == b"rev":
            reverse = True
        elif not by and word == b"bylex":
            by = "lex"
        elif not by and word == b"byscore":
            by = "score"
        else:
            return ERR_SYNTAX
        j += 1
    by = by or "rank"
    reverse = bool(reverse)
    if limit != -1 and by == "rank":
        return ERR_LIMIT_RANK
    if withscores and by == "lex":
        return ERR_WITHSCORES_LEX
    lo, hi = args[at + 1], args[at + 2]
    if reverse and by != "rank":
        lo, hi = hi, lo  # given as max, min
    bounds = parse_bounds(by, lo, hi)
    if isinstance(bounds, bytes):
        return bounds
    q = RangeQuery(by, reverse, withscores, offset=offset, limit=limit)
    if isinstance(bounds, ScoreRange):
        q.score = bounds
    elif isinstance(bounds, LexRange):
        q.lex = bounds
    else:
        q.start, q.end = bounds
    return q


Bounds = tuple[int, int] | ScoreRange | LexRange


def parse_bounds(by: str, lo: bytes, hi: bytes) -> Bounds | bytes:
    """A range's two arguments, by "rank" (start and end), "score" or "lex" (min and
    max), or the error Redis answers for them."""
    if by == "rank":
        start, end = parse_int(lo), parse_int(hi)
        if start is None or end is None:
            return ERR_NOT_INT
        return start, end
    if by == "score":
        score = zranges.parse_score_range(lo, hi)
        return ERR_NOT_FLOAT_RANGE if score is None else score
    lex = zranges.parse_lex_range(lo, hi)
    return ERR_NOT_LEX_RANGE if lex is None else lex


Span = Callable[[Any], tuple[int, int]]


def parse_span(by: str, lo: bytes, hi: bytes) -> Span | bytes:
    """The positions [lo, hi) a range names, as a function of the set's (score, member)
    SortedList (ZCOUNT, ZLEXCOUNT and the ZREMRANGEBY* removals), or the arguments'
    error."""
    bounds = parse_bounds(by, lo, hi)
    if isinstance(bounds, bytes):
        return bounds
    if isinstance(bounds, ScoreRange):
        score = bounds
        return lambda zl: zranges.score_span(zl, score)
    if isinstance(bounds, LexRange):
        lex = bounds
        return lambda zl: zranges.lex_span(zl, lex)
    start, end = bounds
    return lambda zl: zranges.rank_span(len(zl), start, end)


def _range_command(args: list[bytes], proto: int, by: str = "",
                   reverse: bool | None = None) -> Built | bytes:
    q = parse_range_query(args, 1, False, by, reverse)
    if isinstance(q, bytes):
        return q

    def body(v: KeyView) -> bytes | SlicedReply:
        return q.reply(v.zorder, proto)

    return args[1], typed_op("zset", body, resp.EMPTY_ARRAY)


@collection_command("zrange", -4, ("readonly",), 1, 1, 1, "sorted_set",
                    "Return a range of members in a sorted set", "1.2.0")
def build_zrange(args: list[bytes], proto: int) -> Built | bytes:
    return _range_command(args, proto)


@collection_command("zrevrange", -4, ("readonly",), 1, 1, 1, "sorted_set",
                    "Return a range of members in a sorted set, by index, with scores "
                    "ordered from high to low", "1.2.0")
def build_zrevrange(args: list[bytes], proto: int) -> Built | bytes:
    return _range_command(args, proto, "rank", True)


@collection_command("zrangebyscore", -4, ("readonly",), 1, 1, 1, "sorted_set",
                    "Return a range of members in a sorted set, by score", "1.0.5")
def build_zrangebyscore(args: list[bytes], proto: int) -> Built | bytes:
    return _range_command(args, proto, "score", False)


@collection_command("zrevrangebyscore", -4, ("readonly",), 1, 1, 1, "sorted_set",
                    "Return a range of members in a sorted set, by score, with scores "
                    "ordered from high to low", "2.2.0")
def build_zrevrangebyscore(args: list[bytes], proto: int) -> Built | bytes:
    return _range_command(args, proto, "score", True)


@collection_command("zrangebylex", -4, ("readonly",), 1, 1, 1, "sorted_set",
                    "Return a range of members in a sorted set, by lexicographical range",
                    "2.8.9")
def build_zrangebylex(args: list[bytes], proto: int) -> Built | bytes:
    return _range_command(args, proto, "lex", False)


@collection_command("zrevrangebylex", -4, ("readonly",), 1, 1, 1, "sorted_set",
                    "Return a range of members in a sorted set, by lexicographical range, "
                    "ordered from higher to lower strings.", "2.8.9")
def build_zrevrangebylex(args: list[bytes], proto: int) -> Built | bytes:
    return _range_command(args, proto, "lex", True)


@internal_step("dyn.zrange")
def build_dyn_zrange(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.zrange, key, min, max, options of ZRANGESTORE...] -> [type or None, (member,
    score) pairs in range] (ZRANGESTORE's read; its arguments were checked before)."""
    q = parse_range_query(args, 1, True)
    if isinstance(q, bytes):
        return q

    def op(v: KeyView) -> Any:
        t = v.type()
        if t != "zset":
            return [t, []]
        return [t, q.run(v.zorder)]

    return args[1], on_string(op, ["string", []])


@internal_step("dyn.zranked")
def build_dyn_zranked(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.zranked, key, min, max, options of ZRANGESTORE...] -> [type or None, (score,
    member) pairs in range]: dyn.zrange's read without a pair made per member (a million
    of them made in one turn, and the collector's passes over them, held the node
    ~400 ms; the plan swaps them a slice a step)."""
    q = parse_range_query(args, 1, True)
    if isinstance(q, bytes):
        return q

    def op(v: KeyView) -> Any:
        t = v.type()
        return [t, q.ranked(v.zorder) if t == "zset" else []]

    return args[1], on_string(op, ["string", []])


# --- counts --------------------------------------------------------------------------------


def _count(args: list[bytes], by: str) -> Built | bytes:
    """How many members the range `args[2:4]` holds (ZCOUNT, ZLEXCOUNT)."""
    span = parse_span(by, args[2], args[3])
    if isinstance(span, bytes):
        return span

    def body(v: KeyView) -> bytes:
        lo, hi = span(v.zorder)
        return resp.integer(hi - lo)

    return args[1], typed_op("zset", body, resp.ZERO)


@collection_command("zcount", 4, ("readonly", "fast"), 1, 1, 1, "sorted_set",
                    "Count the members in a sorted set with scores within the given values",
                    "2.0.0")
def build_zcount(args: list[bytes], proto: int) -> Built | bytes:
    return _count(args, "score")


@collection_command("zlexcount", 4, ("readonly", "fast"), 1, 1, 1, "sorted_set",
                    "Count the number of members in a sorted set between a given "
                    "lexicographical range", "2.8.9")
def build_zlexcount(args: list[bytes], proto: int) -> Built | bytes:
    return _count(args, "lex")


# --- removals ------------------------------------------------------------------------------


def _remove(args: list[bytes], by: str) -> Built | bytes:
    """Remove the members in the range `args[2:4]` (the ZREMRANGEBY* commands)."""
    span = parse_span(by, args[2], args[3])
    if isinstance(span, bytes):
        return span

    def body(v: KeyView) -> bytes:
        zl = v.zorder
        lo, hi = span(zl)
        if hi <= lo:
            return resp.ZERO
        n = len(zl)
        v.remove(ZSET, (m for _, m in zl.islice(lo, hi)), hi - lo,
                 lambda: [m for _, m in itertools.chain(zl.islice(0, lo), zl.islice(hi, n))])
        return resp.integer(hi - lo)

    return args[1], typed_op("zset", body, resp.ZERO)


@collection_command("zremrangebyrank", 4, ("write",), 1, 1, 1, "sorted_set",
                    "Remove all members in a sorted set within the given indexes", "2.0.0")
def build_zremrangebyrank(args: list[bytes], proto: int) -> Built | bytes:
    return _remove(args, "rank")


@collection_command("zremrangebyscore", 4, ("write",), 1, 1, 1, "sorted_set",
                    "Remove all members in a sorted set within the given scores", "1.2.0")
def build_zremrangebyscore(args: list[bytes], proto: int) -> Built | bytes:
    return _remove(args, "score")


@collection_command("zremrangebylex", 4, ("write",), 1, 1, 1, "sorted_set",
                    "Remove all members in a sorted set between the given lexicographical "
                    "range", "2.8.9")
def build_zremrangebylex(args: list[bytes], proto: int) -> Built | bytes:
    return _remove(args, "lex")
