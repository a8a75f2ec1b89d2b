"""Sorted-set commands over several keys: ZUNION, ZINTER, ZDIFF (and their STORE forms),
ZINTERCARD, ZRANGESTORE and ZMPOP.

Each is a plan of single-key steps (collection.py): the sources are read one after the
other where each lives, the result is computed here and, for the STORE forms, written
to the destination as one more step. None of them is atomic across keys (README): a
write to a source between two steps may or may not be seen, and a destination written
concurrently through another node keeps the later write. Replies, errors and their order
are Redis 7.0's: every source is read (WRONGTYPE) before the options are judged.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Iterator
from itertools import islice, pairwise, repeat
from operator import itemgetter
from typing import Any

from ..core.quietlist import untrack
from ..resp import bulks
from ..resp import encode as resp
from . import zfloat
from .collection import TURN, WRONGTYPE, Plan, plan_command
from .databases import shown
from .mpop import parse_mpop_args
from .sets import counted_intersection
from .slicedwrite import Ranked, store_steps
from .table import ERR_NOT_INT, ERR_SYNTAX, parse_int
from .zsetrange import parse_range_query
from .zsets import pair_columns, pair_head, pairs_reply

Pair = tuple[bytes, float]

UNION, INTER, DIFF = "union", "inter", "diff"
ERR_WEIGHT = resp.error("ERR weight value is not a float")
ERR_LIMIT_NEGATIVE = resp.error("ERR LIMIT can't be negative")


class SetOp:
    """The options of a ZUNION/ZINTER/ZDIFF-family command."""

    def __init__(self, nkeys: int) -> None:
        self.weights = [1.0] * nkeys
        self.aggregate = b"sum"
        self.withscores = False
        self.limit = 0


def _parse_options(rest: list[bytes], nkeys: int, op: str, store: bool,
                   card: bool) -> SetOp | bytes:
    """Redis' option loop of zunionInterDiffGenericCommand."""
    out = SetOp(nkeys)
    j, remaining = 0, len(rest)
    while remaining:
        word = rest[j].lower()
        if op != DIFF and not card and remaining >= nkeys + 1 and word == b"weights":
            for i in range(nkeys):
                w = zfloat.parse_score(rest[j + 1 + i])
                if w is None:
                    return ERR_WEIGHT
                out.weights[i] = w
            j += nkeys + 1
            remaining -= nkeys + 1
        elif op != DIFF and not card and remaining >= 2 and word == b"aggregate":
            agg = rest[j + 1].lower()
            if agg not in (b"sum", b"min", b"max"):
                return ERR_SYNTAX
            out.aggregate = agg
            j += 2
            remaining -= 2
        elif not store and not card and word == b"withscores":
            out.withscores = True
            j += 1
            remaining -= 1
        elif card and remaining >= 2 and word == b"limit":
            n = parse_int(rest[j + 1])
            if n is None or n < 0:
                return ERR_LIMIT_NEGATIVE
            out.limit = n
            j += 2
            remaining -= 2
        else:
            return ERR_SYNTAX
    return out


def _aggregate(target: float, val: float, how: bytes) -> float:
    if how == b"sum":
        x = target + val
        return 0.0 if x != x else x  # +inf plus -inf: 0, Redis' convention
    if how == b"min":
        return val if val < target else target
    return val if val > target else target


def _weighted(w: float, s: float) -> float:
    x = w * s
    return 0.0 if x != x else x


SLICE = 16_384
"""Pairs combined, sorted or sent in one loop turn: ZINTER of two million-member keys
combined, sorted and encoded them in one turn (a node's loop held 7 s, 2 s of CPU)."""

Steps = Generator[list[bytes], Any, list[Pair]]


def _slices(items: list[Any]) -> Generator[list[Any], Any, None]:
    """items SLICE at a time (the caller yields TURN after a full one: small inputs,
    however many, take no loop turn of their own)."""
    for at in range(0, len(items), SLICE):
        yield items[at:at + SLICE]


def _pairs(items: list[Any], scored: bool) -> Generator[list[bytes], Any, list[Pair]]:
    """A source's (member, score) pairs, a slice a loop turn, from what dyn.zread read:
    a sorted set's own (score, member) pairs, a set's members (score 1). The read copies
    references only: pairs made in the read's turn held a node ~150 ms for a
    million-member key."""
    out: list[Pair] = quiet([])
    for part in _slices(items):
        if scored:
            out += zip(map(_second, part), map(_first, part), strict=True)
        else:
            out += zip(part, repeat(1.0))
        if len(part) == SLICE:
            yield TURN
    return out


def _release(inputs: list[list[Pair]]) -> Generator[list[bytes], Any, None]:
    """Empty the sources' pairs a slice a loop turn once combined: freed as the plan
    ended, a million-member source's held the node ~80 ms in that turn."""
    for items in inputs:
        while len(items) > SLICE:
            del items[-SLICE:]
            yield TURN
        items.clear()


def quiet(items: list[Any]) -> list[Any]:
    """`items`, which the cyclic collector no longer walks (quietlist.untrack: members,
    scores and pairs of them make no cycle). A young list of a million pairs was walked
    by each collector pass, 50-60 ms of the turn it fell in."""
    untrack(items)
    return items


def _weighted_all(w: float, part: list[Pair]) -> list[Pair]:
    return part if w == 1.0 else [(m, _weighted(w, s)) for m, s in part]


def union(inputs: list[list[Pair]], o: SetOp) -> Steps:
    """Redis' union: sources from the smallest (a stable order, as Redis sorts them), so
    sums round as Redis' do; a slice a loop turn."""
    if len(inputs) == 1 and o.weights[0] == 1.0:  # a copy (a key's members are distinct)
        return quiet(list(inputs[0]))
    acc: dict[bytes, float] = {}
    for n, i in enumerate(sorted(range(len(inputs)), key=lambda i: len(inputs[i]))):
        for part in _slices(inputs[i]):
            part = _weighted_all(o.weights[i], part)
            if n == 0:
                acc.update(part)  # a key's members are distinct: nothing to aggregate
            else:
                for m, score in part:
                    old = acc.get(m)
                    acc[m] = score if old is None else _aggregate(old, score, o.aggregate)
            if len(part) == SLICE:
                yield TURN
    return quiet(list(acc.items()))


def _lookups(inputs: list[list[Pair]], order: list[int]
             ) -> Generator[list[bytes], Any, list[dict[bytes, float]]]:
    """A dict of each input of `order`, built a slice a loop turn."""
    out: list[dict[bytes, float]] = []
    for i in order:
        lookup: dict[bytes, float] = {}
        for part in _slices(inputs[i]):
            lookup.update(part)
            if len(part) == SLICE:
                yield TURN
        out.append(lookup)
    return out


def inter(inputs: list[list[Pair]], o: SetOp) -> Steps:
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    first = order[0]
    lookups = yield from _lookups(inputs, order[1:])
    others = list(zip(lookups, [o.weights[i] for i in order[1:]], strict=True))
    out: list[Pair] = quiet([])
    for part in _slices(inputs[first]):
        for m, s in part:
            score = _weighted(o.weights[first], s)
            for lookup, w in others:
                val = lookup.get(m)
                if val is None:
                    break
                score = _aggregate(score, val * w, o.aggregate)
            else:
                out.append((m, score))
        if len(part) == SLICE:
            yield TURN
    return out


def diff(inputs: list[list[Pair]]) -> Steps:
    others = yield from _lookups(inputs, list(range(1, len(inputs))))
    out: list[Pair] = quiet([])
    for part in _slices(inputs[0]):
        out += [(m, s) for m, s in part if not any(m in x for x in others)]
        if len(part) == SLICE:
            yield TURN
    return out


def _ordered(items: list[Pair]) -> list[Pair]:
    """(member, score) pairs by score, then member: two C sorts, the second stable (no
    (score, member) pair built per member: 200,000 members in ~half the time)."""
    out = sorted(items, key=_first)
    out.sort(key=_second)
    return out


_first, _second = itemgetter(0), itemgetter(1)


def _by_score(pair: Pair) -> tuple[float, bytes]:
    return pair[1], pair[0]


def ordered_runs(items: list[Pair]) -> Generator[list[bytes], Any, list[list[Pair]]]:
    """The pairs as runs of SLICE, each by score then member, one sorted a loop turn
    (a merge of them is the whole in order: `Merged`). A slice already in order (a
    sorted set's pairs as it holds them: ZUNION of one key, ZDIFF) is kept as it is: a
    check costs a third of the two sorts."""
    runs = []
    for part in _slices(items):
        runs.append(part if _in_order(part) else _ordered(part))
        if len(part) == SLICE:
            yield TURN
    return runs


def _in_order(pairs: list[Pair]) -> bool:
    """Whether the pairs are by score, then member."""
    return all(map(_not_after, pairs, islice(pairs, 1, None)))


def _not_after(a: Pair, b: Pair) -> bool:
    return a[1] < b[1] or (a[1] == b[1] and a[0] <= b[0])


MERGED_SHARE = 4
"""A reply merged from several runs is encoded this fraction of bulks.STREAM_ROWS rows a
loop turn: a heap's merge of 62 runs (a ZUNION of a million members) and the encoding
of STREAM_ROWS rows took 84 ms."""


class Merged:
    """The runs of `ordered_runs` merged, pulled as a reply takes its rows (positions
    from 0 up; the rows from the lowest position asked last are kept for a second look,
    as the reply's size estimate and its first slice both read the first rows). Runs
    that follow one another in order (each one's last pair before the next one's first)
    are read one after the other, not through a heap. Each run lets go of its pairs as
    they are taken, and the rows sent are let go of: held to the end, a million pairs
    were freed in the turn of the last slice (81 ms)."""

    def __init__(self, runs: list[list[Pair]]) -> None:
        self.n = sum(map(len, runs))
        chained = all(_not_after(a[-1], b[0]) for a, b in pairwise(runs))
        self._merge: Iterator[Pair] = (_taken(runs) if chained
                                       else heapq.merge(*map(_popped, runs), key=_by_score))
        # rows a loop turn when the reply is encoded (bulks.reply's per_turn; 0: its own)
        self.per_turn = 0 if chained else max(1, bulks.STREAM_ROWS // MERGED_SHARE)
        self._pulled: list[Pair] = quiet([])
        self._base = 0  # the position of _pulled[0]

    def __len__(self) -> int:
        return self.n

    def rows(self, lo: int, hi: int) -> list[Pair]:
        pulled = self._pulled
        if lo > self._base:  # the rows before lo are sent
            del pulled[:lo - self._base]
            self._base = lo
        short = hi - self._base - len(pulled)
        if short > 0:
            pulled += islice(self._merge, short)
            if self._base + len(pulled) >= self.n:
                self._merge = iter(())  # (a chain's last run let go of)
        return pulled[lo - self._base:hi - self._base]


def _taken(runs: list[list[Pair]]) -> Iterator[Pair]:
    """The runs' pairs one run after the other, each run emptied once read (the last
    one when the reader lets go of this: Merged, once it has taken every row)."""
    for run in runs:
        try:
            yield from run
        finally:
            run.clear()


def _popped(run: list[Pair]) -> Iterator[Pair]:
    """A run's pairs in order, each taken out of it as it is read."""
    run.reverse()
    pop = run.pop
    while run:
        yield pop()


def _setop(name: str, op: str, store: bool, card: bool, args: list[bytes],
           proto: int) -> Plan | bytes:
    at = 2 if store else 1
    nkeys = parse_int(args[at])
    if nkeys is None:
        return ERR_NOT_INT
    if nkeys < 1:
        return resp.error(f"ERR at least 1 input key is needed for '{name}' command")
    if nkeys > len(args) - at - 1:
        return ERR_SYNTAX
    keys = args[at + 1:at + 1 + nkeys]
    opts = _parse_options(args[at + 1 + nkeys:], nkeys, op, store, card)
    return _setop_plan(op, store, card, args[1], keys, opts, proto)


def _intercard_plan(keys: list[bytes], opts: SetOp | bytes) -> Plan:
    """ZINTERCARD: the smallest key's members filtered through the others by steps
    (sets.counted_intersection), none of them read whole but the smallest."""
    n = yield from counted_intersection(keys, ("set", "zset"), b"dyn.zfilter",
                                        opts if isinstance(opts, bytes) else None)
    if isinstance(n, bytes):
        return n
    assert not isinstance(opts, bytes)
    return resp.integer(min(n, opts.limit) if opts.limit else n)


def _setop_plan(op: str, store: bool, card: bool, dst: bytes, keys: list[bytes],
                opts: SetOp | bytes, proto: int) -> Plan:
    if card and op == INTER:
        return (yield from _intercard_plan(keys, opts))
    if store and op == UNION and len(keys) == 1:
        return (yield from _copy_plan(dst, keys[0], opts))
    inputs: list[list[Pair]] = []
    for key in keys:
        t, items = yield [b"dyn.zread", key]
        if t == "zset" or t == "set":
            inputs.append((yield from _pairs(items, t == "zset")))
        elif t is None:
            inputs.append([])
        else:
            return WRONGTYPE
    if isinstance(opts, bytes):
        return opts
    if op == UNION:
        result = yield from union(inputs, opts)
    elif op == INTER:
        result = yield from inter(inputs, opts)
    else:
        result = yield from diff(inputs)
    yield from _release(inputs)
    if card:
        return resp.integer(len(result))
    if store:  # the destination orders them
        n = yield from store_steps(dst, "zset", result)
        return resp.integer(n)
    runs = yield from ordered_runs(result)
    yield from _release([result])  # (the runs hold the pairs now: Merged lets go of them)
    merged = Merged(runs)
    withscores = opts.withscores

    def columns(lo: int, hi: int) -> list[list[bytes]]:
        part = merged.rows(lo, hi)
        return pair_columns(list(map(_first, part)), list(map(_second, part)), withscores,
                            proto)

    return bulks.reply(pair_head(merged.n, withscores, proto), merged.n, columns,
                       per_turn=merged.per_turn)


def _copy_plan(dst: bytes, src: bytes, opts: SetOp | bytes) -> Plan:
    """ZUNIONSTORE of one key: its pairs as the set holds them (dyn.zread), weighted a
    slice a step as they are written (slicedwrite.Ranked)."""
    t, items = yield [b"dyn.zread", src]
    if t is not None and t != "zset" and t != "set":
        return WRONGTYPE
    if isinstance(opts, bytes):
        return opts
    if t == "set":
        items = [(1.0, m) for m in items]
    n = yield from store_steps(dst, "zset", Ranked(items, opts.weights[0]))
    return resp.integer(n)


def _register(name: str, op: str, store: bool, card: bool, summary: str,
              since: str) -> None:
    flags: tuple[str, ...] = ("write", "denyoom", "movablekeys") if store else \
        ("readonly", "movablekeys")
    arity, keys = (-4, (1, 1, 1)) if store else (-3, (0, 0, 0))

    def build(args: list[bytes], proto: int) -> Plan | bytes:
        return _setop(name, op, store, card, args, proto)

    plan_command(name, arity, flags, *keys, "sorted_set", summary, since)(build)


_register("zunion", UNION, False, False, "Add multiple sorted sets", "6.2.0")
_register("zinter", INTER, False, False, "Intersect multiple sorted sets", "6.2.0")
_register("zdiff", DIFF, False, False, "Subtract multiple sorted sets", "6.2.0")
_register("zunionstore", UNION, True, False, "Add multiple sorted sets and store the "
          "resulting sorted set in a new key", "2.0.0")
_register("zinterstore", INTER, True, False, "Intersect multiple sorted sets and store the "
          "resulting sorted set in a new key", "2.0.0")
_register("zdiffstore", DIFF, True, False, "Subtract multiple sorted sets and store the "
          "resulting sorted set in a new key", "6.2.0")
_register("zintercard", INTER, False, True, "Intersect multiple sorted sets and return the "
          "cardinality of the result", "7.0.0")


# --- ZRANGESTORE, ZMPOP --------------------------------------------------------------------


@plan_command("zrangestore", -5, ("write", "denyoom"), 1, 2, 1, "sorted_set",
              "Store a range of members from sorted set into another key", "6.2.0")
def build_zrangestore(args: list[bytes], proto: int) -> Plan | bytes:
    q = parse_range_query(args, 2, True)
    if isinstance(q, bytes):
        return q
    return _zrangestore(args[1], args[2], args[3:])


def _zrangestore(dst: bytes, src: bytes, rest: list[bytes]) -> Plan:
    t, items = yield [b"dyn.zranked", src, *rest]
    if t is not None and t != "zset":
        return WRONGTYPE
    n = yield from store_steps(dst, "zset", Ranked(items))
    return resp.integer(n)


@plan_command("zmpop", -4, ("write", "movablekeys"), 0, 0, 0, "sorted_set",
              "Remove and return members with scores in a sorted set", "7.0.0")
def build_zmpop(args: list[bytes], proto: int) -> Plan | bytes:
    parsed = parse_zmpop(args, 1)
    return parsed if isinstance(parsed, bytes) else _zmpop(*parsed, proto)


def parse_zmpop(args: list[bytes], numkeys_at: int) -> tuple[list[bytes], bytes, int] | bytes:
    """ZMPOP's (and BZMPOP's) arguments from `numkeys`: (keys, b"min" or b"max", count),
    or the error Redis gives."""
    return parse_mpop_args(args, numkeys_at, _min_or_max)


def _min_or_max(word: bytes) -> bytes | None:
    where = word.lower()
    return where if where in (b"min", b"max") else None


def _zmpop(keys: list[bytes], where: bytes, count: int, proto: int) -> Plan:
    """Pop from the first key that holds members (each key tried in order, one step
    each: a key filled after its turn is not seen)."""
    for key in keys:
        t, popped = yield [b"dyn.zpop", key, where, b"%d" % count]
        if t is None:
            continue
        if t != "zset":
            return WRONGTYPE
        return zmpop_reply(shown(key), [(m, s) for m, s in popped], proto)
    return resp.NIL3 if proto >= 3 else resp.NIL_ARRAY2


def zmpop_reply(key: bytes, items: list[Pair], proto: int) -> bytes:
    """[key, members and scores], as ZMPOP answers."""
    return resp.array([resp.bulk(key), pairs_reply(items, True, 3)
                       if proto >= 3 else _nested(items)])


def _nested(items: list[Pair]) -> bytes:
    """[[member, score], ...] with scores as RESP2 bulk strings (ZMPOP nests in RESP2 too)."""
    return resp.array([b"*2\r\n" + resp.bulk(m) + zfloat.reply(s, 2) for m, s in items])

