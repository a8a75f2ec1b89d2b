"""Clients blocked on keys (BLPOP and the other blocking pops): who waits for which key,
in what order, and when each one tries again.

The Redis face runs a blocking command first as its non-blocking form; when that finds
nothing, the client waits here as a `Waiter`, queued on each of its keys in arrival
order. What an attempt is belongs to the face: `attempt(key, done)` pops from `key` for
this client and calls `done(result)`, with None when it got nothing. This module
decides when, and for whom:

- while clients wait on a key, the node watches it (watches.py); when the key is
  written through any node, the first client in the key's queue tries it; if it got
  something, the next one tries too (more may be left); if not, it waits on;
- one attempt per key at a time: notifications that come during an attempt make one
  more attempt after it. A client that waits on several keys tries one key at a time,
  and a key whose first client is busy with another key waits for it: among the
  clients blocked on one key on this node, the one that blocked first is served first;
- when a client starts waiting, each key it is the first to wait on is tried once
  more, after the watch is sent: a write that came between the first attempt and the
  watch's arrival is not missed;
- every RETRY_MS every key waited on is tried as if it had been written: a lost
  notification, or a watch that reached a new replica late, costs at most that long;
- a client's deadline (0: none) ends its wait with `finish(None)`; an attempt in flight
  at that moment finishes first, and what it got wins. `end` ends a wait early with a
  result of the caller's choice, `cancel` forgets a client that went away.

Results are opaque here: `finish` gets what the attempt gave (or what `end` was given),
through the node's `done` list.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .node import Node

RETRY_MS = 1000  # every key waited on is tried this often, written or not

Done = Callable[[Any], None]
Attempt = Callable[[bytes, Done], None]


class Waiter:
    """One blocked client."""

    __slots__ = ("keys", "attempt", "finish", "deadline", "busy", "ending", "over")

    def __init__(self, keys: list[bytes], attempt: Attempt, finish: Done,
                 deadline: int) -> None:
        self.keys = keys
        self.attempt = attempt
        self.finish = finish
        self.deadline = deadline  # the node's clock; 0: no deadline
        self.busy = False  # an attempt of this client is in flight
        self.ending: tuple[Any] | None = None  # end with this once the attempt ends
        self.over = False  # answered or forgotten


class KeyQueue:
    """The clients waiting on one key, first come first."""

    __slots__ = ("waiters", "busy", "again")

    def __init__(self) -> None:
        self.waiters: dict[Waiter, None] = {}  # in arrival order
        self.busy = False  # an attempt on this key is in flight
        self.again = False  # written since that attempt started: try again after it


class Blocking:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.queues: dict[bytes, KeyQueue] = {}
        self.waiting: dict[Waiter, None] = {}  # every waiter, in arrival order
        self.deadlines: list[tuple[int, int, Waiter]] = []  # a heap (ended waits linger)
        self._seq = itertools.count()
        self.next_retry = 0
        self.attempts = 0  # statistics (INFO)
        self.served = 0
        self.timeouts = 0

    # --- the face's calls ------------------------------------------------------------

    def block(self, keys: list[bytes], attempt: Attempt, finish: Done,
              deadline: int) -> Waiter:
        """Wait on `keys` until an attempt gets something, or `deadline` (0: none)."""
        w = Waiter(list(dict.fromkeys(keys)), attempt, finish, deadline)
        self.waiting[w] = None
        if deadline:
            heapq.heappush(self.deadlines, (deadline, next(self._seq), w))
        fresh = []
        for key in w.keys:
            q = self.queues.get(key)
            if q is None:
                q = self.queues[key] = KeyQueue()
                self.node.watches.watch(key, self.changed)
                fresh.append(key)
            q.waiters[w] = None
        for key in fresh:
            self._serve(key)
        return w

    def end(self, w: Waiter, result: Any) -> None:
        """End a wait now with `result` (after the attempt in flight, if any: what that
        gets wins)."""
        if w.over or w.ending is not None:
            return
        if w.busy:
            w.ending = (result,)
            return
        self._finish(w, result)
        self._catch_up(w.keys)

    def cancel(self, w: Waiter) -> None:
        """The client went away: forget it (an attempt in flight ends unheard)."""
        if w.over:
            return
        w.over = True
        self._leave(w)
        self._catch_up(w.keys)

    def expire(self, now: int) -> None:
        """End the waits whose deadline has passed."""
        deadlines = self.deadlines
        while deadlines and deadlines[0][0] <= now:
            w = heapq.heappop(deadlines)[2]
            if not w.over and w.ending is None:
                self.timeouts += 1
                self.end(w, None)

    def tick(self, now: int) -> None:
        self.expire(now)
        if now >= self.next_retry:
            self.next_retry = now + RETRY_MS
            for key in list(self.queues):
                self._serve(key)

    def changed(self, key: bytes) -> None:
        """`key` was written (watches.py calls this)."""
        self._serve(key)

    # --- attempts --------------------------------------------------------------------

    def _serve(self, key: bytes) -> None:
        """Let the first client waiting on `key` try it, unless an attempt is already
        in flight (then once more after it)."""
        q = self.queues.get(key)
        if q is None:
            return
        w = next(iter(q.waiters))
        if q.busy or w.busy:
            q.again = True
            return
        q.again = False
        q.busy = w.busy = True
        self.attempts += 1
        w.attempt(key, lambda result: self._attempted(w, key, q, result))

    def _attempted(self, w: Waiter, key: bytes, q: KeyQueue, result: Any) -> None:
        w.busy = False
        q.busy = False
        got = result is not None
        if not w.over:
            if got:
                self.served += 1
                self._finish(w, result)
            elif w.ending is not None:
                self._finish(w, w.ending[0])
        if got and self.queues.get(key) is q:
            q.again = True  # more may be left for the next client
        self._catch_up(w.keys)

    def _catch_up(self, keys: list[bytes]) -> None:
        """Try the keys that were written while their first client was busy."""
        for key in keys:
            q = self.queues.get(key)
            if q is not None and q.again:
                self._serve(key)

    def _finish(self, w: Waiter, result: Any) -> None:
        w.over = True
        self._leave(w)
        self.node.done.append((w.finish, result))

    def _leave(self, w: Waiter) -> None:
        self.waiting.pop(w, None)
        deadlines = self.deadlines
        if len(deadlines) > 2 * len(self.waiting) + 64:
            # Mostly waits that ended before their deadline: keep the live ones only.
            self.deadlines = [d for d in deadlines if not d[2].over]
            heapq.heapify(self.deadlines)
        for key in w.keys:
            q = self.queues.get(key)
            if q is None or w not in q.waiters:
                continue
            del q.waiters[w]
            if not q.waiters:
                del self.queues[key]
                self.node.watches.unwatch(key, self.changed)
