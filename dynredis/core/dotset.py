"""Dot sets: exactly which events (dots) a replica has applied to one collection key.

A dot is `(actor, counter)`: the counter-th event a node (an actor) minted for a key.
A collection's events are numbered per key, across all its elements, so one set of
dots says what a replica holds of the whole collection (a causal context, in the
delta-CRDT literature; Riak's big sets keep the same per-replica "set clock").

Messages can be lost and versions can arrive out of order (anti-entropy, read repair,
hinted handoff), so the applied dots of an actor are not always a prefix 1..n: the set
is a version vector (the contiguous prefix per actor) plus a cloud of dots beyond it,
and the cloud folds into the vector as gaps fill. Comparing two replicas' dot sets
tells each what the other lacks without looking at a single element.

Pure and mutable (one per key per replica, updated on every applied event); `pack`
and `unpack` turn it into plain tuples for storage and the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

Dot = tuple[bytes, int]
Packed = tuple[tuple[tuple[bytes, int], ...], tuple[tuple[bytes, int], ...]]


class DotSet:
    """A set of dots: per actor a contiguous prefix `1..vv[actor]` plus a cloud."""

    __slots__ = ("vv", "cloud")

    def __init__(self) -> None:
        self.vv: dict[bytes, int] = {}
        self.cloud: dict[bytes, set[int]] = {}

    # --- queries ---------------------------------------------------------------------

    def __contains__(self, dot: Dot) -> bool:
        actor, n = dot
        if n <= self.vv.get(actor, 0):
            return True
        extra = self.cloud.get(actor)
        return extra is not None and n in extra

    def has(self, actor: bytes, n: int) -> bool:
        """`(actor, n) in self`, without building the tuple."""
        if n <= self.vv.get(actor, 0):
            return True
        extra = self.cloud.get(actor)
        return extra is not None and n in extra

    def top(self, actor: bytes) -> int:
        """The highest counter of `actor` in the set (0 if none): the next event that
        actor mints for the key is `top + 1`."""
        top = self.vv.get(actor, 0)
        extra = self.cloud.get(actor)
        if extra:
            top = max(top, max(extra))
        return top

    def actors(self) -> list[bytes]:
        return sorted(set(self.vv) | set(self.cloud))

    def __len__(self) -> int:
        """Number of dots."""
        return sum(self.vv.values()) + sum(len(c) for c in self.cloud.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DotSet) and self.pack() == other.pack()

    def __repr__(self) -> str:
        return f"DotSet({self.pack()!r})"

    def covers(self, other: DotSet) -> bool:
        """True if every dot of `other` is in this set."""
        for actor, n in other.vv.items():
            mine = self.vv.get(actor, 0)
            if n > mine:
                extra = self.cloud.get(actor)
                if not extra or any(k not in extra for k in range(mine + 1, n + 1)):
                    return False
        for actor, extra in other.cloud.items():
            for k in extra:
                if not self.has(actor, k):
                    return False
        return True

    def missing_from(self, other: DotSet, limit: int) -> list[Dot] | None:
        """The dots of this set that `other` lacks, at most `limit` of them; None when
        there are more (the caller then sends its whole state instead of a delta)."""
        out: list[Dot] = []
        for actor in self.actors():
            theirs_vv = other.vv.get(actor, 0)
            theirs_cloud = other.cloud.get(actor) or ()
            mine_vv = self.vv.get(actor, 0)
            if mine_vv - theirs_vv > limit + len(theirs_cloud):
                return None
            for k in range(theirs_vv + 1, mine_vv + 1):
                if k not in theirs_cloud:
                    out.append((actor, k))
            for k in sorted(self.cloud.get(actor) or ()):
                if k > theirs_vv and k not in theirs_cloud:
                    out.append((actor, k))
            if len(out) > limit:
                return None
        return out

    # --- updates ---------------------------------------------------------------------

    def add(self, actor: bytes, n: int) -> None:
        """Add one dot (a no-op if present)."""
        top = self.vv.get(actor, 0)
        if n <= top:
            return
        if n == top + 1:
            extra = self.cloud.get(actor)
            if extra:
                n += 1
                while n in extra:
                    extra.discard(n)
                    n += 1
                n -= 1
                if not extra:
                    del self.cloud[actor]
            self.vv[actor] = n
            return
        extra = self.cloud.get(actor)
        if extra is None:
            self.cloud[actor] = {n}
        else:
            extra.add(n)

    def add_all(self, dots: Iterable[Dot]) -> None:
        for actor, n in dots:
            self.add(actor, n)

    def add_prefix(self, actor: bytes, n: int) -> None:
        """Add every dot `(actor, 1..n)`."""
        if n <= self.vv.get(actor, 0):
            return
        extra = self.cloud.get(actor)
        if extra:
            rest = {k for k in extra if k > n}
            while n + 1 in rest:
                rest.discard(n + 1)
                n += 1
            if rest:
                self.cloud[actor] = rest
            else:
                del self.cloud[actor]
        self.vv[actor] = n

    def update(self, other: DotSet) -> None:
        """Union: add every dot of `other`."""
        for actor, n in other.vv.items():
            self.add_prefix(actor, n)
        for actor, extra in other.cloud.items():
            for k in extra:
                self.add(actor, k)

    def copy(self) -> DotSet:
        out = DotSet()
        out.vv = dict(self.vv)
        out.cloud = {a: set(c) for a, c in self.cloud.items()}
        return out

    # --- encoding --------------------------------------------------------------------

    def pack(self) -> Packed:
        """Canonical plain tuples: the vector and the cloud, each sorted."""
        vv = tuple(sorted(self.vv.items()))
        cloud = tuple(sorted((a, k) for a, ks in self.cloud.items() for k in ks))
        return (vv, cloud)

    @classmethod
    def unpack(cls, data: Any) -> DotSet:
        """From `pack`'s pairs, as tuples or as the lists msgpack may give."""
        out = cls()
        vv, cloud = data
        for actor, n in vv:
            out.add_prefix(actor, n)
        for actor, k in cloud:
            out.add(actor, k)
        return out

    @classmethod
    def of(cls, dots: Iterable[Dot]) -> DotSet:
        out = cls()
        out.add_all(dots)
        return out

    def dots(self) -> Iterator[Dot]:
        """Every dot (for tests and small sets)."""
        for actor in self.actors():
            for k in range(1, self.vv.get(actor, 0) + 1):
                yield (actor, k)
            for k in sorted(self.cloud.get(actor) or ()):
                yield (actor, k)
