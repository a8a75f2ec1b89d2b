"""Coordinating a command on a collection key (a hash, set, sorted set or list).

The coordinator is a replica of the key (any other node forwards the command to one).
A command runs in three steps, the first and last being Dynamo's quorums:

1. **Sync.** The coordinator sends its applied-event set (`dotset.py`) to the key's
   other replicas; each answers with the records of the events it has and the
   coordinator lacks (from its log of recent events, or the whole key when the log does
   not reach back far enough), with the key's header and removal set. After R answers
   (its own included) the coordinator has merged every acknowledged update into its
   own copy: with R + W > N some answer holds each one. Replicas that answered and lack
   events the coordinator holds are sent them (read repair).
2. **Evaluate.** The command runs as a function of the key's `KeyView`, at one place
   and against one copy, as a single-node Redis would run it; commands on one key run
   in the order they arrived, whatever order their syncs complete in.
3. **Replicate.** The new record versions go to the other replicas as one delta (a
   fallback standing in for a down replica keeps them as hints); the caller is answered
   after W acknowledgements, its own included.

Every replica that writes the key, the coordinator after step 2 and the others as they
apply its delta, tells the nodes watching the key (watches.py: clients blocked on it).

Commands that write nothing answer after step 2. A forwarded command travels as an
opaque payload the commands layer turned it into, and comes back as its reply.

Peer messages (messages.KINDS, mechanism "collections"):
  ("cs", reqid, p, key, owner, applied)          sync: what do you have that I lack?
  ("csa", reqid, records, full, applied, parts)   -> records [(part, rkey, enc|None)]
  ("csp", reqid, records)                         a part of a whole key's answer, before it
  ("cw", reqid, p, key, owner, events, deltas)    a command's record versions -> ("cwa", reqid)
  ("cwr", p, key, owner, records, events)         read repair (no answer)
  ("cf", reqid, key, payload)                     forwarded command -> ("cfa", reqid, err, reply)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from . import clock as dvv
from . import collsync
from . import header as hdr
from . import messages as m
from . import obj as objmod
from .attrs import attr_or
from .collstore import CollectionStore
from .collview import KeyView
from .dotset import DotSet
from .inflight import overdue
from .planslots import PlanSlots
from .quorum import TIMED_OUT, noquorum
from .stepwindow import StepWindow

if TYPE_CHECKING:
    from .node import Node

SYNC_LIMIT = 1024  # events answered one by one; more, and the whole key is sent
REPAIR_LIMIT = 256  # events a coordinator pushes to a lagging replica after a sync

Op = Callable[[KeyView], Any]
Callback = Callable[[tuple[str | None, Any]], Any]

LATE_KEPT = 16  # timed-out commands kept for the driver to report (`late`), the newest


def _never() -> bool:
    return False


class Late(NamedTuple):
    """A command that timed out waiting for its replicas, as the driver reports it: which
    step, how long since it asked (by `now`), and who never answered."""

    phase: str  # "sync" (the read quorum) or "write"
    key: bytes
    waited_ms: int
    silent: tuple[str, ...]
    answered: int  # its own answer included
    needed: int


class CollOp:
    """One command on one key, from its sync to its last acknowledgement."""

    __slots__ = ("reqid", "key", "p", "op", "cb", "deadline", "targets", "r", "w",
                 "synced", "sync_failed", "evaluated", "result", "acked", "ack_failed",
                 "replied", "coord", "sent", "extra", "missing", "asked_at", "parts",
                 "part_acks", "progress", "answer_parts")

    def __init__(self, coord: CollCoordinator, key: bytes, p: int, op: Op, cb: Callback,
                 targets: list[tuple[str, str]], r: int, w: int) -> None:
        self.coord = coord
        # While a membership change moves the key's partition: its future replicas
        # that are up (the write goes to them too and waits for one more
        # acknowledgement each, as a string's does: membership.Route.pending), and the
        # primaries or future replicas nobody stands in for (kept as hints here).
        self.extra: list[str] = []
        self.missing: list[str] = []
        self.reqid = 0
        self.key = key
        self.p = p
        self.op = op
        self.cb = cb
        self.deadline = 0
        self.targets = targets
        self.r = r
        self.w = w
        self.synced: set[str] = set()
        self.sync_failed: set[str] = set()
        self.evaluated = False
        self.result: Any = None
        self.acked: set[str] = set()
        self.ack_failed: set[str] = set()
        self.replied = False
        # The coordinator's applied events when it asked for the sync: what a replica
        # lacks of them it is sent back (events applied later are on their way to it).
        self.sent: DotSet | None = None
        self.asked_at = 0  # `now` when its sync, then its write, went to the replicas
        # The write's messages (a removal's records a turn's worth each: 0 while being
        # made), and the ones each replica acknowledged, while more than one.
        self.parts = 1
        self.part_acks: dict[str, set[int]] = {}
        # Told each time the command moves on while it runs over many turns (a part of
        # a removal made or acknowledged): the client's reply slot, which a command
        # silent for a minute is taken for lost by (server/client.py's unstick).
        self.progress: Callable[[], None] | None = None
        # Parts of a whole key's sync answer merged so far, by replica (collsync.py).
        self.answer_parts: dict[str, int] | None = None

    def timed_out(self) -> None:
        """The request's deadline passed."""
        self.coord.timed_out(self)


# A command handed to a replica waits for its answer this many request timeouts: there it
# may wait for its key's records to be walked (CollectionStore.ready), then take a read
# and a write quorum, each with its own timeout. A replica counted down fails it at once.
FORWARD_TIMEOUTS = 4


class Forwarded:
    __slots__ = ("reqid", "cb", "deadline", "target", "coord")

    def __init__(self, coord: CollCoordinator, reqid: int, cb: Callback, deadline: int,
                 target: str) -> None:
        self.coord = coord
        self.reqid = reqid
        self.cb = cb
        self.deadline = deadline
        self.target = target

    def timed_out(self) -> None:
        self.coord.node.done.append(
            (self.cb, (f"TIMEOUT forwarded request to {self.target}", None)))


# Reasons the Redis face words (the core speaks no Redis): an exception in a command's
# op, and a forwarded command on a node whose face registered no runner.
FAILED = "FAILED the command failed at its coordinator"
NO_REMOTE = "FAILED this node cannot run forwarded collection commands"


class CollCoordinator:
    """The collection mechanism of one node: coordinator and replica sides."""

    def __init__(self, node: Node, store: CollectionStore) -> None:
        self.node = node
        self.store = store
        # Attributes, not methods: tests and the simulation wrap a node's (to count or
        # slow its turns, to see which keys take collection steps), which a compiled
        # class's methods would not let them.
        self.later: Callable[[Callback], None] = self._later
        self.run: Callable[..., None] = self._run
        self.queues: dict[bytes, deque[CollOp]] = {}
        self.pending: dict[int, CollOp] = {}  # by request id
        # Commands handed to a replica (this node is none), by request id: their own
        # deadlines, longer than a command's (see FORWARD_TIMEOUTS).
        self.forwarded: dict[int, Forwarded] = {}
        # Rebuilds a command from a forwarded payload (registered by the Redis face).
        self.remote: Callable[[Any, Callback], None] | None = None
        # Callbacks to answer in a later loop turn (`later`): queued, then due, then
        # answered, a driver's step each. A step may run before the loop polled for input
        # since the previous one (uvloop runs call_soon callbacks before its poll): the
        # second one comes after a poll.
        self.turns: list[Callback] = []
        self.due: list[Callback] = []
        # Commands that timed out since the driver last took them (LATE_KEPT at most),
        # and how many more did: the server logs them (which replicas never answered).
        self.late: list[Late] = []
        self.late_dropped = 0
        # Keys whose command is making its removal records over loop turns: their later
        # commands wait (`_remove_in_turns`).
        self.busy: set[bytes] = set()
        # Whether the driver's turn has had its share of time (the server's settle
        # budget; never in the simulation): then a key's queued commands ready to run go
        # on in the next step, listed in `deferred` (33 pipelined MEMORY USAGE SAMPLES 0
        # of a 16,000-field hash ran back to back once its views were loaded: 400 ms).
        self.spent: Callable[[], bool] = _never
        self.deferred: list[bytes] = []
        # Plans' batches of one-key steps (SORT's lookups), WINDOW steps at once on this
        # node (core/stepwindow.py: the young objects of reads in flight stay bounded).
        self.window = StepWindow()
        # Plans with many lookups (a big key's SORT ... BY), PLAN_SLOTS at once on this
        # node (core/planslots.py: what each holds while it runs stays bounded).
        self.plan_slots = PlanSlots(self._answer)

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.COLL_SYNC: self._on_sync, m.COLL_SYNC_ANSWER: self._on_sync_answer,
                m.COLL_SYNC_PART: self._on_sync_part,
                m.COLL_WRITE: self._on_write, m.COLL_WRITE_ACK: self._on_ack,
                m.COLL_REPAIR: self._on_repair, m.COLL_FORWARD: self._on_forward,
                m.COLL_FORWARD_ANSWER: self._on_forward_answer}

    def expire(self, now: int) -> None:
        """Time out overdue commands (their deadline passed)."""
        self.resume()  # (the store's waits end in `step`; a dropped partition too)
        for fwd in overdue(self.forwarded, now):
            del self.forwarded[fwd.reqid]
            self.node.stats.timeouts += 1
            fwd.timed_out()
        if self.forwarded:  # a replica counted down answers nothing handed to it
            status = self.node.member_status
            for fwd in [f for f in self.forwarded.values() if status(f.target) == "down"]:
                del self.forwarded[fwd.reqid]
                fwd.timed_out()
        for op in overdue(self.pending, now):
            # An earlier one's timeout may have run this one (queued behind it on the
            # same key): answered, or restarted with a new deadline for its write.
            held = self.pending.get(op.reqid)
            if held is None or held is not op or op.deadline > now:
                continue
            del self.pending[op.reqid]
            self.node.stats.timeouts += 1
            op.timed_out()

    # --- coordinator -----------------------------------------------------------------

    def _run(self, key: bytes, op: Op, cb: Callback, payload: Any = None,
            r: int | None = None, w: int | None = None, home: bool = False,
            progress: Callable[[], None] | None = None) -> None:
        """Run `op` on `key`'s view at a coordinating replica; `cb((err, result))`.

        `payload` is what a node that is not a replica sends to one instead (the
        commands layer turns it back into the command there). With `home`, the
        coordinator is the key's first up replica, whichever node this is: commands
        that race for the same elements from different nodes (blocked clients woken
        together) then run one after the other there, in arrival order, rather than
        concurrently at several replicas, where each would see the same element. An op
        with a `scan_kind` attribute (HSCAN's ...) reads that kind's scan order, which a
        big collection's first scan has built over loop turns first (collstore.ready)."""
        node = self.node
        p = node.partition(key)
        route = node.route(p)
        if not route.local or (home and route.targets[0][0] != node.name):
            self._forward(route.targets, key, payload, cb)
            return
        r = r or node.cfg.r
        w = w or node.cfg.w
        targets = route.targets
        if len(targets) < max(r, w):
            node.stats.noquorum += 1
            what = "read" if len(targets) < r else "write"
            need = r if len(targets) < r else w
            node.done.append((cb, (noquorum(what, len(targets), need, node.cfg.n), None)))
            return
        cop = CollOp(self, key, p, op, cb, targets, r, w)
        cop.progress = progress
        cop.extra = route.pending
        cop.missing = route.missing
        cop.reqid = node.next_reqid()
        cop.deadline = node.now + node.cfg.timeout_ms
        cop.asked_at = node.now
        cop.synced.add(node.name)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = deque()
        queue.append(cop)
        if r > 1 and route.others:
            self.pending[cop.reqid] = cop
            cop.sent = self.store.summary(p, key).copy()
            applied = cop.sent.pack()
            have = self._large_header(p, key)
            for peer, owner in route.others:
                node.send(peer, m.coll_sync(cop.reqid, p, key, owner, applied, have))
        self._evaluate_ready(key)

    def replace(self, key: bytes, data: Any, expire_at: int, cb: Callback,
                w: int | None = None) -> None:
        """SET or DEL (`data` None) of a key that is or was a collection: after the
        sync, every element version seen is removed and the header takes the new
        value; `cb((None, new header))`. The command reads none of the elements, so it
        does not wait for a big key's views to be walked in: a DEL of four evicted copies
        of a million elements each walked them all in first, 60 s, and its client timed
        out; an EXPIRE or PERSIST (a collection marker: the elements stay, the header
        takes the expiry) of an evicted million-member set waited 18.5 s."""
        def op(view: KeyView) -> Any:
            return view.replace(data, expire_at)

        op.views = False  # type: ignore[attr-defined]
        self.run(key, op, cb, None, None, w)

    def step(self) -> bool:
        """Walk a slice of collection records (the driver calls this in loop turns after
        the store's `wake`) and run the commands that waited for it; True while walks
        are left."""
        more = self.store.step()
        self._walked()
        self.resume()
        if self.due:
            due, self.due = self.due, []
            self.node.done.extend((cb, (None, None)) for cb in due)
        if self.turns:
            self.due, self.turns = self.turns, []
        return more or bool(self.due) or bool(self.deferred)

    def _walked(self) -> None:
        """A slice of the walks that commands wait on was read: tell them (working, not
        lost: a RENAME's write of a destination whose million records were being
        stripped waited over a minute at load, and its client was told its reply was
        lost while its plan went on)."""
        for key in self.store.waited:
            for cop in self.queues.get(key, ()):
                if cop.progress is not None:
                    cop.progress()

    def _answer(self, cb: Callback, result: Any) -> None:
        """`cb(result)` among the node's completions (after the current step)."""
        self.node.done.append((cb, result))

    def _later(self, cb: Callback) -> None:
        """`cb((None, None))` in a later loop turn (the second `step` from now): a plan with
        long work between its steps (SORT of 200,000 elements: reading, then sorting)
        splits it so other clients' requests run in between. Without a driver (the
        store's `wake` unset), at once."""
        if self.store.wake is None:
            self.node.done.append((cb, (None, None)))
            return
        self.turns.append(cb)
        if len(self.turns) == 1 and not self.store.walks and not self.due:
            self.store.wake()  # (else a step is already coming)

    def resume(self) -> None:
        """Run the commands whose key's views are built now, and those a spent turn
        left (`deferred`)."""
        deferred, self.deferred = self.deferred, []  # (before this turn's go on later)
        built = self.store.built
        while built:
            self._go_on(built.pop())
        for key in deferred:
            if key not in self.deferred:
                self._go_on(key)

    def _go_on(self, key: bytes) -> None:
        self._evaluate_ready(key)
        if key not in self.queues and key not in self.busy:
            self.store.release(key)  # nothing waits on it any more

    def _defer(self, key: bytes) -> None:
        """Go on with the key's queue in the driver's next step."""
        if key not in self.deferred:
            self.deferred.append(key)
        if self.store.wake is not None:
            self.store.wake()

    def _evaluate_ready(self, key: bytes) -> None:
        """Run the queued commands of `key` whose sync is complete, in arrival order,
        once the key's views can be read without holding the node (`store.ready`)."""
        queue = self.queues.get(key)
        while queue:
            if key in self.busy:
                return
            cop = queue[0]
            if not cop.replied:
                if len(cop.synced) < cop.r:
                    return
                if not self.store.ready(cop.p, key, attr_or(cop.op, "scan_kind", None),
                                        attr_or(cop.op, "views", True)):
                    # Local work that always ends: no timeout meanwhile, and the
                    # write's deadline starts when it is evaluated.
                    self.pending.pop(cop.reqid, None)
                    return
            queue.popleft()
            if not cop.replied:
                self._evaluate(cop)
                if queue and self.spent():
                    self._defer(key)
                    return
        self.queues.pop(key, None)

    def _evaluate(self, cop: CollOp) -> None:
        node = self.node
        self.pending.pop(cop.reqid, None)  # late sync answers are not needed any more
        header, _ = node.local.get(cop.p, cop.key)
        view = KeyView(self.store, cop.p, cop.key, node.now, header,
                       lambda data, exp: self._write_header(cop.p, cop.key, data, exp),
                       node.actor, lambda: node.rng.getrandbits(32).to_bytes(4, "big"),
                       node.writes.timestamp, attr_or(cop.op, "views", True))
        cop.evaluated = True
        failed = False
        try:
            cop.result = cop.op(view)
        except Exception:
            failed = True  # a bug in the command: its writes so far still replicate
        deltas, events = view.finish()
        if failed:
            self._reply(cop, FAILED)
        if view.removing():
            self._remove_in_turns(cop, view, deltas, events)
            return
        self._made(cop, deltas)
        self._replicate(cop, deltas, events, 1, len(deltas))

    def _others(self, cop: CollOp) -> list[tuple[str, str]]:
        """The replicas a command's write goes to, but this node: (node, owner)."""
        me = self.node.name
        return [(peer, owner) for peer, owner in cop.targets if peer != me] + \
            [(peer, peer) for peer in cop.extra]

    @staticmethod
    def _acks_wanted(cop: CollOp, others: list[tuple[str, str]]) -> bool:
        """Whether the reply waits for replicas (`others`: `_others(cop)`)."""
        return cop.w + len(cop.extra) > 1 and bool(others)

    def _made(self, cop: CollOp, deltas: list) -> None:
        """A command's new record versions are stored here: tell the watchers, keep
        hints for the replicas nobody stands in for."""
        if not deltas:
            return
        node = self.node
        node.watches.changed(cop.key)  # clients blocked on it, here or elsewhere
        for owner in cop.missing:
            if owner != node.name:
                for d in deltas:
                    if d[2] is not None:
                        node.handoff.store(owner, d[0], d[1], d[2])

    def _replicate(self, cop: CollOp, deltas: list, events: list, parts: int,
                   records: int) -> None:
        """Send a command's last (or only) part of `parts` to the replicas; answer
        after W acknowledgements of every part (`records` in all)."""
        node = self.node
        others = self._others(cop)
        cop.acked.add(node.name)
        if not self._acks_wanted(cop, others) or not (deltas or parts > 1):
            self._reply(cop, None)
            if deltas:
                self._send_deltas(cop, others, events, deltas, False, parts - 1)
            return
        # The write's own time starts now; many records take their replicas longer.
        self.pending.pop(cop.reqid, None)
        cop.deadline = node.now + node.cfg.timeout_ms + \
            records * node.cfg.ms_per_1000_records // 1000
        cop.asked_at = node.now
        self.pending[cop.reqid] = cop
        if deltas:
            self._send_deltas(cop, others, events, deltas, True, parts - 1)
        else:
            parts -= 1  # (nothing left to send: the parts sent are all)
        cop.parts = parts
        for peer, got in list(cop.part_acks.items()):
            if len(got) >= parts:
                self._acked(cop, peer)

    def _remove_in_turns(self, cop: CollOp, view: KeyView, deltas: list,
                         events: list) -> None:
        """A command that removes part of a big collection (KeyView.remove): its removal
        records made and sent a turn's worth at a time, each part applied by the
        replicas in a turn of theirs; the key's later commands wait here until the last
        part, and the command is answered after W replicas acknowledged every part. One
        turn made and sent them all: SPOP of 500,000 of a million members froze the
        coordinator 36 s and its replicas 12.8 s (issue 12)."""
        self.busy.add(cop.key)
        others = self._others(cop)
        acks = self._acks_wanted(cop, others)
        cop.parts = 0  # (not known yet: no replica counts as acknowledged meanwhile)
        if acks and not cop.replied:  # (its acknowledgements counted as they come)
            cop.deadline = self.node.now + self.node.cfg.timeout_ms
            self.pending[cop.reqid] = cop
        removal = RemovalTurns(self, cop, view, others, acks)
        removal.send(deltas, events)
        self.later(removal.step)

    def _send_deltas(self, cop: CollOp, others: list[tuple[str, str]],
                     events: list[tuple[bytes, int]], deltas: list, want_ack: bool,
                     part: int) -> None:
        reqid = cop.reqid if want_ack else 0
        for peer, owner in others:
            self.node.send(peer, m.coll_write(reqid, cop.p, cop.key, owner, events, deltas,
                                              part))

    def _write_header(self, p: int, key: bytes, data: Any, expire_at: int) -> tuple[bytes,
                                                                                   bytes | None]:
        node = self.node
        local, old = node.local.get(p, key)
        writes = node.writes
        new = dvv.overwrite(local, writes.actor_for(local),
                            (writes.timestamp(local), expire_at, data))
        enc = objmod.encode(new)
        node.local.put(p, key, enc, old)
        return enc, old

    def _reply(self, cop: CollOp, err: str | None) -> None:
        if cop.replied:
            return
        cop.replied = True
        node = self.node
        if err is not None:
            if err.startswith("NOQUORUM"):
                node.stats.noquorum += 1
            node.done.append((cop.cb, (err, None)))
        else:
            node.done.append((cop.cb, (None, cop.result)))

    def timed_out(self, cop: CollOp) -> None:
        n = self.node.cfg.n
        self._note_late(cop)
        if not cop.evaluated:
            self._reply(cop, noquorum("read", len(cop.synced), cop.r, n) + TIMED_OUT)
            self._evaluate_ready(cop.key)
        else:
            self._reply(cop, noquorum("write", len(cop.acked), cop.w, n) + TIMED_OUT)

    def _note_late(self, cop: CollOp) -> None:
        """Keep what the driver's report of a timeout says (never on the way of a
        command that is answered in time)."""
        node = self.node
        asked = [peer for peer, _ in cop.targets if peer != node.name]
        if cop.evaluated:
            answered, needed = cop.acked, cop.w + len(cop.extra)
            asked += cop.extra
        else:
            answered, needed = cop.synced, cop.r
        late = Late("write" if cop.evaluated else "sync", cop.key, node.now - cop.asked_at,
                    tuple(p for p in asked if p not in answered), len(answered), needed)
        if len(self.late) >= LATE_KEPT:
            del self.late[0]
            self.late_dropped += 1
        self.late.append(late)

    def peer_down(self, peer: str) -> None:
        """A replica became unreachable: fail what waits on it as soon as its quorum
        is out of reach (not at the timeout); and what was handed to it."""
        for fwd in [f for f in self.forwarded.values() if f.target == peer]:
            del self.forwarded[fwd.reqid]
            fwd.timed_out()
        for cop in list(self.pending.values()):
            others = {node for node, _ in cop.targets}
            if peer not in others and not (cop.evaluated and peer in cop.extra):
                continue
            n = self.node.cfg.n
            if not cop.evaluated and peer not in cop.synced:
                cop.sync_failed.add(peer)
                if len(cop.targets) - len(cop.sync_failed) < cop.r:
                    self.pending.pop(cop.reqid, None)
                    self._reply(cop, noquorum("read", len(cop.synced), cop.r, n))
                    self._evaluate_ready(cop.key)
            elif cop.evaluated and peer not in cop.acked:
                cop.ack_failed.add(peer)
                if len(cop.targets) - len(cop.ack_failed) < cop.w:
                    self.pending.pop(cop.reqid, None)
                    self._reply(cop, noquorum("write", len(cop.acked), cop.w, n))

    def _on_sync_part(self, src: str, msg: tuple) -> None:
        """A part of a replica's whole-key answer (collsync.py): merged now, a message a
        turn; the command waits on, a full timeout from each part, not its deadline."""
        _, reqid, records = msg
        cop = self.pending.get(reqid)
        if cop is None or cop.evaluated:
            return
        self._take(cop.p, cop.key, records)
        if cop.answer_parts is None:
            cop.answer_parts = {}
        cop.answer_parts[src] = cop.answer_parts.get(src, 0) + 1
        self._extend(cop)
        if cop.progress is not None:
            cop.progress()

    def _on_sync_answer(self, src: str, msg: tuple) -> None:
        _, reqid, records, full, applied, parts = msg
        cop = self.pending.get(reqid)
        if cop is None or cop.evaluated:
            return
        got = 0 if cop.answer_parts is None else cop.answer_parts.pop(src, 0)
        if got != parts:
            return  # a part was lost (a link dropped): what it claims is not all here
        p, key = cop.p, cop.key
        theirs = DotSet.unpack(applied)
        self._take(p, key, records)
        if full:
            self.store.applied_all(p, key, theirs)
        cop.synced.add(src)
        self._repair(src, cop, theirs)
        if len(cop.synced) >= cop.r:
            # Its sync is complete: from now on it waits only for the key's earlier
            # commands (each bounded by its own deadline) or for local work that
            # always ends, so no timeout (one timing out answered "NOQUORUM read needed
            # 2 of 3 replicas, got 3": a pipelined HSET behind one waiting for a
            # million-element hash's views to load). Taken out here, once: done by a
            # walk of the key's whole queue at every answer, 800 commands pipelined
            # on one key cost a quadratic walk (3.4% of the coordinator's samples
            # under HSET -c 50 -P 16).
            self.pending.pop(reqid, None)
            self._evaluate_ready(key)

    def _extend(self, cop: CollOp) -> None:
        """Give a command waiting on local work a full timeout from now (moved last:
        `pending` stays in deadline order)."""
        if self.pending.pop(cop.reqid, None) is cop:
            cop.deadline = self.node.now + self.node.cfg.timeout_ms
            self.pending[cop.reqid] = cop

    def _take(self, p: int, key: bytes, records: Any) -> None:
        """Merge a peer's records of a key into this replica."""
        for part, rkey, enc in records:
            if enc is None:
                continue
            if part == p:
                self.node.replica.apply(key, enc, p)
            else:
                self.store.merge(part, rkey, enc)

    def _repair(self, peer: str, cop: CollOp, theirs: DotSet) -> None:
        """Send a replica that answered the records of events it lacks.

        Only of the events this node had applied when it asked (`cop.sent`): the links
        keep order, so the replica had received this node's earlier writes before the
        question, and any event applied since (this node's later commands, pipelined
        behind this one) is already on its way there. Comparing with the current set
        instead would send every write in flight again with each answer: deep
        pipelines on one key would resend hundreds of records per command, and fall
        back to walking the whole key."""
        node = self.node
        owner = dict(cop.targets).get(peer, peer)
        sent = cop.sent
        if owner != peer or sent is None or theirs.covers(sent):
            return  # a fallback keeps hints, not the key: nothing to catch up
        dots = sent.missing_from(theirs, REPAIR_LIMIT)
        if not dots:
            return  # too far behind for a quick push: anti-entropy catches it up
        records = self.store.delta(cop.p, cop.key, dots,
                                   lambda: node.local.get_enc(cop.p, cop.key))
        if records is None:
            return  # the log no longer reaches back: anti-entropy again
        node.send(peer, m.coll_repair(cop.p, cop.key, owner, records, dots))

    def _moved_on(self, cop: CollOp) -> None:
        """`cop` took a step over turns: tell it and every command queued behind it on
        its key (each waits for it: working, not lost)."""
        for waiting in (cop, *self.queues.get(cop.key, ())):
            if waiting.progress is not None:
                waiting.progress()

    def _on_ack(self, src: str, msg: tuple) -> None:
        cop = self.pending.get(msg[1])
        if cop is None or not cop.evaluated:
            return
        if cop.parts != 1:
            got = cop.part_acks.setdefault(src, set())
            got.add(msg[2])
            if cop.progress is not None:
                cop.progress()
            if len(got) < cop.parts or not cop.parts:
                return
        self._acked(cop, src)

    def _acked(self, cop: CollOp, src: str) -> None:
        """`src` holds every record of the command's write."""
        cop.acked.add(src)
        if len(cop.acked) >= cop.w + len(cop.extra):
            self._reply(cop, None)
        if len(cop.acked) >= len(cop.targets) + len(cop.extra) or cop.replied:
            self.pending.pop(cop.reqid, None)

    # --- forwarding ------------------------------------------------------------------

    def _forward(self, targets: list[tuple[str, str]], key: bytes, payload: Any,
                 cb: Callback) -> None:
        node = self.node
        if not targets:
            node.stats.noquorum += 1
            node.done.append((cb, (noquorum("any", 0, 1, node.cfg.n), None)))
            return
        node.stats.forwarded += 1
        target = targets[0][0]
        fwd = Forwarded(self, node.next_reqid(), cb,
                        node.now + FORWARD_TIMEOUTS * node.cfg.timeout_ms, target)
        self.forwarded[fwd.reqid] = fwd
        node.send(target, m.coll_forward(fwd.reqid, key, payload))

    def _on_forward(self, src: str, msg: tuple) -> None:
        _, reqid, key, payload = msg
        node = self.node
        if not node.forwarder.first_time(src, reqid):
            return  # a duplicated message: the command runs once (a push must not twice)

        def answer(result: tuple[str | None, Any]) -> None:
            node.send(src, m.coll_forward_answer(reqid, result[0], result[1]))

        if self.remote is None:
            answer((NO_REMOTE, None))
            return
        self.remote(payload, answer)

    def _on_forward_answer(self, src: str, msg: tuple) -> None:
        fwd = self.forwarded.pop(msg[1], None)
        if fwd is not None:
            self.node.done.append((fwd.cb, (msg[2], msg[3])))

    # --- replica ---------------------------------------------------------------------

    def _large_header(self, p: int, key: bytes) -> bytes:
        """The digest of this replica's header of `key` if it is large (a string of 4 KB
        or more reached by a collection command: OBJECT, a type check), else b"": a
        replica holding the same object does not send it back (33 pipelined OBJECT
        ENCODING of a 10 MB string moved 660 MB and timed out)."""
        head = self.node.local.head(p, key)
        return hdr.digest(head) if head is not None and hdr.is_headed(head) else b""

    def _on_sync(self, src: str, msg: tuple) -> None:
        _, reqid, p, key, owner, applied, have = msg
        node = self.node
        if owner != node.name:
            # A fallback holds this key's updates as hints, not as a replica: it has
            # nothing applied to offer.
            node.send(src, m.coll_sync_answer(reqid, [], False, ((), ()), 0))
            return
        theirs = DotSet.unpack(applied)
        store = self.store

        def header() -> bytes | None:
            if have and self._large_header(p, key) == have:
                return None  # the asker holds this very object (merged as no record)
            return node.local.get_enc(p, key)

        records = store.missing_events(p, key, theirs, SYNC_LIMIT, header)
        ours = store.summary(p, key).pack()
        if records is not None:
            node.send(src, m.coll_sync_answer(reqid, records, False, ours, 0))
            return
        # Every record, read and sent a part a loop turn (collsync.py); what it claims
        # is `ours`.
        collsync.gather([(p, key, header())],
                        store.element_records(p, key),
                        lambda: store.removal_records(p, key), self.later,
                        lambda part: node.send(src, m.coll_sync_part(reqid, part)),
                        lambda rest, parts: node.send(src, m.coll_sync_answer(
                            reqid, rest, True, ours, parts)))

    def _on_write(self, src: str, msg: tuple) -> None:
        _, reqid, p, key, owner, events, deltas, part = msg
        records = [(d[0], d[1], d[2]) for d in deltas]
        self._apply(src, p, key, owner, events, records)
        node = self.node
        if owner == node.name and node.transfers.forward_to:
            # This replica is sending the partition to a new one (transfers.py): pass
            # the command's records and events on, for coordinators that do not know
            # the change yet (those that do send them there themselves).
            targets = node.transfers.forward_to.get(p)
            for t in targets or ():
                if t != node.name and t != src:
                    node.send(t, m.coll_repair(p, key, t, records, events))
        if reqid:
            self.node.send(src, m.coll_write_ack(reqid, part))

    def _on_repair(self, src: str, msg: tuple) -> None:
        _, p, key, owner, records, events = msg
        self._apply(src, p, key, owner, events, records)

    def _apply(self, src: str, p: int, key: bytes, owner: str, events: Any,
               records: Any) -> None:
        """Store a coordinator's records of `key` (hints, if we stand in for `owner`),
        and tell the nodes watching the key, but `src`: it wrote them, and told its own
        watchers."""
        node = self.node
        if owner != node.name:
            for part, rkey, enc in records:
                if enc is not None:
                    node.handoff.store(owner, part, rkey, enc)
            return
        written = self.store.merge_key(p, key, records,
                                       lambda enc: node.replica.apply(key, enc, p))
        dots = [(a, n) for a, n in events]
        if dots:
            self.store.applied(p, key, dots, written)
        if written:
            node.watches.changed(key, src)

    def wipe(self) -> None:
        self.store.forget()
        self.queues.clear()
        self.busy.clear()


class RemovalTurns:
    """One command's removal records made and sent over loop turns
    (CollCoordinator._remove_in_turns). An object, not closures: a step that hands
    itself on to `later` is a reference cycle, and one held the key's view (a DEL of a
    big key: its loaded elements) until the cyclic collector found it."""

    def __init__(self, coord: CollCoordinator, cop: CollOp, view: KeyView,
                 others: list[tuple[str, str]], acks: bool) -> None:
        self.coord = coord
        self.cop = cop
        self.view = view
        self.others = others
        self.acks = acks
        self.sent = 0  # parts sent
        self.records = 0  # records in them

    def send(self, deltas: list, events: list) -> None:
        coord, cop = self.coord, self.cop
        coord._made(cop, deltas)
        if deltas:
            coord._send_deltas(cop, self.others, events, deltas, self.acks, self.sent)
            self.sent += 1
            self.records += len(deltas)

    def step(self, _: Any = None) -> None:
        coord, cop, view = self.coord, self.cop, self.view
        coord._moved_on(cop)
        view.remove_step()
        deltas, events = view.finish()
        if view.removing():
            self.send(deltas, events)
            coord._extend(cop)
            coord.later(self.step)
            return
        coord.busy.discard(cop.key)
        coord._made(cop, deltas)
        coord._replicate(cop, deltas, events, self.sent + 1, self.records + len(deltas))
        coord._evaluate_ready(cop.key)
