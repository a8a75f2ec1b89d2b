"""Cluster-wide probes and wipes: WAIT's "who holds this write?" and FLUSHALL.

    WAIT      coordinator -> the key's replicas  ("wq", reqid, key, p, owner)
                                                 -> ("wa", reqid, what it holds)
    FLUSHALL  node -> every up member            ("fl", reqid) -> ("fla", reqid)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import clock as dvv
from . import messages as m
from . import obj as objmod
from .clock import VV, Clock
from .inflight import overdue
from .quorum import Result

if TYPE_CHECKING:
    from .node import Node


class HeldOp:
    """WAIT: asking a key's replicas whether they hold a given write."""

    __slots__ = ("reqid", "cb", "deadline", "seen", "left", "held", "enough")

    def __init__(self, reqid: int, cb: Callable[[int], None], deadline: int, seen: VV,
                 left: set[str], enough: int) -> None:
        self.reqid = reqid
        self.cb = cb
        self.deadline = deadline
        self.seen = seen
        self.left = left
        self.held = 0
        self.enough = enough

    def answer(self, node: str, enc: bytes | None) -> bool:
        """Count `node`'s answer; True once `enough` hold it or every asked replica
        has answered."""
        if node in self.left:
            self.left.discard(node)
            if enc is not None and dvv.covers(dvv.join(objmod.decode(enc)), self.seen):
                self.held += 1
        return not self.left or self.held >= self.enough


class FlushOp:
    __slots__ = ("reqid", "cb", "deadline", "waiting")

    def __init__(self, reqid: int, cb: Callable[[Result], Any], deadline: int,
                 waiting: set[str]) -> None:
        self.reqid = reqid
        self.cb = cb
        self.deadline = deadline
        self.waiting = waiting


class Probes:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.held_ops: dict[int, HeldOp] = {}
        self.flushes: dict[int, FlushOp] = {}

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.HELD_QUERY: self.on_held_query, m.HELD_ANSWER: self.on_held_answer,
                m.FLUSH: self.on_flush, m.FLUSH_ACK: self.on_flush_ack}

    # --- WAIT --------------------------------------------------------------------------

    def held_by(self, key: bytes, written: Clock, cb: Callable[[int], None],
                enough: int | None = None) -> HeldOp:
        """WAIT: `cb(count)` of the key's current preference list (fallbacks standing in
        for down primaries included) that hold `written` or a later version of it, once
        `enough` of them do or all have answered. Replicas that do not answer within the
        request timeout count as not holding it. The returned op's `held` is the count
        so far (for a caller whose own deadline comes first)."""
        node = self.node
        p = node.membership.ring.partition_of(key)
        targets = node.membership.route(p).targets
        op = HeldOp(node.next_reqid(), cb, node.deadline(), dvv.join(written),
                    {x for x, _ in targets}, enough or len(targets))
        finished = not targets
        for peer, owner in targets:
            if peer == node.name:
                finished = op.answer(peer, node.replica.held(key, p, owner)) or finished
            else:
                node.send(peer, m.held_query(op.reqid, key, p, owner))
        if finished:
            node.done.append((cb, op.held))
        else:
            self.held_ops[op.reqid] = op
        return op

    def on_held_query(self, src: str, msg: tuple) -> None:
        _, reqid, key, p, owner = msg
        self.node.send(src, m.held_answer(reqid, self.node.replica.held(key, p, owner)))

    def on_held_answer(self, src: str, msg: tuple) -> None:
        _, reqid, enc = msg
        op = self.held_ops.get(reqid)
        if op is not None and op.answer(src, enc):
            del self.held_ops[reqid]
            self.node.done.append((op.cb, op.held))

    # --- FLUSHALL ----------------------------------------------------------------------

    def flush_all(self, cb: Callable[[Result], Any]) -> None:
        """Wipe every member's data; answers after every up member confirmed."""
        node = self.node
        node.wipe()
        peers = (node.membership.members - node.membership.down) - {node.name}
        if not peers:
            node.done.append((cb, (None, None)))
            return
        op = FlushOp(node.next_reqid(), cb, node.deadline(), set(peers))
        self.flushes[op.reqid] = op
        for peer in peers:
            node.send(peer, m.flush(op.reqid))

    def on_flush(self, src: str, msg: tuple) -> None:
        self.node.wipe()
        self.node.send(src, m.flush_ack(msg[1]))

    def on_flush_ack(self, src: str, msg: tuple) -> None:
        op = self.flushes.get(msg[1])
        if op is not None:
            op.waiting.discard(src)
            if not op.waiting:
                del self.flushes[op.reqid]
                self.node.done.append((op.cb, (None, None)))

    # --- time --------------------------------------------------------------------------

    def expire(self, now: int) -> None:
        """WAIT counts what answered by the deadline; FLUSHALL names who did not."""
        done = self.node.done
        stats = self.node.stats
        for op in overdue(self.held_ops, now):
            del self.held_ops[op.reqid]
            stats.timeouts += 1
            done.append((op.cb, op.held))
        for fop in overdue(self.flushes, now):
            del self.flushes[fop.reqid]
            stats.timeouts += 1
            done.append((fop.cb, ("TIMEOUT flush not confirmed by "
                                  + ",".join(sorted(fop.waiting)), None)))

