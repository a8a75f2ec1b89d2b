"""A sorted-set member's score: a convergent float counter that reads as Redis' doubles.

Redis computes ZINCRBY as `score = score + delta`, rounding to a double at every step.
A PN-counter sums each node's increments and adds the sums to the starting score, which
rounds differently (ZADD 0.1, ZINCRBY 0.2, ZINCRBY 0.3: Redis 0.6000000000000001, the
sums 0.6). So a score sibling carries, besides the counter, the score as its writer
computed it with Redis' rounding:

    (base, base_id, entries, value)

- `base`, `base_id`: where this lineage started (ZADD sets a score: a new lineage, so of
  concurrent ZADDs the later one wins, as for GET; a member's first ZINCRBY starts the
  shared lineage `(0.0, INCREMENTED)`, so concurrent first increments all count);
- `entries`: per node actor `(actor, inc, dec, n)`, sorted by actor: the sums of the
  positive and of the negative deltas that actor added in this lineage, and the event
  number of its last write (numbered per actor and key, `collwrite.py`: never reused).
  An actor only grows its own entry, from its own latest state, so concurrent
  increments through different nodes land in different entries and merge by taking,
  per actor, the entry with the highest `n`: none is lost. (After a removal an actor
  starts its entry again, with a higher `n`: what the removal saw is gone, and a
  concurrent increment that survived it counts.);
- `value`: `previous score + delta` as the writer computed it, valid for exactly
  `entries`.

Reading merges every sibling of the winner's lineage: the merged entries M are each
actor's latest entry. If a sibling's own entries equal M, its writer saw the whole
history and its value is the score (a history without concurrency reads exactly as
Redis would compute it, whichever nodes the writes went through); otherwise (concurrent
increments met) the score is the base plus the entries' sums, in actor order. Every
write gives its actor's entry a new `n`, so equal entries mean the same write and the
same value: the score is a function of the merged entries alone, and replicas converge.

Scores are stored as Redis stores them in small sets: -0.0 as 0. A merged sum that is
not a number (concurrent increments by +inf and -inf) reads as 0, Redis' convention
when ZUNIONSTORE adds +inf and -inf.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

Entry = tuple[bytes, float, float, int]

INCREMENTED = 0  # the base_id of scores started by an increment (ZADDs use a timestamp)


def is_score(data: Any) -> bool:
    return type(data) is tuple and len(data) == 4


def stored(x: float) -> float:
    """A score as stored: -0.0 becomes 0.0 (adding +0.0 changes nothing else)."""
    return x + 0.0


def start(score: float, base_id: int) -> tuple:
    """A new lineage at `score` (ZADD, or the first ZINCRBY of a member)."""
    s = stored(score)
    return (s, base_id, (), s)


def value(state: tuple) -> float:
    return state[3]  # type: ignore[no-any-return]


def total(base: float, entries: tuple) -> float:
    """The score of merged concurrent histories: the base plus every actor's sums."""
    x = base
    for _, inc, dec, _ in entries:
        x = x + (inc - dec)
    if x != x:
        return 0.0
    return stored(x)


def merged(winner: tuple, siblings: Iterable[Any]) -> tuple:
    """The winner's lineage joined with every concurrent sibling of the same lineage."""
    base, base_id = winner[0], winner[1]
    best: dict[bytes, Entry] = {}
    same: list[tuple] = []
    for data in siblings:
        if not is_score(data) or data[0] != base or data[1] != base_id:
            continue
        same.append(data)
        for e in data[2]:
            old = best.get(e[0])
            if old is None or (e[3], e[1], e[2]) > (old[3], old[1], old[2]):
                best[e[0]] = e
    entries = tuple(best[a] for a in sorted(best))
    found: float | None = None
    for data in same:
        if data[2] == entries:
            v = data[3]
            # One write per entries (see module docstring): values agree; choose
            # deterministically all the same.
            if found is None or (v, math.copysign(1.0, v)) > (found, math.copysign(1.0, found)):
                found = v
    return (base, base_id, entries, found if found is not None else total(base, entries))


def incremented(state: tuple, actor: bytes, delta: float, event: int) -> tuple:
    """`state` (a merged one: see `merged`) with `delta` added through `actor`'s own
    entry by its write number `event`; the value is the current score plus `delta` in
    doubles, as Redis computes it. The caller refuses a result that is not a number."""
    base, base_id, entries, current = state
    out: list[Entry] = []
    mine: Entry = (actor, 0.0, 0.0, 0)
    for e in entries:
        if e[0] == actor:
            mine = e
        else:
            out.append(e)
    _, inc, dec, n = mine
    if delta >= 0:
        inc = inc + delta
    else:
        dec = dec - delta
    out.append((actor, inc, dec, max(event, n + 1)))  # event > n: events only grow
    out.sort()
    return (base, base_id, tuple(out), stored(current + delta))
