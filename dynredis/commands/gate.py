"""One read-then-write at a time per key, on one node.

A command that reads a key and writes what it decided (SET NX, GETDEL, DEL, the EXPIRE
family ...) and a script, for the keys it declares, enter the key's gate: the next one
on the same key starts when the previous one has written. With every such operation on
a key coordinated by the same node (cluster/affinity.py), SET NX has one winner and a
lock's compare-and-delete script deletes only the token it read, while the cluster is
healthy. Plain reads and blind writes never wait here.

A client's later commands on the same key wait while one of its read-then-writes is at
the key's gate, from entering it until it wrote (`waiter`): they would otherwise
overtake it where Redis runs a connection's commands in order. A SET sent after a DEL of the same key would be written before the DEL read the
key and be deleted by it, or, written between the DEL's read and its write, be a
sibling of the DEL's tombstone, older than it.

A script's own commands pass the gates it holds (it is their owner); a key it did not
declare is not gated for it (it could otherwise wait for a script that waits for it).
A plan that writes keys (RENAME, COPY, the *STOREs) holds its keys' gates from its first
step to its reply (commands/plangate.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

Leave = Callable[[], None]
Body = Callable[[Leave], None]
Touch = Callable[[], None] | None


def _nothing() -> None:
    return None


def unless_answered(slot: Any, body: Body) -> Body:
    """`body`, or, if its command's reply `slot` was answered while it waited its turn
    (server/client.py's unstick: "the reply to this command was lost"), the gate left at
    once: its client was told it failed, so it writes nothing now."""
    def run(leave: Leave) -> None:
        if getattr(slot, "data", None) is not None:
            leave()
            return
        body(leave)

    return run


def _holding(body: Body, waiter: Any, key: bytes) -> Body:
    """`body`, telling `waiter` once when it leaves `key`'s gate."""
    def run(leave: Leave) -> None:
        released = False

        def leave_and_release() -> None:
            nonlocal released
            leave()
            if not released:
                released = True
                waiter.gate_passed(key)

        body(leave_and_release)

    return run


class _EnterAll:
    """`KeyGate.enter_all` under way: the gates entered so far, the next one entered
    when its turn comes. An object, not closures that name themselves (a reference
    cycle: each script's keys, its run and what its callbacks held were left for the
    cyclic collector)."""

    __slots__ = ("gate", "wanted", "owner", "body", "waiter", "touch", "leaves")

    def __init__(self, gate: KeyGate, wanted: list[bytes], owner: Any, body: Body,
                 waiter: Any, touch: Touch) -> None:
        self.gate = gate
        self.wanted = wanted
        self.owner = owner
        self.body = body
        self.waiter = waiter
        self.touch = touch
        self.leaves: list[Leave] = []

    def step(self) -> None:
        if len(self.leaves) == len(self.wanted):
            body, self.body = self.body, _entered_already
            body(self.leave_all)
            return
        self.gate.enter(self.wanted[len(self.leaves)], self.owner, self.entered,
                        self.waiter, self.touch)

    def entered(self, leave: Leave) -> None:
        self.leaves.append(leave)
        self.step()

    def leave_all(self) -> None:
        leaves, self.leaves = self.leaves, []
        for leave in reversed(leaves):
            leave()


def _entered_already(leave: Leave) -> None:
    return None


class KeyGate:
    def __init__(self) -> None:
        self.queues: dict[bytes, deque[tuple[Any, Body, Touch]]] = {}
        self.owners: dict[bytes, Any] = {}

    def enter(self, key: bytes, owner: Any, body: Body, waiter: Any = None,
              touch: Touch = None) -> None:
        """Run `body(leave)` once `key` is free; `leave()` frees it (call it once).
        `waiter`: the client connection whose command this is: it runs nothing more
        on `key` until the command left the gate (`gate_wait` / `gate_passed`).
        `touch`: called while it waits, each time the command holding the gate moves
        on (`moved`): waiting for it, it is not lost (server/client.py's unstick)."""
        if owner is not None and getattr(owner, "gated", None) is not None:
            # a script's command: its own keys are open to it, others are not gated
            body(_nothing)
            return
        if waiter is not None:
            waiter.gate_wait(key)
            body = _holding(body, waiter, key)
        queue = self.queues.get(key)
        if queue is not None:
            queue.append((owner, body, touch))
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
        owner, body, _ = queue.popleft()
        self.owners[key] = owner
        body(self._leaver(key))

    def moved(self, key: bytes) -> None:
        """The command holding `key`'s gate took a step: touch those waiting for it."""
        queue = self.queues.get(key)
        if queue:
            for _, _, touch in queue:
                if touch is not None:
                    touch()

    def enter_all(self, keys: list[bytes], owner: Any, body: Body, waiter: Any = None,
                  touch: Touch = None) -> None:
        """Enter the gates of several keys (in one order for everyone: no deadlock)."""
        _EnterAll(self, sorted(set(keys)), owner, body, waiter, touch).step()

    def busy(self) -> int:
        return len(self.queues)
