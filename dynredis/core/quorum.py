"""Pure quorum accounting for one coordinated get or put (cf. riak_kv_get_core).

These classes only count answers; they never send, wait or decode. The node state
machine feeds them replies and asks whether it may answer the client yet.
"""

from __future__ import annotations

from . import clock as dvv
from . import obj as objmod
from .clock import Clock


class GetCore:
    """Tracks the answers to a read sent to `n` replicas, of which `r` must answer.

    An answer is the replica's encoded object, or None for not-found (not-found
    counts as a valid answer, Riak's `notfound_ok`). A failed replica counts against
    the quorum.
    """

    __slots__ = ("n", "r", "answers", "failed", "replied")

    def __init__(self, n: int, r: int) -> None:
        self.n = n
        self.r = r
        self.answers: dict[str, bytes | None] = {}
        self.failed: set[str] = set()
        self.replied = False

    def add(self, node: str, enc: bytes | None) -> None:
        if node not in self.failed:
            self.answers[node] = enc

    def fail(self, node: str) -> None:
        if node not in self.answers:
            self.failed.add(node)

    def enough(self) -> bool:
        """R replicas have answered: the client can be told."""
        return len(self.answers) >= self.r

    def impossible(self) -> bool:
        """Too many replicas failed for R answers ever to arrive."""
        return self.n - len(self.failed) < self.r

    def complete(self) -> bool:
        """Every replica has answered or failed: read repair can run."""
        return len(self.answers) + len(self.failed) >= self.n

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

    def unanimous(self) -> bool:
        """Every answer so far is the same (all not-found, or the same bytes): a read
        repair would find nothing stale."""
        answers = iter(self.answers.values())
        first = next(answers, None)
        for enc in answers:
            if enc != first:
                return False
        return True

    def stale(self, merged_enc: bytes | None) -> list[str]:
        """Replicas whose answer differs from the merged object (read-repair targets)."""
        if merged_enc is None:
            return []
        return sorted(n for n, enc in self.answers.items() if enc != merged_enc)


class PutCore:
    """Tracks acknowledgements of a write sent to `n` replicas, `w` needed."""

    __slots__ = ("n", "w", "acked", "failed", "replied")

    def __init__(self, n: int, w: int) -> None:
        self.n = n
        self.w = w
        self.acked: set[str] = set()
        self.failed: set[str] = set()
        self.replied = False

    def ack(self, node: str) -> None:
        if node not in self.failed:
            self.acked.add(node)

    def fail(self, node: str) -> None:
        if node not in self.acked:
            self.failed.add(node)

    def enough(self) -> bool:
        return len(self.acked) >= self.w

    def impossible(self) -> bool:
        return self.n - len(self.failed) < self.w

    def complete(self) -> bool:
        return len(self.acked) + len(self.failed) >= self.n
