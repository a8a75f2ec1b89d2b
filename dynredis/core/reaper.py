"""Reaping: removing objects dead (deleted or expired) for longer than the grace period.

A dead object cannot simply be dropped by one replica: another replica, a hint or a
read in flight could bring its old version back. So the owner of a partition sweeps
it a batch at a time, and for each object dead for `tombstone_grace_ms` asks every
member (all must be up) whether it may go:

    owner -> every member  ("rq", reqid, key, p, digest)  -> ("ra", reqid, yes/no)
    owner -> primaries     ("reap", key, p, digest)       once every member said yes

A member says yes when no membership change is moving partitions, when, if it is a
primary, it holds exactly that object committed (or
nothing), it keeps no hint of the key for any primary, and it coordinates no read or
write of the key (a read in flight may still repair what it read into the replicas; a
write still waiting on a replica becomes a hint if that replica fails it). The owner
that proposes asks the same of itself. A replica
removes the key only if it still holds exactly that object.

Nothing here reads a value: the sweep and the checks read heads (localstore.py), which
for a large object is its header (header.py: since when it is dead, its digest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from . import messages as m
from . import obj as objmod
from . import records as rec
from .inflight import overdue
from .records import ELEM_BASE

if TYPE_CHECKING:
    from .node import Node


BARE_TRACKED = 100_000  # bare records timed at once (more wait for a later sweep)


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
        # (partition, record key) -> when the sweep first saw the record bare
        self.bare_since: dict[tuple[int, bytes], int] = {}
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
        """(partition, key, head) of every object of the partitions this node owns, then
        of their collections' records (local.head: a large one's header only)."""
        local = self.local
        for p in self.node.membership.owned_partitions():
            for key, head in local.scan_heads(p):
                yield p, key, head
            ep = ELEM_BASE + p  # the partition's collection records, if any
            if local.holds(ep):
                for rkey, head in local.scan_heads(ep):
                    yield ep, rkey, head

    def consider_record(self, p: int, rkey: bytes, head: bytes, now: int, grace: int) -> None:
        """A collection's element record that holds no value goes the way a dead object
        goes: one removed by a write of its own (SREM, HDEL, a pop) once dead for the
        grace period; one a key-wide removal stripped to its clock (DEL, a type change:
        kept so that an older version arriving late is known to be superseded) once the
        sweep has seen it bare for the grace period (it carries no time of its own).
        Removal records stay."""
        if rec.kind_of(rkey) == rec.REMOVAL:
            return
        since = objmod.dead_since_enc(head, now)
        seen = self.bare_since
        if since is None:
            seen.pop((p, rkey), None)
            return
        if since:  # removed by a write of its own (SREM, HDEL ...): dead since then
            if now - since >= grace:
                self.propose(p, rkey, head)
            return
        first = seen.get((p, rkey))
        if first is None:
            if len(seen) < BARE_TRACKED:
                seen[p, rkey] = now
        elif now - first >= grace:
            self.propose(p, rkey, head)

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
            if p >= ELEM_BASE:
                self.consider_record(p, key, head, now, grace)
                continue
            since = objmod.dead_since_enc(head, now)
            if since is not None and now - since >= grace:
                self.propose(p, key, head)

    def propose(self, p: int, key: bytes, head: bytes) -> None:
        # Every member must be up and agree: each primary holds exactly this object
        # and nobody keeps a hint for the key, or the old value could come back.
        node = self.node
        others = node.membership.members - {node.name}
        digest = objmod.digest(head)
        if others & node.membership.down or not self.may_reap(key, p, digest):
            return
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
        if node.reads.reading(key) or node.writes.writing(key) or node.ring.next:
            return False  # (while partitions move, their replicas are not settled)
        primaries = node.membership.ring.preference_list(rec.base_partition(p), node.cfg.n)
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
        for peer in node.membership.ring.preference_list(rec.base_partition(op.p), node.cfg.n):
            if peer != node.name:
                node.send(peer, msg)
        self.remove(op.key, op.p, op.digest)

    def on_reap(self, src: str, msg: tuple) -> None:
        _, key, p, digest = msg
        self.remove(key, p, digest)

    def remove(self, key: bytes, p: int, digest: bytes) -> None:
        local = self.local
        head = local.head(p, key)
        if head is not None and objmod.digest(head) == digest:
            if p >= ELEM_BASE:
                local.delete_record(p, key)
                self.bare_since.pop((p, key), None)
            else:
                local.delete(p, key)
            self.node.stats.reaped += 1
            # a partition this node is sending or leaving: its new replicas too
            for target in self.node.transfers.forward_to.get(rec.base_partition(p), ()):
                if target != self.node.name:
                    self.node.send(target, m.reap(key, p, digest))
