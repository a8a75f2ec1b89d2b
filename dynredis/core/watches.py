"""Key-change notifications: how a node where clients wait on a key learns, promptly,
that the key was written through another node.

A node with clients blocked on a key (blocking.py) *watches* the key: it asks each of
the key's replicas, as its current preference list names them (fallbacks standing in
for down primaries included), to tell it when they write the key. Every write to a
collection key is evaluated at one of those replicas and applied by the others
(collcoord.py), and each of them calls `changed` when it does: so a push through any
node reaches the watcher as a small "changed" message from the coordinator and from
each replica that applies it, whichever comes first.

Watches expire: a replica keeps one for `WATCH_TTL_MS`, and the watcher renews its
watches every `RENEW_MS` while it still has listeners on the key, so the watches of a
node that crashed or was cut off go away by themselves, and a node that became one of
the key's replicas meanwhile learns of them at the next renewal. When the last listener
of a key leaves, the watcher tells the replicas at once (a watch for 0 ms).

A notification is a hint, not a delivery: the listener (blocking.py) retries its pop,
which may find nothing (another client got there first) or miss a write still on its
way (a later notification, or the listener's own periodic retry, catches it).

Peer messages (messages.KINDS, mechanism "watches"):
  ("bw", keys, ttl)   tell me when you write these keys, for ttl ms (0: forget them)
  ("bc", keys)        these keys were written (a batch: consecutive notifications to one
                      node share one message)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import messages as m

if TYPE_CHECKING:
    from .node import Node

RENEW_MS = 2000  # a watcher sends its watches again this often
WATCH_TTL_MS = 3 * RENEW_MS  # a replica forgets a watch not renewed for this long

Listener = Callable[[bytes], object]


class Watches:
    """The watcher side (listeners, registration, renewal) and the replica side (who
    watches what, notifications) of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Watcher side: key -> the local listeners told when the key is written.
        self.listeners: dict[bytes, list[Listener]] = {}
        self.next_renew = 0
        # Replica side: key -> {watching node: when its watch expires (our clock)}.
        self.watchers: dict[bytes, dict[str, int]] = {}
        self.next_purge = 0
        self.notified = 0  # notifications sent to other nodes (INFO)

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.BLOCK_WATCH: self._on_watch, m.BLOCK_CHANGED: self._on_changed}

    # --- watcher side ----------------------------------------------------------------

    def watch(self, key: bytes, listener: Listener) -> None:
        """Call `listener(key)` whenever the key is written, through any node, until
        `unwatch`."""
        found = self.listeners.get(key)
        if found is not None:
            found.append(listener)
            return
        self.listeners[key] = [listener]
        self._register([key], WATCH_TTL_MS)

    def unwatch(self, key: bytes, listener: Listener) -> None:
        found = self.listeners.get(key)
        if found is None or listener not in found:
            return
        found.remove(listener)
        if not found:
            del self.listeners[key]
            self._register([key], 0)

    def _register(self, keys: list[bytes], ttl: int) -> None:
        """Send a watch of `keys` for `ttl` ms to each of their replicas (one message
        per replica)."""
        node = self.node
        per_peer: dict[str, list[bytes]] = {}
        for key in keys:
            for peer, _ in node.route(node.partition(key)).targets:
                if peer != node.name:
                    per_peer.setdefault(peer, []).append(key)
        for peer in sorted(per_peer):
            node.send(peer, m.block_watch(per_peer[peer], ttl))

    def _on_changed(self, src: str, msg: tuple) -> None:
        for key in dict.fromkeys(msg[1]):  # once per key, in order
            self._tell(key)

    def _tell(self, key: bytes) -> None:
        listeners = self.listeners.get(key)
        if listeners:
            done = self.node.done
            for listener in list(listeners):
                done.append((listener, key))

    # --- replica side ----------------------------------------------------------------

    def _on_watch(self, src: str, msg: tuple) -> None:
        _, keys, ttl = msg
        expires = self.node.now + ttl
        for key in keys:
            watching = self.watchers.get(key)
            if ttl > 0:
                if watching is None:
                    watching = self.watchers[key] = {}
                watching[src] = expires
            elif watching is not None:
                watching.pop(src, None)
                if not watching:
                    del self.watchers[key]

    def changed(self, key: bytes, writer: str | None = None) -> None:
        """This node wrote `key` (a command it coordinated, or a delta it applied):
        tell this node's own listeners, and the nodes watching it but `writer` (the
        coordinator whose delta this is: it told its own listeners when it wrote)."""
        self._tell(key)
        watching = self.watchers.get(key)
        if not watching:
            return
        node = self.node
        now = node.now
        for peer, expires in list(watching.items()):
            if expires <= now:
                del watching[peer]
            elif peer != node.name and peer != writer:
                node.batch_for(peer, m.BLOCK_CHANGED).append(key)
                self.notified += 1
        if not watching:
            del self.watchers[key]

    # --- time ------------------------------------------------------------------------

    def tick(self, now: int) -> None:
        """Renew this node's watches, and forget expired watches of others."""
        if now >= self.next_renew:
            self.next_renew = now + RENEW_MS
            if self.listeners:
                self._register(list(self.listeners), WATCH_TTL_MS)
        if now >= self.next_purge:
            self.next_purge = now + WATCH_TTL_MS
            for key in list(self.watchers):
                watching = self.watchers[key]
                for peer in [p for p, exp in watching.items() if exp <= now]:
                    del watching[peer]
                if not watching:
                    del self.watchers[key]
