"""Coordinated writes (Dynamo §4.5, riak_kv_put_fsm): put and increment, replicated to N.

The coordinator, a replica in the key's active preference list, builds the new version
on its own copy (a new dot of its actor, an HLC timestamp later than every version it
holds), stores it, sends it to the other replicas and replies after W acknowledgements
(its own included) or as soon as W can no longer come. A primary that is down with no
fallback standing in for it (a cluster of exactly N nodes) gets its copy as a hint the
coordinator keeps (handoff.py); so does a replica that fails the write or does not
acknowledge it within the request timeout (the op stays after the client's reply until
every replica answered). A node outside the list forwards the write
(forward.py). The quorum decisions are quorum.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from . import clock as dvv
from . import counter, shape
from . import header as hdr
from . import messages as m
from . import obj as objmod
from .bigencode import Encoding, LargePut
from .clock import EMPTY, VV, Clock
from .inflight import overdue_sized
from .membership import Route
from .pieces import Joined, whole
from .quorum import PutCore, Result, unreachable
from .records import marker_type

if TYPE_CHECKING:
    from .node import Node

# shape.is_kept's test, made here: shape.py runs interpreted, and a call into it from
# every write cost about 600 instructions of a SET.
_UNREAD: Final = shape.Unread
_SPLICED: Final = shape.Spliced


def _holds_still(head: bytes | None, base: bytes | None) -> bool:
    """Whether a key whose object starts with `head` (None: none) holds `base` still."""
    if head is None or base is None:
        return head is base
    return objmod.same(head, base)


def _is_kept(data: Any) -> bool:
    """shape.is_kept: a value to write is (or starts with) a value left in the store."""
    return type(data) is _UNREAD or type(data) is _SPLICED


Callback = Callable[[Result], Any]

# Timed-out writes whose hints are stored a tick, and the backlog of such writes past
# which they are all stored at once (see Writes.expire and Writes.owing).
HINTS_PER_TICK = 64
# An actor is the node's identity and ACTOR_SUFFIX random bytes (Writes.actor_for).
ACTOR_SUFFIX: Final = 4
SUFFIX_POOL: Final = 1024
HINT_BACKLOG_MAX = 50_000

# Why an increment was refused (the Redis face words these as Redis does).
NOT_AN_INTEGER = "not-an-integer"
OVERFLOW = "overflow"
# Why a write was refused: it would leave the key more than obj.SIBLING_MAX concurrent
# versions (the Redis face words it; the error is its first word).
TOO_MANY_SIBLINGS = "too-many-siblings"
WRONG_TYPE = "wrong-type"  # an increment of a collection key
# A write of a large value left unread (shape.Unread) that is no longer where it was
# read: the caller reads the key whole and writes again (never shown to a client).
STALE_READ = "stale-read"


def _answered(result: Result) -> None:
    """The callback of a write whose client has its reply (PutOp.cb after it)."""


# (Final names: compiled code reads them from C globals, not the module's dict.)
_ANSWERED: Final = _answered
_EMPTY: Final = EMPTY


class PutOp(PutCore):
    """A coordinated write in flight: until every replica acknowledged it or failed, even
    after the client's reply (a replica that fails it gets a hint, see `missed`)."""

    __slots__ = ("reqid", "cb", "deadline", "extra", "obj", "targets", "key", "p", "enc")

    def __init__(self, n: int, w: int, nval: int, cb: Callback, obj: Clock,
                 targets: list[tuple[str, str]], key: bytes, p: int, enc: bytes) -> None:
        super().__init__(n, w, nval)
        self.reqid = 0
        self.cb = cb
        self.deadline = 0
        self.extra = 0  # ms a large value adds to the deadline (inflight.overdue_sized)
        self.obj = obj
        self.targets = targets
        self.key = key
        self.p = p
        self.enc = enc


def _queue_put(node: Node, peer: str, reqid: Any, key: bytes, enc: bytes, owner: str,
               p: Any, base: bytes | None) -> None:
    """Add a put to this turn's batch for `peer` (messages.REPLICA_PUTS: one message a
    peer, not one per put), item by item (compiled: appends, where extending it by a
    tuple made one, walked and freed it, about 250 instructions more a put). The owner
    is None when it is `peer` itself: one byte, not a name to encode, decode and
    compare."""
    puts = node.batch_for(peer, m.REPLICA_PUTS)
    puts.append(reqid)
    puts.append(key)
    puts.append(enc)
    puts.append(None if owner == peer else owner)
    puts.append(p)
    puts.append(base)


def _waits_on(op: PutOp, peer: str) -> bool:
    """Write `op` was sent to `peer`, which has neither acknowledged nor failed it."""
    return (peer not in op.acked and peer not in op.failed
            and any(x == peer for x, _ in op.targets))


def known_part(ctx: VV, local: Clock | None) -> VV:
    """The part of a client's context this replica knows: each entry capped at what the
    local clock has seen, unknown actors dropped.

    A context may name versions this node never saw (it missed them, or they belong to
    an earlier life of a reaped key). Superseding only what we know keeps those
    versions as siblings (nothing is lost), and keeps a stale context from dragging an
    old life's counters into the key's clock, where a later write would reuse its dots.
    """
    if local is None:
        return ()
    known = dict(dvv.join(local))
    out = []
    for actor, n in ctx:
        have = known.get(actor)
        if have is not None:
            out.append((actor, n if n <= have else have))
    return tuple(out)


def _reads_before(local: Clock | None, lenc: bytes | None) -> int:
    """obj.reads_until of what a key held before a write (`lenc`, decoded as `local`):
    from `local` when it is all of `lenc`; -1 (the store reads it) when `lenc` is a
    large object's header, of which `local` may be the clock alone."""
    if lenc is None:
        return 0
    if local is None or hdr.is_headed(lenc):
        return -1
    return objmod.reads_of(local)


def is_collection(obj: Clock | None, now: int) -> bool:
    """The key's live winning version is a collection's header."""
    sib = objmod.read_value(obj, now)
    return sib is not None and marker_type(sib[2]) is not None


class Writes:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.name = node.name
        self.cfg = node.cfg
        self.local = node.local
        self.stats = node.stats
        self.membership = node.membership
        self.pending: dict[int, PutOp] = {}
        # Writes past their deadline whose client was answered, still owing a hint to a
        # replica that did not acknowledge them, oldest first: expire stores a slice of
        # them a tick. Out of `pending`, so that its walk for overdue writes (every tick)
        # passes only writes that are new to it, not a backlog of tens of thousands.
        self.owing: dict[int, PutOp] = {}
        # Random actor suffixes (actor_for), drawn from the node's rng SUFFIX_POOL at a
        # time and handed out ACTOR_SUFFIX bytes each.
        self._suffixes = b""
        self._suffix_at = 0

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.PUT_ACKS: self.on_acks}

    # --- the two kinds of write ------------------------------------------------------

    def put(self, key: bytes, ctx: VV | None, data: Any, expire_at: int,
            cb: Callback, w: int | None = None) -> None:
        """Quorum write of a new version of `key`.

        `ctx` is the causal context the write supersedes; None means this node's own
        current context (plain SET/DEL). `data` None writes a tombstone; besides bytes
        it may be what an EXPIRE or PERSIST read (a counter's state, or a collection
        header's type marker, which goes to the collection coordinator). A write with a
        context that would leave more than obj.SIBLING_MAX siblings is refused
        (TOO_MANY_SIBLINGS).

        `data` may also be a shape.Unread, with a context: the large value a read left
        in this node's store (EXPIRE, PERSIST), kept as it is and copied once from the
        store into the new version's encoding (or a shape.Spliced: with bytes written
        over or after it, SETRANGE's and APPEND's). Where that cannot be (the key holds
        another object now, or is not this node's to coordinate any more) the write is
        refused with STALE_READ: read the key whole and write again.
        """
        membership = self.membership
        p = membership.ring.partition_of(key)
        route = membership.route(p)
        w = w or self.cfg.w
        if _is_kept(data) and (ctx is None or not route.local
                                    or key in self.node.coll.store.known):
            self.node.done.append((cb, (STALE_READ, None)))
            return
        if type(data) is Joined and (not route.local or key in self.node.coll.store.known):
            data = whole(data)  # a message and a collection's replace take bytes
        if not route.local:
            self.node.forwarder.forward(route.targets, m.fwd_put(0, key, ctx, data, expire_at, w),
                                        cb, len(data) if data is not None else 0)
            return
        coll = self.node.coll
        if key in coll.store.known:
            # A collection (or a key that was one here): SET or DEL replaces it whole,
            # removing every element the write observed (collcoord.py).
            coll.replace(key, data, expire_at, cb, w)
            return
        if not self.quorum_up(route, w, cb):
            return
        # A plain SET or DEL supersedes all the key holds: its clock is enough.
        job: Encoding | None = None  # the new version's encoding, when begun on the way
        asked = ctx
        if ctx is None:
            local, lenc = self.local.get_clock(p, key)
        else:
            # A write with a context (DEL, EXPIRE ...) keeps only what the context does
            # not cover: a large value it covers is never read (a DEL of 100 MB).
            local, lenc = self.local.get_shape(p, key)
        ts = self.timestamp(local)
        actor = self.actor_for(local)
        if ctx:
            ctx = known_part(ctx, local)
        if ctx is None:
            new = dvv.overwrite(local, actor, (ts, expire_at, data))
        else:
            new = dvv.update(dvv.new_with_context(ctx, (ts, expire_at, data)), local, actor)
            if shape.holds_unread(new):  # keeps a large value as it is stored
                job = self.local.encoding_in_place(p, key, new)
                if job is None and _is_kept(data):
                    self.node.done.append((cb, (STALE_READ, None)))
                    return
                if job is None:  # (the engine pins no more now) all of it, decoded
                    local, lenc = self.local.get(p, key)
                    new = dvv.update(dvv.new_with_context(ctx, (ts, expire_at, data)), local,
                                     actor)
            if objmod.too_many_siblings(new, local):
                # Refused rather than acknowledged and trimmed: every value a client
                # was told is written stays until a write whose context covers it.
                if job is not None:
                    job.release()
                self.stats.sibling_refusals += 1
                self.node.done.append((cb, (TOO_MANY_SIBLINGS, None)))
                return
            self.node.replica.note_siblings(new)
        was = _reads_before(local, lenc)
        if job is None and objmod.holds_large(new):
            job = Encoding(new)
        if job is None:
            self.replicate(key, p, route, w, cb, new, lenc, None, was)
            return
        if (job.size() > self.cfg.encode_slice and self.node.coll.store.wake is not None
                and job.lasting()):
            # Made a slice a loop turn, then written (`encoded`) if the key still holds
            # what it was built on.
            LargePut(self, job, (key, asked, data, expire_at, cb, w), (p, new, lenc, was))()
            return
        job.step(1 << 62)
        enc = job.result()
        if enc is None:  # (the store closed)
            self.node.done.append((cb, (STALE_READ, None)))
            return
        self.replicate(key, p, route, w, cb, new, lenc, enc, was)

    def encoded(self, put: LargePut) -> None:
        """A LargePut's version is encoded: replicate it if the key still holds what it
        was built on and this node still coordinates it; else write again from what the
        key holds now (a replica's copy of another write came meanwhile)."""
        enc = put.job.result()
        p = put.p
        key = put.key
        route = self.membership.route(p)
        head = self.local.head(p, key)
        base = put.base
        if (enc is None or not route.local or key in self.node.coll.store.known
                or not _holds_still(head, base)):
            self.stats.large_rewrites += 1
            self.put(key, put.ctx, put.data, put.expire_at, put.cb, put.w)
            return
        refused = unreachable("write", len(route.targets), put.w, self.cfg.n)
        if refused is not None:
            self.stats.noquorum += 1
            self.node.done.append((put.cb, refused))
            return
        self.replicate(key, p, route, put.w, put.cb, put.new, base, enc, put.was)

    def incr(self, key: bytes, delta: int, cb: Callback, w: int | None = None) -> None:
        """Add `delta` to the counter at `key` (INCR family), replicated like a write.

        The coordinator grows its own entry from its own latest state, so concurrent
        increments through other nodes are never overwritten, only joined. Refused with
        NOT_AN_INTEGER (the value is not an integer) or OVERFLOW (out of 64 bits).
        """
        membership = self.membership
        p = membership.ring.partition_of(key)
        route = membership.route(p)
        w = w or self.cfg.w
        if not route.local:
            self.node.forwarder.forward(route.targets, m.fwd_incr(0, key, delta, w), cb)
            return
        if not self.quorum_up(route, w, cb):
            return
        # A large value is left in the store: its length says it is no integer (an
        # INCR of a 100 MB string copied it out and decoded it, ~130 ms).
        local, lenc = self.local.get_shape(p, key)
        now = self.node.now
        if key in self.node.coll.store.known and is_collection(local, now):
            self.node.done.append((cb, (WRONG_TYPE, None)))
            return
        state = objmod.counter_state(local, now)
        expire = 0
        if state is None:
            current = objmod.read_value(local, now)
            if current is None:
                state = counter.start(0, 0)
            else:
                base = None if type(current[2]) is shape.Unread else counter.parse_integer(
                    current[2])  # type: ignore[arg-type]
                if base is None:
                    self.node.done.append((cb, (NOT_AN_INTEGER, None)))
                    return
                state = counter.start(base, current[0])
                expire = current[1]
        else:
            w_sib = objmod.winner(local)  # type: ignore[arg-type]
            expire = w_sib[0][1] if w_sib else 0
        total = counter.value(state) + delta
        if not counter.INT64_MIN <= total <= counter.INT64_MAX:
            self.node.done.append((cb, (OVERFLOW, None)))
            return
        actor = self.actor_for(local)
        data = counter.incremented(state, actor, delta)
        ts = self.timestamp(local)
        new = dvv.overwrite(local, actor, (ts, expire, data))
        if shape.holds_unread(new):  # an anonymous large sibling it keeps: all of it
            local, lenc = self.local.get(p, key)
            new = dvv.overwrite(local, actor, (ts, expire, data))
        self.replicate(key, p, route, w, cb, new, lenc, None, _reads_before(local, lenc))

    # --- building and sending the version --------------------------------------------

    def quorum_up(self, route: Route, w: int, cb: Callback) -> bool:
        """Count a write this node coordinates; False (and answered NOQUORUM) when
        fewer than W replicas are up."""
        self.stats.puts += 1
        refused = unreachable("write", len(route.targets), w, self.cfg.n)
        if refused is not None:
            self.stats.noquorum += 1
            self.node.done.append((cb, refused))
            return False
        return True

    def actor_for(self, local: Clock | None) -> bytes:
        """The actor that stamps this node's write of a key.

        Our identity plus a suffix drawn when the key has no entry of ours: a key that
        was deleted and reaped, then written again, starts a new life whose dots can
        never repeat the old life's (which a client may still hold in a context).
        """
        me = self.node.actor
        if local is not None:
            for actor, _, _ in local[0]:
                if actor.startswith(me):
                    return actor
        return me + self._suffix()

    def _suffix(self) -> bytes:
        """ACTOR_SUFFIX random bytes: a slice of a pool drawn SUFFIX_POOL suffixes at a
        time (each drawn alone, a call of the rng and an int's to_bytes, cost about a
        thousand instructions of every write of a new key)."""
        at = self._suffix_at
        pool = self._suffixes
        if at + ACTOR_SUFFIX > len(pool):
            size = SUFFIX_POOL * ACTOR_SUFFIX
            pool = self._suffixes = self.node.rng.getrandbits(size * 8).to_bytes(size, "big")
            at = 0
        self._suffix_at = at + ACTOR_SUFFIX
        return pool[at:at + ACTOR_SUFFIX]

    def timestamp(self, local: Clock | None) -> int:
        """A fresh HLC timestamp, later than every version of the key we hold."""
        hlc = self.node.hlc
        ts = hlc.now(self.node.now)
        if local is not None:
            newest = objmod.max_ts(local)
            if newest >= ts:
                ts = newest + 1
                hlc.observe(ts)
        return ts

    def replicate(self, key: bytes, p: int, route: Route, w: int, cb: Callback,
                  new: Clock, base: bytes | None, enc: bytes | None = None,
                  was: int = -1) -> None:
        """Store the coordinator's new version and send it to the other replicas (and
        keep a hint for each down primary no fallback stands in for).

        `base` is what the coordinator held (and built `new` on, so `new` covers it): a
        replica holding exactly that takes `new` without decoding and merging. `enc`:
        `new` encoded already (values kept where they were stored: `new` may hold
        shape.Unread values, which nothing reads after the write). `was`: obj.reads_until
        of `base` if known (`_reads_before`), else -1. The key counts take both moments
        from the objects decoded here, not from their bytes."""
        node = self.node
        if enc is None:
            enc = objmod.encode(new)
        self.local.put(p, key, enc, base, False, objmod.reads_of(new), was)
        for owner in route.missing:
            # No fallback took this primary's copy: keep it as a hint here, handed
            # off when the primary is back (it does not count toward W). `new` covers
            # `base`: a hint of the previous write here is replaced, not merged.
            node.handoff.store(owner, p, key, enc, base)
        extra = route.pending
        if not route.others and not extra and w <= 1:
            # No other replica (N=1): this node's copy is the W it needs, as a PutOp
            # would decide at once, with nothing left to wait for (no op made).
            node.done.append((cb, (None, new)))
            return
        op = PutOp(len(route.targets) + len(extra), w + len(extra), self.cfg.n, cb, new,
                   route.write_targets, key, p, enc)
        op.ack(self.name)
        if route.others or extra:
            op.reqid = reqid = node.next_reqid()
            op.deadline = node.now + self.cfg.timeout_ms
            op.extra = len(enc) * self.cfg.ms_per_mb >> 20  # node.allowance, inline
            # (boxed once, for `pending` and every replica's batch: compiled, an int
            # is boxed wherever it goes into a dict or a list)
            rid: Any = reqid
            pid: Any = p
            self.pending[rid] = op
            ident = objmod.identity(base) if base is not None else None
            silent = self.membership.silent
            spare = op.n - op.w  # replicas W can come without
            for peer, owner in route.others:
                if silent and spare > 0 and peer in silent:
                    # Silent (membership.py), not waited on: its copy is a hint from
                    # now, as for a replica counted down, not one owed at the deadline.
                    spare -= 1
                    self.stats.writes_unsent += 1
                    op.fail(peer)
                    self.missed(op, peer, base)
                    continue
                _queue_put(node, peer, rid, key, enc, owner, pid, ident)
            for peer in extra:
                _queue_put(node, peer, rid, key, enc, peer, pid, ident)
        self.progress(op)

    # --- answers and their absence ---------------------------------------------------

    def on_acks(self, src: str, msg: tuple) -> None:
        pending = self.pending
        self.membership.heard(src)
        for reqid in msg[1]:
            op = pending.get(reqid)
            if op is None:
                op = self.owing.get(reqid)  # a late acknowledgement: no hint owed now
                if op is None:
                    continue
            op.ack(src)
            self.progress(op)

    def fail(self, reqid: int, peer: str) -> bool:
        """`peer` will not acknowledge write `reqid` (it refused, or its link is gone)."""
        op = self.pending.get(reqid) or self.owing.get(reqid)
        if op is None:
            return False
        if peer not in op.acked and peer not in op.failed:
            op.fail(peer)
            self.missed(op, peer)
        self.progress(op)
        return True

    def peer_down(self, peer: str) -> None:
        """Every write waiting on `peer` counts it as failed (those already `owing`
        hints get theirs from expire, a slice a tick, as they would have)."""
        waiting = [op for op in self.pending.values() if _waits_on(op, peer)]
        for op in waiting:
            op.fail(peer)
            self.missed(op, peer)
            self.progress(op)

    def sending(self, key: bytes, peer: str) -> bool:
        """A write of `key` coordinated here is on its way to `peer` (not acknowledged,
        not failed: a hint if it fails): a read repair of that replica would send it
        what the write brings, or anti-entropy will."""
        return any(op.key == key and _waits_on(op, peer) for op in self.pending.values())

    def sending_copy(self, key: bytes, peer: str, head: bytes) -> bool:
        """A write coordinated here is bringing `peer` exactly the object whose encoding
        starts with `head` (its header: times and digest), of config.no_second_copy_from
        bytes or more: anti-entropy and read repair need not queue a second copy of it
        behind the first (a 512 MB one so queued overflowed the link's limit: cut, and
        the write failed)."""
        if not hdr.is_headed(head):
            return False
        mine = head[:hdr.SIZE]
        big = self.cfg.no_second_copy_from
        return any(op.key == key and len(op.enc) >= big and _waits_on(op, peer)
                   and op.enc[:hdr.SIZE] == mine for op in self.pending.values())

    def writing(self, key: bytes) -> bool:
        """A write of `key` coordinated here still waits on a replica: if that replica
        fails it, the write becomes a hint, so the key must not be reaped meanwhile
        (reaper.py)."""
        return (any(op.key == key for op in self.pending.values())
                or any(op.key == key for op in self.owing.values()))

    def missed(self, op: PutOp, peer: str, base: bytes | None = None) -> None:
        """`peer` did not take write `op`: keep a hint for the owner it stood for, handed
        off when that owner is up (a replica lost in the moments before the failure
        detector saw it go would otherwise wait for anti-entropy). `base`: what the
        write replaced, when known (a hint of it here is replaced, not merged)."""
        handoff = self.node.handoff
        for node, owner in op.targets:
            if node == peer and owner != self.name:
                handoff.store(owner, op.p, op.key, op.enc, base)

    def progress(self, op: PutOp) -> None:
        # The client's reply as soon as it is decided; the op stays until every replica
        # acknowledged or failed, so that a late failure still leaves a hint.
        if not op.replied:
            reply = op.decide(op.obj)
            if reply is not None:
                if reply[0] is not None:
                    self.stats.noquorum += 1
                self.node.done.append((op.cb, reply))
                # What stays needs neither the version's clock nor the reply's callback:
                # they go now (half the objects a write kept for a paused replica left
                # for the garbage collector's young generation to walk, every 50,000).
                op.obj = _EMPTY
                op.cb = _ANSWERED
        if op.replied and op.complete():
            # `del`, not pop(reqid, None): compiled, a dict's pop is a generic method
            # call (about 200 instructions more a write).
            try:
                del self.pending[op.reqid]
            except KeyError:
                self.owing.pop(op.reqid, None)

    def expire(self, now: int) -> None:
        """Time out overdue writes. A write whose client was answered long ago (a W
        quorum acknowledged it) is overdue only for the hints of the replicas that did
        not: it moves to `owing`, whose HINTS_PER_TICK oldest are hinted a tick. The
        writes sent to a replica in the seconds before the failure detector counted it
        down time out one request timeout later, at the rate they were sent (hundreds a
        tick under load): hinting all of them made every tick stall the loop for every
        client (ticks of 5-11 ms through the GET run after a paused replica's SET run),
        and walking the backlog in `pending` for the overdue writes every tick did too
        (ticks of 5-12 ms, 80% of them in that walk, with 30,000 owed). Past a backlog
        of HINT_BACKLOG_MAX all are done at once: memory matters more. A write not yet
        answered always times out at once (its client waits for the NOQUORUM)."""
        pending = self.pending
        owing = self.owing
        for op in overdue_sized(pending, now):
            del pending[op.reqid]
            if op.replied:
                owing[op.reqid] = op
            else:
                self._time_out(op)
        if not owing:
            return
        budget = HINTS_PER_TICK if len(owing) <= HINT_BACKLOG_MAX else len(owing)
        due = []
        for op in owing.values():
            if budget <= 0:
                break
            budget -= 1
            due.append(op)
        for op in due:
            del owing[op.reqid]
            self._time_out(op)

    def _time_out(self, op: PutOp) -> None:
        """`op` is over: a hint for each replica that neither acknowledged nor failed it,
        and NOQUORUM if its client still waits."""
        for node, _ in op.targets:
            if node not in op.acked and node not in op.failed and node != self.name:
                self.missed(op, node)
        reply = op.timed_out()
        if reply is not None:
            self.stats.timeouts += 1
            self.stats.noquorum += 1
            self.node.done.append((op.cb, reply))
