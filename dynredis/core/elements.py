"""What one element record reads as: its live value once removals are applied.

An element record is a DVVSet object like a string's (`obj.py`): siblings
`(ts, 0, data)` with dots. Its dots are the key's update events (see `dotset.py`), so
a delete of the whole key, or a type change, removes exactly the element versions
whose dots its removal set covers, and leaves any concurrent version alone.

The data of a sibling, per collection type:
- hash field: the value's bytes, or a counter (HINCRBY; `counter.py`);
- set member: b"" (present);
- sorted set member: a score `(base, base_id, entries, value)` (`score.py`): ZADD starts
  a new lineage (concurrent ZADDs: the later one wins, as for GET), ZINCRBY grows the
  coordinator's own entry (concurrent ZINCRBYs all count), and a history without
  concurrency reads exactly as Redis' sequential double arithmetic;
- list item: the item's bytes;
- None in every type: removed (HDEL, SREM, ZREM, a pop).

An element is present if any version not covered by a removal holds a value: an
addition wins over a concurrent removal (which removed only the versions it saw), and
among concurrent values the last writer wins (counters: all increments count).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import counter, score
from . import records as rec
from .clock import Clock
from .dotset import DotSet


def live_siblings(obj: Clock, removal: DotSet | None) -> list[tuple[int, bytes, Any]]:
    """(ts, actor, data) of every sibling a removal has not covered (tombstones too)."""
    out: list[tuple[int, bytes, Any]] = []
    for sib in obj[1]:
        out.append((sib[0], b"", sib[2]))
    for actor, n, vals in obj[0]:
        k = 0
        for sib in vals:
            if removal is None or not removal.has(actor, n - k):
                out.append((sib[0], actor, sib[2]))
            k += 1
    return out


def covered(obj: Clock, removal: DotSet) -> bool:
    """True if the removal set covers every sibling: the record can go."""
    if obj[1]:
        return False
    for actor, n, vals in obj[0]:
        for k in range(len(vals)):
            if not removal.has(actor, n - k):
                return False
    return True


def _winner(sibs: list[tuple[int, bytes, Any]]) -> tuple[int, bytes, Any] | None:
    """The last-writer-wins sibling among the live ones (a removal only wins when no
    concurrent version holds a value: additions win over concurrent removals)."""
    best: tuple[int, bytes, Any] | None = None
    for s in sibs:
        if s[2] is not None and (best is None or (s[0], s[1]) > (best[0], best[1])):
            best = s
    return best


def stripped(obj: Clock) -> Clock:
    """The record of an element a removal covers entirely: no value, only the causal
    past. Kept (until reaped as dead) rather than deleted, so that an older version
    arriving late (one the removed versions superseded) is recognised as superseded
    instead of coming back."""
    return (tuple((a, n, ()) for a, n, _ in obj[0]), ())


def value(obj: Clock, removal: DotSet | None) -> Any:
    """The element's value (bytes, an int for a counter, a float for a score), or None
    if it is absent: removed, or every version of it covered by a removal."""
    sibs = live_siblings(obj, removal)
    best = _winner(sibs)
    if best is None:
        return None
    data = best[2]
    if type(data) is tuple:
        state = _merged(data, (s[2] for s in sibs if s[2] is not None))
        return score.value(state) if score.is_score(state) else counter.value(state)
    return data


def fresh_values(objs: list[Clock], datas: Sequence[Any]) -> list[Any]:
    """`value` of records of one version each (beside a bare causal past, at most), no
    removal covering it (new elements: `datas` their data): plain data is its own
    value, in one C loop."""
    if tuple not in set(map(type, datas)):
        return list(datas)
    if all(score.is_score(d) and not d[2] for d in datas):
        return [d[3] for d in datas]  # a new lineage's score (score.merged of itself)
    return [value(o, None) for o in objs]


def uncovered_values(objs: list[Clock], removal: DotSet) -> list[Any] | None:
    """`value` of records of one version each (new elements, as a step of a plan
    writes them; beside a bare causal past, over a name a removal left), or None if
    one is not such or `removal` covers one."""
    if all(map(single, objs)):
        entries = [o[0][0] for o in objs]
    else:
        entries = list(map(_one_version, objs))
        if None in entries:
            return None
    if len(removal) and any(removal.has(a, n) for a, n, _ in entries):
        return None
    return fresh_values(objs, [e[2][0][2] for e in entries])


def _one_version(obj: Clock) -> Any:
    """The (actor, n, (sibling,)) entry of a record's only version (the others bare),
    or None."""
    if obj[1]:
        return None
    found = None
    for entry in obj[0]:
        if entry[2]:
            if found is not None or len(entry[2]) != 1:
                return None
            found = entry
    return found


def bare(obj: Clock) -> bool:
    """The record holds no version: only a causal past (`stripped`)."""
    return not obj[1] and not any(entry[2] for entry in obj[0])


def single(obj: Clock) -> bool:
    """The record holds one version: one entry of one sibling, no anonymous one."""
    return not obj[1] and len(obj[0]) == 1 and len(obj[0][0][2]) == 1


def _merged(winner: tuple, siblings: Any) -> tuple:
    if score.is_score(winner):
        return score.merged(winner, siblings)
    return counter.merged(winner, siblings)


def counter_state(obj: Clock | None, removal: DotSet | None) -> tuple | None:
    """The merged counter a field or score holds, or None (absent, or plain bytes)."""
    if obj is None:
        return None
    sibs = live_siblings(obj, removal)
    best = _winner(sibs)
    if best is None or type(best[2]) is not tuple:
        return None
    return _merged(best[2], (s[2] for s in sibs if s[2] is not None))


def score_start(value: float, ts: int) -> tuple:
    """A sorted-set member's data for a score set by ZADD: a new lineage there."""
    return score.start(value, ts)


def start_state(kind: bytes, start: int | float, ts: int) -> tuple:
    """A counter element's first state (HINCRBY: an integer counter; ZINCRBY: a score).
    Scores started by an increment share one lineage (score.INCREMENTED), so concurrent
    first ZINCRBYs of a member all count."""
    if kind == rec.ZSET:
        return score.start(float(start), score.INCREMENTED)
    return counter.start(start, ts)  # type: ignore[arg-type]


def incremented(state: tuple, actor: bytes, delta: int | float, event: int) -> tuple:
    """`state` (merged: `counter_state`) with `delta` added through `actor`'s entry by
    the write whose event number (per actor and key) is `event`."""
    if score.is_score(state):
        return score.incremented(state, actor, float(delta), event)
    return counter.incremented(state, actor, delta)  # type: ignore[arg-type]


def state_value(state: tuple) -> int | float:
    return score.value(state) if score.is_score(state) else counter.value(state)
