"""Convergent counters for the INCR family: a PN-counter carried in a sibling.

A counter sibling's data is `(base, base_id, entries)`: the integer it started from
(0, or the string value it replaced), an identity of that starting point, and per
node actor `(actor, increments, decrements)`, sorted by actor. A node only ever
grows its own entry, from its own latest state, so concurrent increments through
different nodes land in different entries and merge by taking each entry's maximum:
no increment is lost, under concurrency or partition. Siblings that started from
different points (a SET in between) are different counters; the newest wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Entries = dict[bytes, tuple[int, int]]


def is_counter(data: Any) -> bool:
    return type(data) is tuple and len(data) == 3  # (a collection marker has 1 item)


def value(data: tuple) -> int:
    base, _, entries = data
    return base + sum(inc - dec for _, inc, dec in entries)


def merged(winner: tuple, siblings: Iterable[Any]) -> tuple:
    """The winner's counter joined with every concurrent sibling of the same lineage."""
    base, base_id, _ = winner
    best: Entries = {}
    for data in siblings:
        if not is_counter(data) or data[0] != base or data[1] != base_id:
            continue
        for actor, inc, dec in data[2]:
            old = best.get(actor)
            if old is None:
                best[actor] = (inc, dec)
            else:
                best[actor] = (max(old[0], inc), max(old[1], dec))
    return (base, base_id, tuple((a, i, d) for a, (i, d) in sorted(best.items())))


def start(base: int, base_id: int) -> tuple:
    return (base, base_id, ())


def incremented(state: tuple, actor: bytes, delta: int) -> tuple:
    """`state` with `delta` added through `actor`'s own entry."""
    base, base_id, entries = state
    out: Entries = {a: (i, d) for a, i, d in entries}
    inc, dec = out.get(actor, (0, 0))
    if delta >= 0:
        inc += delta
    else:
        dec -= delta
    out[actor] = (inc, dec)
    return (base, base_id, tuple((a, i, d) for a, (i, d) in sorted(out.items())))


def parse_integer(data: bytes) -> int | None:
    """A string value INCR can start from (Redis' rules: a signed 64-bit decimal)."""
    if not data or len(data) > 20 or data != data.strip() or data[:1] == b"+":
        return None
    if (data[:1] == b"0" and len(data) > 1) or data[:2] == b"-0":
        return None
    try:
        n = int(data)
    except ValueError:
        return None
    return n if INT64_MIN <= n <= INT64_MAX else None
