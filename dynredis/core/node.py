"""The node state machine: requests, peer messages and ticks in; messages and results out.

Nothing here does I/O, awaits, or reads a clock. The driver (the asyncio shell in
`server/`, or the simulator in `tests/sim/`) sets `now` before each event, delivers
peer messages with `on_message`, calls `tick` periodically, and after each event
drains two queues:

- `outbox`: `{peer name: [message, ...]}` to send (messages are plain tuples);
- `done`: `[(callback, result), ...]` for finished coordinator operations, where a
  result is `(error or None, object or None)`.

Storage is reached only through the injected engine (`LocalStore`); when staged
writes become durable is the driver's decision.

Peer messages (tuples, first element the type):
  ("p", reqid, key, enc, owner, p, base)  replica put (a hint when owner is another node);
                                        base: obj.identity of the version the coordinator
                                        built on (None: it had none)  -> an ack, below
  ("pas", [reqid, ...])                 acks of replica puts: consecutive acks to one peer
                                        share one message
  ("g", reqid, key, p, owner)           replica get          -> an answer, below
  ("gas", [reqid, enc|None, ...])       answers to replica gets, batched as put acks are
  ("rp", key, enc, p, owner)            read repair (no reply)
  ("hb",)                               heartbeat for the failure detector
  ("ael", reqid, p, depth, indices)     anti-entropy: tree hashes -> ("aelr", reqid, depth, hashes)
  ("aeb", reqid, p, buckets)            anti-entropy: bucket items -> ("aebr", reqid, items)
  ("aew", p, [(key, i_have_it), ...])   anti-entropy: send me these -> ("rp", ...) each
  ("rq", reqid, key, p, digest)         may this dead object be reaped? -> ("ra", reqid, ok)
  ("reap", key, p, digest)              remove it if you hold exactly this
  ("hp", hint key, key, enc, p)         hinted handoff       -> ("hpa", hint key, digest)
  ("fg", reqid, key, r)                 forwarded get        -> ("fa", reqid, err, enc)
  ("fp", reqid, key, ctx, data, exp, w) forwarded put        -> ("fa", reqid, err, enc)
  ("fi", reqid, key, delta, w)          forwarded increment  -> ("fa", reqid, err, enc)
  ("fl", reqid)                         wipe local data      -> ("fla", reqid)
  ("gs", members, ring)                 gossip of members and ring (no reply)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import clock as dvv
from . import counter
from . import obj as objmod
from .clock import VV, Clock
from .engine import Engine
from .hints import HINT_PARTITION, hint_key, parse_hint_key
from .hlc import HLC
from .localstore import LocalStore
from .membership import DOWN, PhiAccrual
from .merkle import DiffWalk, compare_buckets
from .quorum import GetCore, PutCore
from .recent import RecentMap
from .ring import DEFAULT_Q, Ring, new_ring

Result = tuple[str | None, Clock | None]
Callback = Callable[[Result], Any]

# Why an increment was refused (the Redis face words these as Redis does).
NOT_AN_INTEGER = "not-an-integer"
OVERFLOW = "overflow"


@dataclass
class Config:
    """Per-node settings; R and W may be overridden per request."""

    n: int = 3
    r: int = 2
    w: int = 2
    q: int = DEFAULT_Q
    timeout_ms: int = 2000
    gossip_interval_ms: int = 1000
    heartbeat_interval_ms: int = 500
    phi_threshold: float = 8.0
    startup_grace_ms: int = 3000  # a member never heard from by then counts as down
    handoff_interval_ms: int = 1000
    handoff_batch: int = 500
    tombstone_grace_ms: int = 600_000  # deleted/expired objects are reaped after this
    ae_interval_ms: int = 200  # one anti-entropy partition exchange per interval
    sweep_interval_ms: int = 1000
    sweep_batch: int = 200
    cache_size: int = 100_000  # objects cached (the last ones written or read)

    def validate(self) -> None:
        if not 1 <= self.n <= 16:
            raise ValueError("n must be between 1 and 16")
        if not 1 <= self.r <= self.n or not 1 <= self.w <= self.n:
            raise ValueError("r and w must be between 1 and n")


@dataclass
class Stats:
    gets: int = 0
    puts: int = 0
    replica_gets: int = 0
    replica_puts: int = 0
    forwarded: int = 0
    read_repairs: int = 0
    noquorum: int = 0
    timeouts: int = 0
    sibling_warnings: int = 0
    sibling_collapses: int = 0
    hints_created: int = 0
    hints_delivered: int = 0
    handoffs_sent: int = 0
    reaped: int = 0
    ae_exchanges: int = 0
    ae_keys_compared: int = 0
    ae_keys_repaired: int = 0


class Route:
    """A partition's active preference list, split for the coordinator's hot path."""

    __slots__ = ("targets", "local", "others")

    def __init__(self, me: str, targets: list[tuple[str, str]]) -> None:
        self.targets = targets
        self.local = any(node == me for node, _ in targets)
        self.others = [(node, owner) for node, owner in targets if node != me]


class GetOp(GetCore):
    """A coordinated read in flight: quorum accounting plus what to do when it ends."""

    __slots__ = ("reqid", "key", "p", "cb", "deadline", "local", "targets")

    def __init__(self, n: int, r: int, key: bytes, p: int, cb: Callback,
                 local: tuple[bytes, Clock] | None,
                 targets: list[tuple[str, str]] | None = None) -> None:
        super().__init__(n, r)
        self.targets = targets
        self.reqid = 0
        self.key = key
        self.p = p
        self.cb = cb
        self.deadline = 0
        self.local = local


class PutOp(PutCore):
    """A coordinated write in flight."""

    __slots__ = ("reqid", "cb", "deadline", "obj")

    def __init__(self, n: int, w: int, cb: Callback, obj: Clock) -> None:
        super().__init__(n, w)
        self.reqid = 0
        self.cb = cb
        self.deadline = 0
        self.obj = obj


class FwdOp:
    __slots__ = ("reqid", "cb", "deadline", "target")

    def __init__(self, reqid: int, cb: Callback, deadline: int, target: str) -> None:
        self.reqid = reqid
        self.cb = cb
        self.deadline = deadline
        self.target = target


class ReapOp:
    """Asking every member whether a dead object may be removed everywhere."""

    __slots__ = ("reqid", "key", "p", "digest", "deadline", "waiting", "cb")

    def __init__(self, reqid: int, key: bytes, p: int, digest: bytes, deadline: int,
                 waiting: set[str]) -> None:
        self.reqid = reqid
        self.key = key
        self.p = p
        self.digest = digest
        self.deadline = deadline
        self.waiting = waiting
        self.cb = None


class AeOp:
    """One anti-entropy exchange this node drives with a peer for one partition."""

    __slots__ = ("reqid", "p", "peer", "walk", "deadline", "cb")

    def __init__(self, reqid: int, p: int, peer: str, walk: DiffWalk, deadline: int) -> None:
        self.reqid = reqid
        self.p = p
        self.peer = peer
        self.walk = walk
        self.deadline = deadline
        self.cb = None


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

    def __init__(self, reqid: int, cb: Callback, deadline: int, waiting: set[str]) -> None:
        self.reqid = reqid
        self.cb = cb
        self.deadline = deadline
        self.waiting = waiting


def _known_part(ctx: VV, local: Clock | None) -> VV:
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


def noquorum(what: str, got: int, need: int, n: int) -> str:
    return f"NOQUORUM {what} needed {need} of {n} replicas, got {got}"


class Node:
    """One dynredis node: coordinator of client requests and replica of its partitions."""

    def __init__(
        self,
        name: str,
        actor: bytes,
        engine: Engine,
        config: Config | None = None,
        *,
        ring: Ring | None = None,
        members: set[str] | None = None,
        seeds: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.actor = actor
        self.cfg = config or Config()
        self.cfg.validate()
        self.engine = engine
        self.local = LocalStore(engine, self.cfg.cache_size)
        self.rng = rng or random.Random(0)
        self.hlc = HLC()
        self.now = 0
        self.members: set[str] = set(members or ()) | {name}
        self.seeds = tuple(s for s in seeds if s != name)
        self.ring = ring if ring is not None else new_ring([name], self.cfg.q, claimant=name)
        self.down: set[str] = set()  # peers requests avoid: link down or detector says so
        self.link_down: set[str] = set()
        self.fd = PhiAccrual(threshold=self.cfg.phi_threshold)
        self.hints = sum(1 for _ in engine.scan(HINT_PARTITION))
        self._handoff_inflight: dict[bytes, int] = {}
        self._born: int | None = None
        self._next_hb = 0
        self._next_handoff = 0
        self._next_sweep = 0
        self._sweep: Any = None
        self._next_ae = 0
        self._ae_cursor = 0
        self.outbox: dict[str, list[tuple]] = {}
        self.outbox_msgs = 0  # items in outbox (a batch counts each); take_outbox empties both
        # (callback, argument): a Result, or a replica count for WAIT's held_by.
        self.done: list[tuple[Callable[[Any], Any], Any]] = []
        self.pending: dict[int, Any] = {}
        self.stats = Stats()
        # Extra message kinds registered by feature modules (e.g. cluster-wide scans):
        # kind -> handler(src, msg). They follow the same rules: pure, effects via
        # send()/done.
        self.handlers: dict[str, Callable[[str, tuple], None]] = {}
        self.ring_changed = True  # the driver persists ring and members when set
        # Request ids start at a random point per incarnation, so a restarted peer's
        # ids never collide with ones seen from its previous life.
        self._next_id = self.rng.getrandbits(40)
        self._seen_forwards = RecentMap(10_000)  # (src, reqid) of forwards run
        self._next_gossip = 0
        self._apl_cache: dict[int, Route] = {}
        self._maybe_claim()

    # --- placement -------------------------------------------------------------------

    def partition(self, key: bytes) -> int:
        return self.ring.partition_of(key)

    def route(self, p: int) -> Route:
        """Where requests for partition `p` go right now (cached until membership changes)."""
        hit = self._apl_cache.get(p)
        if hit is None:
            up = self.members - self.down
            hit = Route(self.name, self.ring.apl(p, self.cfg.n, up))
            self._apl_cache[p] = hit
        return hit

    def owned_partitions(self) -> list[int]:
        return [p for p, o in enumerate(self.ring.owners) if o == self.name]

    def peer_up(self, peer: str) -> None:
        """The driver's link to `peer` works (the detector still has its say)."""
        if peer in self.link_down:
            self.link_down.discard(peer)
            self._refresh_down()

    def peer_down(self, peer: str) -> None:
        """The driver cannot reach `peer` at all (connection refused or lost)."""
        if peer not in self.link_down and peer != self.name:
            self.link_down.add(peer)
            self._refresh_down()

    def member_status(self, peer: str) -> str:
        """up, suspect or down, as this node sees `peer` right now."""
        if peer == self.name:
            return "up"
        if peer in self.down:
            return DOWN
        return self.fd.status(peer, self.now)

    def _refresh_down(self) -> None:
        now = self.now
        born = self._born if self._born is not None else now
        down = set(self.link_down)
        for peer in self.members:
            if peer == self.name:
                continue
            if self.fd.known(peer):
                if self.fd.phi(peer, now) >= self.fd.threshold:
                    down.add(peer)
            elif now - born >= self.cfg.startup_grace_ms:
                down.add(peer)
        if down != self.down:
            self.down = down
            self._apl_cache.clear()

    # --- effects ---------------------------------------------------------------------

    def send(self, peer: str, msg: tuple) -> None:
        self.outbox_msgs += 1
        box = self.outbox.get(peer)
        if box is None:
            self.outbox[peer] = [msg]
        else:
            box.append(msg)

    def _batch_for(self, peer: str, kind: str) -> list[Any]:
        """The item list of the `kind` batch message last in `peer`'s outbox (a new one
        when the peer's last queued message is anything else), counting one more item
        in `outbox_msgs`. Replies that come in bulk (put acks, get answers) travel this
        way: one tuple to build, encode, decode and dispatch per batch, not per item."""
        box = self.outbox.get(peer)
        if box is not None and box[-1][0] == kind:
            self.outbox_msgs += 1
            return box[-1][1]  # type: ignore[no-any-return]
        items: list[Any] = []
        self.send(peer, (kind, items))
        return items

    def take_outbox(self) -> dict[str, list[tuple]]:
        """The messages queued so far, by peer; the outbox starts again empty."""
        box = self.outbox
        self.outbox = {}
        self.outbox_msgs = 0
        return box

    def next_reqid(self) -> int:
        """A request id unique on this node (extensions such as keyscan draw from it too)."""
        self._next_id += 1
        return self._next_id

    def _deadline(self) -> int:
        return self.now + self.cfg.timeout_ms

    # --- coordinator: reads ----------------------------------------------------------

    def get(self, key: bytes, cb: Callback, r: int | None = None) -> None:
        """Quorum read of `key`; `cb((err, merged object or None))` after R answers."""
        p = self.partition(key)
        route = self.route(p)
        targets = route.targets
        r = r or self.cfg.r
        if not route.local:
            self._forward(targets, ("fg", 0, key, r), cb)
            return
        self.stats.gets += 1
        if len(targets) < r:
            self.stats.noquorum += 1
            self.done.append((cb, (noquorum("read", len(targets), r, self.cfg.n), None)))
            return
        clock, enc = self.local.get(p, key)
        op = GetOp(len(targets), r, key, p, cb,
                   (enc, clock) if enc is not None and clock is not None else None, targets)
        op.add(self.name, enc)
        if route.others:
            self._next_id += 1
            op.reqid = self._next_id
            op.deadline = self.now + self.cfg.timeout_ms
            self.pending[op.reqid] = op
            for node, owner in route.others:
                self.send(node, ("g", op.reqid, key, p, owner))
        self._get_progress(op)

    def _get_progress(self, op: GetOp) -> None:
        core = op
        if not core.replied:
            if core.enough():
                core.replied = True
                merged, _ = core.merged(op.local)
                self.done.append((op.cb, (None, merged)))
            elif core.impossible():
                core.replied = True
                self.stats.noquorum += 1
                err = noquorum("read", len(core.answers), core.r, self.cfg.n)
                self.done.append((op.cb, (err, None)))
        if core.complete():
            self.pending.pop(op.reqid, None)
            self._read_repair(op)

    def _read_repair(self, op: GetOp) -> None:
        core = op
        if len(core.answers) < 2 or core.unanimous():
            return
        merged, menc = core.merged(op.local)
        if menc is None:
            return
        owners = dict(op.targets or ())
        dead = objmod.dead_since(merged, self.now) is not None  # type: ignore[arg-type]
        for node in core.stale(menc):
            if dead and core.answers.get(node) is None:
                # Nothing is as good as a dead object for readers, and sending one to a
                # replica that has none could revive a reaped key's old clock.
                continue
            self.stats.read_repairs += 1
            owner = owners.get(node, node)
            if node == self.name:
                self._replica_put(op.key, menc, op.p)
            else:
                self.send(node, ("rp", op.key, menc, op.p, owner))

    # --- coordinator: writes ---------------------------------------------------------

    def put(
        self,
        key: bytes,
        ctx: VV | None,
        data: bytes | None,
        expire_at: int,
        cb: Callback,
        w: int | None = None,
    ) -> None:
        """Quorum write of a new version of `key`.

        `ctx` is the causal context the write supersedes; None means this node's own
        current context (plain SET/DEL). `data` None writes a tombstone.
        """
        p = self.partition(key)
        route = self.route(p)
        w = w or self.cfg.w
        if not self._may_coordinate_write(route, w, cb,
                                          ("fp", 0, key, ctx, data, expire_at, w)):
            return
        local, lenc = self.local.get(p, key)
        ts = self._timestamp(local)
        actor = self._write_actor(local)
        if ctx:
            ctx = _known_part(ctx, local)
        if ctx is None:
            new = dvv.overwrite(local, actor, (ts, expire_at, data))
        else:
            new = dvv.update(dvv.new_with_context(ctx, (ts, expire_at, data)), local, actor)
            new = self._bound(new)
        self._replicate(key, p, route, w, cb, new, lenc)

    def _write_actor(self, local: Clock | None) -> bytes:
        """The actor that stamps this node's write of a key.

        Our identity plus a suffix drawn when the key has no entry of ours: a key that
        was deleted and reaped, then written again, starts a new life whose dots can
        never repeat the old life's (which a client may still hold in a context).
        """
        me = self.actor
        if local is not None:
            for actor, _, _ in local[0]:
                if actor.startswith(me):
                    return actor
        return me + self.rng.getrandbits(32).to_bytes(4, "big")

    def _may_coordinate_write(self, route: Route, w: int, cb: Callback, forward: tuple) -> bool:
        """True if this node coordinates the write; otherwise it was forwarded to a
        replica, or answered NOQUORUM because too few replicas are up."""
        if not route.local:
            self._forward(route.targets, forward, cb)
            return False
        self.stats.puts += 1
        if len(route.targets) < w:
            self.stats.noquorum += 1
            err = noquorum("write", len(route.targets), w, self.cfg.n)
            self.done.append((cb, (err, None)))
            return False
        return True

    def _timestamp(self, local: Clock | None) -> int:
        """A fresh HLC timestamp, later than every version of the key we hold."""
        ts = self.hlc.now(self.now)
        if local is not None:
            newest = objmod.max_ts(local)
            if newest >= ts:
                ts = newest + 1
                self.hlc.observe(ts)
        return ts

    def _replicate(self, key: bytes, p: int, route: Route, w: int, cb: Callback,
                   new: Clock, base: bytes | None) -> None:
        """Store the coordinator's new version and send it to the other replicas.

        `base` is what the coordinator held (and built `new` on, so `new` covers it): a
        replica holding exactly that takes `new` without decoding and merging."""
        enc = objmod.encode(new)
        self.local.put(p, key, enc)
        op = PutOp(len(route.targets), w, cb, new)
        op.ack(self.name)
        if route.others:
            self._next_id += 1
            op.reqid = self._next_id
            op.deadline = self.now + self.cfg.timeout_ms
            self.pending[op.reqid] = op
            ident = objmod.identity(base) if base is not None else None
            for node, owner in route.others:
                self.send(node, ("p", op.reqid, key, enc, owner, p, ident))
        self._put_progress(op)

    def incr(self, key: bytes, delta: int, cb: Callback, w: int | None = None) -> None:
        """Add `delta` to the counter at `key` (INCR family), replicated like a write.

        The coordinator grows its own entry from its own latest state, so concurrent
        increments through other nodes are never overwritten, only joined. Refused with
        NOT_AN_INTEGER (the value is not an integer) or OVERFLOW (out of 64 bits).
        """
        p = self.partition(key)
        route = self.route(p)
        w = w or self.cfg.w
        if not self._may_coordinate_write(route, w, cb, ("fi", 0, key, delta, w)):
            return
        local, lenc = self.local.get(p, key)
        now = self.now
        state = objmod.counter_state(local, now)
        expire = 0
        if state is None:
            current = objmod.read_value(local, now)
            if current is None:
                state = counter.start(0, 0)
            else:
                base = counter.parse_integer(current[2])  # type: ignore[arg-type]
                if base is None:
                    self.done.append((cb, (NOT_AN_INTEGER, None)))
                    return
                state = counter.start(base, current[0])
                expire = current[1]
        else:
            w_sib = objmod.winner(local)  # type: ignore[arg-type]
            expire = w_sib[0][1] if w_sib else 0
        total = counter.value(state) + delta
        if not counter.INT64_MIN <= total <= counter.INT64_MAX:
            self.done.append((cb, (OVERFLOW, None)))
            return
        actor = self._write_actor(local)
        data = counter.incremented(state, actor, delta)
        new = dvv.overwrite(local, actor, (self._timestamp(local), expire, data))
        self._replicate(key, p, route, w, cb, new, lenc)

    def _put_progress(self, op: PutOp) -> None:
        # A write has nothing left to do once answered: later acks find no op.
        if op.enough():
            op.replied = True
            self.pending.pop(op.reqid, None)
            self.done.append((op.cb, (None, op.obj)))
        elif op.impossible():
            op.replied = True
            self.pending.pop(op.reqid, None)
            self.stats.noquorum += 1
            err = noquorum("write", len(op.acked), op.w, self.cfg.n)
            self.done.append((op.cb, (err, None)))

    def _bound(self, clock: Clock) -> Clock:
        entries = clock[0]
        if len(entries) < 2 and not clock[1] and (not entries or len(entries[0][2]) < 2):
            return clock
        size = dvv.size(clock)
        if size > objmod.SIBLING_WARN:
            self.stats.sibling_warnings += 1
            if size > objmod.SIBLING_MAX:
                self.stats.sibling_collapses += 1
                return objmod.bound_siblings(clock)
        return clock

    # --- forwarding ------------------------------------------------------------------

    def _forward(self, targets: list[tuple[str, str]], msg: tuple, cb: Callback) -> None:
        if not targets:
            self.stats.noquorum += 1
            self.done.append((cb, (noquorum("any", 0, 1, self.cfg.n), None)))
            return
        self.stats.forwarded += 1
        target = targets[0][0]
        op = FwdOp(self.next_reqid(), cb, self._deadline(), target)
        self.pending[op.reqid] = op
        self.send(target, (msg[0], op.reqid, *msg[2:]))

    def _forwarded(self, src: str, msg: tuple) -> None:
        reqid = msg[1]
        # A duplicated forward must not run twice (an increment would count twice).
        seen = self._seen_forwards
        if (src, reqid) in seen:
            return
        seen.set((src, reqid), True)

        def answer(result: Result) -> None:
            err, clock = result
            self.send(src, ("fa", reqid, err, objmod.encode(clock) if clock is not None else None))

        if msg[0] == "fg":
            _, _, key, r = msg
            self.get(key, answer, r)
        elif msg[0] == "fi":
            _, _, key, delta, w = msg
            self.incr(key, delta, answer, w)
        else:
            _, _, key, ctx, data, exp, w = msg
            self.put(key, tuple(tuple(x) for x in ctx) if ctx is not None else None,
                     data, exp, answer, w)

    # --- replica side ----------------------------------------------------------------

    def _replica_put(self, key: bytes, enc: bytes, p: int, base: bytes | None = None) -> None:
        """Merge an incoming version into this replica (sync keeps whatever is concurrent).

        `p` comes with the message: a key's partition depends only on the ring size,
        which is fixed for a cluster's life, so the sender's answer is ours too.
        `base`: the identity (obj.identity) of the version the coordinator built this one
        on. If we hold exactly that, the incoming version covers ours and replaces it
        (the common case of replicas in step, and no decoding: decoding and comparing
        both versions was two thirds of a replica's work).
        """
        lenc = self.local.get_enc(p, key)
        if lenc is None:
            self.local.put(p, key, enc)
            return
        if lenc == enc:
            return
        if base is not None and objmod.is_identity(lenc, base):
            self.local.put(p, key, enc)
            return
        local = objmod.decode(lenc)
        incoming = objmod.decode(enc)
        if dvv.less(local, incoming):
            # The common case: the coordinator's write covers everything we hold.
            self.local.put(p, key, enc)
            return
        merged = self._bound(dvv.sync(local, incoming))
        menc = objmod.encode(merged)
        if menc != lenc:
            self.local.put(p, key, menc)

    # --- hinted handoff --------------------------------------------------------------

    def _store_hint(self, owner: str, p: int, key: bytes, enc: bytes) -> None:
        """Keep a write meant for a down primary until it can be handed off."""
        hk = hint_key(owner, p, key)
        old = self.engine.get(HINT_PARTITION, hk)
        if old is None:
            self.engine.put(HINT_PARTITION, hk, enc)
            self.hints += 1
            self.stats.hints_created += 1
            return
        if old == enc:
            return
        merged = objmod.encode(self._bound(dvv.sync(objmod.decode(old), objmod.decode(enc))))
        if merged != old:
            self.engine.put(HINT_PARTITION, hk, merged)

    def _handoff(self) -> None:
        """Send hints whose owner is up again; each is dropped once the owner acks it."""
        if not self.hints:
            return
        budget = self.cfg.handoff_batch
        now = self.now
        for hk, enc in self.engine.scan(HINT_PARTITION):
            owner, p, key = parse_hint_key(hk)
            if owner in self.down or owner not in self.members:
                continue
            if self._handoff_inflight.get(hk, 0) > now:
                continue
            self._handoff_inflight[hk] = now + self.cfg.timeout_ms
            self.send(owner, ("hp", hk, key, enc, p))
            self.stats.handoffs_sent += 1
            budget -= 1
            if budget == 0:
                break

    def _handed_off(self, hk: bytes, digest: bytes) -> None:
        self._handoff_inflight.pop(hk, None)
        current = self.engine.get(HINT_PARTITION, hk)
        # Drop the hint only if it is what the owner now holds (not changed since).
        if current is not None and objmod.digest(current) == digest:
            self.engine.delete(HINT_PARTITION, hk)
            self.hints -= 1
            self.stats.hints_delivered += 1

    # --- anti-entropy ------------------------------------------------------------------

    def _start_exchange(self) -> None:
        """Compare one partition's hash tree with another replica's (round robin over the
        partitions this node is a primary for); only differing keys cross the wire."""
        q = self.ring.q
        n = self.cfg.n
        for _ in range(q):
            p = self._ae_cursor
            self._ae_cursor = (p + 1) % q
            primaries = self.ring.preference_list(p, n)
            if self.name not in primaries:
                continue
            peers = [x for x in primaries if x != self.name and x not in self.down]
            if not peers:
                return
            peer = self.rng.choice(peers)
            op = AeOp(self.next_reqid(), p, peer, DiffWalk(self.local.tree(p)), self._deadline())
            self.pending[op.reqid] = op
            self.stats.ae_exchanges += 1
            depth, indices = op.walk.request()  # type: ignore[misc]
            self.send(peer, ("ael", op.reqid, p, depth, indices))
            return

    def _ae_level(self, reqid: int, depth: int, hashes: Any) -> None:
        op = self.pending.get(reqid)
        if not isinstance(op, AeOp) or op.walk.done or depth != op.walk.depth:
            return  # a duplicated or late answer to an earlier step
        self.local.tree(op.p)  # fold in writes that landed since the last step
        try:
            op.walk.feed(list(hashes))
        except ValueError:
            del self.pending[reqid]  # trees of different shapes: nothing to compare
            return
        req = op.walk.request()
        if req is not None:
            self.send(op.peer, ("ael", reqid, op.p, req[0], req[1]))
        elif op.walk.buckets:
            self.send(op.peer, ("aeb", reqid, op.p, op.walk.buckets))
        else:
            del self.pending[reqid]

    def _ae_buckets(self, reqid: int, remote: Any) -> None:
        op = self.pending.pop(reqid, None)
        if not isinstance(op, AeOp):
            return
        tree = self.local.tree(op.p)
        keys: list[bytes] = []
        for index, theirs in zip(op.walk.buckets, remote, strict=False):
            mine = tree.bucket(index)
            self.stats.ae_keys_compared += len(mine) + len(theirs)
            keys.extend(compare_buckets(mine, theirs))
        if not keys:
            return
        self.stats.ae_keys_repaired += len(keys)
        theirs_keys = {item[0] for items in remote for item in items}
        # Both directions: send what we hold, ask for what they hold; each side merges.
        wanted = [(key, self._repair(op.peer, op.p, key, key in theirs_keys)) for key in keys]
        self.send(op.peer, ("aew", op.p, wanted))

    def _repair(self, peer: str, p: int, key: bytes, they_have: bool) -> bool:
        """Send `peer` our copy of `key` to merge; True if we hold one.

        A dead object (deleted or expired) never goes to a replica that has nothing:
        nothing reads the same, and it could revive a reaped key's old clock there."""
        enc = self.local.get_enc(p, key)
        if enc is None:
            return False
        if they_have or objmod.dead_since(objmod.decode(enc), self.now) is None:
            self.send(peer, ("rp", key, enc, p, peer))
        return True

    # --- reaping tombstones and expired objects -----------------------------------------

    def _owned_keys(self) -> Any:
        for p in self.owned_partitions():
            for key, enc in self.local.scan(p):
                yield p, key, enc

    def _sweep_step(self) -> None:
        """Walk this node's owned partitions a batch at a time, looking for objects
        dead (deleted or expired) for longer than the grace period."""
        if self._sweep is None:
            self._sweep = self._owned_keys()
        grace = self.cfg.tombstone_grace_ms
        for _ in range(self.cfg.sweep_batch):
            item = next(self._sweep, None)
            if item is None:
                self._sweep = None
                return
            p, key, enc = item
            since = objmod.dead_since(objmod.decode(enc), self.now)
            if since is not None and self.now - since >= grace:
                self._propose_reap(p, key, enc)

    def _propose_reap(self, p: int, key: bytes, enc: bytes) -> None:
        # Every member must be up and agree: each primary holds exactly this object
        # and nobody keeps a hint for the key, or the old value could come back.
        others = self.members - {self.name}
        if others & self.down or self.engine.staged(p, key):
            return
        digest = objmod.digest(enc)
        if not others:
            self._reap_local(key, p, digest)
            return
        op = ReapOp(self.next_reqid(), key, p, digest, self._deadline(), set(others))
        self.pending[op.reqid] = op
        for peer in others:
            self.send(peer, ("rq", op.reqid, key, p, digest))

    def _may_reap(self, key: bytes, p: int, digest: bytes) -> bool:
        primaries = self.ring.preference_list(p, self.cfg.n)
        if self.name in primaries:
            enc = self.local.get_enc(p, key)
            # Only a committed copy counts: a crash must not be able to take it back.
            # No copy at all is as good (nothing to revive).
            if enc is not None and (objmod.digest(enc) != digest or self.engine.staged(p, key)):
                return False
        for owner in primaries:
            if self.engine.get(HINT_PARTITION, hint_key(owner, p, key)) is not None:
                return False
        return True

    def _reap_answer(self, src: str, reqid: int, ok: bool) -> None:
        op = self.pending.get(reqid)
        if not isinstance(op, ReapOp):
            return
        if not ok:
            del self.pending[reqid]
            return
        op.waiting.discard(src)
        if op.waiting:
            return
        del self.pending[reqid]
        for peer in self.ring.preference_list(op.p, self.cfg.n):
            if peer != self.name:
                self.send(peer, ("reap", op.key, op.p, op.digest))
        self._reap_local(op.key, op.p, op.digest)

    def _reap_local(self, key: bytes, p: int, digest: bytes) -> None:
        enc = self.local.get_enc(p, key)
        if enc is not None and objmod.digest(enc) == digest:
            self.local.delete(p, key)
            self.stats.reaped += 1

    # --- messages --------------------------------------------------------------------

    def on_message(self, src: str, msg: tuple) -> None:
        kind = msg[0]
        if kind == "p":
            self.stats.replica_puts += 1
            if msg[4] == self.name:
                self._replica_put(msg[2], msg[3], msg[5], msg[6])
            else:
                self._store_hint(msg[4], msg[5], msg[2], msg[3])
            self._batch_for(src, "pas").append(msg[1])
        elif kind == "pas":
            pending = self.pending
            for reqid in msg[1]:
                op = pending.get(reqid)
                if op is not None:
                    op.ack(src)
                    self._put_progress(op)
        elif kind == "g":
            self.stats.replica_gets += 1
            answers = self._batch_for(src, "gas")
            answers.append(msg[1])
            answers.append(self._replica_enc(msg[2], msg[3], msg[4]))
        elif kind == "gas":
            items = msg[1]
            pending = self.pending
            for i in range(0, len(items) - 1, 2):
                op = pending.get(items[i])
                if op is not None:
                    op.add(src, items[i + 1])
                    self._get_progress(op)
        elif kind == "rp":
            if msg[4] == self.name:
                self._replica_put(msg[1], msg[2], msg[3])
            else:
                self._store_hint(msg[4], msg[3], msg[1], msg[2])
        elif kind == "hb":
            self.fd.heartbeat(src, self.now)
            if src in self.down and src not in self.link_down:
                self._refresh_down()
        elif kind == "hp":
            _, hk, key, enc, p = msg
            self._replica_put(key, enc, p)
            self.send(src, ("hpa", hk, objmod.digest(enc)))
        elif kind == "hpa":
            self._handed_off(msg[1], msg[2])
        elif kind == "ael":
            _, reqid, p, depth, indices = msg
            hashes = self.local.tree(p).level(depth, list(indices))
            self.send(src, ("aelr", reqid, depth, hashes))
        elif kind == "aelr":
            self._ae_level(msg[1], msg[2], msg[3])
        elif kind == "aeb":
            _, reqid, p, buckets = msg
            self.send(src, ("aebr", reqid, self.local.tree(p).buckets(list(buckets))))
        elif kind == "aebr":
            self._ae_buckets(msg[1], msg[2])
        elif kind == "aew":
            _, p, wanted = msg
            for key, they_have in wanted:
                self._repair(src, p, key, they_have)
        elif kind == "rq":
            self.send(src, ("ra", msg[1], self._may_reap(msg[2], msg[3], msg[4])))
        elif kind == "ra":
            self._reap_answer(src, msg[1], msg[2])
        elif kind == "reap":
            self._reap_local(msg[1], msg[2], msg[3])
        elif kind in ("fg", "fp", "fi"):
            self._forwarded(src, msg)
        elif kind == "fa":
            op = self.pending.pop(msg[1], None)
            if op is not None:
                err, enc = msg[2], msg[3]
                self.done.append((op.cb, (err, objmod.decode(enc) if enc is not None else None)))
        elif kind == "fl":
            self.local.wipe()
            self.send(src, ("fla", msg[1]))
        elif kind == "fla":
            op = self.pending.get(msg[1])
            if op is not None:
                op.waiting.discard(src)
                if not op.waiting:
                    del self.pending[op.reqid]
                    self.done.append((op.cb, (None, None)))
        elif kind == "gs":
            self._on_gossip(msg[1], msg[2])
        elif kind == "wq":
            self.send(src, ("wa", msg[1], self._replica_enc(msg[2], msg[3], msg[4])))
        elif kind == "wa":
            op = self.pending.get(msg[1])
            if isinstance(op, HeldOp) and op.answer(src, msg[2]):
                del self.pending[op.reqid]
                self.done.append((op.cb, op.held))
        else:
            handler = self.handlers.get(kind)
            if handler is not None:
                handler(src, msg)

    def _replica_enc(self, key: bytes, p: int, owner: str) -> bytes | None:
        """What this node holds of `key` as a replica: its own copy, or the hint it
        keeps for `owner`."""
        if owner == self.name:
            return self.local.get_enc(p, key)
        return self.engine.get(HINT_PARTITION, hint_key(owner, p, key))

    def held_by(self, key: bytes, written: Clock, cb: Callable[[int], None],
                enough: int | None = None) -> HeldOp:
        """WAIT: `cb(count)` of the key's current preference list (fallbacks standing in
        for down primaries included) that hold `written` or a later version of it, once
        `enough` of them do or all have answered. Replicas that do not answer within the
        request timeout count as not holding it. The returned op's `held` is the count
        so far (for a caller whose own deadline comes first)."""
        p = self.partition(key)
        targets = self.route(p).targets
        op = HeldOp(self.next_reqid(), cb, self._deadline(), dvv.join(written),
                    {node for node, _ in targets}, enough or len(targets))
        finished = not targets
        for node, owner in targets:
            if node == self.name:
                finished = op.answer(node, self._replica_enc(key, p, owner)) or finished
            else:
                self.send(node, ("wq", op.reqid, key, p, owner))
        if finished:
            self.done.append((cb, op.held))
        else:
            self.pending[op.reqid] = op
        return op

    # --- cluster-wide operations -----------------------------------------------------

    def flush_all(self, cb: Callback) -> None:
        """Wipe every member's data; answers after every up member confirmed."""
        self.local.wipe()
        peers = (self.members - self.down) - {self.name}
        if not peers:
            self.done.append((cb, (None, None)))
            return
        op = FlushOp(self.next_reqid(), cb, self._deadline(), set(peers))
        self.pending[op.reqid] = op
        for peer in peers:
            self.send(peer, ("fl", op.reqid))

    # --- membership ------------------------------------------------------------------

    def gossip_message(self) -> tuple:
        return ("gs", tuple(sorted(self.members)), self.ring.to_wire())

    def _on_gossip(self, members: Any, ring_wire: Any) -> None:
        incoming = {m.decode() if isinstance(m, bytes) else m for m in members}
        if not incoming <= self.members:
            self.members |= incoming
            self.ring_changed = True
            self._apl_cache.clear()
        ring = Ring.from_wire(ring_wire)
        if ring.version > self.ring.version and ring.q == self.ring.q:
            self.ring = ring
            self.members |= set(ring.owners)
            self.ring_changed = True
            self._apl_cache.clear()
        self._maybe_claim()

    def _maybe_claim(self) -> None:
        """The claimant (lowest member name) proposes a ring covering every member."""
        if set(self.ring.members) == self.members or min(self.members) != self.name:
            return
        previous = self.ring if len(self.ring.members) > 1 else None
        ring = new_ring(self.members, self.cfg.q, previous, claimant=self.name)
        self.ring = Ring(ring.q, ring.owners, self.ring.epoch + 1, self.name)
        self.ring_changed = True
        self._apl_cache.clear()
        msg = self.gossip_message()
        for peer in self.members - {self.name}:
            self.send(peer, msg)

    # --- time ------------------------------------------------------------------------

    def tick(self) -> None:
        """Expire timed-out requests and gossip when due (driver sets `now` first)."""
        now = self.now
        expired = []
        for reqid, op in self.pending.items():
            if op.deadline > now:
                break
            expired.append(reqid)
        for reqid in expired:
            self._timeout(self.pending.pop(reqid))
        if self._born is None:
            self._born = now
        if now >= self._next_hb:
            self._next_hb = now + self.cfg.heartbeat_interval_ms
            for peer in self.members:
                if peer != self.name:
                    self.send(peer, ("hb",))
        self._refresh_down()
        if now >= self._next_gossip:
            self._next_gossip = now + self.cfg.gossip_interval_ms
            peers = sorted((self.members | set(self.seeds)) - {self.name})
            if peers:
                self.send(self.rng.choice(peers), self.gossip_message())
        if now >= self._next_handoff:
            self._next_handoff = now + self.cfg.handoff_interval_ms
            self._handoff()
        if now >= self._next_sweep:
            self._next_sweep = now + self.cfg.sweep_interval_ms
            self._sweep_step()
        if now >= self._next_ae:
            self._next_ae = now + self.cfg.ae_interval_ms
            self._start_exchange()

    def _timeout(self, op: Any) -> None:
        self.stats.timeouts += 1
        if isinstance(op, GetOp):
            if not op.replied:
                op.replied = True
                self.stats.noquorum += 1
                err = noquorum("read", len(op.answers), op.r, self.cfg.n) + " before timeout"
                self.done.append((op.cb, (err, None)))
            # No read repair from a timed-out read: its answers are a timeout old and
            # could carry a version reaped since (anti-entropy repairs instead).
        elif isinstance(op, PutOp):
            if not op.replied:
                op.replied = True
                self.stats.noquorum += 1
                err = noquorum("write", len(op.acked), op.w, self.cfg.n) + " before timeout"
                self.done.append((op.cb, (err, None)))
        elif isinstance(op, FwdOp):
            self.done.append((op.cb, (f"TIMEOUT forwarded request to {op.target}", None)))
        elif isinstance(op, (ReapOp, AeOp)):
            return
        elif isinstance(op, HeldOp):
            self.done.append((op.cb, op.held))
        elif isinstance(op, FlushOp):
            self.done.append((op.cb, ("TIMEOUT flush not confirmed by "
                                      + ",".join(sorted(op.waiting)), None)))
