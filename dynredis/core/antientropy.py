"""Anti-entropy (Dynamo §4.7): replicas compare hash trees and exchange only what differs.

Every `ae_interval_ms` a node takes the next partition it is a primary for (round
robin) and walks its hash tree (merkle.py) against a random up fellow primary's, level
by level, asking only for the subtrees whose hashes differ, down to the leaf buckets;
then it compares the buckets' (key, hash) items, and both sides send each other their
copy of every key that differs (a read repair, merged by the receiver). A dead object
is sent only to a replica that holds the key: it would revive a reaped key's old clock
on one that has nothing. Trees hash heads (localstore.py): a large object by its
header, which holds its digest, so no value is read to be compared.

    A -> B  ("ael", reqid, p, depth, indices)   B's hashes at depth -> ("aelr", ...)
    ... until the differing leaf buckets are known ...
    A -> B  ("aeb", reqid, p, buckets)          B's bucket items    -> ("aebr", ...)
    A -> B  ("aew", p, [(key, A holds it)])     B sends its copies: ("rp", ...)
    A -> B  ("rp", key, enc, p, B)              A's copies of what differs
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import messages as m
from . import obj as objmod
from .inflight import overdue
from .merkle import DiffWalk, compare_buckets
from .records import ELEM_BASE, base_partition

if TYPE_CHECKING:
    from .node import Node


# What one exchange repairs at most: its differing leaf buckets asked for, and the keys
# sent each way. The rest differs still at the next exchange (every ae_interval_ms). A
# DEL or a bulk removal of a 200,000-element collection is stripped by each replica at its
# own pace, so for a while every record differs: repairing them all in one exchange had
# the peers send and merge 200,000 records in one turn (1.2-1.4 s).
AE_BUCKETS_MAX = 64
AE_KEYS_MAX = 2048
# Entries (key, digest) one exchange's buckets hold at most, by the tree's mean: a
# partition holding a million-element collection's records has ~1,000 a bucket, and 64
# of them listed, sorted and sent held the peer 60-100 ms (keys past AE_KEYS_MAX were
# compared for nothing).
AE_ENTRIES_MAX = 8192
# Unfolded writes of a partition an exchange folds into its tree at most (its own and the
# peer's side); a partition with more is not exchanged until the ticks folded them
# (LocalStore.tree_within: a walk stripping a 200,000-element collection leaves that
# many in one partition, and folding them at once held the node 110-170 ms).
AE_FOLD_MAX = 4096


class Exchange:
    """One exchange this node drives with a peer for one partition."""

    __slots__ = ("reqid", "p", "peer", "walk", "deadline")

    def __init__(self, reqid: int, p: int, peer: str, walk: DiffWalk, deadline: int) -> None:
        self.reqid = reqid
        self.p = p
        self.peer = peer
        self.walk = walk
        self.deadline = deadline


class AntiEntropy:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.local = node.local
        self.stats = node.stats
        self.pending: dict[int, Exchange] = {}
        self.cursor = 0  # the next partition to consider
        self.next_exchange = 0
        # The last exchange that ran to its end (`dynredis admin status` shows it):
        # when (node time, ms; -1 for never), with which peer, for which partition.
        self.last_done = -1
        self.last_peer = ""
        self.last_partition = -1

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.AE_LEVEL: self.on_level, m.AE_LEVEL_REPLY: self.on_level_reply,
                m.AE_BUCKETS: self.on_buckets, m.AE_BUCKETS_REPLY: self.on_buckets_reply,
                m.AE_WANT: self.on_want}

    # --- the driving side ------------------------------------------------------------

    def tick(self, now: int) -> None:
        if now >= self.next_exchange:
            self.next_exchange = now + self.node.cfg.ae_interval_ms
            self.start()

    def start(self) -> None:
        """Compare one partition's hash tree with another replica's (round robin over the
        partitions this node is a primary for)."""
        node = self.node
        ring = node.membership.ring
        down = node.membership.down
        q = ring.q
        n = node.cfg.n
        for _ in range(q):
            p = self.cursor
            self.cursor = (p + 1) % q
            primaries = ring.preference_list(p, n)
            if node.name not in primaries:
                continue
            peers = [x for x in primaries if x != node.name and x not in down]
            if not peers:
                return
            peer = node.rng.choice(peers)
            local = self.local
            # A partition with a backlog of unfolded writes waits for the ticks to fold
            # them (AE_FOLD_MAX); its next turn comes round.
            if local.backlog(p) <= AE_FOLD_MAX:
                self.exchange(p, peer)
            ep = ELEM_BASE + p
            if local.holds(ep) and local.backlog(ep) <= AE_FOLD_MAX:
                self.exchange(ep, peer)  # collections' records, if this node holds any
            return

    def exchange(self, p: int, peer: str) -> None:
        node = self.node
        op = Exchange(node.next_reqid(), p, peer, DiffWalk(self.local.tree_within(p, AE_FOLD_MAX)),
                      node.deadline())
        self.pending[op.reqid] = op
        self.stats.ae_exchanges += 1
        depth, indices = op.walk.request()  # type: ignore[misc]
        node.send(peer, m.ae_level(op.reqid, p, depth, indices))

    def on_level_reply(self, src: str, msg: tuple) -> None:
        _, reqid, depth, hashes = msg
        op = self.pending.get(reqid)
        if op is None or op.walk.done or depth != op.walk.depth:
            return  # a duplicated or late answer to an earlier step
        self.local.tree_within(op.p, AE_FOLD_MAX)  # writes landed since the last step
        try:
            op.walk.feed(list(hashes))
        except ValueError:
            del self.pending[reqid]  # trees of different shapes: nothing to compare
            return
        req = op.walk.request()
        if req is not None:
            self.node.send(op.peer, m.ae_level(reqid, op.p, req[0], req[1]))
        elif op.walk.buckets:
            tree = op.walk.tree
            del op.walk.buckets[max(1, min(AE_BUCKETS_MAX, AE_ENTRIES_MAX * tree.segments
                                           // max(1, len(tree)))):]
            self.node.send(op.peer, m.ae_buckets(reqid, op.p, op.walk.buckets))
        else:
            del self.pending[reqid]
            self.done(op)  # the trees agree

    def on_buckets_reply(self, src: str, msg: tuple) -> None:
        _, reqid, remote = msg
        op = self.pending.pop(reqid, None)
        if op is None:
            return
        self.done(op)
        tree = self.local.tree_within(op.p, AE_FOLD_MAX)
        keys: list[bytes] = []
        for index, theirs in zip(op.walk.buckets, remote, strict=False):
            mine = tree.bucket(index)
            self.stats.ae_keys_compared += len(mine) + len(theirs)
            keys.extend(compare_buckets(mine, theirs))
            if len(keys) >= AE_KEYS_MAX:
                del keys[AE_KEYS_MAX:]
                break
        if not keys:
            return
        self.stats.ae_keys_repaired += len(keys)
        theirs_keys = {item[0] for items in remote for item in items}
        # Both directions: send what we hold, ask for what they hold; each side merges.
        wanted = [(key, self.send_copy(op.peer, op.p, key, key in theirs_keys))
                  for key in keys]
        self.node.send(op.peer, m.ae_want(op.p, wanted))

    def done(self, op: Exchange) -> None:
        self.last_done = self.node.now
        self.last_peer = op.peer
        self.last_partition = base_partition(op.p)  # (a collection records exchange: its ring partition)

    def wiped(self) -> None:
        """End the exchanges under way: their walks hold the trees a wipe let go of (an
        answer then made the walk read a tree whose sums were gone: IndexError in the
        peer link's reader at FLUSHALL)."""
        self.pending.clear()

    def expire(self, now: int) -> None:
        """Forget exchanges whose peer stopped answering (the next round starts anew)."""
        late = overdue(self.pending, now)
        for op in late:
            del self.pending[op.reqid]
        self.node.stats.timeouts += len(late)

    # --- the answering side ----------------------------------------------------------

    def on_level(self, src: str, msg: tuple) -> None:
        _, reqid, p, depth, indices = msg
        hashes = self.local.tree_within(p, AE_FOLD_MAX).level(depth, list(indices))
        self.node.send(src, m.ae_level_reply(reqid, depth, hashes))

    def on_buckets(self, src: str, msg: tuple) -> None:
        _, reqid, p, buckets = msg
        tree = self.local.tree_within(p, AE_FOLD_MAX)
        self.node.send(src, m.ae_buckets_reply(reqid, tree.buckets(list(buckets))))

    def on_want(self, src: str, msg: tuple) -> None:
        _, p, wanted = msg
        for key, they_have in wanted:
            self.send_copy(src, p, key, they_have)

    def send_copy(self, peer: str, p: int, key: bytes, they_have: Any) -> bool:
        """Send `peer` our copy of `key` to merge; True if we hold one.

        A dead object (deleted or expired) never goes to a replica that has nothing:
        nothing reads the same, and it could revive a reaped key's old clock there.
        (Whether it is dead is read from its head: a large value is read only to be
        sent.)"""
        local = self.local
        node = self.node
        if p >= ELEM_BASE:
            # (a collection's records are sent whatever they hold: a bare element or a
            # removal record revives nothing)
            record = local.get_record(p, key)
            if record is None:
                return False
            node.send(peer, m.read_repair(key, record, p, peer))
            return True
        head = local.head(p, key)
        if head is None:
            return False
        if node.writes.sending_copy(key, peer, head):
            return True  # a write of ours is bringing them this very copy
        if they_have or objmod.dead_since_enc(head, node.now) is None:
            enc = local.get_enc(p, key)
            if enc is not None:
                node.send(peer, m.read_repair(key, enc, p, peer))
        return True
