"""Reaping: removing objects dead (deleted or expired) for longer than the grace period.

A dead object cannot simply be dropped by one replica: another replica, a hint or a
read in flight could bring its old version back. So the owner of a partition sweeps
it a batch at a time, and for each object dead for `tombstone_grace_ms` asks every
member (all must be up) whether it may go:

    owner -> every member  ("rq", reqid, key, p, digest)  -> ("ra", reqid, yes/no)
    owner -> primaries     ("reap", key, p, digest)       once every member said yes

A member says yes when, if it is a primary, it holds exactly that object committed (or
nothing), it keeps no hint of the key for any primary, and it coordinates no read of
the key (a read in flight may still repair what it read into the replicas). A replica
removes the key only if it still holds exactly that object.

Nothing here reads a value: the sweep and the checks read heads (localstore.py), which
for a large object is its header (header.py: since when it is dead, its digest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from . import messages as m
from . import obj as objmod
from .inflight import overdue

if TYPE_CHECKING:
    from .node import Node


class ReapOp:
    """Asking every member whether a dead object may be removed everywhere."""

    __slots__ = ("reqid", "key", "p", "digest", "deadline", "waiting")

    def __init__(self, reqid: int, key: bytes, p: int, digest: bytes, deadline: int,
                 waiting: set[str]) -> None:
        self.reqid = reqid
        self.key = key
        self.p = p
        self.digest = digest
        self.deadline = deadline
        self.waiting = waiting


class Reaper:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.local = node.local
        self.engine = node.engine
        self.pending: dict[int, ReapOp] = {}
        self.sweep: Iterator[tuple[int, bytes, bytes]] | None = None
        self.next_sweep = 0

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.REAP_QUERY: self.on_query, m.REAP_ANSWER: self.on_answer,
                m.REAP: self.on_reap}

    # --- the sweep -------------------------------------------------------------------

    def tick(self, now: int) -> None:
        if now >= self.next_sweep:
            self.next_sweep = now + self.node.cfg.sweep_interval_ms
            self.sweep_step()

    def owned_objects(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(partition, key, head) of every object of the partitions this node owns."""
        for p in self.node.membership.owned_partitions():
            for key, head in self.local.scan_heads(p):
                yield p, key, head

    def sweep_step(self) -> None:
        """Walk this node's owned partitions a batch at a time, looking for objects
        dead for longer than the grace period."""
        node = self.node
        if self.sweep is None:
            self.sweep = self.owned_objects()
        grace = node.cfg.tombstone_grace_ms
        now = node.now
        for _ in range(node.cfg.sweep_batch):
            item = next(self.sweep, None)
            if item is None:
                self.sweep = None
                return
            p, key, head = item
            since = objmod.dead_since_enc(head, now)
            if since is not None and now - since >= grace:
                self.propose(p, key, head)

    def propose(self, p: int, key: bytes, head: bytes) -> None:
        # Every member must be up and agree: each primary holds exactly this object
        # and nobody keeps a hint for the key, or the old value could come back.
        node = self.node
        others = node.membership.members - {node.name}
        if others & node.membership.down or self.engine.staged(p, key) \
                or node.reads.reading(key):
            return
        digest = objmod.digest(head)
        if not others:
            self.remove(key, p, digest)
            return
        op = ReapOp(node.next_reqid(), key, p, digest, node.deadline(), set(others))
        self.pending[op.reqid] = op
        msg = m.reap_query(op.reqid, key, p, digest)
        for peer in others:
            node.send(peer, msg)

    def expire(self, now: int) -> None:
        """Forget proposals some member did not answer (a later sweep asks again)."""
        late = overdue(self.pending, now)
        for op in late:
            del self.pending[op.reqid]
        self.node.stats.timeouts += len(late)

    # --- messages --------------------------------------------------------------------

    def on_query(self, src: str, msg: tuple) -> None:
        _, reqid, key, p, digest = msg
        self.node.send(src, m.reap_answer(reqid, self.may_reap(key, p, digest)))

    def may_reap(self, key: bytes, p: int, digest: bytes) -> bool:
        node = self.node
        if node.reads.reading(key):
            return False
        primaries = node.membership.ring.preference_list(p, node.cfg.n)
        if node.name in primaries:
            head = self.local.head(p, key)
            # Only a committed copy counts: a crash must not be able to take it back.
            # No copy at all is as good (nothing to revive).
            if head is not None and (objmod.digest(head) != digest
                                     or self.engine.staged(p, key)):
                return False
        handoff = node.handoff
        for owner in primaries:
            if handoff.held(owner, p, key) is not None:
                return False
        return True

    def on_answer(self, src: str, msg: tuple) -> None:
        _, reqid, ok = msg
        op = self.pending.get(reqid)
        if op is None:
            return
        if not ok:
            del self.pending[reqid]
            return
        op.waiting.discard(src)
        if op.waiting:
            return
        del self.pending[reqid]
        node = self.node
        msg = m.reap(op.key, op.p, op.digest)
        for peer in node.membership.ring.preference_list(op.p, node.cfg.n):
            if peer != node.name:
                node.send(peer, msg)
        self.remove(op.key, op.p, op.digest)

    def on_reap(self, src: str, msg: tuple) -> None:
        _, key, p, digest = msg
        self.remove(key, p, digest)

    def remove(self, key: bytes, p: int, digest: bytes) -> None:
        head = self.local.head(p, key)
        if head is not None and objmod.digest(head) == digest:
            self.local.delete(p, key)
            self.node.stats.reaped += 1
