"""A whole collection key sent in a sync answer, a slice of records per loop turn and per
message.

A replica whose log of recent events does not reach back to what the coordinator
holds answers with every record of the key (collcoord.py, step 1). A replica that was
down while 200,000 elements were added answered the first command there after its
restart with 200,000 records: each peer read them into one answer in one turn, and the
coordinator merged each answer in one turn, holding all three nodes 120-215 ms. Then
the peer read `SLICE` records a turn but still sent them as one message, encoded in one
turn and decoded by the coordinator in one (400,000 records: 53-55 ms of the peers'
CPU, 243 ms of the coordinator's), often after the command had timed out waiting,
so each retry read the whole key again for nothing.

Here the peer sends each turn's `SLICE` records as a part of its answer (`csp`), and
the answer itself (`csa`) carries the last ones and how many parts came before it: the
coordinator merges each part as it arrives, a message of its own, and waits on while
they come; an answer that does not follow all of its parts (a link lost one) is not
counted.

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
"""Records read, sent and merged per loop turn (~1 µs each to read, a few to merge)."""

Later = Callable[[Callable[[Any], None]], None]


def gather(records: list[Any], more: Iterator[Any], last: Callable[[], list[Any]],
           later: Later, part: Callable[[list[Any]], None],
           done: Callable[[list[Any], int], None]) -> None:
    """Send `records` then what `more` yields, `SLICE` a turn, each turn's but the last
    as a `part`; then `done(the last ones and last()'s, how many parts went before)`."""
    _Gathering(records, more, last, later, part, done).step()


class _Gathering:
    """One `gather` under way: its bound `step` goes to the next turn. An object, not a
    closure handing itself on (a reference cycle per whole key sent, that held its last
    records and its reader of the store until the cyclic collector ran)."""

    __slots__ = ("records", "parts", "more", "last", "later", "part", "done")

    def __init__(self, records: list[Any], more: Iterator[Any],
                 last: Callable[[], list[Any]], later: Later,
                 part: Callable[[list[Any]], None],
                 done: Callable[[list[Any], int], None]) -> None:
        self.records = records
        self.parts = 0
        self.more = more
        self.last = last
        self.later = later
        self.part = part
        self.done = done

    def step(self, _: Any = None) -> None:
        records = self.records
        records.extend(islice(self.more, max(0, SLICE - len(records))))
        if len(records) >= SLICE:
            self.part(records)
            self.parts += 1
            self.records = []
            self.later(self.step)
            return
        records.extend(self.last())
        self.done(records, self.parts)
