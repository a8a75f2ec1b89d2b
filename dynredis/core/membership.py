"""Membership: who is in the cluster, who is up, who owns what (gossip, claim, detection).

- Members and the ring spread by gossip, once a second to a random member or seed; a
  ring of a higher version (epoch, claimant) replaces ours, members only ever add up.
- The claimant (the lowest member name) proposes a ring covering every member it knows
  (`ring.new_ring`: least movement from the previous one) and gossips it at once.
- Zones: each node knows its own (`Config.zone`) and gossips the zones it knows (a
  node's word about itself wins); the ring records its members' zones, so placement
  spreads each key's replicas across zones, and the claimant proposes a new ring when a
  member's zone differs from the ring's.
- Failure is local and temporary: heartbeats feed a phi-accrual detector
  (failure_detector.py); a peer is down while the detector says so or while the
  driver's link to it is down (`peer_down`), and a member never heard from counts as
  down once the startup grace has passed. Down peers are skipped when requests choose
  replicas (`route`), never taken out of the ring: removal is an explicit act.
- Silence, ahead of the detector (Dynamo §4.8.3: "B does not respond to A's
  messages"): a peer that has answered nothing sent it for `silent_ms` (no read answer,
  no acknowledgement, no heartbeat since) is `silent`; reads and writes do not wait on
  it while their quorum can come without it (reads.py, writes.py). The detector takes
  1.3-1.8 s to count a stopped peer down, and every request of those seconds waited
  on it until its deadline (2 s): at 80k requests/s, 90,000 ops held, a 210 ms
  collection of the GC's generation 1, then ticks of 6 ms expiring them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from . import messages as m
from .failure_detector import DOWN, PhiAccrual
from .ring import Ring, new_ring, ring_zones

if TYPE_CHECKING:
    from .node import Node


class Route:
    """A partition's active preference list, split for the coordinator's hot path."""

    __slots__ = ("targets", "local", "others", "missing", "pending", "write_targets")

    def __init__(self, me: str, targets: list[tuple[str, str]],
                 primaries: tuple[str, ...] = (), pending: tuple[str, ...] = (),
                 down: Collection[str] = ()) -> None:
        self.targets = targets  # (node, owner it stands for), primaries first
        self.local = any(node == me for node, _ in targets)
        self.others = [(node, owner) for node, owner in targets if node != me]
        # Primaries that are down with no fallback standing in for them (a cluster of
        # exactly N nodes has none): the coordinator keeps their hints itself.
        standing = {owner for _, owner in targets}
        self.missing = [x for x in primaries if x not in standing]
        # While a membership change moves the partition (changes.py): the nodes that
        # will be its replicas and are not yet. Writes go to them too and wait for one
        # more acknowledgement per such node (so W of the replicas after the change
        # hold every acknowledged write, as Cassandra does for pending ranges); one
        # that is down gets its copy as a hint.
        self.pending = [x for x in pending if x not in down and x != me]
        self.missing.extend(x for x in pending if x in down)
        self.write_targets = targets + [(x, x) for x in self.pending]


class Membership:
    """One node's view of the cluster, and the gossip and heartbeats that keep it."""

    def __init__(self, node: Node, ring: Ring | None, members: set[str] | None,
                 seeds: tuple[str, ...]) -> None:
        self.node = node
        me = node.name
        self.name = me
        self.cfg = node.cfg
        self.members: set[str] = set(members or ()) | {me}
        self.seeds = tuple(s for s in seeds if s != me)
        self.zones: dict[str, str] = dict(ring.zones) if ring is not None else {}
        self.zones[me] = self.cfg.zone
        self.ring = ring if ring is not None else new_ring([me], self.cfg.q, claimant=me,
                                                           zones=self.zones)
        self.down: set[str] = set()  # peers requests avoid: link down or detector says so
        self.link_down: set[str] = set()
        self.fd = PhiAccrual(threshold=self.cfg.phi_threshold)
        self.changed = True  # ring or members changed since the driver last saved them
        self.born: int | None = None  # the node's first tick
        self.next_heartbeat = 0
        self.next_gossip = 0
        self.routes: dict[int, Route] = {}
        # Per peer: when it is silent unless heard from first (`silent_ms` after the
        # first turn since it was last heard from that sent it a request: Node.send);
        # `silent`, the peers past it, brought up to date each tick (a request's only
        # cost in a healthy cluster: `silent` is empty).
        self.silent_at: dict[str, int] = {}
        self.silent: set[str] = set()

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.HEARTBEAT: self.on_heartbeat, m.GOSSIP: self.on_gossip}

    # --- placement -------------------------------------------------------------------

    def route(self, p: int) -> Route:
        """Where requests for partition `p` go now (cached until membership changes)."""
        hit = self.routes.get(p)
        if hit is None:
            up = self.members - self.down
            n = self.cfg.n
            ring = self.ring
            hit = Route(self.name, ring.apl(p, n, up), ring.preference_list(p, n),
                        ring.pending_targets(p, n), self.down)
            self.routes[p] = hit
        return hit

    def owned_partitions(self) -> list[int]:
        me = self.name
        return [p for p, o in enumerate(self.ring.owners) if o == me]

    def set_ring(self, ring: Ring) -> None:
        self.ring = ring
        self.changed = True
        self.routes.clear()

    def set_members(self, members: set[str]) -> None:
        self.members = members
        self.changed = True
        self.routes.clear()

    # --- up and down -----------------------------------------------------------------

    def heard(self, peer: str) -> None:
        """`peer` answered or sent a heartbeat: not silent (again)."""
        silent_at = self.silent_at
        if peer in silent_at:  # (compiled: `in` and `del` cost less than pop's call)
            del silent_at[peer]
        if self.silent:
            self.silent.discard(peer)

    def peer_up(self, peer: str) -> None:
        if peer in self.link_down:
            self.link_down.discard(peer)
            self.refresh_down()

    def peer_down(self, peer: str) -> bool:
        """Note a lost link; True if it was not known lost already."""
        if peer in self.link_down or peer == self.name:
            return False
        self.link_down.add(peer)
        self.refresh_down()
        return True

    def status(self, peer: str) -> str:
        """up, suspect or down, as this node sees `peer` right now."""
        if peer == self.name:
            return "up"
        if peer in self.down:
            return DOWN
        return self.fd.status(peer, self.node.now)

    def refresh_down(self) -> None:
        now = self.node.now
        born = self.born if self.born is not None else now
        down = set(self.link_down)
        if self.left:
            # The members forgot this node and no longer send it heartbeats: its
            # detector would soon count every one of them down, and the requests its
            # clients still send until it stops (it forwards them all) would fail
            # with NOQUORUM. Its links tell whether a member is up.
            if down != self.down:
                self.down = down
                self.routes.clear()
            return
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
            self.routes.clear()

    def on_heartbeat(self, src: str, msg: tuple) -> None:
        self.fd.heartbeat(src, self.node.now)
        self.heard(src)
        if src in self.down and src not in self.link_down:
            self.refresh_down()

    # --- gossip and claim ------------------------------------------------------------

    def gossip_message(self) -> tuple:
        return m.gossip(tuple(sorted(self.members)), self.ring.to_wire(),
                        tuple(sorted(self.zones.items())))

    def on_gossip(self, src: str, msg: tuple) -> None:
        _, members, ring_wire, zones = msg
        ring = Ring.from_wire(ring_wire)
        newer = ring.version > self.ring.version and ring.q == self.ring.q
        gone = set(ring.gone if newer else self.ring.gone)
        incoming = {_s(x) for x in members} - gone
        if not incoming <= self.members:
            self.members |= incoming
            self.changed = True
            self.routes.clear()
        for member, zone in zones:
            member = _s(member)
            # A node's word about its own zone wins; others' only fills gaps.
            if member != self.name and (member == src or member not in self.zones) \
                    and member in self.members:
                self.zones[member] = _s(zone)
        if src in self.ring.gone and not newer:
            # A node that left or was removed while it was away: tell it.
            self.node.send(src, self.gossip_message())
        if newer:
            self.members |= set(ring.all_members)
            for member, zone in ring.zones:
                self.zones.setdefault(member, zone)
            self.set_ring(ring)
            self.forget_gone()
        self.maybe_claim()

    def forget_gone(self) -> None:
        """Members the ring says left or were removed are members no more (this node
        itself stays in its own set: it has left, see `left`)."""
        gone = set(self.ring.gone) - {self.name}
        if gone & self.members:
            self.members -= gone
            self.changed = True
            self.routes.clear()

    @property
    def left(self) -> bool:
        """This node left the cluster or was removed from it (it owns nothing)."""
        return self.name in self.ring.gone and self.name not in self.ring.all_members

    def maybe_claim(self) -> None:
        """The claimant (lowest member name) proposes a ring covering every member, in
        the zones they say they are in."""
        if self.node.changes.claimant() != self.name or self.left:
            return
        ring = self.ring
        # Members heard of by gossip join once they are up (a node that is down could
        # not take its partitions; one removed may still be named by a peer's gossip).
        known = self.members - set(ring.gone) - (self.down - set(ring.all_members))
        if ring.next or (known <= set(ring.all_members)
                         and ring.zones == ring_zones(ring.members, self.zones)):
            return
        if len(known) > self.cfg.n:
            # Beyond one preference list some replicas move away: a planned change,
            # with transfers (changes.py), for new members and for new zones alike.
            self.node.changes.auto_join(sorted(known - set(ring.members)))
            return
        previous = ring if len(ring.members) > 1 else None
        new = new_ring(known, self.cfg.q, previous, claimant=self.name, zones=self.zones)
        self.set_ring(Ring(new.q, new.owners, ring.epoch + 1, self.name, new.zones,
                           gone=ring.gone))
        msg = self.gossip_message()
        for peer in self.members - {self.name}:
            self.node.send(peer, msg)

    # --- time ------------------------------------------------------------------------

    def tick(self, now: int) -> None:
        """Heartbeats and gossip when due; the detector's verdicts brought up to date."""
        if self.born is None:
            self.born = now
        node = self.node
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + self.cfg.heartbeat_interval_ms
            beat = m.heartbeat()
            for peer in self.members:
                if peer != self.name:
                    node.send(peer, beat)
        self.refresh_down()
        for peer, at in self.silent_at.items():
            if now > at:
                self.silent.add(peer)
        if now >= self.next_gossip:
            self.next_gossip = now + self.cfg.gossip_interval_ms
            peers = sorted((self.members | set(self.seeds)) - {self.name})
            if peers:
                node.send(node.rng.choice(peers), self.gossip_message())


def _s(x: str | bytes) -> str:
    return x.decode() if isinstance(x, bytes) else x
