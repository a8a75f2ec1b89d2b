"""This node's subscribers, and the pub/sub facility commands use (`Context.pubsub`).

`Subscriptions` is the local table Redis keeps in its server struct: channel -> clients,
pattern -> clients, shard channel -> clients, with each client's own sets (`SubState`)
for its replies' counts and for dropping it. `deliver` pushes a message to the local
receivers and answers their number; cluster/pubsub.py calls it for messages published
here and for those other nodes send.

`PubSub` joins the table to the cluster mechanism and holds notify-keyspace-events
(commands/notify.py words and parses it; the setting is the cluster's).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from ..cluster.pubsub import ClusterPubSub
from ..commands.glob import matching, stringmatch
from ..commands.notify import parse_events, publish_event
from ..core import obj as objmod
from ..resp import encode as resp

CHANNELS = "channels"
PATTERNS = "patterns"
SHARD = "shard"


class SubState:
    """One client's subscriptions (the counts its SUBSCRIBE replies carry), each kind in
    the order subscribed (an UNSUBSCRIBE of all goes through them in that order)."""

    __slots__ = ("channels", "patterns", "shard")

    def __init__(self) -> None:
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard: dict[bytes, None] = {}

    @property
    def count(self) -> int:
        """SUBSCRIBE's and PSUBSCRIBE's count: channels and patterns."""
        return len(self.channels) + len(self.patterns)

    @property
    def any(self) -> bool:
        """Subscribed to anything: a RESP2 client is in subscriber mode."""
        return bool(self.channels or self.patterns or self.shard)


def _message(proto: int, kind: bytes, *parts: bytes) -> bytes:
    head = b">%d\r\n" % (len(parts) + 1) if proto == 3 else b"*%d\r\n" % (len(parts) + 1)
    return head + resp.bulk(kind) + b"".join(resp.bulk(p) for p in parts)


class Subscriptions:
    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, dict[int, Any]]] = {
            CHANNELS: {}, PATTERNS: {}, SHARD: {}}
        self.delivered = 0  # messages pushed to local clients (INFO)

    def add(self, conn: Any, table: str, name: bytes) -> None:
        mine: dict[bytes, None] = getattr(conn.subs, table)
        if name in mine:
            return
        mine[name] = None
        self.tables[table].setdefault(name, {})[conn.id] = conn
        conn.subscribed = True

    def remove(self, conn: Any, table: str, name: bytes) -> bool:
        mine: dict[bytes, None] = getattr(conn.subs, table)
        if name not in mine:
            return False
        del mine[name]
        subs = self.tables[table].get(name)
        if subs is not None:
            subs.pop(conn.id, None)
            if not subs:
                del self.tables[table][name]
        conn.subscribed = conn.subs.any
        return True

    def drop(self, conn: Any) -> None:
        """A client that leaves (or RESETs) leaves every subscription."""
        for table in (CHANNELS, PATTERNS, SHARD):
            for name in list(getattr(conn.subs, table)):
                self.remove(conn, table, name)

    def deliver(self, channel: bytes, message: bytes, shard: bool) -> int:
        """Push `message` to this node's receivers; how many there were."""
        count = 0
        encoded: dict[int, bytes] = {}
        if shard:
            for conn in list(self.tables[SHARD].get(channel, {}).values()):
                data = encoded.get(conn.proto)
                if data is None:
                    data = encoded[conn.proto] = _message(conn.proto, b"smessage", channel,
                                                          message)
                conn.push(data)
                count += 1
            self.delivered += count
            return count
        for conn in list(self.tables[CHANNELS].get(channel, {}).values()):
            data = encoded.get(conn.proto)
            if data is None:
                data = encoded[conn.proto] = _message(conn.proto, b"message", channel, message)
            conn.push(data)
            count += 1
        patterns = self.tables[PATTERNS]
        names = list(patterns)
        for at in matching(names, channel):  # (in C: 50,000 patterns in a few ms)
            pattern = names[at]
            for conn in list(patterns[pattern].values()):
                conn.push(_message(conn.proto, b"pmessage", pattern, channel, message))
                count += 1
        self.delivered += count
        return count

    def local(self, what: str, args: list[bytes]) -> Any:
        """This node's share of a PUBSUB subcommand (merged by commands/pubsub.py)."""
        if what in ("channels", "shardchannels"):
            table = self.tables[CHANNELS if what == "channels" else SHARD]
            pattern = args[0] if args else None
            return [ch for ch in table if pattern is None or stringmatch(pattern, ch)]
        if what in ("numsub", "shardnumsub"):
            table = self.tables[CHANNELS if what == "numsub" else SHARD]
            return [len(table.get(ch, ())) for ch in args]
        if what == "numpat":
            return list(self.tables[PATTERNS])
        raise ValueError(what)


EXPIRIES_MAX = 100_000  # keys watched for their "expired" event, at most


class PubSub:
    """The pub/sub facility of a server (what `Context.pubsub` is).

    "expired" events: the node that coordinated a write giving a key an expiry (with
    notify-keyspace-events' x class on) watches the key; when the time comes it reads
    the key with a quorum and publishes "expired" if the version it finds is the one
    with that expiry, now past (a key written again, persisted or deleted meanwhile
    says nothing). Watches are kept in memory: a node that restarts forgets them."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.subs = Subscriptions()
        self.flags = 0  # notify-keyspace-events as bits (commands/notify.py)
        # Told each new `flags` (the server keeps a copy its compiled code reads at
        # every command without a lookup in this object).
        self.flags_changed: Callable[[int], None] | None = None
        self.expiries: list[tuple[int, bytes]] = []  # (when, stored key), a heap
        self.cluster = ClusterPubSub(node, self.subs.deliver, self.subs.local,
                                     self._events_changed)

    def _events_changed(self, text: str) -> None:
        flags = parse_events(text)
        self.flags = flags if flags is not None else 0
        if self.flags_changed is not None:
            self.flags_changed(self.flags)

    @property
    def events(self) -> str:
        return self.cluster.events

    def set_events(self, text: str) -> None:
        self.cluster.set_events(text)

    def publish(self, channel: bytes, message: bytes, shard: bool,
                cb: Any) -> None:
        self.cluster.publish(channel, message, shard, cb)

    def query(self, what: str, args: list[bytes], cb: Any) -> None:
        self.cluster.query(what, args, cb)

    def watch_expiry(self, key: bytes, when: int) -> None:
        """`key` as stored (its database is in it, commands/databases.py)."""
        if len(self.expiries) < EXPIRIES_MAX:
            heapq.heappush(self.expiries, (when, key))

    def tick(self) -> None:
        """Reads the keys whose expiry has come (the driver calls it, then settles)."""
        node = self.node
        now = node.now
        heap = self.expiries
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if not self.flags:
                continue
            node.get(key, lambda result, key=key, when=when:
                     self._expired(result, key, when))
        self.cluster.tick()

    def _expired(self, result: tuple, key: bytes, when: int) -> None:
        err, obj = result
        if err is not None or obj is None:
            return
        w = objmod.winner(obj)
        if w is None:
            return
        _, expire_at, data = w[0]
        # The version written with this expiry (set a few ms before `when` was taken,
        # within the write's timeout), its time now past, not deleted since.
        slack = self.node.cfg.timeout_ms
        if data is not None and expire_at and when - slack <= expire_at <= self.node.now \
                and expire_at <= when:
            publish_event(self, "x", b"expired", key)
