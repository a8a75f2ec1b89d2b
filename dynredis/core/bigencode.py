"""A large version's encoding made a slice a loop turn.

obj.encode copies a large value once, into the new version's encoding, in one call: an
EXPIRE, PERSIST, SETRANGE or APPEND of a 100 MB string held its coordinator's loop
60-70 ms in that copy (most of it the kernel's page faults of the fresh memory) and the
digest over it. An Encoding makes the same bytes into a blank bytes object
(core/filled.py) a step at a time, the digest taken as the bytes go, the
header written in front once the body is all there; the writer (Writes.put) takes a
step of Config.encode_slice bytes (filled.COPY_SLICE) a loop turn, other clients served
in between.
"""

from __future__ import annotations

from typing import Any

from xxhash import xxh3_128

from . import filled
from . import header as hdr
from .engine import Pinned
from .obj import LARGE_VALUE, encode, header_times, holds_large
from .pieces import pieces


class Encoding:
    """obj.encode(obj), made `step` by `step`; `result()` once a step answered True.
    `pinned`: the stored object whose views `obj` holds (LocalStore.encoding_in_place),
    kept until the encoding is made or `release`d."""

    __slots__ = ("obj", "pinned", "joining", "digest", "made")

    def __init__(self, obj: Any, pinned: Pinned | None = None) -> None:
        self.obj = obj
        self.pinned = pinned
        self.made: bytes | None = None
        self.digest = xxh3_128()
        # (an object without a large value is packed whole, with no piece of its own)
        parts: list[Any] = pieces(obj, LARGE_VALUE) if holds_large(obj) else []
        self.joining = filled.Joining(parts, hdr.SIZE, self.digest.update)
        if not parts:
            self.made = encode(obj)

    def size(self) -> int:
        """Bytes of the large values' encoding, header excluded."""
        return self.joining.size()

    def lasting(self) -> bool:
        """Whether what the encoding copies stays as it is over loop turns: views of a
        stored object it pins itself, or bytes (views of bytes keep them alive). A view
        of a value someone else pinned (RENAME's, heldmoves.Held) may be let go while
        the encoding is made: such a one is made at once."""
        if self.pinned is not None:
            return True
        for part in self.joining.parts:
            if type(part) is memoryview and type(part.obj) is not bytes:
                return False
        return True

    def step(self, budget: int) -> bool:
        """Copy up to `budget` bytes more; True once the encoding is made (or the store
        the values are viewed in is gone: `result()` is then None)."""
        if self.made is not None:
            return True
        pinned = self.pinned
        if pinned is not None and not pinned.alive():
            self._finish(b"")
            return True
        joining = self.joining
        if not joining.step(budget):
            return False
        joining.put_head(hdr.make_with(*header_times(self.obj), self.digest.digest()))
        self._finish(joining.result())
        return True

    def _finish(self, made: bytes) -> None:
        self.made = made
        self.release()

    def result(self) -> bytes | None:
        """The encoding made (None if the store it read from closed first)."""
        return self.made or None

    def release(self) -> None:
        """Let go of the stored object read from (at the end, or when given up)."""
        self.joining.release()
        if self.pinned is not None:
            self.pinned.release()
            self.pinned = None


class LargePut:
    """A write (Writes.put) whose new version is encoded over loop turns: its arguments,
    what it was built on, and its Encoding; called (by `later`) until the encoding is
    made, then handed back to `writes.encoded`. An object, not a closure naming itself
    (a reference cycle, freed only by the cyclic collector with all it holds)."""

    __slots__ = ("writes", "job", "key", "ctx", "data", "expire_at", "cb", "w", "p", "new",
                 "base", "was")

    def __init__(self, writes: Any, job: Encoding, args: tuple[bytes, Any, Any, int, Any, int],
                 built: tuple[int, Any, bytes | None, int]) -> None:
        self.writes = writes
        self.job = job
        self.key, self.ctx, self.data, self.expire_at, self.cb, self.w = args
        self.p, self.new, self.base, self.was = built

    def __call__(self, _: Any = None) -> None:
        writes = self.writes
        if self.job.step(writes.cfg.encode_slice):
            writes.encoded(self)
        else:
            writes.node.coll.later(self)
