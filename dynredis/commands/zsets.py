"""Sorted-set commands on one key: members and their scores (core/score.py).

Each member is its own record: ZADD of one member writes, sends and hashes that member
only. Under concurrent writes through different nodes: membership is add-wins (a ZADD
concurrent with a ZREM of the member keeps it), concurrent ZADDs of a member keep the
later score, concurrent ZINCRBYs all count, and a history without concurrency gives
exactly the scores Redis computes. Range commands are in zsetrange.py, commands over
several keys in zsetplans.py.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from ..core.collview import KeyView
from ..core.records import ZSET
from ..resp import bulks
from ..resp import encode as resp
from . import zfloat
from .collection import (
    WRONGTYPE,
    Built,
    collection_command,
    internal_step,
    on_string,
    scan_order,
    typed_op,
)
from .scanning import EMPTY_SCAN, scan_elements
from .sets import random_pick, walked
from .table import ERR_NOT_INT, ERR_SYNTAX, parse_int

ERR_NOT_FLOAT = resp.error("ERR value is not a valid float")
ERR_NAN = resp.error("ERR resulting score is not a number (NaN)")
ERR_XX_NX = resp.error("ERR XX and NX options at the same time are not compatible")
ERR_GT_LT_NX = resp.error("ERR GT, LT, and/or NX options at the same time are not compatible")
ERR_INCR_PAIRS = resp.error("ERR INCR option supports a single increment-element pair")
ERR_POSITIVE = resp.error("ERR value is out of range, must be positive")
LONG_MAX = 2**63 - 1
# A negative ZRANDMEMBER count repeats members: Redis streams that many replies, which a
# node would have to build in memory first. Larger counts are refused.
MAX_REPEATS = 1_000_000
ERR_OUT_OF_RANGE = resp.error("ERR value is out of range")

Pair = tuple[bytes, float]


def zorder_of(v: KeyView) -> Any:
    """The key's (score, member) SortedList, None if the key does not exist, or the
    WRONGTYPE reply."""
    t = v.type()
    if t is None:
        return None
    if t != "zset":
        return WRONGTYPE
    return v.zorder


def score_reply(score: float | None, proto: int) -> bytes:
    """A member's score as ZSCORE and ZMSCORE answer it: nil for no such member."""
    return resp.nil(proto) if score is None else zfloat.reply(score, proto)


def pairs_reply(items: list[Pair], withscores: bool, proto: int) -> bytes:
    """Members, or members and scores: flat in RESP2, [member, score] pairs in RESP3."""
    cols = pair_columns(list(map(_FIRST, items)), list(map(_SECOND, items)), withscores, proto)
    return bulks.lines(pair_head(len(items), withscores, proto), cols)


def ranked_reply(ranked: list[tuple[float, bytes]], withscores: bool, proto: int,
                 index: Sequence[int] | None = None, owned: bool = False
                 ) -> bytes | bulks.SlicedReply:
    """pairs_reply of (score, member) pairs as the set holds them (ZRANGE), or of
    ranked[i] for i in `index` (ZRANDMEMBER's picks, gathered a slice at a time),
    encoded over loop turns when they are many (bulks.SlicedReply; `owned` as
    bulks.array_reply's)."""
    n = len(ranked) if index is None else len(index)

    def columns(lo: int, hi: int) -> list[list[bytes]]:
        part = bulks.take(ranked, index, lo, hi)
        return pair_columns(list(map(_SECOND, part)), list(map(_FIRST, part)), withscores,
                        proto)

    return bulks.reply(pair_head(n, withscores, proto), n, columns, None,
                       (ranked,) if owned and index is None else ())


_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
# A score's text as zfloat.fmt makes it (%.17g spells the infinities inf and -inf), by
# a C loop over the scores; RESP3's double line.
_SCORE_TEXT = b"%.17g".__mod__
_SCORE_DOUBLE = b",%.17g".__mod__


def pair_head(n: int, withscores: bool, proto: int) -> bytes:
    return b"*%d" % (2 * n if withscores and proto < 3 else n)


def pair_columns(members: list[bytes], scores: list[float], withscores: bool,
             proto: int) -> list[list[bytes]]:
    """The lines of members and their scores, column by column (bulks.lines)."""
    if not withscores:
        return [bulks.heads(members), members]
    if proto >= 3:
        return [[b"*2"] * len(members), bulks.heads(members), members,
                list(map(_SCORE_DOUBLE, scores))]
    texts = list(map(_SCORE_TEXT, scores))
    return [bulks.heads(members), members, bulks.heads(texts), texts]


# --- ZADD, ZINCRBY, ZREM -------------------------------------------------------------------


def _zadd(key: bytes, pairs: list[tuple[float, bytes]], nx: bool, xx: bool, gt: bool,
          lt: bool, ch: bool, incr: bool, proto: int) -> Built:
    """Redis' zsetAdd for each pair, in order."""

    def op(v: KeyView) -> bytes:
        zl = zorder_of(v)
        if zl is WRONGTYPE:
            return WRONGTYPE
        live = zl is not None  # an expired or deleted key's elements are not members
        added = updated = processed = 0
        last = 0.0
        for score, member in pairs:
            cur = v.get(ZSET, member) if live else None
            if cur is not None:
                if nx:
                    continue
                new = score
                if incr:
                    new = cur + score
                    if new != new:
                        return ERR_NAN
                if (lt and new >= cur) or (gt and new <= cur):
                    continue
                last = new
                processed += 1
                if new != cur:
                    if incr:
                        v.increment(ZSET, member, score, 0.0)
                    else:
                        v.set_score(member, new)
                    updated += 1
            elif not xx:
                if incr:
                    v.increment(ZSET, member, score, 0.0)
                else:
                    v.set_score(member, score)
                live = True
                added += 1
                processed += 1
                last = score
        if incr:
            return zfloat.reply(last, proto) if processed else resp.nil(proto)
        return resp.integer(added + updated if ch else added)

    return key, op


@collection_command("zadd", -4, ("write", "denyoom", "fast"), 1, 1, 1, "sorted_set",
                    "Add one or more members to a sorted set, or update its score if it "
                    "already exists", "1.2.0")
def build_zadd(args: list[bytes], proto: int) -> Built | bytes:
    flags = {b"nx": False, b"xx": False, b"ch": False, b"incr": False, b"gt": False,
             b"lt": False}
    i = 2
    while i < len(args) and args[i].lower() in flags:
        flags[args[i].lower()] = True
        i += 1
    rest = args[i:]
    if not rest or len(rest) % 2:
        return ERR_SYNTAX
    nx, xx, gt, lt = flags[b"nx"], flags[b"xx"], flags[b"gt"], flags[b"lt"]
    if nx and xx:
        return ERR_XX_NX
    if (gt and nx) or (lt and nx) or (gt and lt):
        return ERR_GT_LT_NX
    if flags[b"incr"] and len(rest) > 2:
        return ERR_INCR_PAIRS
    pairs: list[tuple[float, bytes]] = []
    for j in range(0, len(rest), 2):
        score = zfloat.parse_score(rest[j])
        if score is None:
            return ERR_NOT_FLOAT
        pairs.append((score, rest[j + 1]))
    return _zadd(args[1], pairs, nx, xx, gt, lt, flags[b"ch"], flags[b"incr"], proto)


@collection_command("zincrby", 4, ("write", "denyoom", "fast"), 1, 1, 1, "sorted_set",
                    "Increment the score of a member in a sorted set", "1.2.0")
def build_zincrby(args: list[bytes], proto: int) -> Built | bytes:
    delta = zfloat.parse_score(args[2])
    if delta is None:
        return ERR_NOT_FLOAT
    return _zadd(args[1], [(delta, args[3])], False, False, False, False, False, True, proto)


@collection_command("zrem", -3, ("write", "fast"), 1, 1, 1, "sorted_set",
                    "Remove one or more members from a sorted set", "1.2.0")
def build_zrem(args: list[bytes], proto: int) -> Built | bytes:
    members = args[2:]

    def body(v: KeyView) -> bytes:
        removed = 0
        for m in members:
            if v.get(ZSET, m) is not None:
                v.put(ZSET, m, None)
                removed += 1
        return resp.integer(removed)

    return args[1], typed_op("zset", body, resp.ZERO)


# --- point reads -----------------------------------------------------------------------------


@collection_command("zscore", 3, ("readonly", "fast"), 1, 1, 1, "sorted_set",
                    "Get the score associated with the given member in a sorted set", "1.2.0")
def build_zscore(args: list[bytes], proto: int) -> Built | bytes:
    member = args[2]

    def body(v: KeyView) -> bytes:
        return score_reply(v.get(ZSET, member), proto)

    return args[1], typed_op("zset", body, resp.nil(proto))


@collection_command("zmscore", -3, ("readonly", "fast"), 1, 1, 1, "sorted_set",
                    "Get the score associated with the given members in a sorted set",
                    "6.2.0")
def build_zmscore(args: list[bytes], proto: int) -> Built | bytes:
    members = args[2:]

    def body(v: KeyView) -> bytes:
        return resp.array([score_reply(v.get(ZSET, m), proto) for m in members])

    return args[1], typed_op("zset", body, resp.array([resp.nil(proto)] * len(members)))


@collection_command("zcard", 2, ("readonly", "fast"), 1, 1, 1, "sorted_set",
                    "Get the number of members in a sorted set", "1.2.0")
def build_zcard(args: list[bytes], proto: int) -> Built | bytes:
    def body(v: KeyView) -> bytes:
        return resp.integer(len(v.zorder))

    return args[1], typed_op("zset", body, resp.ZERO)


def _zrank(args: list[bytes], proto: int, reverse: bool) -> Built:
    member = args[2]

    def body(v: KeyView) -> bytes:
        s = v.get(ZSET, member)
        if s is None:
            return resp.nil(proto)
        zl = v.zorder
        rank = zl.index((s, member))
        return resp.integer(len(zl) - 1 - rank if reverse else rank)

    return args[1], typed_op("zset", body, resp.nil(proto))


@collection_command("zrank", 3, ("readonly", "fast"), 1, 1, 1, "sorted_set",
                    "Determine the index of a member in a sorted set", "2.0.0")
def build_zrank(args: list[bytes], proto: int) -> Built | bytes:
    return _zrank(args, proto, False)


@collection_command("zrevrank", 3, ("readonly", "fast"), 1, 1, 1, "sorted_set",
                    "Determine the index of a member in a sorted set, with scores ordered "
                    "from high to low", "2.0.0")
def build_zrevrank(args: list[bytes], proto: int) -> Built | bytes:
    return _zrank(args, proto, True)


# --- pops ----------------------------------------------------------------------------------


def pop(v: KeyView, zl: Any, highest: bool, count: int) -> list[tuple[float, bytes]]:
    """Remove up to `count` members, lowest (or highest) scores first; returns them as
    the set holds them, (score, member) pairs in the order popped (references: no pair
    made per member)."""
    n = min(count, len(zl))
    ranked = list(zl.islice(len(zl) - n, len(zl), reverse=True) if highest
                  else zl.islice(0, n))
    z = len(zl)
    v.remove(ZSET, list(map(_SECOND, ranked)), n,
             lambda: [m for _, m in (zl.islice(0, z - n) if highest else zl.islice(n, z))])
    return ranked


def _zpop(args: list[bytes], proto: int, highest: bool) -> Built | bytes:
    if len(args) > 3:
        return ERR_SYNTAX
    count = -1
    if len(args) == 3:
        n = parse_int(args[2])
        if n is None or n < 0:
            return ERR_POSITIVE
        count = n

    def body(v: KeyView) -> bytes | bulks.SlicedReply:
        if count == 0:
            return resp.EMPTY_ARRAY
        ranked = pop(v, v.zorder, highest, 1 if count < 0 else count)
        if count < 0:  # one member: a flat [member, score] in RESP3 too
            return resp.array([resp.bulk(ranked[0][1]), zfloat.reply(ranked[0][0], proto)])
        # (encoded over loop turns when many: ZPOPMIN z 250000's reply in the command's
        # turn held it ~100 ms)
        return ranked_reply(ranked, True, proto)

    return args[1], typed_op("zset", body, resp.EMPTY_ARRAY)


@collection_command("zpopmin", -2, ("write", "fast"), 1, 1, 1, "sorted_set",
                    "Remove and return members with the lowest scores in a sorted set",
                    "5.0.0")
def build_zpopmin(args: list[bytes], proto: int) -> Built | bytes:
    return _zpop(args, proto, False)


@collection_command("zpopmax", -2, ("write", "fast"), 1, 1, 1, "sorted_set",
                    "Remove and return members with the highest scores in a sorted set",
                    "5.0.0")
def build_zpopmax(args: list[bytes], proto: int) -> Built | bytes:
    return _zpop(args, proto, True)


@internal_step("dyn.zpop")
def build_dyn_zpop(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.zpop, key, min|max, count] -> [type or None, popped (member, score) pairs]."""
    highest, count = args[2] == b"max", int(args[3])

    def op(v: KeyView) -> Any:
        t = v.type()
        if t != "zset":
            return [t, []]
        return [t, [(m, s) for s, m in pop(v, v.zorder, highest, count)]]

    return args[1], on_string(op, ["string", []])


# --- ZRANDMEMBER, ZSCAN --------------------------------------------------------------------


@collection_command("zrandmember", -2, ("readonly",), 1, 1, 1, "sorted_set",
                    "Get one or multiple random elements from a sorted set", "6.2.0")
def build_zrandmember(args: list[bytes], proto: int) -> Built | bytes:
    count: int | None = None
    withscores = False
    if len(args) >= 3:
        count = parse_int(args[2])
        if count is None:
            return ERR_NOT_INT
        if count < -LONG_MAX:
            return resp.error(f"ERR value is out of range, value must between {-LONG_MAX} "
                              f"and {LONG_MAX}")
        if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withscores"):
            return ERR_SYNTAX
        if len(args) == 4:
            withscores = True
            if count < -(LONG_MAX // 2) or count > LONG_MAX // 2:
                return ERR_OUT_OF_RANGE
        if count < -MAX_REPEATS:
            return ERR_OUT_OF_RANGE

    def body(v: KeyView) -> bytes | bulks.SlicedReply:
        zl = v.zorder
        if count is None:
            return resp.bulk(zl[random.randrange(len(zl))][1])
        if count == 0:
            return resp.EMPTY_ARRAY
        n = len(zl)
        if count >= n and count > 1:  # the whole set, from the highest score (as Redis)
            return ranked_reply(list(zl.islice(0, n, reverse=True)), withscores, proto,
                                owned=True)
        picked = random_pick(n, count)
        if picked is not None and walked(n, count):  # a lookup a pick, not a copy
            return ranked_reply(list(map(zl.__getitem__, picked)), withscores, proto)
        return ranked_reply(list(zl), withscores, proto, picked)

    return args[1], typed_op("zset", body,
                             resp.nil(proto) if count is None else resp.EMPTY_ARRAY)


@collection_command("zscan", -3, ("readonly",), 1, 1, 1, "sorted_set",
                    "Incrementally iterate sorted sets elements and associated scores",
                    "2.8.0")
def build_zscan(args: list[bytes], proto: int) -> Built | bytes:
    parsed = scan_elements.parse(args)
    if isinstance(parsed, bytes):
        return parsed

    def body(v: KeyView) -> bytes:
        page = scan_elements.page(parsed, v, ZSET)
        if page is None:  # in score order, as a small sorted set's listpack
            return scan_elements.reply(
                parsed, 0, [(m, zfloat.listpack_text(s)) for s, m in v.zorder], True)
        cursor, members = page
        return scan_elements.reply(parsed, cursor, [
            (m, zfloat.listpack_text(s)) for m, s in zip(members, v.values_at(ZSET, members),
                                                         strict=True)], True)

    return args[1], scan_order(typed_op("zset", body, EMPTY_SCAN), ZSET)
