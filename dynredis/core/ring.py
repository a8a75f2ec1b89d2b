"""The ring: Q fixed, equal partitions of the 16384 hash slots, each owned by a node.

Dynamo's partitioning strategy 3. Placement is a pure function of the ring (and, for
sloppy quorum, of which nodes are up), so every node that holds the same ring places
every key identically.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from .keyslot import SLOTS, key_slot

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
    _pref_cache: dict[int, tuple[tuple[str, ...], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _shift: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.q <= 0 or self.q & (self.q - 1) or self.q > SLOTS:
            raise ValueError("ring size must be a power of two between 1 and 16384")
        if len(self.owners) != self.q:
            raise ValueError("one owner per partition")
        object.__setattr__(self, "_shift", partition_shift(self.q))

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.owners)))

    @property
    def version(self) -> tuple[int, str]:
        return (self.epoch, self.claimant)

    def partition_of(self, key: bytes) -> int:
        return key_slot(key) >> self._shift  # = partition_of_slot(key_slot(key), q)

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
        out: list[str] = []
        for i in range(self.q):
            node = self.owners[(partition + i) % self.q]
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
        return (self.q, self.owners, self.epoch, self.claimant)

    @classmethod
    def from_wire(cls, data: Iterable) -> Ring:
        q, owners, epoch, claimant = data
        return cls(int(q), tuple(_s(o) for o in owners), int(epoch), _s(claimant))


def _s(x: str | bytes) -> str:
    return x.decode() if isinstance(x, bytes) else x


# Claim keeps each node's partitions at least this far apart where it can, so any
# _SPREAD + 1 successive partitions have distinct owners: every preference list of
# N = _SPREAD + 1 nodes is then just the next N partitions' owners, and each node's
# replica load is N times its (balanced) ownership.
_SPREAD = 2


def claim(members: Iterable[str], q: int, previous: Ring | None = None) -> tuple[str, ...]:
    """Assign every partition an owner among `members`, as evenly as possible.

    With no previous ring, partitions are dealt round-robin in sorted member order.
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
    if previous is None or previous.q != q:
        return tuple(nodes[p % len(nodes)] for p in range(q))
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
                    pick = min(takers, key=lambda x: (crowding(p, x), last.get(x, -q), x))
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
             claimant: str = "") -> Ring:
    """The ring a claimant proposes for `members`, one epoch past `previous`."""
    owners = claim(members, q, previous)
    epoch = previous.epoch + 1 if previous is not None else 1
    return Ring(q, owners, epoch, claimant)
