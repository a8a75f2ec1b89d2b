"""Set commands: a set is an add-wins observed-remove set of members (core/elements.py).

Each member is its own record (data b""): SADD of one member writes, sends and hashes
that member only. SADD writes a new version even of a member already present, so that
an SREM through another node concurrent with it removes only the version it saw and
the member stays (add wins); SREM and SPOP remove only the versions they observed.

Commands over several keys (SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD,
SMOVE) are plans of single-key steps run where each key lives (commands/collection.py),
one after the other: they are not atomic across keys. As in Redis 7.0, every source key
is looked up, and any one holding another type answers WRONGTYPE, even after a missing
or empty source that already decides the result (an intersection asks every key's type
and size before it reads a member). Intersections read
the smallest set and only ask the others which of its members they hold, so the
members that cross between nodes are those of the smallest set, not of every set.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterable, KeysView, Sequence
from itertools import filterfalse, islice
from typing import Any, overload

import msgpack

from ..core.collview import BULK_RATIO, KeyView
from ..core.records import KIND_OF_TYPE, SET
from ..resp import bulks
from ..resp import encode as resp
from .collection import (
    TURN,
    WRONGTYPE,
    Built,
    Plan,
    collection_command,
    internal_step,
    on_string,
    plan_command,
    scan_order,
    typed_op,
)
from .scanning import EMPTY_SCAN, scan_elements
from .slicedwrite import store_steps
from .table import ERR_NOT_INT, ERR_SYNTAX, numkeys_keys, parse_int

# Distinct random positions in C (dynredis/csrc/randpick.c), built with the compiled
# modules; else distinct_in_python.
_distinct_c: Callable[[int, int, int], bytes] | None
try:
    from .._randpick import distinct as _distinct_c
except ImportError:
    _distinct_c = None

ERR_NOT_POSITIVE = resp.error("ERR value is out of range, must be positive")
ERR_RANDOM_RANGE = resp.error("ERR value is out of range, value must between "
                              "-9223372036854775807 and 9223372036854775807")
ERR_NUMKEYS = resp.error("ERR numkeys should be greater than 0")
ERR_NUMKEYS_ARGS = resp.error("ERR Number of keys can't be greater than number of args")
ERR_LIMIT = resp.error("ERR LIMIT can't be negative")

# SRANDMEMBER key -count answers |count| members, repeats allowed, whatever the set's
# size: Redis builds any such reply (a count of -2^62 makes it allocate without end).
# A node refuses counts beyond this rather than exhaust its memory.
RANDOM_REPEATS_MAX = 1_000_000
ERR_RANDOM_REPEATS = resp.error(
    f"ERR value is out of range, a negative count asks for at most {RANDOM_REPEATS_MAX} "
    "members")

INT64_MIN = -(2**63)


def set_reply(members: Iterable[bytes], proto: int) -> bytes | bulks.SlicedReply:
    """Members as a RESP3 set (an array in RESP2), as Redis answers SMEMBERS, SINTER,
    SUNION, SDIFF and SPOP with a count."""
    if isinstance(members, list):
        return bulks.array_reply(members, b"~" if proto >= 3 else b"*")
    return bulks.array_reply(list(members), b"~" if proto >= 3 else b"*", owned=True)


_EMPTY_SET = (b"*0\r\n", b"~0\r\n")  # set_reply of no member: RESP2, RESP3


def lookup(v: KeyView) -> bytes | bool:
    """WRONGTYPE if the key holds another type, else whether it holds a set. A missing
    or expired key is an empty set: an expired set's members stay in the view until a
    write starts a new set there, so nothing may read them before asking this."""
    t = v.type()
    if t is None:
        return False
    return True if t == "set" else WRONGTYPE


def _is_error(reply: Any) -> bool:
    return isinstance(reply, bytes) and reply[:1] == b"-"


# --- random members ---------------------------------------------------------------------


def _at(members: KeysView[bytes], indexes: list[int]) -> list[bytes]:
    """The members at sorted positions (repeats allowed) of a walk over the view, in
    random order: one pass, no copy of the set."""
    out: list[bytes] = []
    it = iter(members)
    pos = 0
    last = b""
    for i in indexes:
        if i >= pos:
            last = next(islice(it, i - pos, None))
            pos = i + 1
        out.append(last)
    random.shuffle(out)
    return out


def random_indexes(n: int, k: int) -> list[int]:
    """k positions drawn from range(n) with repeats, by C loops: 64 random bits each,
    taken modulo n (a bias below 2^-32 for any n a node holds). SRANDMEMBER k -200000
    spent 60 ms drawing them one call at a time."""
    raw = random.getrandbits(64 * k).to_bytes(8 * k, "little") if k else b""
    return list(map(n.__rmod__, memoryview(raw).cast("Q")))


def distinct_indexes(n: int, k: int) -> Sequence[int]:
    """k distinct positions of range(n) (0 <= k <= n): drawn with repeats and kept at
    their first draw until k are held, in the order drawn (the first k distinct of a
    uniform stream: a uniform sample in random order); past half of n, the n - k left
    out are drawn so and the rest kept in position order (as Redis, which removes random
    elements from a copy there). In C (dynredis/csrc/randpick.c, a bitmap of the drawn)
    where it is built and k is more than a few: dict.fromkeys over half a million draws
    held HRANDFIELD's or SRANDMEMBER's loop turn ~110 ms (random.sample's Python loop,
    before it, ~0.5 µs a pick)."""
    if _distinct_c is not None and k > DISTINCT_IN_PYTHON:
        return memoryview(_distinct_c(n, k, random.getrandbits(64))).cast("Q")
    return distinct_in_python(n, k)


DISTINCT_IN_PYTHON = 64  # fewer picks: the Python loops cost less than the C call


def distinct_in_python(n: int, k: int) -> list[int]:
    """distinct_indexes by C loops of Python's (the fallback of the C helper)."""
    if k * 2 > n:
        left_out = set(distinct_in_python(n, n - k))
        return list(filterfalse(left_out.__contains__, range(n)))
    held: dict[int, None] = {}
    while len(held) < k:
        wanted = k - len(held)  # (a draw of 1.5x the wanted gives them, mostly, up to n/2)
        held.update(dict.fromkeys(random_indexes(n, wanted + wanted // 2 + 16)))
    return list(islice(held, k))


class RandomIndexes(Sequence[int]):
    """`k` positions drawn from range(n) with repeats (`random_indexes`), each slice
    drawn when a reply takes it (bulks.array_reply's `index`): a million drawn at once
    held SRANDMEMBER's and HRANDFIELD's turn ~100 ms. The slice last taken is kept, so
    that the columns of one row slice (a field and its value) see the same draw."""

    __slots__ = ("n", "k", "_last", "_drawn")

    def __init__(self, n: int, k: int) -> None:
        self.n = n
        self.k = k
        self._last = (-1, -1)
        self._drawn: list[int] = []

    def __len__(self) -> int:
        return self.k

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> list[int]: ...

    def __getitem__(self, i: int | slice) -> int | list[int]:
        if not isinstance(i, slice):
            return self[i:i + 1][0]
        lo, hi, step = i.indices(self.k)
        assert step == 1
        if (lo, hi) != self._last:
            self._last, self._drawn = (lo, hi), random_indexes(self.n, max(0, hi - lo))
        return self._drawn


class Gathered(Sequence[bytes]):
    """items[i] for i in `picks`, gathered a slice at a time as they are read: SPOP's
    picks, read by its reply and by the removal records made a turn's worth at a time
    (KeyView.remove_step). Gathered at once, 250,000 picks of a million members held
    the command's turn ~70 ms."""

    __slots__ = ("items", "picks")

    def __init__(self, items: list[bytes], picks: Sequence[int]) -> None:
        self.items = items
        self.picks = picks

    def __len__(self) -> int:
        return len(self.picks)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...

    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return list(map(self.items.__getitem__, self.picks[i]))
        return self.items[self.picks[i]]


def random_members(members: KeysView[bytes], count: int) -> list[bytes]:
    """Redis' SRANDMEMBER/SPOP count rules: a positive count picks that many distinct
    members (every member at most), a negative one |count| members with repeats."""
    n = len(members)
    if n == 0 or count == 0:
        return []
    if not walked(n, count):  # a copy of the set's references costs less than the walk
        picked = random_pick(n, count)
        return list(members) if picked is None else list(map(list(members).__getitem__,
                                                               picked))
    if count < 0:
        return _at(members, sorted(random.randrange(n) for _ in range(-count)))
    return _at(members, sorted(random.sample(range(n), count)))


WALK_MAX = 10_000
"""Most picks found by a walk over the view (`_at`, a Python step each: ~1.5 µs)."""


def walked(n: int, count: int) -> bool:
    """Whether `count` picks among n are found where they are (a walk over a set's view,
    random_members; a lookup each in a sorted set's order, ZRANDMEMBER): few, next to
    the collection and at all; else its references are copied and gathered at the
    picks (a reply slice at a time where the reply streams)."""
    few = -count * 4 < n if count < 0 else count * 100 < n
    return few and abs(count) <= WALK_MAX


def random_pick(n: int, count: int) -> Sequence[int] | None:
    """Positions among n items by Redis' RANDFIELD/RANDMEMBER count rules: a positive
    count picks that many distinct items, a negative one that many with repeats (drawn
    a slice at a time as the reply takes them); None: all of them, in their own order
    (a count as large as n or more: Redis gives its dict's order)."""
    if not n or count == 0:
        return []
    if count < 0:
        return RandomIndexes(n, -count)
    if count >= n:
        return None
    return distinct_indexes(n, count)


# --- single-key commands ----------------------------------------------------------------


@collection_command("sadd", -3, ("write", "denyoom", "fast"), 1, 1, 1, "set",
                    "Add one or more members to a set")
def build_sadd(args: list[bytes], proto: int) -> Built | bytes:
    key, members = args[1], list(dict.fromkeys(args[2:]))

    def op(v: KeyView) -> bytes:
        found = lookup(v)
        if isinstance(found, bytes):
            return found
        get = v.get
        added = sum(1 for m in members if get(SET, m) is None) if found else len(members)
        # a new version even if present: add wins (docstring); members without a
        # record in one batch (KeyView.put_many)
        v.put_many(SET, [(m, b"") for m in members])
        return resp.integer(added)

    return key, op


@collection_command("srem", -3, ("write", "fast"), 1, 1, 1, "set",
                    "Remove one or more members from a set")
def build_srem(args: list[bytes], proto: int) -> Built | bytes:
    key, members = args[1], list(dict.fromkeys(args[2:]))

    def body(v: KeyView) -> bytes:
        removed = 0
        for m in members:
            if v.get(SET, m) is not None:
                removed += 1
                v.put(SET, m, None)
        return resp.integer(removed)

    return key, typed_op("set", body, resp.ZERO)


@collection_command("smembers", 2, ("readonly",), 1, 1, 1, "set",
                    "Get all the members in a set")
def build_smembers(args: list[bytes], proto: int) -> Built | bytes:
    def body(v: KeyView) -> bytes | bulks.SlicedReply:
        return set_reply(v.members(SET), proto)

    return args[1], typed_op("set", body, _EMPTY_SET[proto >= 3])


@collection_command("sismember", 3, ("readonly", "fast"), 1, 1, 1, "set",
                    "Determine if a given value is a member of a set")
def build_sismember(args: list[bytes], proto: int) -> Built | bytes:
    key, m = args[1], args[2]

    def body(v: KeyView) -> bytes:
        return resp.ONE if v.get(SET, m) is not None else resp.ZERO

    return key, typed_op("set", body, resp.ZERO)


@collection_command("smismember", -3, ("readonly", "fast"), 1, 1, 1, "set",
                    "Returns the membership associated with the given elements for a set",
                    "6.2.0")
def build_smismember(args: list[bytes], proto: int) -> Built | bytes:
    key, members = args[1], args[2:]

    def body(v: KeyView) -> bytes:
        return resp.array([resp.ONE if v.get(SET, m) is not None else resp.ZERO
                           for m in members])

    return key, typed_op("set", body, resp.array([resp.ZERO] * len(members)))


@collection_command("scard", 2, ("readonly", "fast"), 1, 1, 1, "set",
                    "Get the number of members in a set")
def build_scard(args: list[bytes], proto: int) -> Built | bytes:
    def body(v: KeyView) -> bytes:
        return resp.integer(v.count(SET))

    return args[1], typed_op("set", body, resp.ZERO)


def _optional_count(args: list[bytes], not_int: bytes) -> int | None | bytes:
    """SPOP's and SRANDMEMBER's `key [count]`: the count, None if not given, or the error
    (ERR_SYNTAX for more arguments, `not_int` for a count that is no integer)."""
    if len(args) > 3:
        return ERR_SYNTAX
    if len(args) < 3:
        return None
    count = parse_int(args[2])
    return not_int if count is None else count


@collection_command("spop", -2, ("write", "fast"), 1, 1, 1, "set",
                    "Remove and return one or multiple random members from a set")
def build_spop(args: list[bytes], proto: int) -> Built | bytes:
    key = args[1]
    count = _optional_count(args, ERR_NOT_POSITIVE)
    if isinstance(count, bytes):
        return count
    if count is not None and count < 0:
        return ERR_NOT_POSITIVE

    def body(v: KeyView) -> bytes | bulks.SlicedReply:
        members = v.members(SET)
        n = len(members)
        if count is None:
            if n == 0:
                return resp.nil(proto)
            (m,) = random_members(members, 1)
            v.put(SET, m, None)
            return resp.bulk(m)
        if 0 < count < n and (n - count) * BULK_RATIO > count and not walked(n, count):
            # (most survive: removal records a turn's worth at a time, the picks
            # gathered as those and the reply read them)
            items = list(members)
            picked = Gathered(items, distinct_indexes(n, count))
            v.remove(SET, picked, count)
            return bulks.array_reply(items, b"~" if proto >= 3 else b"*", index=picked.picks)
        popped = random_members(members, count)
        v.remove(SET, list(popped))
        return set_reply(popped, proto)

    missing = resp.nil(proto) if count is None else _EMPTY_SET[proto >= 3]
    return key, typed_op("set", body, missing)


@collection_command("srandmember", -2, ("readonly",), 1, 1, 1, "set",
                    "Get one or multiple random members from a set")
def build_srandmember(args: list[bytes], proto: int) -> Built | bytes:
    key = args[1]
    count = _optional_count(args, ERR_NOT_INT)
    if isinstance(count, bytes):
        return count
    if count is not None:
        if count == INT64_MIN:
            return ERR_RANDOM_RANGE
        if count < -RANDOM_REPEATS_MAX:
            return ERR_RANDOM_REPEATS

    def body(v: KeyView) -> bytes | bulks.SlicedReply:
        members = v.members(SET)
        if count is None:
            if not members:
                return resp.nil(proto)
            return resp.bulk(random_members(members, 1)[0])
        n = len(members)
        if n and count and not walked(n, count):  # gathered a reply slice at a time
            return bulks.array_reply(list(members), index=random_pick(n, count))
        return bulks.array_reply(random_members(members, count))

    missing = resp.nil(proto) if count is None else resp.EMPTY_ARRAY
    return key, typed_op("set", body, missing)


@collection_command("sscan", -3, ("readonly",), 1, 1, 1, "set",
                    "Incrementally iterate Set elements", "2.8.0")
def build_sscan(args: list[bytes], proto: int) -> Built | bytes:
    key = args[1]
    # Redis checks the cursor first, and its options only once the key is a set.
    cursor = scan_elements.parse(args[:3])
    if isinstance(cursor, bytes):
        return cursor

    def body(v: KeyView) -> bytes:
        parsed = scan_elements.parse(args)
        if isinstance(parsed, bytes):
            return parsed
        page = scan_elements.page(parsed, v, SET)
        cursor, members = (0, list(v.members(SET))) if page is None else page
        return scan_elements.reply(parsed, cursor, [(m, b"") for m in members], False)

    return key, scan_order(typed_op("set", body, EMPTY_SCAN), SET)


# --- steps of the plans -----------------------------------------------------------------


@internal_step("dyn.sfilter")
def build_sfilter(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.sfilter, key, keep|drop, msgpack(members)] -> [type or None, the members the
    set holds (keep) or does not hold (drop)]."""
    return _filter_step(args, ("set",))


@internal_step("dyn.zfilter")
def build_zfilter(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.zfilter, key, keep|drop, msgpack(members)] -> as dyn.sfilter, of a set's or a
    sorted set's members (ZINTERCARD's filter)."""
    return _filter_step(args, ("set", "zset"))


def _filter_step(args: list[bytes], types: tuple[str, ...]) -> Built:
    key, keep = args[1], args[2] == b"keep"
    members = msgpack.unpackb(args[3], use_list=False)

    def op(v: KeyView) -> Any:
        t = v.type()
        if t not in types:
            return [t, [] if keep or t is not None else list(members)]
        return [t, v.having(KIND_OF_TYPE[t], members, keep)]

    return key, on_string(op, ["string", []])


def sfilter_args(key: bytes, keep: bool, members: list[bytes], step: bytes = b"dyn.sfilter"
                 ) -> list[bytes]:
    return [step, key, b"keep" if keep else b"drop", msgpack.packb(members)]


@internal_step("dyn.smove")
def build_smove_source(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.smove, source, member, destination is another type (0/1), same key (0/1)]
    -> a reply that ends SMOVE, or None once the member is removed from the source."""
    key, m, dst_wrong, same = args[1], args[2], args[3] == b"1", args[4] == b"1"

    def op(v: KeyView) -> Any:
        t = v.type()
        if t is None:
            return resp.ZERO
        if t != "set" or dst_wrong:
            return WRONGTYPE
        present = v.get(SET, m) is not None
        if same or not present:
            return resp.ONE if present else resp.ZERO
        v.put(SET, m, None)
        return None

    return key, on_string(op, WRONGTYPE)


Members = Generator[list[bytes], Any, "list[bytes] | bytes"]


def _intersection(keys: list[bytes]) -> Members:
    """The members every key holds (or WRONGTYPE): every key's type and size first,
    in order; then the smallest set, filtered through the others, smallest first."""
    sizes: dict[bytes, int] = {}
    for key in dict.fromkeys(keys):
        t, n = yield [b"dyn.type", key]
        if t is not None and t != "set":
            return WRONGTYPE
        sizes[key] = n
    if min(sizes.values()) == 0:
        return []
    order = sorted(sizes, key=lambda k: sizes[k])
    t, members = yield [b"dyn.read", order[0]]
    if t is not None and t != "set":
        return WRONGTYPE
    members = list(members)
    for key in order[1:]:
        if not members:
            break
        t, members = yield from _filtered(key, True, members)
        if t is not None and t != "set":
            return WRONGTYPE
    return list(members)


UNION_SLICE = 131_072
"""Members added to a union in one loop turn (a C loop: ~15-30 ms)."""


def _union(keys: list[bytes]) -> Members:
    """Every key's members, each once (one key's are distinct as read: taken as they
    are, 200,000 of them without building a set). A set, not a dict (twice as fast),
    filled UNION_SLICE members a loop turn: the union of two sets of a million members
    held a node's loop 690 ms of CPU at once (the reply's order is the set's own, as
    Redis')."""
    out: set[bytes] = set()
    first: list[bytes] | None = None
    for key in dict.fromkeys(keys):
        t, members = yield [b"dyn.read", key]
        if t is not None and t != "set":
            return WRONGTYPE
        members = members if type(members) is list else list(members)
        if first is None and not out:
            first = members
            continue
        if first is not None:
            yield from _add(out, first)
            first = None
        yield from _add(out, members)
    if first is not None:
        return first
    return (yield from _listed(out))


def _listed(out: set[bytes]) -> Generator[list[bytes], Any, list[bytes]]:
    """list(out), UNION_SLICE members a loop turn, and `out` emptied (the list of a
    union of 1,500,000 members took 58 ms of CPU in one turn, letting go of the set 30
    more: SUNION's longest stall on an idle node, 117 ms)."""
    result: list[bytes] = []
    it = iter(out)
    while True:
        part = list(islice(it, UNION_SLICE))
        result += part
        if len(part) < UNION_SLICE:
            break
        yield TURN
    out.clear()
    return result


def _add(out: set[bytes], members: list[bytes]) -> Generator[list[bytes], Any, None]:
    """out |= members, a slice a loop turn, emptying `members` as it goes (a list of a
    million dropped at once took as long as a slice's work: a reference let go of per
    member)."""
    if len(members) <= UNION_SLICE:
        out.update(members)
        return
    for at in range(len(members) - UNION_SLICE, -UNION_SLICE, -UNION_SLICE):
        out.update(members[max(at, 0):])
        del members[max(at, 0):]
        if at > 0:
            yield TURN


def _difference(keys: list[bytes]) -> Members:
    """The first key's members that no other key holds; every key is asked (its type
    counts) even once nothing is left."""
    t, members = yield [b"dyn.read", keys[0]]
    if t is not None and t != "set":
        return WRONGTYPE
    members = list(members)
    for key in keys[1:]:
        t, members = yield from _filtered(key, False, members)
        if t is not None and t != "set":
            return WRONGTYPE
    return list(members)


FILTER_SLICE = 131_072
"""Members one dyn.sfilter step carries: a million at once held the plan's node ~250
ms of CPU (packing them, and, where the key is, unpacking and looking each up)."""


def _filtered(key: bytes, keep: bool, members: list[bytes], step: bytes = b"dyn.sfilter",
              types: tuple[str, ...] = ("set",)
              ) -> Generator[list[bytes], Any, tuple[str | None, list[bytes]]]:
    """[type, those of `members` the set `key` holds (keep) or not], by steps of
    FILTER_SLICE members (each sees the set as it is then: a plan over several keys is
    not atomic anyway, README); an answer of a type not in `types` ends it (`step`
    dyn.zfilter: a sorted set's members too)."""
    if len(members) <= FILTER_SLICE:
        t, got = yield sfilter_args(key, keep, members, step)
        return t, got
    out: list[bytes] = []
    t = None
    for at in range(0, len(members), FILTER_SLICE):
        t, got = yield sfilter_args(key, keep, members[at:at + FILTER_SLICE], step)
        if t is not None and t not in types:
            return t, []
        out.extend(got)
    return t, out


def counted_intersection(keys: list[bytes], types: tuple[str, ...], step: bytes,
                         judged: bytes | None = None) -> Generator[list[bytes], Any,
                                                                   int | bytes]:
    """How many members every key holds (SINTERCARD, ZINTERCARD): every key's type and
    size first, in order (WRONGTYPE for one not of `types`; then the error `judged`, the
    options', if any); then the smallest read and filtered through the others a slice a
    step. ZINTERCARD of two million-member keys read both whole and intersected them in
    one turn: 357 ms of a node's loop."""
    sizes: dict[bytes, int] = {}
    for key in keys:
        t, n = yield [b"dyn.type", key]
        if t is not None and t not in types:
            return WRONGTYPE
        sizes[key] = n
    if judged is not None:
        return judged
    if min(sizes.values()) == 0:
        return 0
    order = sorted(sizes, key=sizes.__getitem__)
    t, members = yield [b"dyn.members", order[0]]
    if t is not None and t not in types:
        return WRONGTYPE
    members = list(members)
    for key in order[1:]:
        if not members:
            break
        t, members = yield from _filtered(key, True, members, step, types)
        if t is not None and t not in types:
            return WRONGTYPE
    return len(members)


def _read_plan(combine: Any, keys: list[bytes], proto: int) -> Plan:
    result = yield from combine(keys)
    if isinstance(result, bytes):
        return result
    return set_reply(result, proto)


def _store_plan(combine: Any, dst: bytes, keys: list[bytes]) -> Plan:
    """Store the result in `dst` (whatever it held; no result deletes it)."""
    result = yield from combine(keys)
    if isinstance(result, bytes):
        return result
    stored = yield from store_steps(dst, "set", result)
    return resp.integer(stored)


@plan_command("sinter", -2, ("readonly",), 1, -1, 1, "set", "Intersect multiple sets")
def plan_sinter(args: list[bytes], proto: int) -> Plan | bytes:
    return _read_plan(_intersection, args[1:], proto)


@plan_command("sunion", -2, ("readonly",), 1, -1, 1, "set", "Add multiple sets")
def plan_sunion(args: list[bytes], proto: int) -> Plan | bytes:
    return _read_plan(_union, args[1:], proto)


@plan_command("sdiff", -2, ("readonly",), 1, -1, 1, "set", "Subtract multiple sets")
def plan_sdiff(args: list[bytes], proto: int) -> Plan | bytes:
    return _read_plan(_difference, args[1:], proto)


@plan_command("sinterstore", -3, ("write", "denyoom"), 1, -1, 1, "set",
              "Intersect multiple sets and store the resulting set in a key")
def plan_sinterstore(args: list[bytes], proto: int) -> Plan | bytes:
    return _store_plan(_intersection, args[1], args[2:])


@plan_command("sunionstore", -3, ("write", "denyoom"), 1, -1, 1, "set",
              "Add multiple sets and store the resulting set in a key")
def plan_sunionstore(args: list[bytes], proto: int) -> Plan | bytes:
    return _store_plan(_union, args[1], args[2:])


@plan_command("sdiffstore", -3, ("write", "denyoom"), 1, -1, 1, "set",
              "Subtract multiple sets and store the resulting set in a key")
def plan_sdiffstore(args: list[bytes], proto: int) -> Plan | bytes:
    return _store_plan(_difference, args[1], args[2:])


@plan_command("sintercard", -3, ("readonly", "movablekeys"), 0, 0, 0, "set",
              "Intersect multiple sets and return the cardinality of the result", "7.0.0",
              numkeys_keys(1))
def plan_sintercard(args: list[bytes], proto: int) -> Plan | bytes:
    numkeys = parse_int(args[1])
    if numkeys is None or numkeys <= 0:
        return ERR_NUMKEYS
    if numkeys > len(args) - 2:
        return ERR_NUMKEYS_ARGS
    keys = args[2 : 2 + numkeys]
    limit = 0
    i = 2 + numkeys
    while i < len(args):
        if args[i].upper() == b"LIMIT" and i + 1 < len(args):
            n = parse_int(args[i + 1])
            if n is None or n < 0:
                return ERR_LIMIT
            limit = n
            i += 2
        else:
            return ERR_SYNTAX
    return _card_plan(keys, limit)


def _card_plan(keys: list[bytes], limit: int) -> Plan:
    result = yield from _intersection(keys)
    if isinstance(result, bytes):
        return result
    return resp.integer(min(len(result), limit) if limit else len(result))


@plan_command("smove", 4, ("write", "fast"), 1, 2, 1, "set",
              "Move a member from one set to another")
def plan_smove(args: list[bytes], proto: int) -> Plan | bytes:
    """As Redis: a missing source answers 0; a source or (then) a destination of another
    type WRONGTYPE; the same key answers whether the member is there. Otherwise the
    member is removed from the source and then added to the destination, two steps on
    two keys: not atomic. A client sees the member in neither set between the two, and
    if the second step fails (no write quorum for the destination, or the destination
    became another type meanwhile) the command answers that error and the member is
    gone from both."""
    return _smove_plan(args[1], args[2], args[3])


def _smove_plan(src: bytes, dst: bytes, member: bytes) -> Plan:
    t, _ = yield [b"dyn.type", dst]
    dst_wrong = t is not None and t != "set"
    ended = yield [b"dyn.smove", src, member, b"1" if dst_wrong else b"0",
                   b"1" if src == dst else b"0"]
    if ended is not None:
        return bytes(ended)
    added = yield [b"sadd", dst, member]
    if _is_error(added):
        return bytes(added)
    return resp.ONE
