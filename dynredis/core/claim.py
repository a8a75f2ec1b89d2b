"""Membership changes as plans: what a join, leave, replace or remove moves, and from where.

Riak's `cluster plan` / `commit` (riak_core_claimant): changes are staged, the claimant
computes the ring they lead to and the transfers that get there, and a commit puts
that plan into the ring, where gossip spreads it. Everything here is a pure function
of the ring, the staged changes and the zones, so every node that plans the same
changes on the same ring gets the same plan.

- join X:        X takes partitions from the nodes above an even share (ring.claim:
                 Dynamo's strategy 3, whole partitions, the fewest that balance needs).
- leave X:       X's partitions go to the others; X streams them out, then stops.
- replace X Y:   Y takes exactly X's partitions (nothing else moves).
- remove X:      X is gone for good: its partitions go to the others, rebuilt from the
                 replicas that remain.

A transfer is (partition, target, source): a node that will be a replica of the
partition and is not now (`target`) gets the partition's data from `source`. The
source is the replica the target displaces from the preference list, so that every
write acknowledged by W of the old replicas is held by W of the new ones once the
target has it; when that replica cannot send (removed, or down when the change is
committed), the target gets the partition from every remaining old replica instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NamedTuple

from .ring import Ring, claim, ring_zones

JOIN = "join"
LEAVE = "leave"
REPLACE = "replace"
REMOVE = "remove"
ACTIONS = (JOIN, LEAVE, REPLACE, REMOVE)


class Change(NamedTuple):
    """One staged change: `node` joins, leaves or is removed, or `new` replaces it."""

    action: str
    node: str
    new: str = ""

    def describe(self) -> str:
        return f"{self.action} {self.node}" + (f" {self.new}" if self.new else "")


class Transfer(NamedTuple):
    p: int
    target: str
    source: str


class Plan(NamedTuple):
    ring: Ring  # the ring a commit installs: current owners, `next`, `pending`, `gone`
    transfers: tuple[Transfer, ...]
    warnings: tuple[str, ...]


def check(ring: Ring, staged: Collection[Change], change: Change) -> str | None:
    """Why `change` cannot be staged after `staged` on `ring` (None if it can)."""
    if change.action not in ACTIONS:
        return f"unknown change {change.action!r}"
    members, _ = _after(ring, staged)
    involved = {c.node for c in staged} | {c.new for c in staged if c.new}
    if change.node in involved or (change.new and change.new in involved):
        return f"{change.node} already has a staged change"
    if change.action == JOIN:
        if change.node in members:
            return f"{change.node} is already a member"
        return None
    if change.node not in members:
        return f"{change.node} is not a member"
    if change.action == REPLACE:
        if not change.new or change.new in members:
            return f"{change.new or 'the new node'} must be a node that is not a member"
        return None
    if len(members) <= 1:
        return "the last member cannot leave"
    return None


def _after(ring: Ring, changes: Collection[Change]) -> tuple[list[str], set[str]]:
    """The members after `changes`, and the nodes that leave the ring."""
    members = set(ring.all_members)
    gone: set[str] = set()
    for c in changes:
        if c.action == JOIN:
            members.add(c.node)
        elif c.action in (LEAVE, REMOVE):
            members.discard(c.node)
            gone.add(c.node)
        elif c.action == REPLACE:
            members.discard(c.node)
            members.add(c.new)
            gone.add(c.node)
    return sorted(members), gone


def target_owners(ring: Ring, changes: Collection[Change],
                  zones: Mapping[str, str]) -> tuple[str, ...]:
    """The owners `changes` lead to: replacements first (the new node takes exactly the
    old one's partitions), then a claim with least movement for joins and departures."""
    owners = list(ring.owners)
    for c in changes:
        if c.action == REPLACE:
            owners = [c.new if o == c.node else o for o in owners]
    members, _ = _after(ring, changes)
    swapped = Ring(ring.q, tuple(owners), ring.epoch, ring.claimant, ring.zones)
    if set(owners) == set(members) and not any(c.action == JOIN for c in changes) \
            and (changes or swapped.zones == ring_zones(members, zones)):
        return tuple(owners)
    return claim(members, ring.q, swapped, zones)


def transfers(cur: Ring, nxt: Ring, n: int, unavailable: Collection[str]) -> tuple[Transfer, ...]:
    """The transfers that take `cur`'s replicas to `nxt`'s (see the module docstring);
    `unavailable`: nodes that cannot send (removed, or down)."""
    out: list[Transfer] = []
    for p in range(cur.q):
        old = cur.preference_list(p, n)
        new = nxt.preference_list(p, n)
        added = [x for x in new if x not in old]
        displaced = [x for x in old if x not in new]
        remaining = [x for x in old if x not in unavailable]
        # The list shrinks (fewer members than N after): a displaced replica no target
        # pairs with sends its copy to every replica that stays.
        for d in displaced[len(added):]:
            if d not in unavailable:
                out.extend(Transfer(p, x, d) for x in new)
        for i, target in enumerate(added):
            if i < len(displaced) and displaced[i] not in unavailable:
                out.append(Transfer(p, target, displaced[i]))
            elif i >= len(displaced) and remaining:
                # The list grows (fewer members than N before): every old replica
                # stays, so what W of them acknowledged stays on W; the target takes
                # one's copy, and read repair and anti-entropy do the rest.
                out.append(Transfer(p, target, remaining[0]))
            else:
                out.extend(Transfer(p, target, s) for s in remaining)
    return tuple(out)


def plan(ring: Ring, changes: Collection[Change], n: int, zones: Mapping[str, str],
         down: Collection[str] = (), claimant: str = "") -> Plan:
    """The ring that committing `changes` installs, its transfers and its warnings.

    `down`: nodes the claimant sees down now (they cannot send their partitions, so the
    others send them, as for a removed node)."""
    members, gone = _after(ring, changes)
    owners = target_owners(ring, changes, zones)
    all_zones = dict(zones)
    zone_pairs = ring_zones(set(members) | set(ring.owners), all_zones)
    cur = Ring(ring.q, ring.owners, ring.epoch, ring.claimant, zone_pairs)
    nxt = Ring(ring.q, owners, ring.epoch, ring.claimant, ring_zones(members, all_zones))
    removed = {c.node for c in changes if c.action == REMOVE}
    moves = transfers(cur, nxt, n, removed | set(down))
    # Departing nodes stay members until the ring flips (changes.py); a node that
    # joins again is no longer gone.
    new_gone = tuple(sorted(set(ring.gone) - set(members)))
    installed = Ring(ring.q, ring.owners, ring.epoch + 1, claimant or ring.claimant,
                     zone_pairs, owners, tuple(moves), new_gone)
    return Plan(installed, moves, warnings(nxt, n))


def plan_on_top(ring: Ring, changes: Collection[Change], n: int, zones: Mapping[str, str],
                down: Collection[str] = (), claimant: str = "") -> Plan:
    """Removes committed while a change moves (a node it needs died for good): the
    ring it moves to is planned again without them, and every transfer from the
    current owners to that ring is sent again (the confirmed ones too: simple, and
    merging what a target already holds changes nothing)."""
    base = Ring(ring.q, ring.next, ring.epoch, ring.claimant, ring.zones, gone=ring.gone)
    on_next = plan(base, changes, n, zones, down, claimant)
    zone_pairs = on_next.ring.zones
    cur = Ring(ring.q, ring.owners, ring.epoch, ring.claimant, zone_pairs)
    nxt = Ring(ring.q, on_next.ring.next, ring.epoch, ring.claimant, zone_pairs)
    removed = {c.node for c in changes if c.action == REMOVE}
    moves = transfers(cur, nxt, n, removed | set(down))
    installed = Ring(ring.q, ring.owners, ring.epoch + 1, claimant or ring.claimant,
                     zone_pairs, on_next.ring.next, moves, on_next.ring.gone)
    return Plan(installed, moves, on_next.warnings)


def warnings(nxt: Ring, n: int) -> tuple[str, ...]:
    """What a plan cannot give: N distinct replicas, or replicas in distinct zones."""
    out = []
    members = nxt.members
    if len(members) < n:
        out.append(f"only {len(members)} members for {n} replicas per key")
    zoned = {nxt.zone(x) or "\0" + x for x in members}
    if nxt.zones and len(zoned) >= n:
        short = sum(1 for p in range(nxt.q)
                    if len({nxt.zone(x) or "\0" + x for x in nxt.preference_list(p, n)}) < n)
        if short:
            out.append(f"{short} partitions have replicas in fewer than {n} zones")
    elif nxt.zones:
        out.append(f"only {len(zoned)} zones for {n} replicas per key: "
                   "some replicas share a zone")
    return tuple(out)


def describe(ring: Ring, plan_: Plan, changes: Collection[Change]) -> list[str]:
    """A plan in words, transfers first: partitions moving between each pair of nodes,
    then each member's partitions before and after, then the warnings."""
    lines: list[str] = []
    pairs: dict[tuple[str, str], int] = {}
    for t in plan_.transfers:
        pairs[(t.source, t.target)] = pairs.get((t.source, t.target), 0) + 1
    lines.append(f"transfers: {len(plan_.transfers)}")
    for (src, dst), count in sorted(pairs.items()):
        lines.append(f"  {src} -> {dst}: {count} partitions")
    lines.append("changes:")
    lines.extend(f"  {c.describe()}" for c in changes)
    lines.append("ownership (partitions before -> after):")
    nxt = plan_.ring.next or ring.owners
    for member in sorted(set(ring.owners) | set(nxt)):
        before = sum(1 for o in ring.owners if o == member)
        after = sum(1 for o in nxt if o == member)
        lines.append(f"  {member}: {before} -> {after}")
    lines.extend(f"warning: {w}" for w in plan_.warnings)
    return lines
