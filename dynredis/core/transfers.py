"""Ownership transfers: partitions stream to their new replicas while the node serves.

A committed membership change (changes.py) lists transfers (partition, target,
source) in the ring. Each source runs at most `transfer_limit` of its transfers at a
time: it takes the partition's key list, then sends the keys' current versions in
batches of `transfer_batch` (`xb`), one unacknowledged batch per transfer; the target
merges each key as a replica write (the same causal merge, so a batch sent twice, or a
key written meanwhile, ends the same) and acknowledges (`xba`). A batch unacknowledged
after the request timeout is sent again; a target whose link drops (it may have
restarted and lost what it had not yet committed) gets its transfers again from the
start, and a source that restarts starts its unconfirmed transfers over (the ring
still lists them): so a crash of either side delays a transfer, never loses it.

Writes during a transfer reach the target twice over: coordinators that know the
change send it every write of the partition (membership.Route.pending), and the
source passes on every version it stores of a partition it is sending (`forward`),
which covers coordinators that do not know the change yet. Collection commands take
both paths too (collcoord.py: their records and events go to the future replicas,
and a sending replica passes on each command's delta it applies).

When the target has acknowledged the last batch the transfer is confirmed, and the
source tells the claimant (`xd`, repeated every `handoff_interval_ms` until the ring
no longer lists it). Once the ring has flipped to its new owners, a node drops the
partitions it is no replica of any more, `drop_delay_ms` later (gossip has spread the
new ring by then; until then it passes on what it is still sent, as above). A node
that left the cluster drops everything and reports `left`.

A partition's collections travel with it: their element records (records.py, partition
ELEM_BASE + p) follow its objects in the same stream, then the sender's applied-event
summaries (LOCAL_BASE + p, see `start`). Dropping takes all three: a node that
replicates the partition again later receives it again by transfer, summaries
included, and summaries kept without their records would claim events whose records
this node no longer holds (a coordinator syncing with it would be sent nothing for
them, or take its whole set of events with a key missing their records).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import messages as m
from . import records as rec
from .collstore import decode_dotset
from .inflight import overdue

if TYPE_CHECKING:
    from .node import Node
    from .ring import Ring


class Outgoing:
    """One transfer this node sends."""

    __slots__ = ("p", "target", "keys", "index", "reqid", "deadline", "sent", "summaries")

    def __init__(self, p: int, target: str, keys: list[tuple[int, bytes]],
                 summaries: dict[bytes, bytes] | None = None) -> None:
        self.p = p
        self.target = target
        self.keys = keys
        # The collections' applied-event summaries as they were when the key list was
        # taken (see `start`), sent after every record.
        self.summaries = summaries or {}
        self.index = 0  # keys before this one are acknowledged
        self.reqid = 0
        self.deadline = 0
        self.sent = 0  # keys in the batch in flight


class Transfers:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.name = node.name
        self.cfg = node.cfg
        self.local = node.local
        self.running: dict[tuple[int, str], Outgoing] = {}
        self.inflight: dict[int, Outgoing] = {}  # reqid -> its transfer, deadline order
        self.confirmed: set[tuple[int, str]] = set()  # reported, not yet off the ring
        self.forward_to: dict[int, list[str]] = {}
        self.seen: Ring | None = None
        self.mine: list[tuple[int, str]] = []  # this node's unconfirmed transfers
        self.next_report = 0
        self.drop_at = -1  # when the partitions this node no longer replicates go
        self.next_sweep = 0  # when to look for such partitions again
        self.renewed = False  # the clock identity was renewed for this round of drops
        self.dropping: list[int] = []
        self.keys_sent = 0
        self.bytes_sent = 0
        self.keys_received = 0

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.TRANSFER_BATCH: self.on_batch, m.TRANSFER_ACK: self.on_ack}

    @property
    def active(self) -> int:
        """Transfers this node is sending now."""
        return len(self.running)

    @property
    def waiting(self) -> int:
        """Transfers this node still has to send or have confirmed."""
        return len(self.mine)

    # --- the ring changed ----------------------------------------------------------------

    def refresh(self, ring: Ring) -> None:
        """Bring the transfers and forwards in line with a new ring."""
        self.seen = ring
        me = self.name
        listed = {(p, t) for p, t, s in ring.pending if s == me}
        self.mine = sorted(listed)
        for k in [k for k in self.running if k not in listed]:
            self.cancel(self.running[k])
        self.confirmed &= listed
        forward: dict[int, list[str]] = {}
        for p, t in listed:
            forward.setdefault(p, []).append(t)
        self.forward_to = forward
        self.dropping = []
        self.drop_at = -1
        self.find_drops(ring)

    def find_drops(self, ring: Ring) -> None:
        """Partitions held here that this node is no replica of (the ring settled): to
        be dropped `drop_delay_ms` from now, what they are still sent passed on."""
        self.next_sweep = self.node.now + self.cfg.drop_delay_ms
        if ring.next:
            return
        n = self.cfg.n
        # Every partition the engine holds a key of: objects, element records and
        # event summaries alike (records.py), each under its base partition.
        held = sorted({rec.base_partition(x) for x in self.local.engine.partitions()})
        for p in held:
            if p >= ring.q or p in self.dropping:
                continue
            pref = ring.preference_list(p, n)
            if self.name not in pref:
                self.dropping.append(p)
                self.forward_to[p] = list(pref)
        if self.dropping and self.drop_at < 0:
            self.drop_at = self.node.now + self.cfg.drop_delay_ms

    def cancel(self, out: Outgoing) -> None:
        self.running.pop((out.p, out.target), None)
        self.inflight.pop(out.reqid, None)

    # --- sending ---------------------------------------------------------------------------

    def tick(self, now: int) -> None:
        ring = self.node.ring
        if ring is not self.seen:
            self.refresh(ring)
        for out in overdue(self.inflight, now):
            self.send_batch(out)  # unacknowledged: again
        if len(self.running) < self.cfg.transfer_limit and len(self.running) + len(
                self.confirmed) < len(self.mine):
            down = self.node.membership.down
            for key in self.mine:
                if len(self.running) >= self.cfg.transfer_limit:
                    break
                if key in self.running or key in self.confirmed or key[1] in down:
                    continue
                self.start(*key)
        if self.confirmed and now >= self.next_report:
            self.next_report = now + self.cfg.handoff_interval_ms
            self.node.send(self.node.changes.claimant(),
                           m.transfers_done(tuple(sorted(self.confirmed))))
        if self.drop_at >= 0 and now >= self.drop_at:
            self.drop_some()
        elif self.drop_at < 0 and now >= self.next_sweep:
            self.find_drops(ring)  # late arrivals (a stale coordinator's write, a resend)

    def start(self, p: int, target: str) -> None:
        # The partition's objects, then its collections' element records, then their
        # applied-event summaries (records.py). The summaries are read now, with the
        # key list: every event they name wrote records now listed, which go later at
        # versions at least as new, so the target never claims an event whose records
        # it has not been sent (a sync would then never fetch them from anyone: see
        # collstore.missing). Events applied after this reach the target with their
        # records (the coordinators' and this node's forwarding).
        keys = [(p, k) for k, _ in self.local.scan_heads(p)]
        ep = rec.elem_partition(p)
        keys += [(ep, k) for k, _ in self.local.scan_heads(ep)]
        lp = rec.local_partition(p)
        summaries = dict(self.local.engine.scan(lp))
        keys += [(lp, k) for k in summaries]
        out = Outgoing(p, target, keys, summaries)
        self.running[(p, target)] = out
        self.send_batch(out)

    def send_batch(self, out: Outgoing) -> None:
        node = self.node
        self.inflight.pop(out.reqid, None)
        items: list[int | bytes] = []
        keys = out.keys[out.index:out.index + self.cfg.transfer_batch]
        get = self.local.get_record
        for part, key in keys:
            enc = out.summaries.get(key) if part >= rec.LOCAL_BASE else get(part, key)
            if enc is not None:
                items.append(part)
                items.append(key)
                items.append(enc)
                self.bytes_sent += len(key) + len(enc)
        self.keys_sent += len(items) // 3
        out.sent = len(keys)
        out.reqid = node.next_reqid()
        out.deadline = node.now + self.cfg.timeout_ms
        self.inflight[out.reqid] = out
        node.send(out.target, m.transfer_batch(out.reqid, out.p, items))

    def on_ack(self, src: str, msg: tuple) -> None:
        out = self.inflight.pop(msg[1], None)
        if out is None or out.target != src:
            return
        out.index += out.sent
        if out.index < len(out.keys):
            self.send_batch(out)
            return
        del self.running[(out.p, out.target)]
        self.confirmed.add((out.p, out.target))
        self.next_report = self.node.now  # tell the claimant at the next tick

    def peer_down(self, peer: str) -> None:
        """A target's link dropped: its transfers start over (see the docstring)."""
        for out in [o for o in self.running.values() if o.target == peer]:
            self.cancel(out)

    # --- receiving -------------------------------------------------------------------------

    def on_batch(self, src: str, msg: tuple) -> None:
        _, reqid, p, items = msg
        apply = self.node.replica.apply
        store = self.node.coll.store
        for i in range(0, len(items), 3):
            part = int(items[i])
            if rec.base_partition(part) != p:
                continue
            if rec.is_local_partition(part):
                # a collection's events, after its records (see `start`)
                store.applied_all(p, items[i + 1], decode_dotset(items[i + 2]))
            else:
                apply(items[i + 1], items[i + 2], part)
        self.keys_received += len(items) // 3
        self.node.send(src, m.transfer_ack(reqid))

    # --- writes meanwhile, and dropping afterwards -----------------------------------------

    def forward(self, key: bytes, enc: bytes, p: int) -> None:
        """Pass a version this node stored on to the partition's new replicas."""
        targets = self.forward_to.get(rec.base_partition(p))
        if targets:
            node = self.node
            for t in targets:
                if t != self.name:
                    node.send(t, m.read_repair(key, enc, p, t))

    def drop_some(self) -> None:
        """Delete up to a batch of keys of the partitions this node no longer holds a
        replica of (all of them over a few ticks)."""
        budget = self.cfg.transfer_batch * 4
        local = self.local
        store = self.node.coll.store
        while self.dropping and budget > 0:
            p = self.dropping[0]
            part = p
            keys: list[bytes] = []
            for part in (p, rec.elem_partition(p), rec.local_partition(p)):
                for key, _ in local.engine.scan(part, 1):
                    keys.append(key)
                    if len(keys) >= budget:
                        break
                if keys:
                    break
            if not keys:
                self.dropping.pop(0)
                self.forward_to.pop(p, None)
                store.forget_partition(p)
                continue
            if not self.renewed:
                # Keys this node wrote may come back to it later, older than it wrote
                # them (it may replicate the partition again): a new identity keeps
                # its next writes of them (and its next collection update events)
                # from reusing dots (riak_kv#679).
                self.node.renew_actor()
                self.renewed = True
            if part == p:
                for key in keys:
                    local.delete(p, key)
            elif rec.is_elem_partition(part):
                for key in keys:
                    local.delete_record(part, key)
            else:
                for key in keys:
                    store.forget_summary(p, key)
            budget -= len(keys)
        if not self.dropping:
            self.drop_at = -1
            self.renewed = False

    @property
    def settled(self) -> bool:
        """Nothing left to send, confirm or drop."""
        return self.seen is self.node.ring and not self.mine and not self.dropping
