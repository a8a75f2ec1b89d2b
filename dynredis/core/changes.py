"""Membership changes through the claimant: staged, planned, committed, then settled.

Riak's claimant (riak_core_claimant): one node, the lowest-named member it sees up,
keeps the staged changes (join, leave, replace, remove: claim.py), shows their plan and
commits it. Any node takes the admin requests and passes them to the claimant it sees
(`adm`/`ada`). A commit installs the plan in the ring (one epoch up): the ring then
carries the owners it moves to (`next`) and the transfers not yet confirmed
(`pending`), and gossip spreads it. The sources stream their partitions
(transfers.py) and tell the claimant which transfers the targets confirmed (`xd`);
each report that clears transfers is a new ring version, and once none is left the
claimant flips the ring to its next owners. Only one change runs at a time.

Two claimants can be at work at once (the two sides of a network partition each see
their own lowest-named member up); when their rings meet, the higher version wins,
and a claimant whose committed change the winner does not carry submits it again
(`follow_up`), so no change answered "committed" is silently dropped.

Members that join by gossip (a node started with seeds) are committed at once by the
claimant: as a plain claim while the members fit in one preference list (nobody's
replicas move away, so there is nothing to transfer), as a planned join otherwise (and so
is the claim that members' new zones call for).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from . import messages as m
from .claim import ACTIONS, JOIN, LEAVE, REMOVE, REPLACE, Change, check, describe, plan, plan_on_top
from .inflight import overdue
from .ring import Ring, ring_zones

if TYPE_CHECKING:
    from .node import Node

AdminCallback = Callable[[tuple[str | None, list[str]]], Any]

OPS = (*ACTIONS, "plan", "commit", "clear", "show")
META_KEY = "committed_changes"  # engine metadata: see Changes.follow_up


class AdminOp:
    __slots__ = ("reqid", "cb", "deadline")

    def __init__(self, reqid: int, cb: AdminCallback, deadline: int) -> None:
        self.reqid = reqid
        self.cb = cb
        self.deadline = deadline


class Changes:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.name = node.name
        self.staged: list[Change] = []
        self.pending: dict[int, AdminOp] = {}
        # Changes this node committed as the claimant, until a settled ring carries
        # them out, and those a concurrent claimant's ring replaced (see `follow_up`).
        # Kept in the engine's metadata, so a claimant that restarts still knows them.
        self.committed: list[Change] = []
        self.lost: list[Change] = []
        self.load()
        self.seen_version: tuple[int, str] = (0, "")
        self.resubmit_at = 0

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.ADMIN: self.on_admin, m.ADMIN_ANSWER: self.on_answer,
                m.TRANSFERS_DONE: self.on_done}

    # --- who decides -------------------------------------------------------------------

    def claimant(self) -> str:
        """The lowest-named member this node sees up (itself if none)."""
        ms = self.node.membership
        gone = set(ms.ring.gone)
        up = [x for x in ms.members if x not in ms.down and x not in gone]
        return min(up) if up else self.name

    # --- admin requests ------------------------------------------------------------------

    def admin(self, op: str, args: list[str], cb: AdminCallback) -> None:
        """Run an admin request at the claimant; `cb((error or None, lines))`."""
        node = self.node
        leader = self.claimant()
        if leader == self.name:
            node.done.append((cb, self.run(op, args)))
            return
        reqid = node.next_reqid()
        self.pending[reqid] = AdminOp(reqid, cb, node.deadline())
        node.send(leader, m.admin(reqid, op, tuple(args)))

    def on_admin(self, src: str, msg: tuple) -> None:
        _, reqid, op, args = msg
        err: str | None
        lines: list[str]
        if self.claimant() != self.name:
            err, lines = f"not the claimant (ask {self.claimant()})", []
        else:
            err, lines = self.run(_s(op), [_s(a) for a in args])
        self.node.send(src, m.admin_answer(reqid, err, tuple(lines)))

    def on_answer(self, src: str, msg: tuple) -> None:
        _, reqid, err, lines = msg
        op = self.pending.pop(reqid, None)
        if op is not None:
            self.node.done.append((op.cb, (_s(err) if err is not None else None,
                                           [_s(x) for x in lines])))

    def expire(self, now: int) -> None:
        for op in overdue(self.pending, now):
            del self.pending[op.reqid]
            self.node.done.append((op.cb, ("the claimant did not answer in time", [])))

    def run(self, op: str, args: list[str]) -> tuple[str | None, list[str]]:
        """One admin request, at the claimant."""
        ring = self.node.ring
        if op in ACTIONS:
            want = 2 if op == "replace" else 1
            if len(args) != want:
                return f"{op} takes {want} node name{'s' if want > 1 else ''}", []
            change = Change(op, args[0], args[1] if want == 2 else "")
            if change in self.staged:  # the same request again (a resubmission)
                return None, [f"staged: {change.describe()}"]
            err = check(ring, self.staged, change)
            if err is not None:
                return err, []
            self.staged.append(change)
            return None, [f"staged: {change.describe()}"]
        if op == "clear":
            self.staged.clear()
            return None, ["cleared"]
        if op == "show":
            return None, self.status_lines()
        if op not in ("plan", "commit"):
            return f"unknown admin request {op!r}", []
        if not self.staged:
            return "no changes staged", []
        if ring.next and not all(c.action == REMOVE for c in self.staged):
            return (f"a change is in progress ({len(ring.pending)} transfers left): only "
                    "removes can be committed meanwhile", [])
        planned = self.plan_now()
        lines = describe(ring, planned, self.staged)
        if op == "plan":
            return None, lines
        self.install(planned.ring)
        self.committed.extend(self.staged)
        self.seen_version = planned.ring.version
        self.save()
        self.staged.clear()
        return None, ["committed", *lines]

    def plan_now(self) -> Any:
        ms = self.node.membership
        how = plan_on_top if ms.ring.next else plan
        return how(ms.ring, self.staged, self.node.cfg.n, ms.zones, ms.down, self.name)

    def status_lines(self) -> list[str]:
        ring = self.node.ring
        lines = [f"claimant: {self.claimant()}", f"ring epoch: {ring.epoch}",
                 "staged: " + (", ".join(c.describe() for c in self.staged) or "none")]
        if ring.next:
            lines.append(f"change in progress: {len(ring.pending)} transfers left")
        else:
            lines.append("change in progress: none")
        return lines

    # --- committing and settling -----------------------------------------------------------

    def install(self, ring: Ring) -> None:
        """Put a ring in force here and tell every member (new ones included) at once."""
        ms = self.node.membership
        if ring.next and not ring.pending:
            ring = self.flipped(ring)
        ms.members |= set(ring.all_members)
        ms.set_ring(ring)
        ms.forget_gone()
        msg = ms.gossip_message()
        for peer in set(ms.members) | set(ring.gone):
            if peer != self.name:
                self.node.send(peer, msg)

    def flipped(self, ring: Ring) -> Ring:
        """The ring once every transfer is confirmed: its next owners in force."""
        zones = dict(ring.zones)
        gone = set(ring.gone) | (set(ring.owners) - set(ring.next))
        return Ring(ring.q, ring.next, ring.epoch + 1, self.name,
                    ring_zones(set(ring.next), zones), gone=tuple(sorted(gone)))

    def on_done(self, src: str, msg: tuple) -> None:
        """A source's confirmed transfers: clear them from the ring (the claimant only)."""
        ring = self.node.ring
        if not ring.next or self.claimant() != self.name:
            return
        done = {(int(p), _s(t), src) for p, t in msg[1]}
        left = tuple(x for x in ring.pending if x not in done)
        if len(left) == len(ring.pending):
            return
        self.install(Ring(ring.q, ring.owners, ring.epoch + 1, self.name, ring.zones,
                          ring.next, left, ring.gone))

    # --- commits lost to a concurrent claimant ------------------------------------------

    def load(self) -> None:
        raw = self.node.engine.meta_get(META_KEY)
        if raw:
            committed, lost = msgpack.unpackb(raw)
            self.committed = [Change(*(_s(x) for x in c)) for c in committed]
            self.lost = [Change(*(_s(x) for x in c)) for c in lost]

    def save(self) -> None:
        self.node.engine.meta_put(META_KEY, msgpack.packb(
            ([tuple(c) for c in self.committed], [tuple(c) for c in self.lost])))

    def follow_up(self, now: int) -> None:
        """Keep track of the changes this node committed until a settled ring carries
        them out, and submit again those a ring of another claimant replaced.

        Two nodes can be claimants at once (each the lowest-named member it sees up:
        the two sides of a network partition) and commit different changes; when the
        sides meet, the ring of the higher version wins and the other commit is gone
        from the ring, though it was answered "committed". Its claimant notices (the
        ring in force no longer leads to what it committed) and submits it again to
        the claimant of the day, once no change is moving, until a ring carries it out
        or it no longer applies (a node to leave that is gone already)."""
        ring = self.node.ring
        if ring.version != self.seen_version and (self.committed or self.lost):
            self.seen_version = ring.version
            keep = []
            lost = list(self.lost)
            for change in self.committed:
                if not carried(ring, change):
                    lost.append(change)
                elif ring.next:
                    keep.append(change)  # on its way: look again at the flip
            lost = [r for r in (remainder(ring, c) for c in lost)
                    if r is not None and check(ring, [], r) is None]
            if keep != self.committed or lost != self.lost:
                self.committed = keep
                self.lost = lost
                self.save()
        if not self.lost or now < self.resubmit_at or self.node.membership.left:
            return
        if ring.next and not all(c.action == REMOVE for c in self.lost):
            return
        self.resubmit_at = now + 2 * self.node.cfg.handoff_interval_ms
        for change in self.lost:
            args = [change.node, change.new] if change.new else [change.node]
            self.admin(change.action, args, _ignore)
        self.admin("commit", [], _ignore)

    def tick(self) -> None:
        """At the claimant: transfers whose source is down are sent instead by every
        other current replica of their partition that is not down (as for a removed
        node), so a source that died for good does not hold a change up forever."""
        ms = self.node.membership
        ring = ms.ring
        if not ring.next or not ms.down or self.claimant() != self.name:
            return
        down = ms.down
        if not any(s in down for _, _, s in ring.pending):
            return
        n = self.node.cfg.n
        out: list[tuple[int, str, str]] = []
        for p, t, s in ring.pending:
            if s not in down:
                out.append((p, t, s))
                continue
            others = [x for x in ring.preference_list(p, n) if x != s and x not in down]
            if not others:
                out.append((p, t, s))
            out.extend((p, t, x) for x in others if x != t)
        left = tuple(dict.fromkeys(out))
        if left != ring.pending:
            self.install(Ring(ring.q, ring.owners, ring.epoch + 1, self.name, ring.zones,
                              ring.next, left, ring.gone))

    def auto_join(self, joiners: list[str]) -> bool:
        """Commit the join of members met by gossip, or (none) the claim members'
        new zones call for (see the module docstring); False while a change is in
        progress."""
        ms = self.node.membership
        ring = ms.ring
        if ring.next:
            return False
        changes = [Change(JOIN, x) for x in sorted(joiners)]
        planned = plan(ring, changes, self.node.cfg.n, ms.zones, ms.down, self.name)
        self.install(planned.ring)
        return True


def carried(ring: Ring, change: Change) -> bool:
    """True if `ring` leads to what `change` asks (once its own change is done)."""
    return remainder(ring, change) is None


def remainder(ring: Ring, change: Change) -> Change | None:
    """What is left to do of `change` on `ring` (None: nothing). A replace half done
    (the new node joined by itself meanwhile, or the old one is gone) is the other
    half: the old node's leave, or the new node's join."""
    members = set(ring.next_ring().members)
    if change.action == JOIN:
        return None if change.node in members else change
    if change.action == REPLACE:
        old_in, new_in = change.node in members, change.new in members
        if old_in and new_in:
            return Change(LEAVE, change.node)
        if not old_in:
            return None if new_in else Change(JOIN, change.new)
        return change
    return change if change.node in members else None  # leave, remove


def _ignore(result: tuple[str | None, list[str]]) -> None:
    """A resubmitted change's answer: its outcome shows in the ring (`follow_up`)."""


def _s(x: str | bytes) -> str:
    return x.decode() if isinstance(x, bytes) else x
