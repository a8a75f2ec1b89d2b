"""Live keys per partition and database, kept up to date as the local store changes, so
that DBSIZE and INFO keyspace cost O(partitions) instead of a walk of every key (a DBSIZE
of 259,204 keys held the coordinator 430-490 ms of CPU; monitors send INFO every second).

Each stored object reads as a live key until a moment `R` (obj.reads_until): 0 for a
tombstone, obj.NEVER for a value that never expires, else its last writer's expiry.
At `now` the key is live exactly when R > now, which is what the walk it replaces
(cluster/keyscan.py's "count", through obj.read_expiry) decides, siblings, tombstones,
expired-but-not-reaped keys and collections' markers alike: the store tells `change`
each object's R before and after every write, and the figures follow.

A tally (one per partition and database) counts the objects with R past its `mark`, those
of them with a finite R and the sum of those R's (INFO's avg_ttl is that sum less `now`
per key). It keeps how many keys expire at each finite R ahead, min-first in a heap, so
that asking it at `now` first takes out the keys whose moment came (each once: `mark`
moves to `now`). An object written with an R already passed is not counted, as the walk
would not. Asked at a `now` before its mark (a clock stepped back), a tally cannot say
which keys it took out would live again: `figures` answers None and the caller walks.
Taking expired keys out costs a heap pop per expiry moment (a million keys expiring
at distinct moments took 356 ms at once): the node's ticks take them out a slice at a
time (`expire_some`), and an ask that would need more than ASK_BUDGET pops answers
None as well (the caller's walk goes a slice per loop turn, and the ticks catch up).

Pure: no I/O, no clock reads (the caller passes `now`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from heapq import heapify, heappop, heappush
from typing import Any, Final

from .obj import NEVER

# Stored keys of databases 1..15 start with MARK then the database's byte; see
# commands/databases.py, which maps keys so (database 0's keys starting with MARK carry
# a zero byte after it).
MARK: Final = b"\xfe\xffdb"
_LEN: Final = len(MARK)
_MARK0: Final = 0xFE  # MARK[0], a literal: a C constant in compiled code
# Stale moments a tally's heap may hold beyond its live ones before it is rebuilt.
SLACK: Final = 64
# Expiry moments one ask (DBSIZE, INFO keyspace) takes out at most (a few ms).
ASK_BUDGET: Final = 16_384


def db_of(stored: bytes) -> int:
    """The database of a stored key (commands/databases.py's user_key)."""
    if stored[:_LEN] != MARK or len(stored) == _LEN:
        return 0
    return stored[_LEN]


class Tally:
    """One partition's live keys of one database (see the module docstring)."""

    __slots__ = ("keys", "ttls", "total", "due", "heap", "mark")

    def __init__(self) -> None:
        self.keys = 0  # objects with R > mark
        self.ttls = 0  # those of them with a finite R
        self.total = 0  # the sum of those finite R's
        self.due: dict[int, int] = {}  # finite R > mark: objects with it
        self.heap: list[int] = []  # due's moments, min first (and some no longer in it)
        self.mark = 0  # keys whose R is at or before it are out of the figures

    def expiry_bytes(self) -> int:
        """The bytes of its maps of expiry moments (MEMORY STATS'
        overhead.hashtable.expires), 0 if it never held a key with a TTL."""
        if not self.due and not self.heap:
            return 0
        return sys.getsizeof(self.due) + sys.getsizeof(self.heap)

    def add(self, r: int) -> None:
        if r == 0:
            return
        if r == NEVER:
            self.keys += 1
            return
        if r <= self.mark:
            return  # expired already: never counted, never taken out
        self.keys += 1
        self.ttls += 1
        self.total += r
        n = self.due.get(r)
        if n is None:
            self.due[r] = 1
            heappush(self.heap, r)
        else:
            self.due[r] = n + 1

    def drop(self, r: int) -> None:
        if r == 0:
            return
        if r == NEVER:
            self.keys -= 1
            return
        if r <= self.mark:
            return  # taken out when it expired
        self.keys -= 1
        self.ttls -= 1
        self.total -= r
        n = self.due[r]
        if n > 1:
            self.due[r] = n - 1
            return
        del self.due[r]
        if len(self.heap) > 2 * len(self.due) + SLACK:
            # Moments rewritten away (EXPIRE after EXPIRE of one key) pile up in the
            # heap until they pass: rebuilt from the live ones, it stays at most about
            # twice their number.
            self.heap = list(self.due)
            heapify(self.heap)

    def expire(self, now: int, budget: int) -> int:
        """Take out the keys whose R is at or before `now`, up to `budget` moments; the
        budget left, or -1 if it did not suffice or `now` is before the mark (then the
        figures cannot be had for `now`)."""
        if now < self.mark:
            return -1
        heap, due = self.heap, self.due
        while heap and heap[0] <= now:
            if budget <= 0:
                return -1
            budget -= 1
            r = heappop(heap)
            n = due.pop(r, 0)
            if n:
                self.keys -= n
                self.ttls -= n
                self.total -= r * n
            self.mark = r  # every key expiring at or before it is out
        self.mark = now
        return budget


class KeyCounts:
    """The tallies of every partition this node stores keys of."""

    __slots__ = ("tallies", "zero")

    def __init__(self) -> None:
        self.tallies: dict[int, dict[int, Tally]] = {}
        # Each partition's tally of database 0 (also in `tallies`): a write of a key of
        # database 0 (most are) finds it in one lookup, not two and db_of's slice.
        self.zero: dict[int, Tally] = {}

    def change(self, p: int, stored: bytes, was: int, now_r: int) -> None:
        """Object `stored` of partition `p` went from reading live until `was` to until
        `now_r` (obj.reads_until; 0 for none or a tombstone)."""
        if was == now_r:
            return
        if len(stored) > _LEN and stored[0] == _MARK0:  # may be another database's
            t = self._tally(p, db_of(stored))
        else:
            found = self.zero.get(p)
            t = self._tally(p, 0) if found is None else found
        t.drop(was)
        t.add(now_r)

    def _tally(self, p: int, db: int) -> Tally:
        """Partition `p`'s tally of database `db`, made if it has none."""
        dbs = self.tallies.get(p)
        if dbs is None:
            dbs = self.tallies[p] = {}
        t = dbs.get(db)
        if t is None:
            t = dbs[db] = Tally()
            if db == 0:
                self.zero[p] = t
        return t

    def figures(self, parts: Iterable[int], now: int) -> list[tuple[int, int, int, int]] | None:
        """For each database with live keys in `parts` at `now`, in order: (database,
        live keys, those with a TTL, the sum of their remaining TTLs in ms), as the
        walk gives them; None if `now` is before a moment already asked about, or more
        than ASK_BUDGET expiry moments are still to take out."""
        sums: dict[int, list[int]] = {}
        tallies = self.tallies
        budget = ASK_BUDGET
        for p in parts:
            dbs = tallies.get(p)
            if dbs is None:
                continue
            for db, t in dbs.items():
                budget = t.expire(now, budget)
                if budget < 0:
                    return None
                if not t.keys:
                    continue
                f = sums.get(db)
                if f is None:
                    sums[db] = [t.keys, t.ttls, t.total - t.ttls * now]
                else:
                    f[0] += t.keys
                    f[1] += t.ttls
                    f[2] += t.total - t.ttls * now
        return [(db, f[0], f[1], f[2]) for db, f in sorted(sums.items())]

    def none_live(self, p: int, db: int, now: int) -> bool:
        """Whether partition `p` surely holds no live key of database `db` at `now` (its
        tally counts none, and `now` is not before its mark), so that a walk of the
        database (SCAN, KEYS, RANDOMKEY) passes the partition by unread."""
        dbs = self.tallies.get(p)
        if dbs is None:
            return True
        t = dbs.get(db)
        return t is None or (t.keys == 0 and now >= t.mark)

    def expire_some(self, now: int, budget: int) -> None:
        """Take out up to `budget` expiry moments at or before `now` (the node's tick),
        so that an ask finds few left."""
        for dbs in self.tallies.values():
            for t in dbs.values():
                if t.heap and t.heap[0] <= now and now >= t.mark:
                    budget = t.expire(now, budget)
                    if budget <= 0:
                        return

    def clear(self, bury: Callable[[Any], None] | None = None) -> None:
        """Forget every key (FLUSHALL's wipe); the tallies go to `bury` if given
        (core/graveyard.py: a million keys' expiry moments are freed a slice a turn)."""
        if bury is not None:
            bury(self.tallies)
        self.tallies = {}
        self.zero = {}
