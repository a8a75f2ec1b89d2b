"""A large version's encoding made a slice a loop turn.

obj.encode copies a large value once, into the new version's encoding, in one call: an
EXPIRE, PERSIST, SETRANGE or APPEND of a 100 MB string held its coordinator's loop
60-70 ms in that copy (most of it the kernel's page faults of the fresh memory) and the
digest over it. An Encoding makes the same bytes into a blank bytes object
(core/filled.py) a step at a time, the digest taken as the bytes go, the
header written in front once the body is all there; the writer (Writes.put) takes a
step of Config.encode_slice bytes (16 MB: about 10 ms of a node's CPU, most of it page
faults of the new encoding) a loop turn, other clients served in between.
"""

from __future__ import annotations

from collections.abc import Callable
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

    __slots__ = ("obj", "pinned", "parts", "out", "view", "part", "offset", "at",
                 "digest", "made")

    def __init__(self, obj: Any, pinned: Pinned | None = None) -> None:
        self.obj = obj
        self.pinned = pinned
        self.made: bytes | None = None
        # (an object without a large value is packed whole, with no piece of its own)
        self.parts: list[Any] = pieces(obj, LARGE_VALUE) if holds_large(obj) else []
        if not self.parts:
            self.made = encode(obj)
        self.out = b""
        self.view: memoryview | None = None
        self.part = 0  # the part being copied
        self.offset = 0  # bytes of it copied
        self.at = hdr.SIZE  # where its next bytes go in `out`
        self.digest = xxh3_128()

    def size(self) -> int:
        """Bytes of the large values' encoding, header excluded."""
        return sum([len(part) for part in self.parts])

    def lasting(self) -> bool:
        """Whether what the encoding copies stays as it is over loop turns: views of a
        stored object it pins itself, or bytes (views of bytes keep them alive). A view
        of a value someone else pinned (RENAME's, heldmoves.Held) may be let go while
        the encoding is made: such a one is made at once."""
        if self.pinned is not None:
            return True
        for part in self.parts:
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
            self._finish(None)
            return True
        if not filled.AVAILABLE:  # no blank bytes to fill here: all of it at once
            self._finish(encode(self.obj))
            return True
        view = self.view
        if view is None:
            self.out = filled.blank(hdr.SIZE + self.size())
            view = self.view = filled.window(self.out)
        parts = self.parts
        digest = self.digest
        at = self.at
        while budget > 0 and self.part < len(parts):
            part = parts[self.part]
            start = self.offset
            n = min(budget, len(part) - start)
            chunk = memoryview(part)[start : start + n]
            view[at : at + n] = chunk
            digest.update(chunk)
            at += n
            budget -= n
            if start + n == len(part):
                self.part += 1
                self.offset = 0
            else:
                self.offset = start + n
        self.at = at
        if self.part < len(parts):
            return False
        view[: hdr.SIZE] = hdr.make_with(*header_times(self.obj), digest.digest())
        view.release()
        self.view = None
        self._finish(self.out)
        return True

    def _finish(self, made: bytes | None) -> None:
        self.made = made if made is not None else b""
        self.parts = []
        self.out = b""
        self.release()

    def result(self) -> bytes | None:
        """The encoding made (None if the store it read from closed first)."""
        return self.made or None

    def release(self) -> None:
        """Let go of the stored object read from (at the end, or when given up)."""
        view = self.view
        if view is not None:
            view.release()
            self.view = None
        if self.pinned is not None:
            self.pinned.release()
            self.pinned = None


class LargePut:
    """A write (Writes.put) whose new version is encoded over loop turns: its arguments,
    what it was built on, and its Encoding; called (by `later`) until the encoding is
    made, then handed back to `writes.encoded`. An object, not a closure naming itself
    (a reference cycle, freed only by the cyclic collector with all it holds)."""

    __slots__ = ("writes", "job", "later", "budget", "key", "ctx", "data", "expire_at",
                 "cb", "w", "p", "new", "base", "was")

    def __init__(self, writes: Any, job: Encoding, later: Callable[[Any], None],
                 budget: int, args: tuple[bytes, Any, Any, int, Any, int],
                 built: tuple[int, Any, bytes | None, int]) -> None:
        self.writes = writes
        self.job = job
        self.later = later
        self.budget = budget
        self.key, self.ctx, self.data, self.expire_at, self.cb, self.w = args
        self.p, self.new, self.base, self.was = built

    def __call__(self, _: Any = None) -> None:
        if self.job.step(self.budget):
            self.writes.encoded(self)
        else:
            self.later(self)
