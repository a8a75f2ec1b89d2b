"""One read-then-write at a time per key, on one node.

A command that reads a key and writes what it decided (SET NX, GETDEL, DEL, the EXPIRE
family ...) and a script, for the keys it declares, enter the key's gate: the next one
on the same key starts when the previous one has written. With every such operation on
a key coordinated by the same node (cluster/affinity.py), SET NX has one winner and a
lock's compare-and-delete script deletes only the token it read, while the cluster is
healthy. Plain reads and blind writes never wait here.

A script's own commands pass the gates it holds (it is their owner); a key it did not
declare is not gated for it (it could otherwise wait for a script that waits for it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

Leave = Callable[[], None]
Body = Callable[[Leave], None]


def _nothing() -> None:
    return None


class KeyGate:
    def __init__(self) -> None:
        self.queues: dict[bytes, deque[tuple[Any, Body]]] = {}
        self.owners: dict[bytes, Any] = {}

    def enter(self, key: bytes, owner: Any, body: Body) -> None:
        """Run `body(leave)` once `key` is free; `leave()` frees it (call it once)."""
        if owner is not None and getattr(owner, "gated", None) is not None:
            # a script's command: its own keys are open to it, others are not gated
            body(_nothing)
            return
        queue = self.queues.get(key)
        if queue is not None:
            queue.append((owner, body))
            return
        self.queues[key] = deque()
        self.owners[key] = owner
        body(self._leaver(key))

    def _leaver(self, key: bytes) -> Leave:
        done = False

        def leave() -> None:
            nonlocal done
            if done:
                return
            done = True
            self._next(key)

        return leave

    def _next(self, key: bytes) -> None:
        queue = self.queues[key]
        if not queue:
            del self.queues[key]
            del self.owners[key]
            return
        owner, body = queue.popleft()
        self.owners[key] = owner
        body(self._leaver(key))

    def enter_all(self, keys: list[bytes], owner: Any, body: Body) -> None:
        """Enter the gates of several keys (in one order for everyone: no deadlock)."""
        wanted = sorted(set(keys))
        leaves: list[Leave] = []

        def leave_all() -> None:
            for leave in reversed(leaves):
                leave()
            leaves.clear()

        def step(i: int) -> None:
            if i == len(wanted):
                body(leave_all)
                return

            def entered(leave: Leave) -> None:
                leaves.append(leave)
                step(i + 1)

            self.enter(wanted[i], owner, entered)

        step(0)

    def busy(self) -> int:
        return len(self.queues)
