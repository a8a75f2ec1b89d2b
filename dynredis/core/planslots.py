"""How many large lookup plans one node runs at once (SORT ... BY / GET of a big key).

A SORT whose BY or GET pattern names a key per element holds, while it runs, every
element, each key the patterns name and each value read: ~180 MB for a million
elements. 33 pipelined `SORT_RO ... BY` of a 1,000,000-member set, one write of under
1 KB, all ran at once and grew their node to 6.3 GB (redis-server runs them one after
the other, ~80 MB at most). Such plans take one of the node's `limit` places first and
give it back when they end; the others wait first come first served, holding none of
what they read (commands/sortcmd.py reads the source again once its turn comes). A
plan with fewer lookups than that never waits.

A waiting plan's client is told it is still working (`touch`, its reply slot's:
server/client.py gives up on a reply that took no step for a minute) at each step of
the plans holding a place.

Pure: no I/O, no clock. A place given back goes to the next waiter through `answer`
(the node's completions, run after the plan that gave it back has ended its step: no
plan runs inside another's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

PLAN_SLOTS = 1
"""Large lookup plans running at once on one node."""

Callback = Callable[[Any], None]


class PlanSlot:
    """A place taken: `release` gives it back (once; later calls do nothing)."""

    __slots__ = ("owner",)

    def __init__(self, owner: PlanSlots) -> None:
        self.owner: PlanSlots | None = owner

    def release(self) -> None:
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.give_back()

    def step(self) -> None:
        """The plan holding it took a step: the waiting ones are still alive."""
        owner = self.owner
        if owner is not None:
            for _, touch in owner.waiting:
                if touch is not None:
                    touch()


class PlanSlots:
    """`limit` places; `take(cb, touch)` answers `cb((None, PlanSlot))` once one is free."""

    def __init__(self, answer: Callable[[Callback, Any], None],
                 limit: int = PLAN_SLOTS) -> None:
        self.answer = answer
        self.limit = limit
        self.running = 0
        self.waiting: deque[tuple[Callback, Callable[[], None] | None]] = deque()

    def take(self, cb: Callback, touch: Callable[[], None] | None = None) -> None:
        if self.running < self.limit and not self.waiting:
            self.running += 1
            self.answer(cb, (None, PlanSlot(self)))
        else:
            self.waiting.append((cb, touch))

    def give_back(self) -> None:
        self.running -= 1
        while self.waiting and self.running < self.limit:
            cb, _ = self.waiting.popleft()
            self.running += 1
            self.answer(cb, (None, PlanSlot(self)))
