"""List commands: a list is a sequence CRDT (core/listpos.py; listops.py says how pops
and moves behave under concurrency).

Every item is its own record at a position that never changes: a push writes, sends
and hashes one item; concurrent pushes through different nodes are all kept, in one
order every replica agrees on. Index access (LINDEX, LRANGE, LSET, LTRIM's bounds) goes
through the view's sorted positions, O(log n) to reach an index; LINSERT, LREM and LPOS
scan the items, O(n) as in Redis. LSET writes a new version of that item (concurrent
LSETs: the last writer wins; an LSET concurrent with a pop or LREM of the item keeps
it). LMOVE and RPOPLPUSH over two keys are not atomic (listops.move).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import partial

from ..core.collview import KeyView
from ..core.records import LIST
from ..resp import encode as resp
from ..resp.bulks import STREAM_ROWS, SlicedReply, array_reply
from ..resp.bulks import array as bulk_array
from .collection import WRONGTYPE, Built, Plan, collection_command, plan_command, typed_op
from .databases import shown
from .listops import LEFT, RIGHT, WRONG, move, parse_where, pop_first, pop_items, push_items
from .mpop import parse_mpop_args
from .table import ERR_NOT_INT, ERR_SYNTAX, err_arity, parse_int

ERR_NO_KEY = resp.error("ERR no such key")
ERR_INDEX = resp.error("ERR index out of range")
ERR_POSITIVE = resp.error("ERR value is out of range, must be positive")
ERR_RANK_ZERO = resp.error(
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list")
ERR_COUNT_NEGATIVE = resp.error("ERR COUNT can't be negative")
ERR_MAXLEN_NEGATIVE = resp.error("ERR MAXLEN can't be negative")

LONG_MIN = -(2**63)
WRITE, WRITE_NEW, WRITE_FAST = ("write",), ("write", "denyoom"), ("write", "fast")


def matches(v: KeyView, element: bytes, forward: bool = True, most: int = 0
            ) -> Iterator[tuple[int, bytes]]:
    """(index from the end searched from, position) of each item equal to `element`, from
    the head (`forward`) or the tail, among the first `most` items (0: all). The items
    holding it are found by one C loop over the values (KeyView.holding), each one's index
    from its position's rank: LPOS, LREM and LINSERT of 500,000 items compared them one by
    one in Python (0.5 s a call), of a million looking each value up (0.3 s)."""
    order = v.lorder
    n = len(order)
    hits = v.holding(LIST, element)
    for pos in hits if forward else reversed(hits):
        i = order.index(pos)
        at = i if forward else n - 1 - i
        if most and at >= most:
            return
        yield at, pos


PUSH_FLAGS = ("write", "denyoom", "fast")


def nil_array(proto: int) -> bytes:
    return resp.NIL_ARRAY2 if proto < 3 else resp.NIL3


def bulks(items: list[bytes]) -> bytes:
    return bulk_array(items)


def _positive(raw: bytes, err: bytes) -> int | bytes:
    """A count Redis parses with getPositiveLong: `err` for anything but 0..2**63-1."""
    n = parse_int(raw)
    return err if n is None or n < 0 else n


def _index(v: KeyView, index: int) -> bytes | None:
    """The position at a Redis index (negative: from the tail), or None."""
    order = v.lorder
    if index < 0:
        index += len(order)
    if 0 <= index < len(order):
        return order[index]  # type: ignore[no-any-return]
    return None


def _range(llen: int, start: int, end: int) -> tuple[int, int]:
    """LRANGE/LTRIM bounds as Redis computes them: [start, end) in 0..llen, maybe empty."""
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    start = max(start, 0)
    if start > end or start >= llen:
        return 0, 0
    return start, min(end, llen - 1) + 1


# --- pushes ----------------------------------------------------------------------------


def _push(args: list[bytes], where: int, only_existing: bool) -> Built:
    key, values = args[1], args[2:]

    def body(v: KeyView) -> bytes:
        return resp.integer(push_items(v, where, values))

    return key, typed_op("list", body, resp.ZERO if only_existing else None)


@collection_command("lpush", -3, PUSH_FLAGS, 1, 1, 1, "list",
                    "Prepend one or multiple elements to a list")
def build_lpush(args: list[bytes], proto: int) -> Built | bytes:
    return _push(args, LEFT, False)


@collection_command("rpush", -3, PUSH_FLAGS, 1, 1, 1, "list",
                    "Append one or multiple elements to a list")
def build_rpush(args: list[bytes], proto: int) -> Built | bytes:
    return _push(args, RIGHT, False)


@collection_command("lpushx", -3, PUSH_FLAGS, 1, 1, 1, "list",
                    "Prepend an element to a list, only if the list exists", "2.2.0")
def build_lpushx(args: list[bytes], proto: int) -> Built | bytes:
    return _push(args, LEFT, True)


@collection_command("rpushx", -3, PUSH_FLAGS, 1, 1, 1, "list",
                    "Append an element to a list, only if the list exists", "2.2.0")
def build_rpushx(args: list[bytes], proto: int) -> Built | bytes:
    return _push(args, RIGHT, True)


@collection_command("linsert", 5, WRITE_NEW, 1, 1, 1, "list",
                    "Insert an element before or after another element in a list", "2.2.0")
def build_linsert(args: list[bytes], proto: int) -> Built | bytes:
    key, pivot, value = args[1], args[3], args[4]
    side = args[2].upper()
    if side not in (b"BEFORE", b"AFTER"):
        return ERR_SYNTAX

    def body(v: KeyView) -> bytes:
        order = v.lorder
        for i, pos in matches(v, pivot):  # O(n) from the head, as Redis seeks the pivot
            if side == b"BEFORE":
                v.list_insert(order[i - 1] if i else None, pos, value)
            else:
                v.list_insert(pos, order[i + 1] if i + 1 < len(order) else None, value)
            return resp.integer(v.count(LIST))
        return resp.integer(-1)

    return key, typed_op("list", body, resp.ZERO)


# --- pops ------------------------------------------------------------------------------


def _pop(args: list[bytes], proto: int, where: int) -> Built | bytes:
    if len(args) > 3:
        return err_arity(args[0].decode("utf-8", "replace").lower())
    count: int | None = None
    if len(args) == 3:
        parsed = _positive(args[2], ERR_POSITIVE)
        if isinstance(parsed, bytes):
            return parsed
        count = parsed

    def body(v: KeyView) -> bytes:
        if count is None:
            return resp.bulk(pop_items(v, where, 1)[0])
        return bulks(pop_items(v, where, count))

    missing = resp.nil(proto) if count is None else nil_array(proto)
    return args[1], typed_op("list", body, missing)


@collection_command("lpop", -2, WRITE_FAST, 1, 1, 1, "list",
                    "Remove and get the first elements in a list")
def build_lpop(args: list[bytes], proto: int) -> Built | bytes:
    return _pop(args, proto, LEFT)


@collection_command("rpop", -2, WRITE_FAST, 1, 1, 1, "list",
                    "Remove and get the last elements in a list")
def build_rpop(args: list[bytes], proto: int) -> Built | bytes:
    return _pop(args, proto, RIGHT)


def parse_mpop(args: list[bytes], numkeys_at: int) -> tuple[list[bytes], int, int] | bytes:
    """LMPOP's (and BLMPOP's) arguments from `numkeys`: (keys, where, count), or the
    error Redis gives."""
    return parse_mpop_args(args, numkeys_at, parse_where)


def _lmpop(keys: list[bytes], where: int, count: int, proto: int) -> Plan:
    got = yield from pop_first(keys, where, count)
    if got is None:
        return nil_array(proto)
    if got == WRONG:
        return WRONGTYPE
    key, items = got
    return lmpop_reply(shown(key), items)


def lmpop_reply(key: bytes, items: list[bytes]) -> bytes:
    """[key, items], as LMPOP answers."""
    return resp.array([resp.bulk(key), bulk_array(items)])


@plan_command("lmpop", -4, ("write", "movablekeys"), 0, 0, 0, "list",
              "Pop elements from a list", "7.0.0")
def build_lmpop(args: list[bytes], proto: int) -> Plan | bytes:
    parsed = parse_mpop(args, 1)
    return parsed if isinstance(parsed, bytes) else _lmpop(*parsed, proto)


def _lmove(src: bytes, dst: bytes, wherefrom: int, whereto: int, proto: int) -> Plan:
    got = yield from move(src, dst, wherefrom, whereto)
    if got is None:
        return resp.nil(proto)
    if got == WRONG:
        return WRONGTYPE
    return resp.bulk(got)


@plan_command("lmove", 5, WRITE_NEW, 1, 2, 1, "list",
              "Pop an element from a list, push it to another list and return it", "6.2.0")
def build_lmove(args: list[bytes], proto: int) -> Plan | bytes:
    wherefrom, whereto = parse_where(args[3]), parse_where(args[4])
    if wherefrom is None or whereto is None:
        return ERR_SYNTAX
    return _lmove(args[1], args[2], wherefrom, whereto, proto)


@plan_command("rpoplpush", 3, WRITE_NEW, 1, 2, 1, "list",
              "Remove the last element in a list, prepend it to another list and return it",
              "1.2.0")
def build_rpoplpush(args: list[bytes], proto: int) -> Plan | bytes:
    return _lmove(args[1], args[2], RIGHT, LEFT, proto)


# --- reads -----------------------------------------------------------------------------


@collection_command("llen", 2, ("readonly", "fast"), 1, 1, 1, "list",
                    "Get the length of a list")
def build_llen(args: list[bytes], proto: int) -> Built | bytes:
    def body(v: KeyView) -> bytes:
        return resp.integer(v.count(LIST))

    return args[1], typed_op("list", body)


@collection_command("lindex", 3, ("readonly",), 1, 1, 1, "list",
                    "Get an element from a list by its index")
def build_lindex(args: list[bytes], proto: int) -> Built | bytes:
    index = parse_int(args[2])

    def body(v: KeyView) -> bytes:
        if index is None:  # after the key's type: Redis looks the key up first
            return ERR_NOT_INT
        pos = _index(v, index)
        return resp.nil(proto) if pos is None else resp.bulk(v.get(LIST, pos))

    return args[1], typed_op("list", body, resp.nil(proto))


@collection_command("lrange", 4, ("readonly",), 1, 1, 1, "list",
                    "Get a range of elements from a list")
def build_lrange(args: list[bytes], proto: int) -> Built | bytes:
    start, end = parse_int(args[2]), parse_int(args[3])
    if start is None or end is None:
        return ERR_NOT_INT

    def body(v: KeyView) -> bytes | SlicedReply:
        order = v.lorder
        lo, hi = _range(len(order), start, end)
        if hi - lo <= STREAM_ROWS:
            return array_reply(v.values_at(LIST, order.islice(lo, hi)))
        # The positions copied now, their values looked up as the reply goes out
        # (a million lookups held the loop 240 ms): core/viewpin.py.
        return array_reply(list(order.islice(lo, hi)), pin=v.pin(LIST), owned=True)

    return args[1], typed_op("list", body)


def _lpos_args(args: list[bytes]) -> tuple[int, int, int] | bytes:
    """(rank, count, maxlen) of LPOS; count -1 when not given."""
    rank, count, maxlen = 1, -1, 0
    j = 3
    while j < len(args):
        opt = args[j].upper()
        more = j + 1 < len(args)
        if opt == b"RANK" and more:
            j += 1
            n = parse_int(args[j])
            if n is None:
                return ERR_NOT_INT
            if n == 0:
                return ERR_RANK_ZERO
            rank = n
        elif opt == b"COUNT" and more:
            j += 1
            parsed = _positive(args[j], ERR_COUNT_NEGATIVE)
            if isinstance(parsed, bytes):
                return parsed
            count = parsed
        elif opt == b"MAXLEN" and more:
            j += 1
            parsed = _positive(args[j], ERR_MAXLEN_NEGATIVE)
            if isinstance(parsed, bytes):
                return parsed
            maxlen = parsed
        else:
            return ERR_SYNTAX
        j += 1
    return rank, count, maxlen


def _wrap(n: int) -> int:
    """`n` as C's signed 64-bit arithmetic leaves it."""
    return (n - LONG_MIN) % 2**64 + LONG_MIN


@collection_command("lpos", -3, ("readonly",), 1, 1, 1, "list",
                    "Return the index of matching elements on a list", "6.0.6")
def build_lpos(args: list[bytes], proto: int) -> Built | bytes:
    element = args[2]
    parsed = _lpos_args(args)
    if isinstance(parsed, bytes):
        return parsed
    rank, count, maxlen = parsed
    forward = rank > 0
    if not forward:
        rank = _wrap(-rank)  # RANK -9223372036854775808 stays negative, as in Redis
    missing = resp.EMPTY_ARRAY if count != -1 else resp.nil(proto)
    # (a module function bound with partial, not a closure: compiled, a closure naming a
    # function its builder names too (`_wrap`) is kept in the builder's environment,
    # which the closure holds: a reference cycle per LPOS, freed only by the collector)
    return args[1], typed_op("list", partial(_lpos, element, forward, rank, count, maxlen,
                                             proto), missing)


def _lpos(element: bytes, forward: bool, rank: int, count: int, maxlen: int, proto: int,
          v: KeyView) -> bytes:
    llen = v.count(LIST)
    found: list[int] = []
    seen = 0
    for index, _ in matches(v, element, forward, maxlen):
        seen += 1
        if seen >= rank:
            found.append(index if forward else llen - index - 1)
            if count == -1 or (count and _wrap(seen - rank + 1) >= count):
                break
    if count != -1:
        return resp.array([resp.integer(i) for i in found])
    return resp.integer(found[0]) if found else resp.nil(proto)


# --- updates ---------------------------------------------------------------------------


@collection_command("lset", 4, WRITE_NEW, 1, 1, 1, "list",
                    "Set the value of an element in a list by its index")
def build_lset(args: list[bytes], proto: int) -> Built | bytes:
    index, value = parse_int(args[2]), args[3]

    def body(v: KeyView) -> bytes:
        if index is None:
            return ERR_NOT_INT
        pos = _index(v, index)
        if pos is None:
            return ERR_INDEX
        v.put(LIST, pos, value)  # a new version of this item: the last LSET wins
        return resp.OK

    return args[1], typed_op("list", body, ERR_NO_KEY)


@collection_command("lrem", 4, WRITE, 1, 1, 1, "list", "Remove elements from a list")
def build_lrem(args: list[bytes], proto: int) -> Built | bytes:
    count, element = parse_int(args[2]), args[3]
    if count is None:
        return ERR_NOT_INT

    def body(v: KeyView) -> bytes:
        limit = abs(count)
        doomed: list[bytes] = []
        for _, pos in matches(v, element, count >= 0):
            doomed.append(pos)
            if len(doomed) == limit:
                break
        v.remove(LIST, doomed)
        return resp.integer(len(doomed))

    return args[1], typed_op("list", body)


@collection_command("ltrim", 4, WRITE, 1, 1, 1, "list", "Trim a list to the specified range")
def build_ltrim(args: list[bytes], proto: int) -> Built | bytes:
    start, end = parse_int(args[2]), parse_int(args[3])
    if start is None or end is None:
        return ERR_NOT_INT

    def body(v: KeyView) -> bytes:
        order = v.lorder
        llen = len(order)
        lo, hi = _range(llen, start, end)
        if lo >= hi:  # nothing kept
            lo = hi = llen
        v.remove(LIST, itertools.chain(order.islice(0, lo), order.islice(hi, llen)),
                 lo + llen - hi, lambda: order.islice(lo, hi))
        return resp.OK

    return args[1], typed_op("list", body)
