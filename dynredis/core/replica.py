"""The replica side: storing versions a coordinator sends and answering what we hold.

A replica never decides anything about a request: it merges what it is sent (a
causal sync keeps whatever is concurrent, so applying in any order, or twice, ends the
same), answers replica gets with its bytes as they are, and keeps a write meant for a
down primary as a hint (handoff.py). Acknowledgements and answers to one coordinator
share one batch message per event (`Node.batch_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import clock as dvv
from . import header as hdr
from . import messages as m
from . import obj as objmod
from .clock import Clock
from .records import ELEM_BASE

if TYPE_CHECKING:
    from .node import Node


class Replica:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.name = node.name
        self.local = node.local
        self.stats = node.stats

    def handlers(self) -> dict[str, Callable[[str, tuple], None]]:
        return {m.REPLICA_PUTS: self.on_puts, m.REPLICA_GET: self.on_get,
                m.READ_REPAIR: self.on_repair}

    # --- messages ----------------------------------------------------------------------

    def on_puts(self, src: str, msg: tuple) -> None:
        """A coordinator's puts of one turn (messages.REPLICA_PUTS): each stored, or kept
        as a hint for its owner, and acknowledged on its own. One that fails is refused
        alone, the rest still stored; its error is raised once the batch is done. One
        message per batch, not per put: a tuple less to decode and free, one dispatch,
        and what every put read (the acknowledgements' list, the forwards) read once."""
        # A tuple as decoded (the simulation's lists copied into one): items read by
        # index as a tuple's, not through a generic getitem.
        items = tuple(msg[1])
        node = self.node
        me = self.name
        # (transfers.py runs interpreted: its attribute read once a batch, not per put)
        forwarding = bool(node.transfers.forward_to)
        acks: list[Any] | None = None
        error: Exception | None = None
        count = len(items) // m.PUT_FIELDS
        self.stats.replica_puts += count
        owner: str | None  # (typed: compiled, compared as strings, not generically)
        key: bytes
        enc: bytes
        p: int
        for i in range(0, count * m.PUT_FIELDS, m.PUT_FIELDS):
            reqid = items[i]
            key = items[i + 1]
            enc = items[i + 2]
            owner = items[i + 3]
            p = items[i + 4]
            try:
                if owner is None or owner == me:  # (None: ours, writes._queue_put)
                    self.apply(key, enc, p, items[i + 5])
                    if forwarding:
                        node.transfers.forward(key, enc, p)
                else:
                    node.handoff.store(owner, p, key, enc)
            except Exception as exc:
                node.refuse(src, reqid)
                if error is None:
                    error = exc
                continue
            if acks is None:
                acks = node.batch_for(src, m.PUT_ACKS)
            else:
                node.outbox_msgs += 1  # (as batch_for counts each item)
            acks.append(reqid)
        if error is not None:
            raise error

    def on_get(self, src: str, msg: tuple) -> None:
        _, reqid, key, p, owner, have = msg
        self.stats.replica_gets += 1
        node = self.node
        try:
            # The coordinator named its large copy: if ours is the same, its header says
            # so, and the value is neither read nor sent back.
            same = have is not None and self.holds_digest(key, p, owner, have)
            enc = None if same else self.held(key, p, owner)
        except Exception:
            node.refuse(src, reqid)
            raise
        answers = node.batch_for(src, m.GET_ANSWERS)
        answers.append(reqid)
        answers.append(True if same else enc)  # True: what the coordinator holds

    def on_repair(self, src: str, msg: tuple) -> None:
        _, key, enc, p, owner = msg
        if owner == self.name:
            self.apply(key, enc, p)
        else:
            self.node.handoff.store(owner, p, key, enc)

    # --- what a replica does -----------------------------------------------------------

    def held(self, key: bytes, p: int, owner: str) -> bytes | None:
        """What this node holds of `key` as a replica: its own copy, or the hint it
        keeps for `owner`."""
        if owner == self.name:
            return self.local.get_record(p, key)
        return self.node.handoff.held(owner, p, key)

    def holds_digest(self, key: bytes, p: int, owner: str, digest: bytes) -> bool:
        """Whether this node's own copy of `key` is the large object of this digest
        (obj.digest), known from its head: a 100 MB value is not read to find out."""
        if owner != self.name or p >= ELEM_BASE:
            enc = self.held(key, p, owner)
            return enc is not None and objmod.digest(enc) == digest
        head = self.local.head(p, key)
        return head is not None and hdr.is_headed(head) and objmod.digest(head) == digest

    def apply(self, key: bytes, enc: bytes, p: int, base: bytes | None = None) -> None:
        """Merge an incoming version into this replica (sync keeps whatever is concurrent).

        `p` comes with the message: a key's partition depends only on the ring size,
        which is fixed for a cluster's life, so the sender's answer is ours too.
        `base`: the identity (obj.identity) of the version the coordinator built this one
        on. If we hold exactly that, the incoming version covers ours and replaces it
        (the common case of replicas in step, and no decoding: decoding and comparing
        both versions was two thirds of a replica's work).
        """
        if p >= ELEM_BASE:
            self.node.coll.store.merge(p, key, enc)  # a collection's record
            return
        local = self.local
        if hdr.is_headed(enc) or (base is not None and len(base) == hdr.DIGEST_SIZE):
            # What we hold may be large: its head tells whether it is this version or
            # the base, without reading (or copying) its value.
            head = local.head(p, key)
            if head is not None and hdr.is_headed(head):
                if objmod.same(head, enc):
                    return
                if base is not None and objmod.digest(head) == base:
                    local.put(p, key, enc, local.cache.get(key), True)
                    return
                if hdr.is_headed(enc) and self.by_clocks(key, enc, p):
                    return
        lenc = local.get_enc(p, key)
        if lenc is None:
            local.put(p, key, enc, None)
            return
        if lenc == enc:
            return
        if base is not None and objmod.is_identity(lenc, base):
            local.put(p, key, enc, lenc)
            return
        mine = objmod.decode(lenc)
        incoming = objmod.decode(enc)
        # (the key counts' moments from the objects decoded, not from their bytes again)
        if dvv.less(mine, incoming):
            # The common case: the coordinator's write covers everything we hold.
            local.put(p, key, enc, lenc, False, objmod.reads_of(incoming), objmod.reads_of(mine))
            return
        merged = dvv.sync(mine, incoming)
        self.note_siblings(merged)
        menc = objmod.encode(merged)
        if menc != lenc:
            local.put(p, key, menc, lenc, False, objmod.reads_of(merged), objmod.reads_of(mine))

    def by_clocks(self, key: bytes, enc: bytes, p: int) -> bool:
        """Merge a large incoming version into our large copy by their clocks alone, if
        they decide it: the incoming one covers ours (it replaces it), or ours already
        is the merge (nothing changes). True if so; False if their siblings must be
        merged (concurrent versions, or anonymous siblings). A repair, hint or
        anti-entropy of a 100 MB value copied ours out of the store and decoded both
        (four copies: a replica's loop held 275-610 ms of CPU in one event)."""
        incoming = objmod.decode_clock(enc)
        if incoming is None:
            return False
        mine, _ = self.local.get_clock(p, key)
        if mine is None or mine[1]:
            return False
        if dvv.less(mine, incoming):
            self.local.put(p, key, enc, self.local.cache.get(key), True)
            return True
        # The merge keeps, actor by actor, our list of values or a part of it if it
        # keeps our counters and list lengths (the incoming side's come with other
        # counters): then it is ours, whatever the values.
        return _bare(dvv.sync(mine, incoming)) == _bare(mine)

    def note_siblings(self, clock: Clock) -> None:
        """Count an object with many siblings (INFO sibling_warnings). A merge keeps
        every sibling, whatever their number: each was acknowledged to someone, and a
        merge refused would leave replicas apart for good (only a new write is refused
        at the cap, writes.py)."""
        entries = clock[0]
        if len(entries) < 2 and not clock[1] and (not entries or len(entries[0][2]) < 2):
            return
        if dvv.size(clock) > objmod.SIBLING_WARN:
            self.stats.sibling_warnings += 1


def _bare(clock: Clock) -> tuple:
    """A clock's actors, counters and number of values, without the values."""
    return tuple((actor, n, len(vals)) for actor, n, vals in clock[0])
