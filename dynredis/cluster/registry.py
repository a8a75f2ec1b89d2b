"""A small record every node holds whole: the scripts loaded with SCRIPT LOAD and the
function libraries, known to every node and kept across restarts.

A last-writer-wins map of named entries, each with a version (milliseconds, node name)
and a value (None: deleted, a tombstone that keeps an older copy from coming back).
Names are "<namespace>:<name>"; the entry "<namespace>*" is a flush mark: every entry of
that namespace older than it is gone (SCRIPT FLUSH, FUNCTION FLUSH).

How it spreads: a change goes to every member at once ("rgp"), and the change's
callback runs when every member that is up has acknowledged ("rga") or the node's
request timeout passed, so that a client that loaded a script through one node finds
it on the others. Every few seconds a node sends one member its digest ("rgd"); a
member whose table differs answers with its whole table ("rgt"), and the first node
answers back with its own if it still has something the other lacks. A node that was
down or cut off catches up that way. The table lives in the engine's metadata.

Pure, as keyscan.py: no I/O, no clock reads; effects through `node.send`, callbacks
through `node.done`; the driver calls `tick()` periodically.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import msgpack

from ..core import messages as m

log = logging.getLogger("dynredis.registry")

META_KEY = "registry"
GOSSIP_MS = 3000

Version = tuple[int, str]
Entry = tuple[int, str, bytes | None]  # ms, node, value (None: deleted)


def mark(namespace: str) -> str:
    return namespace + "*"


class _Wait:
    __slots__ = ("peers", "deadline", "cb")

    def __init__(self, peers: set[str], deadline: int, cb: Callable[[Any], Any]) -> None:
        self.peers = peers
        self.deadline = deadline
        self.cb = cb


class Registry:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.entries: dict[str, Entry] = {}
        self.on_change: Callable[[set[str]], None] | None = None
        self.waits: dict[int, _Wait] = {}
        self._reqids = 0
        self._digest: bytes | None = None
        self._next_gossip = 0
        raw = node.engine.meta_get(META_KEY)
        if raw is not None:
            try:
                self._merge(msgpack.unpackb(raw, use_list=False), save=False)
            except (ValueError, TypeError) as exc:
                log.error("registry in the node's metadata not understood: %s", exc)
        node.register(m.REGISTRY_PUT, self._on_put)
        node.register(m.REGISTRY_ACK, self._on_ack)
        node.register(m.REGISTRY_DIGEST, self._on_digest)
        node.register(m.REGISTRY_TABLE, self._on_table)

    # --- reading -----------------------------------------------------------------------

    def get(self, name: str) -> bytes | None:
        e = self.entries.get(name)
        return None if e is None else e[2]

    def live(self, namespace: str) -> dict[str, bytes]:
        """name (without the namespace) -> value, for the live entries of a namespace."""
        prefix = namespace + ":"
        return {n[len(prefix):]: e[2] for n, e in self.entries.items()
                if n.startswith(prefix) and e[2] is not None}

    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = _digest_of(self.entries)
        return self._digest

    # --- changing ------------------------------------------------------------------------

    def put(self, name: str, value: bytes | None, cb: Callable[[Any], Any]) -> None:
        """Set (or, with None, delete) an entry everywhere; `cb(None)` once the members
        that are up have it (or the request timeout passed)."""
        self._write([(name, value)], cb)

    def flush(self, namespace: str, cb: Callable[[Any], Any]) -> None:
        self._write([(mark(namespace), None)], cb)

    def put_many(self, changes: list[tuple[str, bytes | None]],
                 cb: Callable[[Any], Any]) -> None:
        self._write(changes, cb)

    def _write(self, changes: list[tuple[str, bytes | None]], cb: Callable[[Any], Any]) -> None:
        node = self.node
        newest = max((e[0] for e in self.entries.values()), default=0)
        ms = max(node.now, newest + 1)
        entries = [(name, ms, node.name, value) for name, value in changes]
        self._merge(entries)
        peers = {p for p in node.members
                 if p != node.name and node.member_status(p) == "up"}
        self._reqids += 1
        reqid = self._reqids
        for peer in node.members:
            if peer != node.name:
                node.send(peer, m.registry_put(reqid, entries))
        if not peers:
            node.done.append((cb, None))
            return
        self.waits[reqid] = _Wait(peers, node.now + node.cfg.timeout_ms, cb)

    # --- the other nodes -------------------------------------------------------------------

    def tell(self, peer: str) -> None:
        """Compare tables with `peer` (on a new link, and now and then)."""
        if peer != self.node.name:
            self.node.send(peer, m.registry_digest(self.digest()))

    def tick(self) -> None:
        node = self.node
        now = node.now
        for reqid, wait in list(self.waits.items()):
            if now >= wait.deadline:
                del self.waits[reqid]
                node.done.append((wait.cb, None))
        if now >= self._next_gossip:
            self._next_gossip = now + GOSSIP_MS
            peers = sorted(p for p in node.members
                           if p != node.name and node.member_status(p) == "up")
            if peers:
                self.tell(node.rng.choice(peers))

    def _on_put(self, src: str, msg: tuple) -> None:
        try:
            self._merge(msg[2])
        except (TypeError, ValueError, IndexError):
            log.warning("bad registry entries from %s", src)
            return
        self.node.send(src, m.registry_ack(msg[1]))

    def _on_ack(self, src: str, msg: tuple) -> None:
        wait = self.waits.get(msg[1])
        if wait is None:
            return
        wait.peers.discard(src)
        if not wait.peers:
            del self.waits[msg[1]]
            self.node.done.append((wait.cb, None))

    def _on_digest(self, src: str, msg: tuple) -> None:
        if msg[1] != self.digest():
            self.node.send(src, m.registry_table(self._wire(), True))

    def _on_table(self, src: str, msg: tuple) -> None:
        try:
            theirs = {e[0]: (e[1], e[2], e[3]) for e in msg[1]}
            self._merge(msg[1])
        except (TypeError, ValueError, IndexError):
            log.warning("bad registry table from %s", src)
            return
        if msg[2] and _digest_of(theirs) != self.digest():
            self.node.send(src, m.registry_table(self._wire(), False))

    # --- merging ---------------------------------------------------------------------------

    def _wire(self) -> list[tuple[str, int, str, bytes | None]]:
        return [(n, *e) for n, e in sorted(self.entries.items())]

    def _merge(self, entries: Any, save: bool = True) -> None:
        changed: set[str] = set()
        table = self.entries
        for name, ms, origin, value in entries:
            if not isinstance(name, str) or (":" not in name and not name.endswith("*")):
                raise ValueError("bad registry name")
            if not (isinstance(ms, int) and isinstance(origin, str)
                    and (value is None or isinstance(value, bytes))):
                raise ValueError("bad registry entry")
            version = (ms, origin)
            old = table.get(name)
            if old is not None and (old[0], old[1]) >= version:
                continue
            if name.endswith("*"):
                namespace = name[:-1]
                prefix = namespace + ":"
                for other in [n for n, e in table.items()
                              if n.startswith(prefix) and (e[0], e[1]) < version]:
                    del table[other]
                    changed.add(other)
            else:
                flushed = table.get(mark(name.partition(":")[0]))
                if flushed is not None and (flushed[0], flushed[1]) > version:
                    continue
            table[name] = (ms, origin, value)
            changed.add(name)
        if not changed:
            return
        self._digest = None
        if save:
            self.node.engine.meta_put(META_KEY, msgpack.packb(self._wire(), use_bin_type=True))
        if self.on_change is not None:
            self.on_change(changed)


def _digest_of(entries: dict[str, Entry]) -> bytes:
    summary = sorted((n, e[0], e[1], e[2] is None) for n, e in entries.items())
    return hashlib.sha1(msgpack.packb(summary, use_bin_type=True)).digest()
