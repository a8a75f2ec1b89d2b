"""How many steps of plans' batches one node runs at once (SORT's BY and GET lookups).

A plan's batch (commands/collection.py) is a few hundred one-key quorum reads started
together. Each read in flight holds a dozen or more small objects (its read, its
callbacks, their closures), all of them young for the cyclic collector, which walks every
young object at each pass. 33 pipelined SORT_RO ... BY of a 100,000-member set ran 8,448
reads at once: ~150,000 young objects, young collections of 47-70 ms and older ones of
56-105 ms with every client waiting. The window starts the batches' steps in the order
their batches came, WINDOW of them at a time on the node: what waits is one entry per
batch, not a read per step, so the young generation stays bounded however many plans
run. One plan's batch (BATCH = 256 reads) still runs whole at once.

Pure: no I/O, no clock. A step that answers at once (a one-node cluster's local read)
frees its place inside `pump`: the loop goes on with the next, no recursion.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

WINDOW = 1024
"""Steps of batches in flight on one node at most (four SORTs' batches of 256)."""


class Batch:
    """One plan's batch as the window runs it: `start(i)` starts step i (and calls
    `StepWindow.release` when it answers), `size` steps in all."""

    __slots__ = ("start", "size", "next")

    def __init__(self, start: Callable[[int], None], size: int) -> None:
        self.start = start
        self.size = size
        self.next = 0


class StepWindow:
    """Starts batches' steps, at most `limit` unanswered at once, batches first come
    first served."""

    def __init__(self, limit: int = WINDOW) -> None:
        self.limit = limit
        self.running = 0
        self.waiting: deque[Batch] = deque()
        self._pumping = False

    def add(self, batch: Batch) -> None:
        """Run `batch`'s steps as places free up."""
        if batch.size:
            self.waiting.append(batch)
            self.pump()

    def release(self) -> None:
        """A step started here answered: its place goes to the next waiting step."""
        self.running -= 1
        self.pump()

    def pump(self) -> None:
        if self._pumping:  # (a step that answered while being started: the loop below
            return  # starts the next one)
        self._pumping = True
        try:
            waiting = self.waiting
            while waiting and self.running < self.limit:
                batch = waiting[0]
                i = batch.next
                batch.next = i + 1
                if batch.next >= batch.size:
                    waiting.popleft()
                self.running += 1
                batch.start(i)
        finally:
            self._pumping = False
