"""Pub/sub across the cluster: a message published through any node reaches the
subscribers of every node that is up, and PUBLISH answers how many received it.

The publishing node delivers to its own subscribers, then sends the message ("pp") to
every member it does not count down (a suspected one too); each delivers to its own subscribers and answers with their
number ("ppa"); the publisher sums the answers (a peer lost meanwhile, or silent past
the request timeout, counts as 0). Delivery is at most once, as Redis': a node that is
down, or unreachable, misses what is published meanwhile, and nothing is kept for it.
Keyspace notifications travel the same way without asking for counts (reqid 0).

PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB ask every up node
("pq", answered by "pqa") and merge: the cluster's subscriptions, not one node's.

`notify-keyspace-events` is one setting for the cluster: CONFIG SET on any node tells
every member ("pne", with the time it was set: the latest setting wins), and a node
tells a peer whose link comes up, so one that restarts learns it back.

Pure, as keyscan.py: effects through `node.send`; the server gives `deliver(channel,
message, shard) -> receivers` (its own subscribers), `local(what, args) -> result`
(its own PUBSUB figures) and `on_events(flags)`, and calls `tick()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import messages as m

Deliver = Callable[[bytes, bytes, bool], int]
Local = Callable[[str, list[bytes]], Any]


class _Waiting:
    """A PUBLISH or PUBSUB query waiting on peers' answers."""

    __slots__ = ("peers", "results", "done", "deadline")

    def __init__(self, peers: set[str], first: Any, done: Callable[[list[Any]], None],
                 deadline: int) -> None:
        self.peers = peers
        self.results = [first]
        self.done = done
        self.deadline = deadline


class ClusterPubSub:
    def __init__(self, node: Any, deliver: Deliver, local: Local,
                 on_events: Callable[[str], None]) -> None:
        self.node = node
        self.deliver = deliver
        self.local = local
        self.on_events = on_events
        self.events = ""  # notify-keyspace-events, as Redis writes it
        self.events_ms = 0  # when it was set (0: never; the default)
        self.pending: dict[int, _Waiting] = {}
        self.published = 0  # messages published through this node (INFO)
        self.received = 0  # messages other nodes sent this one
        node.register(m.PUBSUB_PUBLISH, self._on_publish)
        node.register(m.PUBSUB_COUNT, self._on_answer)
        node.register(m.PUBSUB_QUERY, self._on_query)
        node.register(m.PUBSUB_ANSWER, self._on_answer)
        node.register(m.PUBSUB_EVENTS, self._on_events)

    def _peers_not_down(self) -> set[str]:
        """Every peer not counted down: one only suspected (its heartbeats late, as under
        load) still gets messages; if it never answers, the deadline counts it 0."""
        node = self.node
        return {p for p in node.members
                if p != node.name and node.member_status(p) != "down"}

    # --- publishing ------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes, shard: bool,
                cb: Callable[[int], None] | None) -> None:
        """Deliver here and at every up peer; `cb(receivers)` once all answered (None:
        no count wanted, nothing waits)."""
        self.published += 1
        here = self.deliver(channel, message, shard)
        peers = self._peers_not_down()
        node = self.node
        if cb is None:
            for peer in peers:
                node.send(peer, m.pubsub_publish(0, channel, message, shard))
            return
        if not peers:
            cb(here)
            return
        reqid = node.next_reqid()
        self.pending[reqid] = _Waiting(peers, here, lambda counts: cb(sum(counts)),
                                       node.deadline())
        for peer in peers:
            node.send(peer, m.pubsub_publish(reqid, channel, message, shard))

    def _on_publish(self, src: str, msg: tuple) -> None:
        _, reqid, channel, message, shard = msg
        self.received += 1
        count = self.deliver(channel, message, bool(shard))
        if reqid:
            self.node.send(src, m.pubsub_count(reqid, count))

    # --- PUBSUB figures --------------------------------------------------------------

    def query(self, what: str, args: list[bytes], cb: Callable[[list[Any]], None]) -> None:
        """`cb` gets every up node's `local(what, args)`, this node's first."""
        here = self.local(what, args)
        peers = self._peers_not_down()
        if not peers:
            cb([here])
            return
        node = self.node
        reqid = node.next_reqid()
        self.pending[reqid] = _Waiting(peers, here, cb, node.deadline())
        for peer in peers:
            node.send(peer, m.pubsub_query(reqid, what, list(args)))

    def _on_query(self, src: str, msg: tuple) -> None:
        _, reqid, what, args = msg
        try:
            result = self.local(str(what), [bytes(a) for a in args])
        except (TypeError, ValueError):
            result = None
        self.node.send(src, m.pubsub_answer(reqid, result))

    def _on_answer(self, src: str, msg: tuple) -> None:
        w = self.pending.get(msg[1])
        if w is None or src not in w.peers:
            return
        w.peers.discard(src)
        w.results.append(msg[2])
        if not w.peers:
            del self.pending[msg[1]]
            w.done(w.results)

    # --- notify-keyspace-events, one setting for the cluster ---------------------------

    def set_events(self, flags: str) -> None:
        """CONFIG SET here: taken at once, and told to every member."""
        self.events = flags
        self.events_ms = max(self.node.now, self.events_ms + 1)
        self.on_events(flags)
        for peer in self.node.members:
            self.tell(peer)

    def tell(self, peer: str) -> None:
        """Tell `peer` the setting (when its link comes up); nothing if never set."""
        if peer != self.node.name and self.events_ms:
            self.node.send(peer, m.pubsub_events(self.events, self.events_ms))

    def _on_events(self, src: str, msg: tuple) -> None:
        _, flags, ms = msg
        if (ms, flags) > (self.events_ms, self.events):
            self.events = str(flags)
            self.events_ms = int(ms)
            self.on_events(self.events)

    # --- time and lost peers ---------------------------------------------------------

    def tick(self) -> None:
        """Answer what waits on peers that went down or never answered (they count as
        0 receivers, or as no subscriptions)."""
        node = self.node
        for reqid, w in list(self.pending.items()):
            lost = {p for p in w.peers if node.member_status(p) == "down"}
            w.peers -= lost
            if not w.peers or node.now >= w.deadline:
                del self.pending[reqid]
                w.done(w.results)
