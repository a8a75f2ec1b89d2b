"""The ring: Q fixed, equal partitions of the 16384 hash slots, each owned by a node.

Dynamo's partitioning strategy 3. Placement is a pure function of the ring (and, for
sloppy quorum, of which nodes are up), so every node that holds the same ring places
every key identically.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from .keyslot import SLOTS, key_slot

DEFAULT_Q = 256


def partition_of_slot(slot: int, q: int) -> int:
    return slot * q // SLOTS


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

    def __post_init__(self) -> None:
        if self.q <= 0 or self.q & (self.q - 1) or self.q > SLOTS:
            raise ValueError("ring size must be a power of two between 1 and 16384")
        if len(self.owners) != self.q:
            raise ValueError("one owner per partition")

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.owners)))

    @property
    def version(self) -> tuple[int, str]:
        return (self.epoch, self.claimant)

    def partition_of(self, key: bytes) -> int:
        return key_slot(key) * self.q // SLOTS

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


def claim(members: Iterable[str], q: int, previous: Ring | None = None) -> tuple[str, ...]:
    """Assign every partition an owner among `members`, as evenly as possible.

    With no previous ring, partitions are dealt round-robin in sorted member order.
    With one, only as many partitions move as balance needs: nodes above their
    target give partitions to nodes below it, and departed members' partitions are
    handed out first.
    """
    nodes = sorted(set(members))
    if not nodes:
        raise ValueError("a ring needs at least one member")
    if previous is None or previous.q != q:
        return tuple(nodes[p % len(nodes)] for p in range(q))
    owners = list(previous.owners)
    base, extra = divmod(q, len(nodes))
    # Nodes that already own most keep the larger targets, so fewer partitions move.
    current = {node: 0 for node in nodes}
    for o in owners:
        if o in current:
            current[o] += 1
    ranked = sorted(nodes, key=lambda x: (-current[x], x))
    target = {node: base + (1 if i < extra else 0) for i, node in enumerate(ranked)}
    counts = dict.fromkeys(nodes, 0)
    spare: list[int] = []
    for p, o in enumerate(owners):
        if o in counts and counts[o] < target[o]:
            counts[o] += 1
        else:
            spare.append(p)
    # Spread the moved partitions over takers in ring order so neighbours differ.
    for p in spare:
        takers = [x for x in nodes if counts[x] < target[x]]
        neighbours = {owners[(p + d) % q] for d in (-2, -1, 1, 2)}
        pick = next((x for x in takers if x not in neighbours), takers[0])
        owners[p] = pick
        counts[pick] += 1
    return tuple(owners)


def new_ring(members: Iterable[str], q: int = DEFAULT_Q, previous: Ring | None = None,
             claimant: str = "") -> Ring:
    """The ring a claimant proposes for `members`, one epoch past `previous`."""
    owners = claim(members, q, previous)
    epoch = previous.epoch + 1 if previous is not None else 1
    return Ring(q, owners, epoch, claimant)
