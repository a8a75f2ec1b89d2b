"""Coordinated reads (Dynamo §4.5, riak_kv_get_fsm): quorum get and read repair.

The coordinator asks every replica in the key's active preference list (its own copy
is read at once), replies after R answers with the sync of what came back, and once
the read is over (all answered or failed, or the deadline passed) repairs the replicas
whose answer was behind. A replica that is silent (membership.py) is not asked
while the others can still make R. Every decision (enough, impossible, the error, whom to
repair) is the quorum core's (quorum.py); this module sends, receives and keeps time.
A node outside the key's preference list forwards the read (forward.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import clock as dvv
from . import header as hdr
from . import messages as m
from . import obj as objmod
from . import shape
from .clock import Clock
from .inflight import overdue_sized
from .quorum import GetCore, Result, unreachable

if TYPE_CHECKING:
    from .node import Node

Callback = Callable[[Result], Any]
# A plain GET's reply (Reads.get_value): the error, or the sibling it reads (obj.Sibling)
Valued = tuple[str | None, Any]


class GetOp(GetCore):
    """A coordinated read in flight: quorum accounting plus what to do when it ends."""

    __slots__ = ("reqid", "key", "p", "cb", "deadline", "extra", "local", "targets",
                 "partial", "behind", "plain", "own")

    def __init__(self, n: int, r: int, nval: int, key: bytes, p: int, cb: Callback,
                 local: tuple[bytes, Clock] | None,
                 targets: list[tuple[str, str]]) -> None:
        super().__init__(n, r, nval)
        self.targets = targets
        self.reqid = 0
        self.key = key
        self.p = p
        self.cb = cb
        self.deadline = 0
        self.extra = 0  # ms a large value adds to the deadline (inflight.overdue_sized)
        self.local = local
        # Our own answer is a large object's header, its values left unread (a read
        # that needs no value: Reads.get(whole=False)); read whole if answers differ.
        self.partial = False
        # Replicas that answered a copy ours supersedes (or none) while ours was left
        # unread: their answer counts as ours, and the repair sends them our stored copy.
        # (a tuple, shared empty until the first: rare, and no list made and freed per read)
        self.behind: tuple[str, ...] = ()
        # A plain GET's read (Reads.get_value): its reply is the value it sees
        # (obj.read_value), and our own copy's bytes (`own`) are left undecoded
        # (`local` None) unless the answers differ.
        self.plain = False
        self.own: bytes | None = None


class Reads:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.name = node.name
        self.cfg = node.cfg
        self.local = node.local
        self.stats = node.stats
        self.membership = node.membership
        self.pending: dict[int, GetOp] = {}

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.GET_ANSWERS: self.on_answers}

    def get(self, key: bytes, cb: Callable[[Any], Any], r: int | None = None,
            whole: bool = True, plain: bool = False) -> None:
        """Quorum read of `key`; `cb((err, merged object or None))` after R answers.

        With `whole` False the caller needs no large value (DEL, EXISTS, TTL ...): while
        the replicas hold what we hold, our copy's large values stay unread (obj.Unread
        in the object given to `cb`), named by its header; an answer that differs
        makes us read it whole (`_read_whole`) before it is merged or repaired.
        With `plain` (`get_value`), `cb` gets the merge's value instead of the merge."""
        node = self.node
        membership = self.membership
        p = membership.ring.partition_of(key)
        route = membership.route(p)
        targets = route.targets
        r = r or self.cfg.r
        if not route.local:
            node.forwarder.forward(targets, m.fwd_get(0, key, r),
                                   self._valued(cb) if plain else cb)
            return
        self.stats.gets += 1
        n = self.cfg.n
        refused = unreachable("read", len(targets), r, n)
        if refused is not None:
            self.stats.noquorum += 1
            node.done.append((cb, refused))
            return
        if plain:  # a small object left undecoded (clock None): obj.plain_value
            clock, enc = (None, self.local.get_enc(p, key)) if whole else \
                self.local.get_shape_undecoded(p, key)
        else:
            clock, enc = self.local.get(p, key) if whole else self.local.get_shape(p, key)
        if not route.others and r <= 1:
            # No other replica (N=1): this node's copy is the answer, as a GetOp would
            # decide at once, with nothing to repair (no op made).
            node.done.append((cb, (None, self._value(clock, enc) if plain else clock)))
            return
        op = GetOp(len(targets), r, n, key, p, cb,
                   (enc, clock) if enc is not None and clock is not None else None, targets)
        if plain:
            op.plain = True
            if clock is None:
                op.own = enc
        if not whole and enc is not None and len(enc) == hdr.SIZE and hdr.is_headed(enc):
            op.partial = True
        op.add(self.name, enc)
        if route.others:
            op.reqid = reqid = node.next_reqid()
            op.deadline = node.now + self.cfg.timeout_ms
            if enc is not None:
                # node.allowance, inline: the answers are about as large as ours
                size = shape.unread_size(clock) if op.partial else len(enc)  # type: ignore[arg-type]
                op.extra = size * self.cfg.ms_per_mb >> 20
            self.pending[reqid] = op
            # A large copy is named by its digest: a replica holding the same answers
            # True instead of sending it back (a GET of a 100 MB value in step on every
            # replica moves nothing between nodes).
            have = objmod.digest(enc) if enc is not None and hdr.is_headed(enc) else None
            silent = self.membership.silent
            spare = len(targets) - r  # replicas R can come without
            for peer, owner in route.others:
                if silent and spare > 0 and peer in silent:
                    spare -= 1
                    self.stats.reads_unasked += 1
                    op.fail(peer)
                    continue
                node.send(peer, m.replica_get(reqid, key, p, owner, have))
        self.progress(op)

    def get_value(self, key: bytes, cb: Callable[[Valued], Any], r: int | None = None,
                  whole: bool = True) -> None:
        """`get` for a plain GET: `cb((err, what it sees or None))`, the merge's
        obj.read_value, read from our copy's bytes when every replica that found the
        key holds them (obj.plain_value: no clock decoded)."""
        self.get(key, cb, r, whole, True)

    def _value(self, clock: Clock | None, enc: bytes | None) -> Any:
        """What a plain GET sees of our copy (`clock`, or its bytes `enc` undecoded)."""
        now = self.node.now
        if clock is None and enc is not None:
            sib = objmod.plain_value(enc, now)
            if sib is not objmod.NOT_PLAIN:
                return sib
            clock = objmod.decode(enc)
        return objmod.read_value(clock, now)

    def _valued(self, cb: Callable[[Valued], Any]) -> Callback:
        """`cb` given what a plain GET sees of a forwarded read's merge."""
        def valued(result: Result) -> None:
            e, clock = result
            cb((e, objmod.read_value(clock, self.node.now) if e is None else None))
        return valued

    def _decide(self, op: GetOp) -> Valued | None:
        """op.decide; for a plain GET (op.plain) the value the merge reads as, from our
        copy's bytes undecoded when every replica that found the key holds them (the
        merge is then our copy)."""
        if not op.plain:
            return op.decide(op.local)
        if not op.replied and op.local is None and op.enough() and op.holds_only(op.own):
            op.replied = True
            return None, self._value(None, op.own)
        reply = op.decide(op.local)
        if reply is None or reply[0] is not None:
            return reply
        return None, objmod.read_value(reply[1], self.node.now)

    def on_answers(self, src: str, msg: tuple) -> None:
        # A tuple as decoded (the simulation's lists copied into one): compiled, its
        # items are read by index as a tuple's, not through a generic getitem of a
        # boxed index (about 500 instructions a GET).
        items = tuple(msg[1])
        pending = self.pending
        self.membership.heard(src)
        for i in range(0, len(items) - 1, 2):
            op = pending.get(items[i])
            if op is not None:
                enc = items[i + 1]
                if enc is True:  # the same as our own copy (replica.on_get)
                    enc = op.answers.get(self.name)
                elif op.partial:
                    if self._superseded(op, enc):
                        # (a dead copy never goes to a replica that found nothing)
                        if enc is not None or objmod.dead_since(
                                op.local[1], self.node.now) is None:  # type: ignore[index]
                            op.behind = (*op.behind, src)
                        enc = op.answers.get(self.name)
                    else:
                        self._read_whole(op)
                op.add(src, enc)
                self.progress(op)

    def _superseded(self, op: GetOp, enc: bytes | None) -> bool:
        """A replica's answer adds nothing to our copy left unread: it found nothing, or
        a version ours strictly descends (a replica still applying the write that made
        ours: an EXPIRE right after a SET of 100 MB read our copy and its whole,
        merged them, and sent it back, seconds of three nodes' loops). Decided from
        its clock alone (its large values are not decoded)."""
        local = op.local
        if local is None:
            return False
        if enc is None:
            return True
        theirs = shape.decode_shape(enc)
        if theirs is None:
            if len(enc) >= objmod.LARGE_VALUE:
                return False  # (not of the usual shape: merged whole, as before)
            theirs = objmod.decode(enc)
        return dvv.less(theirs, local[1])

    def _repair_behind(self, op: GetOp) -> None:
        """Send the replicas `_superseded` found behind our stored copy as it is (not
        decoded), unless a write of ours to them is on its way (it brings them up to
        date: the usual case)."""
        peers = [peer for peer in op.behind if not self.node.writes.sending(op.key, peer)]
        enc = self.local.get_record(op.p, op.key) if peers else None
        if enc is not None:  # (None: gone since, nothing to repair with)
            self._send_repair(op, enc, peers)

    def _send_repair(self, op: GetOp, enc: bytes, peers: list[str]) -> None:
        owners = dict(op.targets)
        node = self.node
        for peer in peers:
            self.stats.read_repairs += 1
            if peer == self.name:
                node.replica.apply(op.key, enc, op.p)
            else:
                node.send(peer, m.read_repair(op.key, enc, op.p, owners.get(peer, peer)))

    def _read_whole(self, op: GetOp) -> None:
        """A replica answered other than our header: our copy whole, in place of it
        (also where replicas answered that they hold the same). If our copy changed
        since, the new one covers what we held (a replica's writes build on it), so it
        stands for it in those answers too."""
        op.partial = False
        named = op.answers.get(self.name)
        clock, enc = self.local.get(op.p, op.key)
        for src, answer in list(op.answers.items()):
            if answer is named:
                op.answers[src] = enc
        op.local = (enc, clock) if enc is not None and clock is not None else None

    def fail(self, reqid: int, peer: str) -> bool:
        """`peer` will not answer read `reqid` (it refused, or its link is gone)."""
        op = self.pending.get(reqid)
        if op is None:
            return False
        op.fail(peer)
        self.progress(op)
        return True

    def peer_down(self, peer: str) -> None:
        """Every read waiting on `peer` counts it as failed."""
        waiting = [op for op in self.pending.values()
                   if peer not in op.answers and any(x == peer for x, _ in op.targets)]
        for op in waiting:
            op.fail(peer)
            self.progress(op)

    def progress(self, op: GetOp) -> None:
        if not op.replied:
            reply = self._decide(op)
            if reply is not None:
                if reply[0] is not None:
                    self.stats.noquorum += 1
                self.node.done.append((op.cb, reply))
        if op.complete():
            # (`del`: compiled, a dict's pop is a generic method call)
            try:
                del self.pending[op.reqid]
            except KeyError:
                pass
            self.repair(op)

    def expire(self, now: int) -> None:
        """Reads past their deadline: NOQUORUM if still unanswered, then the repair of
        what the replicas that did answer were missing."""
        for op in overdue_sized(self.pending, now):
            self.stats.timeouts += 1
            reply = op.timed_out()
            if reply is not None:
                self.stats.noquorum += 1
                self.node.done.append((op.cb, reply))
            self.repair(op)  # before it leaves `pending`: see reading()
            del self.pending[op.reqid]

    def repair(self, op: GetOp) -> None:
        if op.behind:
            self._repair_behind(op)
        repairs = op.repairs(op.local, self.node.now)
        if repairs is None:
            return
        enc, peers = repairs
        writes = self.node.writes
        # Not to a replica a write of ours is bringing this very copy (a large one)
        peers = [peer for peer in peers if not writes.sending_copy(op.key, peer, enc)]
        if peers:
            self._send_repair(op, enc, peers)

    def reading(self, key: bytes) -> bool:
        """A read of `key` is in flight here: its repair may still write what it read,
        so the key must not be reaped meanwhile (reaper.py)."""
        return any(op.key == key for op in self.pending.values())
