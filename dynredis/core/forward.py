"""Forwarding: a node outside a key's preference list hands the request to one inside it.

Any node accepts any key (Dynamo §4.5): a request for a key this node is no replica of
goes to the first node of the key's active preference list, which coordinates it and
sends back the result. A forward is run at most once per (sender, request id): a
duplicated message must not count an increment twice.

    A -> B  ("fg" | "fp" | "fi", reqid, ...)   coordinate this -> ("fa", reqid, err, enc)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import messages as m
from . import obj as objmod
from .inflight import overdue_sized
from .quorum import Result, unreachable
from .recent import RecentMap

if TYPE_CHECKING:
    from .node import Node

Callback = Callable[[Result], Any]


class FwdOp:
    __slots__ = ("reqid", "cb", "deadline", "extra", "target")

    def __init__(self, reqid: int, cb: Callback, deadline: int, extra: int,
                 target: str) -> None:
        self.reqid = reqid
        self.cb = cb
        self.deadline = deadline
        self.extra = extra  # ms a large value adds (inflight.overdue_sized)
        self.target = target


class Forwarder:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.pending: dict[int, FwdOp] = {}
        self.seen = RecentMap(10_000)  # (src, reqid) of forwards run

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.FWD_GET: self.on_get, m.FWD_PUT: self.on_put, m.FWD_INCR: self.on_incr,
                m.FWD_ANSWER: self.on_answer}

    def forward(self, targets: list[tuple[str, str]], msg: tuple, cb: Callback,
                size: int = 0) -> None:
        """Send `msg` (built with request id 0) to the first of `targets`; `size`: the
        bytes of value it carries (to the coordinator, and back in its answer)."""
        node = self.node
        refused = unreachable("any", len(targets), 1, node.cfg.n)
        if refused is not None:
            node.stats.noquorum += 1
            node.done.append((cb, refused))
            return
        node.stats.forwarded += 1
        target = targets[0][0]
        op = FwdOp(node.next_reqid(), cb, node.deadline(), 2 * node.allowance(size), target)
        self.pending[op.reqid] = op
        node.send(target, (msg[0], op.reqid, *msg[2:]))

    def on_answer(self, src: str, msg: tuple) -> None:
        _, reqid, err, enc = msg
        op = self.pending.pop(reqid, None)
        if op is not None:
            self.node.done.append((op.cb, (err, objmod.decode(enc) if enc is not None else None)))

    def expire(self, now: int) -> None:
        done = self.node.done
        for op in overdue_sized(self.pending, now):
            del self.pending[op.reqid]
            self.node.stats.timeouts += 1
            done.append((op.cb, (f"TIMEOUT forwarded request to {op.target}", None)))

    # --- the receiving side ----------------------------------------------------------

    def first_time(self, src: str, reqid: int) -> bool:
        """False for a forward already run (a duplicated message)."""
        seen = self.seen
        if (src, reqid) in seen:
            return False
        seen.set((src, reqid), True)
        return True

    def answer(self, src: str, reqid: int) -> Callback:
        node = self.node

        def answer(result: Result) -> None:
            err, clock = result
            node.send(src, m.fwd_answer(reqid, err,
                                        objmod.encode(clock) if clock is not None else None))

        return answer

    def on_get(self, src: str, msg: tuple) -> None:
        _, reqid, key, r = msg
        if self.first_time(src, reqid):
            self.node.reads.get(key, self.answer(src, reqid), r)

    def on_put(self, src: str, msg: tuple) -> None:
        _, reqid, key, ctx, data, expire_at, w = msg
        if self.first_time(src, reqid):
            self.node.writes.put(key, tuple(tuple(x) for x in ctx) if ctx is not None else None,
                                 data, expire_at, self.answer(src, reqid), w)

    def on_incr(self, src: str, msg: tuple) -> None:
        _, reqid, key, delta, w = msg
        if self.first_time(src, reqid):
            self.node.writes.incr(key, delta, self.answer(src, reqid), w)
