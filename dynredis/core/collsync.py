"""A whole collection key sent in a sync answer, a slice of records per loop turn.

A replica whose log of recent events does not reach back to what the coordinator
holds answers with every record of the key (collcoord.py, step 1). A replica that was
down while 200,000 elements were added answered the first command there after its
restart with 200,000 records: each peer read them into one answer in one turn, and the
coordinator merged each answer in one turn, holding all three nodes 120-215 ms.
Here the peer reads `SLICE` records a turn and the coordinator merges `SLICE` a turn.

What the answer claims (the replica's applied events) is taken when its reading
starts: every record read later holds at least what it held then (records only merge,
and one stripped meanwhile is covered by the removal record, read last), so the
coordinator, having merged all of them, holds every event claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

SLICE = 8192
"""Records read or merged per loop turn (~1 µs each to read, a few to merge)."""

Later = Callable[[Callable[[Any], None]], None]


def gather(records: list[Any], more: Iterator[Any], last: Callable[[], list[Any]],
           later: Later, done: Callable[[list[Any]], None]) -> None:
    """Append what `more` yields to `records`, `SLICE` a turn, then `last()`'s, then
    `done(records)`."""

    def step(_: Any = None) -> None:
        before = len(records)
        records.extend(islice(more, SLICE))
        if len(records) - before == SLICE:
            later(step)
            return
        records.extend(last())
        done(records)

    step()


def in_slices(records: list[Any], take: Callable[[list[Any]], None], later: Later,
              done: Callable[[], None], each: Callable[[], None]) -> None:
    """`take` the records `SLICE` a turn (`each()` before every later turn), then
    `done()`."""
    at = 0

    def step(_: Any = None) -> None:
        nonlocal at
        take(records[at:at + SLICE])
        at += SLICE
        if at < len(records):
            each()
            later(step)
            return
        done()

    step()
