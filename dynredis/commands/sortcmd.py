"""SORT and SORT_RO over lists, sets and sorted sets, as plans of steps.

The key is read whole where it lives (one step, after a quorum sync, as any collection
command). The keys a BY or GET pattern names are other keys, on any node: each is read
with a quorum of its own (a string as GET reads it, a hash's fields as HMGET does), all
of them at once, in batches, each distinct key once (BY and GET see the same value of
it). STORE writes the destination last, replacing whatever it held (as SET does: no
TTL). So SORT is not atomic across keys: a write to a looked-up key while SORT runs may
or may not be seen. The order and the replies are Redis 7.0's (sortspec.py).

As on a standalone Redis, BY and GET patterns may name keys anywhere (Redis Cluster
refuses patterns whose keys may be in another slot than the sorted key's).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterator, Sequence
from operator import eq, itemgetter
from typing import Any

import msgpack

from ..core import records as rec
from ..core.collview import KeyView
from ..core.planslots import PlanSlot
from ..core.quietlist import quiet
from ..resp import bulks
from ..resp import encode as resp
from . import sortspec
from .collection import (
    PLAN_SLOT,
    PLANS,
    TURN,
    WRONGTYPE,
    Built,
    Plan,
    internal_step,
    on_string,
    start_plan,
)
from .context import Context
from .hashes import field_bytes
from .slicedwrite import store_steps
from .sortspec import ELEMENT, NOTHING, SortSpec
from .table import command

# The order by weight in C (dynredis/csrc/weightorder.c), built with the compiled
# modules; else Python's sort (_by_weight).
_weight_order: Callable[[list[float], bool], tuple[bytes, bool]] | None
try:
    from .._weightorder import order as _weight_order
except ImportError:
    _weight_order = None

BATCH = 256  # lookups in flight at once for one SORT
ANY_ORDER = b"any"
TURN_ELEMENTS = 16_384  # more: reading, weighing and sorting take a loop turn each
# Elements whose BY / GET patterns are resolved in a loop turn (about 3 us each, twice:
# keys to fetch, then values): 16,384 a turn held a node 40-50 ms a turn, and 33
# pipelined SORT_RO ... BY of a 16,000-member set 134 ms with another process beside.
RESOLVE_TURN = 4096
_MEMBER = itemgetter(1)


@internal_step("dyn.sortsrc")
def build_sort_source(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.sortsrc, key (, b"any")] -> [type or None, the elements (for a list, a set or
    a sorted set: in list order, SORT's set order, score order), or None for another
    type]. With b"any" a list's items come in no particular order, for a sort by the
    items themselves (where their order does not show): a C copy of the values, not a
    lookup per item in list order (a million items: 16 ms of CPU, not 200)."""
    any_order = args[2:3] == [ANY_ORDER]

    def op(v: KeyView) -> Any:
        t = v.type()
        if t == "list":
            if any_order:
                return [t, v.values(rec.LIST)]
            return [t, v.list_values()]
        if t == "zset":
            return [t, list(map(_MEMBER, v.zorder))]
        if t == "set":
            return [t, sortspec.set_order(list(v.members(rec.SET)))]
        return [t, None]

    return args[1], on_string(op, ["string", None])


@internal_step("dyn.hmget")
def build_hmget(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.hmget, key, msgpack(fields)] -> each field's value or None (all None if the
    key is not a hash)."""
    fields = msgpack.unpackb(args[2])

    def op(v: KeyView) -> Any:
        if v.type() != "hash":
            return [None] * len(fields)
        out = []
        for f in fields:
            value = v.get(rec.HASH, f)
            out.append(None if value is None else field_bytes(value))
        return out

    return args[1], op


class Lookups:
    """The values BY and GET patterns name, read once per key."""

    def __init__(self) -> None:
        self.strings: dict[bytes, bytes | None] = {}
        self.fields: dict[tuple[bytes, bytes], bytes | None] = {}

    def values(self, patterns: list[bytes], elements: list[bytes]) -> list[bytes | None]:
        """What each pattern names for each element, element by element (GET # alone
        is the elements: no step per element for 200,000 of them)."""
        columns: list[list[bytes | None]] = []
        for p in patterns:
            same = sortspec.fixed(p)
            if same == ELEMENT:
                columns.append(elements)  # type: ignore[arg-type]
            elif same == NOTHING:
                columns.append([None] * len(elements))
            else:
                columns.append([self.value(p, e) for e in elements])
        if len(columns) == 1:
            return quiet(list(columns[0]))
        return quiet([v for row in zip(*columns, strict=True) for v in row])

    def value(self, pattern: bytes, element: bytes) -> bytes | None:
        """The value `pattern` names for `element` (fetched before)."""
        target = sortspec.resolve(pattern, element)
        if target == ELEMENT:
            return element
        if target == NOTHING:
            return None
        assert isinstance(target, tuple)
        key, field = target
        if field is None:
            return self.strings[key]
        return self.fields[key, field]

    def values_by_turns(self, patterns: list[bytes], elements: list[bytes]
                        ) -> Generator[list[bytes], Any, list[bytes | None]]:
        """`values`, RESOLVE_TURN elements a loop turn (a million of a BY pattern at
        once held the node ~1 s of CPU)."""
        if len(elements) <= RESOLVE_TURN:
            return self.values(patterns, elements)
        out: list[bytes | None] = quiet([])
        for at in range(0, len(elements), RESOLVE_TURN):
            yield TURN
            out += self.values(patterns, elements[at:at + RESOLVE_TURN])
        return out

    def fetch(self, patterns: list[bytes], elements: list[bytes]
              ) -> Generator[tuple[list[bytes], ...] | list[bytes], Any, None]:
        """Steps (in batches) reading what the patterns name for the elements and this
        has not read yet; the keys to read found RESOLVE_TURN elements a loop turn,
        their steps made a batch at a time (a million of a BY pattern at once held the
        node ~2.5 s of CPU)."""
        strings: dict[bytes, None] = {}
        hashes: dict[bytes, dict[bytes, None]] = {}
        patterns = [p for p in patterns if sortspec.fixed(p) is None]
        for at, element in enumerate(elements if patterns else ()):
            if at and not at % RESOLVE_TURN:
                yield TURN
            for pattern in patterns:
                target = sortspec.resolve(pattern, element)
                if not isinstance(target, tuple):
                    continue
                key, field = target
                if field is None:
                    if key not in self.strings:
                        strings[key] = None
                elif (key, field) not in self.fields:
                    hashes.setdefault(key, {})[field] = None
        steps: Iterator[tuple[list[bytes], Any]] = itertools.chain(
            (([b"dyn.get", k], k) for k in strings),
            (([b"dyn.hmget", k, msgpack.packb(list(fs))], (k, list(fs)))
             for k, fs in hashes.items()))
        while chunk := list(itertools.islice(steps, BATCH)):
            results = yield tuple(step for step, _ in chunk)
            for (step, what), result in zip(chunk, results, strict=True):
                if step[0] == b"dyn.get":
                    self.strings[what] = None if result is None else bytes(result)
                else:
                    key, fs = what
                    for f, value in zip(fs, result, strict=True):
                        self.fields[key, f] = None if value is None else bytes(value)


def _range(n: int, spec: SortSpec) -> tuple[int, int]:
    """LIMIT's range over n elements, clamped as Redis clamps it."""
    start = min(max(spec.start, 0), n)
    count = min(max(spec.count, -1), n)
    end = n - 1 if count < 0 else start + count - 1
    if start >= n:
        start, end = n - 1, n - 2
    if end >= n:
        end = n - 1
    return start, end


SLICE = 131_072
"""Elements weighed, or sorted into a run, in one loop turn (C loops: ~20-40 ms)."""


SCORES_PER_TURN = 16_384
"""Elements whose weights are read in one loop turn: C loops where they are plain
numbers (~2 ms), else one by one (not numbers, subnormals, "0e5": ~1 us each; a SORT of
a list of 100,000 words held a node 75-104 ms before it found the first)."""


def _scores(vector: list[bytes]) -> Generator[list[bytes], Any, list[float | None]]:
    """sortspec.sort_scores of the elements, SCORES_PER_TURN of them a loop turn, up to
    the first that is no number (None: SORT's error, whatever the others read)."""
    if len(vector) <= SCORES_PER_TURN:
        return quiet(sortspec.sort_scores(vector))
    out: list[float | None] = quiet([])
    for at in range(0, len(vector), SCORES_PER_TURN):
        yield TURN
        part = sortspec.sort_scores(vector[at:at + SCORES_PER_TURN])
        out += part
        if None in part:
            break
    return out


def _as_bytes(elements: list[Any]) -> Generator[list[bytes], Any, list[bytes]]:
    """The elements as bytes, SLICE of them a loop turn."""
    if len(elements) <= SLICE:
        return quiet(list(map(bytes, elements)))
    out: list[bytes] = quiet([])
    for at in range(0, len(elements), SLICE):
        if at:
            yield TURN
        out += map(bytes, elements[at:at + SLICE])
    return out


def _has_nul(elements: list[bytes]) -> Generator[list[bytes], Any, bool]:
    """sortspec.has_nul, SLICE elements a loop turn (a million joined at once: ~50 ms)."""
    if len(elements) <= SLICE:
        return sortspec.has_nul(elements)
    for at in range(0, len(elements), SLICE):
        if at:
            yield TURN
        if sortspec.has_nul(elements[at:at + SLICE]):
            return True
    return False


def _presort(vector: list[bytes], desc: bool) -> Generator[list[bytes], Any, None]:
    """ALPHA by the elements themselves (none holding a NUL byte: equal ones are the
    same bytes): each SLICE of them sorted in place in a loop turn of its own, so that
    the whole sort after them merges sorted runs (timsort: a million elements in ~8
    runs, several times faster than sorting them at once)."""
    if len(vector) <= SLICE:
        return
    for at in range(0, len(vector), SLICE):
        yield TURN
        vector[at:at + SLICE] = sorted(vector[at:at + SLICE], reverse=desc)


def _by_weight(vector: list[bytes], weights: list[Any], desc: bool
               ) -> Generator[list[bytes], Any, list[bytes]]:
    """sortspec.order by weight alone (no ALPHA, no partial sort), its steps in loop
    turns of their own: the positions ordered by weight (in C when built: a million
    in ~30 ms, not ~100, that tells whether two weights are equal too), else sorted and
    SLICE of the sorted weights looked at a turn for two equal ones; where some are,
    the elements' bytes decide among them (two sorts more, a turn each); then the
    elements picked SLICE a turn. Each pass in a permuted order is a cache miss per
    element: all in one turn, a million held the node ~500 ms."""
    n = len(vector)
    if n <= SLICE:
        return sortspec.order(vector, weights, False, desc, False, None)
    index: Sequence[int] | None = None
    if _weight_order is not None:
        try:
            positions, ties = _weight_order(weights, desc)
            index = memoryview(positions).cast("I")
        except TypeError:  # (not all floats: Python's sort says how they compare)
            index = None
    if index is None:
        index = list(range(n))
        index.sort(key=weights.__getitem__, reverse=desc)
        ties = False
        for at in range(0, n - 1, SLICE):
            yield TURN
            ordered = list(map(weights.__getitem__, index[at:at + SLICE + 1]))
            if any(map(eq, ordered[1:], ordered)):
                ties = True
                break
    if ties:  # (as sortspec._by_weight)
        yield TURN
        index = list(range(n))
        index.sort(key=vector.__getitem__, reverse=desc)
        yield TURN
        index.sort(key=weights.__getitem__, reverse=desc)
    out: list[bytes] = quiet([])
    for at in range(0, n, SLICE):
        yield TURN
        out += map(vector.__getitem__, index[at:at + SLICE])
    return out


def sort_plan(key: bytes, spec: SortSpec, proto: int) -> Plan:
    """SORT of `key`: its elements read, then, when they make many lookups, read
    again once the node has a place for it among its large lookup plans
    (core/planslots.py), holding none of them while it waits."""
    source = yield _source_step(key, spec)
    if not _many_lookups(spec, source[1]):
        return (yield from _sorted(key, spec, proto, source))
    source = None
    slot = yield PLAN_SLOT
    return (yield from _holding(slot, _sorted_again(key, spec, proto)))


def _any_order(spec: SortSpec) -> bool:
    # Sorted by the elements themselves, equal ones are the same bytes (and numbers of
    # equal value are ordered by their bytes): a list's order does not show, but for
    # ALPHA's elements holding a NUL byte (compared up to it, equal ones kept in order).
    return not spec.dontsort and spec.by is None


def _source_step(key: bytes, spec: SortSpec) -> list[bytes]:
    return [b"dyn.sortsrc", key, ANY_ORDER] if _any_order(spec) else [b"dyn.sortsrc", key]


def _many_lookups(spec: SortSpec, elements: list[Any] | None) -> bool:
    """Whether the BY or GET patterns name more than TURN_ELEMENTS keys to read."""
    if not elements or len(elements) <= TURN_ELEMENTS:
        return False
    if not spec.dontsort and spec.by is not None and sortspec.fixed(spec.by) is None:
        return True
    if not any(sortspec.fixed(p) is None for p in spec.gets):
        return False
    start, end = _range(len(elements), spec)
    return end - start + 1 > TURN_ELEMENTS


def _sorted_again(key: bytes, spec: SortSpec, proto: int) -> Plan:
    source = yield _source_step(key, spec)
    return (yield from _sorted(key, spec, proto, source))


def _holding(slot: PlanSlot, plan: Plan) -> Plan:
    """`plan`'s steps, the place `slot` given back when it ends however it ends (the
    driver closes a plan at a step's error); each step tells the waiting plans' clients
    they are still alive."""
    try:
        result: Any = None
        while True:
            try:
                step = plan.send(result)
            except StopIteration as done:
                return done.value
            slot.step()
            result = yield step
    finally:
        plan.close()
        slot.release()


def _sorted(key: bytes, spec: SortSpec, proto: int, source: tuple[str | None, Any]
            ) -> Plan:
    """SORT once its source's elements are read."""
    t, elements = source
    if t is not None and elements is None:
        return WRONGTYPE
    if elements:  # (the plan's lists of bytes and numbers: quietlist.quiet)
        quiet(elements)
    nul: bool | None = None  # ALPHA without BY: compared as C strings (a NUL byte held)
    if _any_order(spec) and t == "list" and spec.alpha and spec.store is None:
        nul = yield from _has_nul(elements)
        if nul:
            t, elements = yield [b"dyn.sortsrc", key]  # in list order after all
            if t is not None and elements is None:
                return WRONGTYPE
    if elements and len(elements) > TURN_ELEMENTS:
        yield TURN  # turns of work of about the same size: reading the elements (at
        # the coordinator), their weights (a slice a turn), the sort
    vector: list[bytes] = (yield from _as_bytes(elements)) if elements else []
    dontsort, alpha, by = spec.dontsort, spec.alpha, spec.by
    if dontsort and t == "set" and spec.store is not None:
        # As Redis: a stored set is sorted (ALPHA), so that replicas store the same.
        dontsort, alpha, by = False, True, None
    start, end = _range(len(vector), spec)
    if dontsort and t in ("list", "zset"):
        ordered = vector[::-1] if spec.desc else vector
        vector = ordered[start:end + 1] if end >= start else []
        start, end = 0, end - start
    lookups = Lookups()
    if not dontsort:
        weights: list[Any] | None = None
        if by is not None:
            yield from lookups.fetch([by], vector)
            values = yield from lookups.values_by_turns([by], vector)
            if alpha:
                weights = values
            else:
                # (a missing key weighs 0, as b"0" reads; read by the C loops, a slice
                # a turn: one by one, 100,000 held a node 270-430 ms of CPU)
                weights = yield from _scores(quiet([b"0" if v is None else v
                                                    for v in values]))
        elif not alpha:
            weights = yield from _scores(vector)
        else:
            if nul is None:
                nul = spec.store is None and sortspec.has_nul(vector)
            if not nul:
                yield from _presort(vector, spec.desc)
        if not alpha and weights is not None and None in weights:
            return sortspec.ERR_SCORE
        if len(vector) > TURN_ELEMENTS:
            yield TURN  # (200,000 numbers: 150 ms in one turn together)
        partial = (start, end) if by is not None and (
            start != 0 or end != len(vector) - 1) else None
        if not alpha:
            # By (weight, bytes) whole, in C: equal pairs are equal bytes, so the range
            # Redis' partial sort gets right is this order's (its Python pqsort took
            # ~480 ms of one turn for a million: SORT s BY w_* LIMIT 0 1).
            vector = yield from _by_weight(vector, weights, spec.desc)  # type: ignore[arg-type]
        else:
            vector = sortspec.order(vector, weights, alpha, spec.desc,
                                    spec.store is not None, partial, nul)
    # (all of them: not copied, twice a cache miss per element in sorted order)
    whole = start == 0 and end == len(vector) - 1
    chosen = vector if whole else vector[start:end + 1] if end >= start else []
    if spec.gets:
        yield from lookups.fetch(spec.gets, chosen)
        out: list[bytes | None] = yield from lookups.values_by_turns(spec.gets, chosen)
    else:
        out = chosen  # type: ignore[assignment]
    if spec.store is not None:
        stored = yield from store_steps(spec.store, "list",
                                        [b"" if v is None else v for v in out])
        return resp.integer(int(stored))
    if spec.gets and None in out:  # (a missing key's GET: a million compared, ~20 ms)
        return bulks.nullable_array(out, resp.nil(proto))
    return bulks.array_reply(out)  # type: ignore[arg-type]


def _build(readonly: bool) -> Any:
    def build(args: list[bytes], proto: int, full_key_access: bool = True) -> Plan | bytes:
        spec = sortspec.parse(args, readonly, full_key_access)
        if isinstance(spec, bytes):
            return spec
        return sort_plan(args[1], spec, proto)

    return build


def _register(name: str, flags: tuple[str, ...], summary: str, since: str,
              readonly: bool) -> None:
    build = _build(readonly)

    keys_of = (lambda words: words[1:2]) if readonly else sortspec.sort_keys

    def handler(c: Context, args: list[bytes]) -> bytes | None:
        perms = c.perms
        return start_plan(c, build(args, c.proto, perms is None or perms.keys == ["*"]),
                          None if readonly else keys_of(args))  # (plangate.py)

    command(name, -2, flags, 1, 1, 1, "generic", summary, since, keys_of)(handler)
    PLANS[name] = build


_register("sort", ("write", "denyoom", "movablekeys"),
          "Sorts the elements in a list, a set, or a sorted set, optionally storing the "
          "result.", "1.0.0", False)
_register("sort_ro", ("readonly", "movablekeys"),
          "Returns the sorted elements of a list, a set, or a sorted set.", "7.0.0", True)
