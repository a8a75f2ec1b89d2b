"""Hinted handoff (Dynamo §4.6): writes kept for a down primary, handed over when it is back.

A fallback node in a key's active preference list stores the write as a hint (hints.py:
a reserved partition of the engine, keyed by owner, partition and key, so hints are as
durable as data). Where no fallback exists (a cluster of exactly N nodes), the write's
coordinator keeps the hint itself (writes.py). Hints whose owner is up again are sent
to it as a stream: at most `handoff_batch` (and `handoff_window_bytes`) unacknowledged at
a time, each sent again only past the request timeout and the time its bytes take, topped up as
acknowledgements come back, so a backlog of a long outage moves at the pace the owner
takes it (the hints are looked for once a second while none are in flight, and only
those of owners that are up: hints are keyed by owner first, and a count per owner
says whose there are, so hints piling up for a down owner cost a round nothing). The owner
merges each as a replica write and acknowledges it with the digest of what it was
sent, and the hint is dropped only if it still holds exactly that (a write that
arrived meanwhile is handed off in a later round).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import clock as dvv
from . import header as hdr
from . import messages as m
from . import obj as objmod
from .collstore import merged_record
from .hints import HINT_PARTITION, hint_key, hint_prefix, parse_hint_key
from .records import ELEM_BASE

if TYPE_CHECKING:
    from .node import Node


class Handoff:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.engine = node.engine
        self.stats = node.stats
        # Hints held, in all and by owner (an owner with none is absent).
        self.by_owner: dict[str, int] = {}
        for hk, _ in self.engine.scan(HINT_PARTITION, 1):
            owner = parse_hint_key(hk)[0]
            self.by_owner[owner] = self.by_owner.get(owner, 0) + 1
        self.stored = sum(self.by_owner.values())
        # hint key -> (when it may be sent again, its owner, its size)
        self.inflight: dict[bytes, tuple[int, str, int]] = {}
        self.next_round = 0
        self.more = False  # the last round stopped at the window: more hints wait

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.HINT: self.on_hint, m.HINT_ACK: self.on_ack}

    def held(self, owner: str, p: int, key: bytes) -> bytes | None:
        """The hint kept for `owner` of `key`, if any."""
        return self.engine.get(HINT_PARTITION, hint_key(owner, p, key))

    def store(self, owner: str, p: int, key: bytes, enc: bytes,
              base: bytes | None = None) -> None:
        """Keep a write meant for a down primary until it can be handed off. `base`,
        when given, is a version `enc` was built on (so covers): a hint holding exactly
        it is replaced without decoding and merging (the coordinator's next write of a
        key whose owner is still down)."""
        engine = self.engine
        hk = hint_key(owner, p, key)
        old = engine.get(HINT_PARTITION, hk)
        if old is None:
            engine.put(HINT_PARTITION, hk, enc)
            self.stored += 1
            self.by_owner[owner] = self.by_owner.get(owner, 0) + 1
            self.stats.hints_created += 1
            return
        if old == enc:
            return
        if old == base:
            engine.put(HINT_PARTITION, hk, enc)
            return
        if p >= ELEM_BASE:
            merged = merged_record(key, old, enc)
        else:
            clock = dvv.sync(objmod.decode(old), objmod.decode(enc))
            self.node.replica.note_siblings(clock)
            merged = objmod.encode(clock)
        if merged != old:
            engine.put(HINT_PARTITION, hk, merged)

    def wiped(self) -> None:
        """The engine was emptied (FLUSHALL): no hint is held any more."""
        self.stored = 0
        self.by_owner.clear()
        self.inflight.clear()
        self.more = False

    def tick(self, now: int) -> None:
        """Send hints whose owner is up again: a round when one is due (once a
        `handoff_interval_ms`), or at once while a backlog streams."""
        if now >= self.next_round:
            self.next_round = now + self.node.cfg.handoff_interval_ms
            self.send_round(now)

    def send_round(self, now: int) -> None:
        """Fill the window of unacknowledged hints (a hint unacknowledged after the
        request timeout may be sent again)."""
        self.more = False
        if not self.stored:
            return
        node = self.node
        cfg = node.cfg
        inflight = self.inflight
        for hk in [hk for hk, sent in inflight.items() if sent[0] <= now]:
            del inflight[hk]
        budget = cfg.handoff_batch - len(inflight)
        if budget <= 0:
            return
        down = node.membership.down
        members = node.membership.members
        for owner in sorted(self.by_owner):
            if owner in down or owner not in members:
                continue
            flying = sum([sent[2] for sent in inflight.values() if sent[1] == owner])
            # Keys first (a value's first byte, read in place): a hint in flight is
            # not read again, each round, until its owner acknowledges it (a 512 MB
            # one was copied out of the store a tick while it crossed the link).
            for hk, _ in self.engine.scan_prefix(HINT_PARTITION, hint_prefix(owner), 1):
                if hk in inflight:
                    continue
                if flying >= cfg.handoff_window_bytes:
                    self.more = True  # the next when an acknowledgement makes room
                    break
                enc = self.engine.get(HINT_PARTITION, hk)
                if enc is None:
                    continue
                _, p, key = parse_hint_key(hk)
                # Sent again only past the time its bytes take (a 512 MB hint sent
                # again every 2 s while the first copy still crossed the link made the
                # link overflow its limit and be cut, again and again).
                inflight[hk] = (now + cfg.timeout_ms + node.allowance(len(enc)), owner,
                                len(enc))
                flying += len(enc)
                node.send(owner, m.hint(hk, key, enc, p))
                self.stats.handoffs_sent += 1
                budget -= 1
                if budget == 0:
                    self.more = True  # a backlog: on_ack tops the window up
                    return

    def on_hint(self, src: str, msg: tuple) -> None:
        _, hk, key, enc, p = msg
        self.node.replica.apply(key, enc, p)
        self.node.send(src, m.hint_ack(hk, objmod.digest(enc)))

    def _digest(self, hk: bytes) -> bytes | None:
        """objmod.digest of the hint at `hk` (None if there is none), read in place in
        one read: a large value's is in its header, not the value copied out and hashed
        (a small one, unheaded, is copied: its bytes are the digest's input)."""
        return self.engine.read(HINT_PARTITION, hk, _stored_digest)

    def on_ack(self, src: str, msg: tuple) -> None:
        _, hk, digest = msg
        self.inflight.pop(hk, None)
        # Drop the hint only if it is what the owner now holds (not changed since).
        if self._digest(hk) == digest:
            self.engine.delete(HINT_PARTITION, hk)
            self.stored -= 1
            owner = parse_hint_key(hk)[0]
            left = self.by_owner.get(owner, 0) - 1
            if left > 0:
                self.by_owner[owner] = left
            else:
                self.by_owner.pop(owner, None)
            self.stats.hints_delivered += 1
        if self.more and len(self.inflight) <= self.node.cfg.handoff_batch // 2:
            self.send_round(self.node.now)


def _stored_digest(view: Any) -> bytes:
    """objmod.digest of an object read in place (a buffer valid during the call)."""
    head = bytes(view[:hdr.SIZE])
    return hdr.digest(head) if hdr.is_headed(head) else objmod.digest(bytes(view))
