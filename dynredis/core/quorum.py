"""Quorum decisions for one coordinated read or write (what riak_kv_get_core is to Riak).

Every decision about a request's outcome is made here, and only here: adding an
answer, counting a failure, "enough?", the reply (the merged object, or the NOQUORUM
error and its text), failing as soon as quorum has become impossible rather than at the
timeout, and which replicas a read repairs. These classes never send, wait or read a
clock; the coordinator (reads.py, writes.py) feeds them events and carries out what
they decide.

A failure is a replica that will not answer: its link went down (`peer_down`), or it
answered that it could not do the request. A replica's first event counts: an answer
after a failure, or a failure after an answer, changes nothing.
"""

from __future__ import annotations

from . import clock as dvv
from . import obj as objmod
from .clock import Clock

Result = tuple[str | None, Clock | None]
"""What a coordinated operation ends with: (error or None, object or None)."""


def noquorum(what: str, got: int, need: int, n: int) -> str:
    """The error of a request that cannot reach its quorum (dynredis' own error code)."""
    return f"NOQUORUM {what} needed {need} of {n} replicas, got {got}"


TIMED_OUT = " before timeout"


def unreachable(what: str, up: int, need: int, nval: int) -> Result | None:
    """The reply of a request that cannot start: fewer replicas up than it needs."""
    if up >= need:
        return None
    return noquorum(what, up, need, nval), None


class GetCore:
    """A read sent to `n` replicas, of which `r` must answer; `nval` is the N named
    in errors (the configured N, which `n` is at most).

    An answer is the replica's encoded object, or None for not-found (not-found counts
    as a valid answer, Riak's `notfound_ok`).
    """

    __slots__ = ("n", "r", "nval", "answers", "failed", "replied")

    def __init__(self, n: int, r: int, nval: int = 0) -> None:
        self.n = n
        self.r = r
        self.nval = nval or n
        self.answers: dict[str, bytes | None] = {}
        # Failures are rare: a tuple, shared empty until the first (no set made and
        # freed per request, about 300 instructions).
        self.failed: tuple[str, ...] = ()
        self.replied = False

    def add(self, node: str, enc: bytes | None) -> None:
        if not self.failed or node not in self.failed:
            self.answers[node] = enc

    def fail(self, node: str) -> None:
        if node not in self.answers and node not in self.failed:
            self.failed = (*self.failed, node)

    def enough(self) -> bool:
        """R replicas have answered: the client can be told."""
        return len(self.answers) >= self.r

    def impossible(self) -> bool:
        """Too many replicas failed for R answers ever to arrive."""
        return self.n - len(self.failed) < self.r

    def complete(self) -> bool:
        """Every replica has answered or failed: nothing more will come."""
        return len(self.answers) + len(self.failed) >= self.n

    def decide(self, known: tuple[bytes, Clock] | None = None) -> Result | None:
        """The client's reply, the first time it is decided: the merge of the answers
        once R came, the NOQUORUM error once R can no longer come; None while it is
        open or after it was given."""
        if self.replied:
            return None
        if len(self.answers) >= self.r:
            self.replied = True
            return None, self.merged(known)[0]
        if self.n - len(self.failed) < self.r:
            self.replied = True
            return noquorum("read", len(self.answers), self.r, self.nval), None
        return None

    def timed_out(self) -> Result | None:
        """The reply at the request's deadline: NOQUORUM, unless one was given."""
        if self.replied:
            return None
        self.replied = True
        return noquorum("read", len(self.answers), self.r, self.nval) + TIMED_OUT, None

    def merged(
        self, known: tuple[bytes, Clock] | None = None
    ) -> tuple[Clock | None, bytes | None]:
        """The sync of every answer so far, and its encoding (None, None if none found).

        `known` is an (encoding, clock) pair the caller already decoded (the
        coordinator's own copy), so the common all-replicas-agree case decodes nothing.
        """
        if known is not None:
            # The common case: every replica that found the key holds exactly the
            # caller's copy. Compared, not hashed into a set (no set, no hashes).
            kenc = known[0]
            found = False
            for enc in self.answers.values():
                if enc is not None:
                    if enc != kenc:
                        break
                    found = True
            else:
                return (known[1], kenc) if found else (None, None)
        distinct = {enc for enc in self.answers.values() if enc is not None}
        if not distinct:
            return None, None
        if len(distinct) == 1:
            (enc,) = distinct
            if known is not None and known[0] == enc:
                return known[1], enc
            return objmod.decode(enc), enc
        merged = dvv.sync_all([objmod.decode(e) for e in sorted(distinct)])
        return merged, objmod.encode(merged)

    def holds_only(self, enc: bytes | None) -> bool:
        """Every replica that found the key answered `enc` (None: none found it): the
        merge is `enc`'s object (`merged`'s common case, told without decoding)."""
        for answer in self.answers.values():
            if answer is not None and answer != enc:
                return False
        return True

    def unanimous(self) -> bool:
        """Every answer so far is the same (all not-found, or the same bytes): a read
        repair would find nothing stale."""
        # A plain loop over the values (compiled: iter() and next() cost two builtin
        # lookups and a generic walk).
        first: bytes | None = None
        seen = False
        for enc in self.answers.values():
            if not seen:
                first = enc
                seen = True
            elif enc != first:
                return False
        return True

    def stale(self, merged_enc: bytes | None) -> list[str]:
        """Replicas whose answer differs from the merged object."""
        if merged_enc is None:
            return []
        return sorted(n for n, enc in self.answers.items() if enc != merged_enc)

    def repairs(self, known: tuple[bytes, Clock] | None, now: int
                ) -> tuple[bytes, list[str]] | None:
        """Read repair: the merged object's encoding and the replicas to send it to
        (None: nothing to repair).

        Run once the read is over (every replica answered or failed, or the deadline
        passed), with whatever answers came: only replicas that answered are repaired
        (one that said nothing may hold anything), those whose answer differs from the
        merge. A dead object (deleted or expired) never goes to a replica that answered
        not-found: nothing reads the same, and it could revive a reaped key's old clock
        there."""
        if len(self.answers) < 2 or self.unanimous():
            return None
        merged, menc = self.merged(known)
        if merged is None or menc is None:
            return None
        targets = self.stale(menc)
        if objmod.dead_since(merged, now) is not None:
            targets = [x for x in targets if self.answers[x] is not None]
        return (menc, targets) if targets else None


class PutCore:
    """A write sent to `n` replicas, `w` acknowledgements needed; `nval` as GetCore's."""

    __slots__ = ("n", "w", "nval", "acked", "failed", "replied")

    def __init__(self, n: int, w: int, nval: int = 0) -> None:
        self.n = n
        self.w = w
        self.nval = nval or n
        # A few names each (n is at most 16): a list and a tuple (failures are rare:
        # shared empty until the first) cost less to make, fill and free than two sets,
        # once per write.
        self.acked: list[str] = []
        self.failed: tuple[str, ...] = ()
        self.replied = False

    def ack(self, node: str) -> None:
        # (compiled: a loop of string compares; `in` a list is a generic call)
        if self.failed and node in self.failed:
            return
        for name in self.acked:
            if name == node:
                return
        self.acked.append(node)

    def fail(self, node: str) -> None:
        if node not in self.acked and node not in self.failed:
            self.failed = (*self.failed, node)

    def enough(self) -> bool:
        return len(self.acked) >= self.w

    def impossible(self) -> bool:
        return self.n - len(self.failed) < self.w

    def complete(self) -> bool:
        return len(self.acked) + len(self.failed) >= self.n

    def decide(self, obj: Clock) -> Result | None:
        """The client's reply, the first time it is decided: `obj` (the version
        written) once W acknowledged, the NOQUORUM error once W no longer can; None
        while open or after it was given."""
        if self.replied:
            return None
        if len(self.acked) >= self.w:
            self.replied = True
            return None, obj
        if self.n - len(self.failed) < self.w:
            self.replied = True
            return noquorum("write", len(self.acked), self.w, self.nval), None
        return None

    def timed_out(self) -> Result | None:
        if self.replied:
            return None
        self.replied = True
        return noquorum("write", len(self.acked), self.w, self.nval) + TIMED_OUT, None
