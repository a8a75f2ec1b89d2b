"""The node: Dynamo's mechanisms composed into one state machine; events in, effects out.

Nothing here does I/O, awaits, or reads a clock. A driver (server/app.py, or the
simulator in tests/sim/) starts a node as `driver.boot` says, sets `now` before each
event, hands it requests (`get`, `put`, `incr`, `held_by`, `flush_all`), peer messages
(`on_message`), link changes (`peer_up`, `peer_down`) and ticks (`tick`), and ends each
event as `driver.py` says: finished operations' callbacks run (`done`: a list of
(callback, result), where a result is (error or None, object or None)), changed
membership is saved, then the `outbox` ({peer: [message, ...]}) is sent. Storage is
reached only through the injected engine (engine.py); when staged writes become durable
is the driver's decision.

One mechanism per module; `Node` holds what they share (identity, settings, the local
store, the clock, the outbox) and routes each peer message to its handler by kind:

  membership.py   members, ring and who is up: gossip, ring claim, failure detection
  reads.py        coordinated reads: quorum get and read repair
  writes.py       coordinated writes: put and increment
  forward.py      requests for keys this node is no replica of
  quorum.py       every quorum decision of a read or a write
  replica.py      the replica side: store versions, answer gets
  handoff.py      hinted handoff
  antientropy.py  hash-tree exchanges between replicas (merkle.py)
  reaper.py       removing objects dead for longer than the grace period
  probes.py       WAIT's "who holds this write?" and FLUSHALL
  changes.py      membership changes: staged, planned, committed by the claimant
  transfers.py    ownership transfers: partitions streamed to their new replicas
  collcoord.py    commands on hashes, sets, sorted sets and lists (sync, evaluate,
                  replicate; collstore.py, collview.py and records.py hold their data)
  watches.py      key-change notifications to the nodes where clients wait on a key
  blocking.py     the clients blocked on keys (BLPOP ...): queues, attempts, deadlines

Peer messages (the table is messages.KINDS; this copy is checked against it by a test):

  kind   fields                                answer  handled by
  ps     puts                                  pas     replica
  pas    reqids                                -       writes
  g      reqid key p owner have                gas     replica
  gas    answers                               -       reads
  nak    reqid                                 -       node
  rp     key enc p owner                       -       replica
  fg     reqid key r                           fa      forward
  fp     reqid key ctx data expire_at w        fa      forward
  fi     reqid key delta w                     fa      forward
  fa     reqid err enc                         -       forward
  hp     hint key enc p                        hpa     handoff
  hpa    hint digest                           -       handoff
  ael    reqid p depth indices                 aelr    antientropy
  aelr   reqid depth hashes                    -       antientropy
  aeb    reqid p buckets                       aebr    antientropy
  aebr   reqid items                           -       antientropy
  aew    p wanted                              rp      antientropy
  rq     reqid key p digest                    ra      reaper
  ra     reqid ok                              -       reaper
  reap   key p digest                          -       reaper
  hb     -                                     -       membership
  gs     members ring zones                    -       membership
  adm    reqid op args                         ada     changes
  ada    reqid err lines                       -       changes
  xd     transfers                             -       changes
  xb     reqid p items                         xba     transfers
  xba    reqid                                 -       transfers
  wq     reqid key p owner                     wa      probes
  wa     reqid enc                             -       probes
  fl     reqid                                 fla     probes
  fla    reqid                                 -       probes
  cs     reqid p key owner applied have        csa     collections
  csa    reqid records full applied parts      -       collections
  csp    reqid records                         -       collections
  cw     reqid p key owner events deltas part  cwa     collections
  cwa    reqid part                            -       collections
  cwr    p key owner records events            -       collections
  cf     reqid key payload                     cfa     collections
  cfa    reqid err reply                       -       collections
  bw     keys ttl                              -       watches
  bc     keys                                  -       watches
  kq     reqid what partitions args            kqr     cluster.keyscan
  kqr    reqid result                          -       cluster.keyscan
  cport  port                                  -       cluster.ports
  rgp    reqid entries                         rga     cluster.registry
  rga    reqid                                 -       cluster.registry
  rgd    digest                                rgt     cluster.registry
  rgt    entries reply                         rgt     cluster.registry
  af     reqid args user proto r w db          afa     cluster.affinity
  afa    reqid reply                           -       cluster.affinity
  afp    reqid                                 -       cluster.affinity
  pp     reqid channel message shard           ppa     cluster.pubsub
  ppa    reqid count                           -       cluster.pubsub
  pq     reqid what args                       pqa     cluster.pubsub
  pqa    reqid result                          -       cluster.pubsub
  pne    flags ms                              -       cluster.pubsub
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from . import messages as m
from .antientropy import AntiEntropy
from .blocking import Blocking
from .changes import AdminCallback, Changes
from .clock import VV, Clock
from .collcoord import CollCoordinator
from .collstore import CollectionStore
from .config import Config, Stats
from .engine import Engine, Pinned
from .forward import Forwarder
from .graveyard import Graveyard
from .handoff import Handoff
from .hlc import HLC
from .inflight import postpone
from .localstore import LocalStore
from .membership import Membership, Route
from .probes import HeldOp, Probes
from .quorum import Result
from .reads import Reads
from .reaper import Reaper
from .replica import Replica
from .ring import Ring
from .shape import Unread
from .transfers import Transfers
from .watches import Watches
from .writes import Writes

__all__ = ["Callback", "Config", "Handler", "Node", "Result", "Stats"]

Callback = Callable[[Result], Any]
Handler = Callable[[str, tuple], None]

# Dirty keys hashed into the anti-entropy trees per tick (the server ticks every 50 ms):
# writes are folded in as they come, never a whole partition's worth at once; and in
# slices of FOLD_SLICE (Node.fold_step, about 0.15 ms), each in a loop turn of its own.
# Folded within the tick, 2000 keys held the loop 1-3 ms every 50 ms on every node
# taking writes: with a replica down the coordinator waits for the one live replica
# every time, and each such stall of it showed in the failure rows' p99.9. (A tick's
# share of 8192, to keep up with 90,000 SETs a second, cost the SETs the CPU the GETs
# after them save: -P 16 SET p99.9 worse, GET better.)
FOLD_PER_TICK = 2000
FOLD_SLICE = 256
# Past FOLD_BACKLOG_FREE unfolded writes a tick's share grows by a FOLD_CATCHUP-th of
# the excess: writes arriving faster than 2,000 a tick (a client's HSETs of a thousand
# fields, a walk stripping a deleted collection's records) left more each tick than it
# folded, and the backlog (a key and its fingerprint each, ~250 bytes) grew for as
# long as they came: HSET of 100,000 fields then DEL, five times in a row, left 860,000
# writes unfolded and +150 MB on a 1-node cluster. Now it stays near FOLD_CATCHUP ticks'
# worth of writes past the free share, folded a slice a loop turn as before.
FOLD_BACKLOG_FREE = 65_536
FOLD_CATCHUP = 16
# A share past FOLD_PER_TICK is folded in slices of FOLD_SLICE_MAX (~2 ms): while clients
# pipeline big writes a tick sees few loop turns, and slices of FOLD_SLICE left most of
# the share unfolded when the next tick came.
FOLD_SLICE_MAX = 4096


def fold_share(unfolded: int) -> int:
    """The writes a tick leaves to fold_step when `unfolded` are waiting."""
    if unfolded <= FOLD_BACKLOG_FREE:
        return FOLD_PER_TICK
    return FOLD_PER_TICK + (unfolded - FOLD_BACKLOG_FREE) // FOLD_CATCHUP
# Expiry moments the key counts take out per tick at most (keycounts.py): a million
# keys expiring together are out of them in some sixty ticks (a few ms each), not in one ask.
EXPIRE_PER_TICK = 16_384


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
        self.local = LocalStore(engine, self.cfg.cache_size, self.cfg.cache_max_memory)
        # What a wipe or a delete lets go of, freed a slice per loop turn.
        self.graveyard = Graveyard()
        self.rng = rng or random.Random(0)
        self.hlc = HLC()
        self.now = 0
        self.stats = Stats()
        self.outbox: dict[str, list[tuple]] = {}
        self.outbox_msgs = 0  # items in outbox (a batch counts each); take_outbox empties both
        # (callback, argument): a Result, or a replica count for WAIT's held_by.
        self.done: list[tuple[Callable[[Any], Any], Any]] = []
        # Dirty keys the last tick leaves to fold_step (fold_share of the backlog).
        self.fold_owed = 0
        # Request ids start at a random point per incarnation, so a restarted peer's
        # ids never collide with ones seen from its previous life.
        self._next_id = self.rng.getrandbits(40)
        self.changes = Changes(self)
        self.membership = Membership(self, ring, members, seeds)
        self.transfers = Transfers(self)
        self.replica = Replica(self)
        self.handoff = Handoff(self)
        self.reads = Reads(self)
        self.writes = Writes(self)
        self.forwarder = Forwarder(self)
        self.anti_entropy = AntiEntropy(self)
        self.reaper = Reaper(self)
        self.probes = Probes(self)
        self.coll = CollCoordinator(self, CollectionStore(engine, self.local,
                                                          graveyard=self.graveyard))
        self.watches = Watches(self)
        self.blocking = Blocking(self)
        self.handlers: dict[str, Handler] = {m.REFUSED: self.on_refused}
        for table in (self.membership.handlers(), self.replica.handlers(),
                      self.handoff.handlers(), self.reads.handlers(), self.writes.handlers(),
                      self.forwarder.handlers(), self.anti_entropy.handlers(),
                      self.reaper.handlers(), self.probes.handlers(), self.coll.handlers(),
                      self.watches.handlers(), self.changes.handlers(),
                      self.transfers.handlers()):
            self.handlers.update(table)
        core_kinds = set(m.KINDS) - m.FACE_KINDS
        if set(self.handlers) != core_kinds:
            raise AssertionError("handlers out of step with messages.KINDS: "
                                 f"{sorted(set(self.handlers) ^ core_kinds)}")
        self.membership.maybe_claim()

    # --- requests (the Redis face's entry points) ------------------------------------

    def get(self, key: bytes, cb: Callback, r: int | None = None, whole: bool = True) -> None:
        """Quorum read of `key`; `cb((err, merged object or None))` after R answers
        (`whole` False: its large values may be left unread, reads.Reads.get)."""
        self.reads.get(key, cb, r, whole)

    def get_value(self, key: bytes, cb: Callable[[tuple[str | None, Any]], Any],
                  r: int | None = None,
                  whole: bool = True) -> None:
        """`get` for a plain GET: `cb((err, the sibling it sees or None))`, the merged
        object's obj.read_value (reads.Reads.get_value: read from the bytes, undecoded,
        when the replicas agree)."""
        self.reads.get_value(key, cb, r, whole)

    def stored_range(self, key: bytes, value: Unread, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of a large value a read left unread (shape.py), read in
        place; None if the key holds another object now (read it whole)."""
        return self.local.read_range(self.ring.partition_of(key), key, value, start, end)

    def pin_value(self, key: bytes, value: Unread) -> tuple[Any, Pinned] | None:
        """A large value a read left unread, viewed in place while the Pinned given
        with it is alive (LocalStore.pin); None if that cannot be (read it whole)."""
        return self.local.pin(self.ring.partition_of(key), key, value)

    def put(self, key: bytes, ctx: VV | None, data: Any, expire_at: int,
            cb: Callback, w: int | None = None) -> None:
        """Quorum write (writes.Writes.put): `ctx` None writes with this node's own
        context, `data` None a tombstone (a collection's marker: EXPIRE of it)."""
        self.writes.put(key, ctx, data, expire_at, cb, w)

    def incr(self, key: bytes, delta: int, cb: Callback, w: int | None = None) -> None:
        """Add `delta` to the counter at `key` (writes.Writes.incr)."""
        self.writes.incr(key, delta, cb, w)

    def held_by(self, key: bytes, written: Clock, cb: Callable[[int], None],
                enough: int | None = None) -> HeldOp:
        """WAIT: how many of the key's replicas hold `written` (probes.Probes.held_by)."""
        return self.probes.held_by(key, written, cb, enough)

    def flush_all(self, cb: Callback) -> None:
        """Wipe every member's data (probes.Probes.flush_all)."""
        self.probes.flush_all(cb)

    def admin(self, op: str, args: list[str], cb: AdminCallback) -> None:
        """A membership change request (changes.Changes.admin): join, leave, replace,
        remove, plan, commit, clear, show; run at the claimant."""
        self.changes.admin(op, args, cb)

    # --- membership and placement, as the face sees them -----------------------------

    @property
    def ring(self) -> Ring:
        return self.membership.ring

    @ring.setter
    def ring(self, ring: Ring) -> None:
        self.membership.set_ring(ring)

    @property
    def members(self) -> set[str]:
        return self.membership.members

    @members.setter
    def members(self, members: set[str]) -> None:
        self.membership.set_members(members)

    @property
    def down(self) -> set[str]:
        return self.membership.down

    @property
    def ring_changed(self) -> bool:
        """Ring or members changed since the driver last saved them."""
        return self.membership.changed

    @ring_changed.setter
    def ring_changed(self, value: bool) -> None:
        self.membership.changed = value

    @property
    def left(self) -> bool:
        """This node left the cluster (or was removed) and has dropped its data: the
        driver stops it."""
        return self.membership.left and self.transfers.settled

    @property
    def hints(self) -> int:
        """Hints this node keeps for down primaries."""
        return self.handoff.stored

    def partition(self, key: bytes) -> int:
        return self.membership.ring.partition_of(key)

    def route(self, p: int) -> Route:
        return self.membership.route(p)

    def owned_partitions(self) -> list[int]:
        return self.membership.owned_partitions()

    def member_status(self, peer: str) -> str:
        """up, suspect or down, as this node sees `peer` right now."""
        return self.membership.status(peer)

    def link_lost(self, peer: str) -> bool:
        """Whether the driver lost its link to `peer` (not merely its heartbeats late)."""
        return peer in self.membership.link_down

    def peer_up(self, peer: str) -> None:
        """The driver's link to `peer` works (the detector still has its say)."""
        self.membership.peer_up(peer)

    def peer_down(self, peer: str) -> None:
        """The driver cannot reach `peer` (connection refused or lost): requests stop
        choosing it, and reads and writes waiting on it count it as failed at once."""
        if self.membership.peer_down(peer):
            self.transfers.peer_down(peer)
            self.reads.peer_down(peer)
            self.writes.peer_down(peer)
            self.coll.peer_down(peer)

    def in_flight(self) -> int:
        """Operations this node waits on answers for."""
        return (len(self.reads.pending) + len(self.writes.pending) + len(self.writes.owing)
                + len(self.forwarder.pending) + len(self.anti_entropy.pending)
                + len(self.reaper.pending) + len(self.probes.held_ops)
                + len(self.probes.flushes) + len(self.coll.pending)
                + len(self.coll.forwarded))

    def wipe(self) -> None:
        """Forget every key this node holds (FLUSHALL)."""
        self.local.wipe(self.graveyard.bury)
        self.coll.wipe()
        self.handoff.wiped()
        self.anti_entropy.wiped()

    # --- effects ---------------------------------------------------------------------

    def send(self, peer: str, msg: tuple) -> None:
        self.outbox_msgs += 1
        box = self.outbox.get(peer)
        if box is None:
            self.outbox[peer] = [msg]
            kind = msg[0]
            if kind == m.REPLICA_PUTS or kind == m.REPLICA_GET:
                # The turn's first request to `peer`: it is silent from `silent_ms` on
                # unless heard from first (membership.py).
                silent_at = self.membership.silent_at
                if peer not in silent_at:
                    silent_at[peer] = self.now + self.cfg.silent_ms
        else:
            box.append(msg)

    def batch_for(self, peer: str, kind: str) -> list[Any]:
        """The item list of the `kind` batch message last in `peer`'s outbox (a new one
        when the peer's last queued message is anything else), counting one more item
        in `outbox_msgs`. What comes in bulk (replica puts, put acks, get answers)
        travels this way: one tuple to build, encode, decode and dispatch per batch, not
        per item.
        (`kind` is one of messages' constants: compared by identity.)"""
        box = self.outbox.get(peer)
        if box is not None:
            last = box[-1]
            if last[0] is kind:
                self.outbox_msgs += 1
                return last[1]  # type: ignore[no-any-return]
        items: list[Any] = []
        self.send(peer, (kind, items))
        return items

    def take_outbox(self) -> dict[str, list[tuple]]:
        """The messages queued so far, by peer; the outbox starts again empty."""
        box = self.outbox
        self.outbox = {}
        self.outbox_msgs = 0
        return box

    def renew_actor(self) -> None:
        """Take a new clock identity (saved at once), as a node that lost data does."""
        self.actor = self.rng.getrandbits(64).to_bytes(8, "big")
        self.engine.meta_put("actor", self.actor)

    def next_reqid(self) -> int:
        """A request id unique on this node (the Redis face's walks draw from it too)."""
        self._next_id += 1
        return self._next_id

    def deadline(self) -> int:
        """When a request started now times out."""
        return self.now + self.cfg.timeout_ms

    def allowance(self, size: int) -> int:
        """The time (ms) a request moving `size` bytes of value has beyond its deadline
        (config.ms_per_mb): 0 for a value under 50 KB."""
        return size * self.cfg.ms_per_mb >> 20

    # --- peer messages ---------------------------------------------------------------

    def on_message(self, src: str, msg: tuple) -> None:
        """Hand a peer message to the mechanism of its kind (unknown kinds are dropped).

        The four kinds of every plain read and write are called directly (compiled: a C
        call and string compares, where the table's bound methods go through a
        Python-level call)."""
        kind = msg[0]
        if isinstance(kind, str):
            if kind == m.REPLICA_PUTS:
                self.replica.on_puts(src, msg)
                return
            if kind == m.PUT_ACKS:
                self.writes.on_acks(src, msg)
                return
            if kind == m.REPLICA_GET:
                self.replica.on_get(src, msg)
                return
            if kind == m.GET_ANSWERS:
                self.reads.on_answers(src, msg)
                return
        handler = self.handlers.get(kind)
        if handler is not None:
            handler(src, msg)

    def register(self, kind: str, handler: Handler) -> None:
        """Handle a kind of the Redis face's (messages.FACE_KINDS) with `handler(src,
        msg)`: pure, as every handler is (effects through `send` and `done`)."""
        if kind not in m.FACE_KINDS:
            raise ValueError(f"{kind!r} is not a Redis-face kind of messages.KINDS")
        self.handlers[kind] = handler

    def refuse(self, src: str, reqid: int) -> None:
        """Tell `src` this replica could not do its request `reqid`."""
        self.stats.refused += 1
        self.send(src, m.refused(reqid))

    def on_refused(self, src: str, msg: tuple) -> None:
        reqid = msg[1]
        if not self.reads.fail(reqid, src):
            self.writes.fail(reqid, src)

    # --- time ------------------------------------------------------------------------

    def stalled(self, ms: int) -> None:
        """The driver could not run for `ms` (its loop was busy past a tick: a large
        value encoded or committed, a long command): answers to requests in flight may
        have waited unread all along, so that time is not counted against them. A stall
        of the coordinator never turns a write its replicas acknowledged in time into
        NOQUORUM."""
        postpone(self.reads.pending, ms)
        postpone(self.writes.pending, ms)
        postpone(self.forwarder.pending, ms)
        postpone(self.coll.pending, ms)
        postpone(self.coll.forwarded, ms)

    def clock_stepped(self, ms: int, before: int) -> None:
        """The wall clock `now` is read from jumped `ms` ahead of the time that passed (a
        virtual machine paused and its clock set again, a manual date; measured by the
        driver against a monotonic clock). Every deadline and the failure detector's
        last arrivals (those noted at or before `before`, on the old timeline) move with
        it: otherwise every request in flight timed out at the next tick (NOQUORUM ...
        before timeout, no replica at fault) and every peer counted as down."""
        self.stalled(ms)
        membership = self.membership
        membership.fd.shift(ms, before)
        if membership.born is not None and membership.born <= before:
            membership.born += ms

    def tick(self) -> None:
        """Time out overdue requests, then whatever periodic work is due (heartbeats,
        gossip, handoff, the reaper's sweep, anti-entropy); the driver sets `now` first,
        and runs `fold_step` after it until it says no more."""
        now = self.now
        self.reads.expire(now)
        self.writes.expire(now)
        self.forwarder.expire(now)
        self.probes.expire(now)
        self.reaper.expire(now)
        self.anti_entropy.expire(now)
        self.coll.expire(now)
        self.changes.expire(now)
        self.membership.tick(now)
        self.handoff.tick(now)
        self.changes.tick()
        self.changes.follow_up(now)
        self.transfers.tick(now)
        self.reaper.tick(now)
        self.anti_entropy.tick(now)
        self.watches.tick(now)
        self.blocking.tick(now)
        self.fold_owed = fold_share(self.local.unfolded()) if self.local.dirty else 0
        self.local.counts.expire_some(now, EXPIRE_PER_TICK)

    def fold_step(self) -> bool:
        """Hash a slice (FOLD_SLICE) of the keys written since they were last folded into
        the anti-entropy trees, of the share the last tick left; True while more of it is
        due. The server runs each slice in a loop turn of its own, between reads."""
        owed = self.fold_owed
        if owed <= 0:
            return False
        size = FOLD_SLICE if owed <= FOLD_PER_TICK else FOLD_SLICE_MAX
        done = self.local.fold_some(size if owed > size else owed)
        owed = owed - done if done else 0
        if not self.local.dirty:
            owed = 0
        self.fold_owed = owed
        return owed > 0
