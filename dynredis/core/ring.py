"""The ring: Q fixed, equal partitions of the 16384 hash slots, each owned by a node.

Dynamo's partitioning strategy 3. Placement is a pure function of the ring (and, for
sloppy quorum, of which nodes are up), so every node that holds the same ring places
every key identically.

Zones (racks, data centers: Dynamo's replicas across data centers, Riak's and
Cassandra's rack awareness): the ring records each member's zone, and a preference
list walks clockwise from the owner taking a node of a zone not yet on the list, so a
key's N replicas span N distinct zones whenever there are at least N; with fewer zones
it fills up with the next distinct nodes. Without zones every node is its own zone:
the walk is the plain one (distinct nodes clockwise).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from .keyslot import SLOTS, slot_partition

DEFAULT_Q = 256


def partition_of_slot(slot: int, q: int) -> int:
    return slot * q // SLOTS


def partition_shift(q: int) -> int:
    """`slot >> partition_shift(q)` is `partition_of_slot(slot, q)` (q a power of two)."""
    return SLOTS.bit_length() - q.bit_length()


def slot_range(partition: int, q: int) -> tuple[int, int]:
    """First and last hash slot (inclusive) covered by `partition`."""
    return partition * SLOTS // q, (partition + 1) * SLOTS // q - 1


@dataclass(frozen=True)
class Ring:
    """Ownership of partitions, versioned by (epoch, claimant): the highest wins."""

    q: int
    owners: tuple[str, ...]
    epoch: int = 1
    claimant: str = ""
    # (member, zone) of the members that have a zone, sorted.
    zones: tuple[tuple[str, str], ...] = ()
    # A committed membership change in progress (claim.py): the owners the ring moves
    # to once every transfer is confirmed, and the transfers (partition, target,
    # source) not confirmed yet. Empty when the ring is settled.
    next: tuple[str, ...] = ()
    pending: tuple[tuple[int, str, str], ...] = ()
    # Members that left or were removed: gossip never brings them back.
    gone: tuple[str, ...] = ()
    _pref_cache: dict[int, tuple[tuple[str, ...], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _next_cache: list[Ring] = field(default_factory=list, compare=False, repr=False)
    _shift: int = field(init=False, compare=False, repr=False)
    _zone_of: dict[str, str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.q <= 0 or self.q & (self.q - 1) or self.q > SLOTS:
            raise ValueError("ring size must be a power of two between 1 and 16384")
        if len(self.owners) != self.q:
            raise ValueError("one owner per partition")
        object.__setattr__(self, "_shift", partition_shift(self.q))
        object.__setattr__(self, "_zone_of", {m: z for m, z in self.zones if z})
        if self.next and len(self.next) != self.q:
            raise ValueError("one next owner per partition")

    def zone(self, member: str) -> str:
        """`member`'s zone ("" if none)."""
        return self._zone_of.get(member, "")

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.owners)))

    @property
    def all_members(self) -> tuple[str, ...]:
        """Members owning partitions now or once the change in progress is done."""
        return tuple(sorted(set(self.owners) | set(self.next)))

    def next_ring(self) -> Ring:
        """The ring as it will be once the change in progress is done (itself if none)."""
        if not self.next:
            return self
        if not self._next_cache:
            self._next_cache.append(Ring(self.q, self.next, self.epoch, self.claimant,
                                         self.zones, gone=self.gone))
        return self._next_cache[0]

    def pending_targets(self, partition: int, n: int) -> tuple[str, ...]:
        """Nodes that will be replicas of `partition` once the change in progress is
        done but are not now: writes go to them too while it moves (claim.py)."""
        if not self.next:
            return ()
        cur = self.preference_list(partition, n)
        return tuple(x for x in self.next_ring().preference_list(partition, n)
                     if x not in cur)

    @property
    def version(self) -> tuple[int, str]:
        return (self.epoch, self.claimant)

    def partition_of(self, key: bytes) -> int:
        return slot_partition(key, self._shift)  # = partition_of_slot(key_slot(key), q)

    def preference_lists(self, n: int) -> tuple[tuple[str, ...], ...]:
        """Every partition's preference list: owner, then the next distinct nodes clockwise."""
        cached = self._pref_cache.get(n)
        if cached is None:
            cached = tuple(self._walk(p, n) for p in range(self.q))
            self._pref_cache[n] = cached
        return cached

    def preference_list(self, partition: int, n: int) -> tuple[str, ...]:
        return self.preference_lists(n)[partition]

    def _walk(self, partition: int, n: int) -> tuple[str, ...]:
        """Up to n distinct nodes clockwise from `partition`: one per zone first (each
        node without a zone is a zone of its own), then the next distinct nodes."""
        out: list[str] = []
        q = self.q
        owners = self.owners
        zone_of = self._zone_of
        if zone_of:
            zones_seen: set[str] = set()
            all_zones = len({zone_of.get(o, "\0" + o) for o in set(owners)})
            for i in range(q):
                node = owners[(partition + i) % q]
                zone = zone_of.get(node, "\0" + node)
                if zone not in zones_seen:
                    zones_seen.add(zone)
                    out.append(node)
                    if len(out) == n or len(zones_seen) == all_zones:
                        break
            if len(out) == n:
                return tuple(out)
        for i in range(q):
            node = owners[(partition + i) % q]
            if node not in out:
                out.append(node)
                if len(out) == n:
                    break
        return tuple(out)

    def successors(self, partition: int) -> list[str]:
        """All distinct nodes in ring order starting at `partition`'s owner."""
        return list(self._walk(partition, len(set(self.owners))))

    def apl(self, partition: int, n: int, up: Collection[str]) -> list[tuple[str, str]]:
        """Active preference list for sloppy quorum: `(node, intended_owner)` pairs.

        Primaries that are up serve for themselves; each primary that is down is
        replaced, in order, by the next up node clockwise that is not a primary.
        """
        order = self.successors(partition)
        primaries = order[:n]
        fallbacks = [x for x in order[n:] if x in up]
        out: list[tuple[str, str]] = []
        for node in primaries:
            if node in up:
                out.append((node, node))
            elif fallbacks:
                out.append((fallbacks.pop(0), node))
        return out

    def to_wire(self) -> tuple:
        return (self.q, self.owners, self.epoch, self.claimant, self.zones, self.next,
                self.pending, self.gone)

    @classmethod
    def from_wire(cls, data: Iterable) -> Ring:
        """A ring from its wire form (a ring saved by an earlier build has no zones)."""
        fields = tuple(data)
        q, owners, epoch, claimant = fields[:4]
        zones = tuple((_s(m), _s(z)) for m, z in fields[4]) if len(fields) > 4 else ()
        nxt: tuple[str, ...] = ()
        pending: tuple[tuple[int, str, str], ...] = ()
        gone: tuple[str, ...] = ()
        if len(fields) > 7:
            nxt = tuple(_s(o) for o in fields[5])
            pending = tuple((int(p), _s(t), _s(s)) for p, t, s in fields[6])
            gone = tuple(_s(g) for g in fields[7])
        return cls(int(q), tuple(_s(o) for o in owners), int(epoch), _s(claimant), zones,
                   nxt, pending, gone)


def _s(x: str | bytes) -> str:
    return x.decode() if isinstance(x, bytes) else x


# Claim keeps each node's partitions at least this far apart where it can, so any
# _SPREAD + 1 successive partitions have distinct owners: every preference list of
# N = _SPREAD + 1 nodes is then just the next N partitions' owners, and each node's
# replica load is N times its (balanced) ownership.
_SPREAD = 2


def zone_order(nodes: list[str], zones: Mapping[str, str]) -> list[str]:
    """`nodes` (sorted) interleaved by zone: one of each zone in turn (the largest zones
    first), so successive partitions dealt round-robin have owners in distinct zones
    as long as zones last. Nodes without a zone are each a zone of their own."""
    groups: dict[str, list[str]] = {}
    for node in nodes:
        groups.setdefault(zones.get(node) or "\0" + node, []).append(node)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    out: list[str] = []
    for i in range(max(len(g) for g in ordered)):
        out.extend(g[i] for g in ordered if i < len(g))
    return out


def claim(members: Iterable[str], q: int, previous: Ring | None = None,
          zones: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Assign every partition an owner among `members`, as evenly as possible.

    With no previous ring, partitions are dealt round-robin in sorted member order
    (interleaved by zone when members have zones, see zone_order).
    With one, only as many partitions move as balance needs: departed members'
    partitions, and the excess of nodes above their target, go to nodes below their
    target. A moved partition goes to a taker that owns none of the partitions within
    _SPREAD of it whenever one can, and each taker's new partitions are spaced evenly
    around the ring, so no node's partitions pile up in runs (a run of one owner
    makes the same few neighbours the replicas of the whole run).
    """
    nodes = sorted(set(members))
    if not nodes:
        raise ValueError("a ring needs at least one member")
    zones = zones or {}
    if previous is None or previous.q != q:
        order = zone_order(nodes, zones) if zones else nodes
        return tuple(order[p % len(order)] for p in range(q))
    member_set = set(nodes)
    owners: list[str | None] = [o if o in member_set else None for o in previous.owners]
    base, extra = divmod(q, len(nodes))
    counts = dict.fromkeys(nodes, 0)
    for o in owners:
        if o is not None:
            counts[o] += 1
    # Nodes that already own most keep the larger targets, so fewer partitions move.
    ranked = sorted(nodes, key=lambda x: (-counts[x], x))
    target = {node: base + (1 if i < extra else 0) for i, node in enumerate(ranked)}
    # The even spacing of a node's partitions around the ring.
    spacing = {node: q // target[node] if target[node] else q for node in nodes}
    offsets = [d for d in range(-_SPREAD, _SPREAD + 1) if d]

    def crowding(p: int, node: str) -> int:
        """How close `node`'s other partitions would be if it owned `p` (0: none near)."""
        return sum(_SPREAD + 1 - abs(d) for d in offsets if owners[(p + d) % q] == node)

    def zone_crowding(p: int, node: str) -> int:
        """The same for `node`'s zone (0 without zones)."""
        zone = zones.get(node)
        if not zone:
            return 0
        near = (owners[(p + d) % q] for d in offsets)
        return sum(1 for o in near if o is not None and zones.get(o) == zone)

    def unowned(p: int) -> bool:
        return owners[p] is None

    def excess(p: int) -> bool:
        o = owners[p]
        return o is None or counts[o] > target[o]

    def crowded_excess(p: int) -> bool:
        o = owners[p]
        return o is not None and counts[o] > target[o] and crowding(p, o) > 0

    def deal(wanted: Callable[[int], bool], strict: bool, spaced: bool) -> None:
        """One pass around the ring handing `wanted` partitions to nodes below target.

        strict: only to a taker that would not be crowded there.
        spaced: only to a taker whose previous partition is at least its spacing back.
        """
        last = {o: p - q for p, o in enumerate(owners) if o is not None}
        for p in range(q):
            if wanted(p):
                takers = [x for x in nodes if counts[x] < target[x]]
                if spaced:
                    takers = [x for x in takers if p - last.get(x, -q) >= spacing[x]]
                if takers:
                    # Least crowded, then the longest since its previous partition.
                    pick = min(takers, key=lambda x: (crowding(p, x), zone_crowding(p, x),
                                                      last.get(x, -q), x))
                    if not (strict and crowding(p, pick)):
                        old = owners[p]
                        if old is not None:
                            counts[old] -= 1
                        owners[p] = pick
                        counts[pick] += 1
            o = owners[p]
            if o is not None:
                last[o] = p

    deal(unowned, strict=True, spaced=False)  # departed members' partitions
    deal(crowded_excess, strict=True, spaced=False)  # excess sitting too close to its own
    deal(excess, strict=True, spaced=True)  # other excess, evenly spread
    deal(excess, strict=True, spaced=False)
    deal(excess, strict=False, spaced=False)  # whatever is left, crowded or not
    return tuple(o for o in owners if o is not None)


def new_ring(members: Iterable[str], q: int = DEFAULT_Q, previous: Ring | None = None,
             claimant: str = "", zones: Mapping[str, str] | None = None) -> Ring:
    """The ring a claimant proposes for `members` (in `zones`), one epoch past
    `previous`."""
    members = sorted(set(members))
    owners = claim(members, q, previous, zones)
    epoch = previous.epoch + 1 if previous is not None else 1
    return Ring(q, owners, epoch, claimant, ring_zones(members, zones or {}))


def ring_zones(members: Iterable[str], zones: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The (member, zone) pairs a ring over `members` records."""
    return tuple(sorted((m, zones[m]) for m in set(members) if zones.get(m)))
