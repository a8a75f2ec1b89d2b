"""Bitmap commands on a large string value left in the store (core/shape.Unread).

GETBIT, SETBIT, BITFIELD or BITCOUNT of a few bytes of a 100 MB value read all of it (a
copy out of the store and one decoding it: 65-100 ms of a node's loop, bench/stalls.py)
to use one byte. Here only the bytes a command concerns are read, in place
(Node.stored_range), and a write gives the bytes it changes over the value left in the
store (shape.Spliced: copied from there once into the new version, as SETRANGE's). A
count or search over many bytes (BITCOUNT of a whole value) reads a slice per loop
turn, other clients' requests running in between.

Where the key holds another object by the time a read is made, the answer is None:
the command then runs again on the key read whole.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.obj import LARGE_VALUE
from ..core.pieces import Joined, splice, whole
from ..core.shape import Spliced, Unread
from . import bitops
from .bitops import FieldOp, Span
from .context import Context

SLICE = 1 << 20
"""Bytes counted or searched per loop turn: popcount takes about 1.5 ms per MiB."""


class Stored:
    """A large value left in the store, as a command of `c` reads it."""

    __slots__ = ("c", "key", "value", "size")

    def __init__(self, c: Context, key: bytes, value: Unread) -> None:
        self.c = c
        self.key = key
        self.value = value
        self.size = value.size

    def read(self, lo: int, hi: int) -> bytes | None:
        """Bytes [lo, hi), read in place; None if the key holds another object now."""
        return self.c.node.stored_range(self.key, self.value, lo, hi)

    def splice(self, at: int, data: bytes) -> Spliced:
        """The value with `data` written from byte `at` (zeros before it past the end)."""
        return Spliced(self.value, at, data)


class Held:
    """A value read whole, as `Stored` reads one left in the store: BITFIELD that makes
    or writes a large string writes the bytes it changes over it (pieces.splice: copied
    once, into the new version's encoding), not the whole string built twice (a
    512 MB `BITFIELD k SET u8 4294967288 1` copied it three times)."""

    __slots__ = ("data", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, lo: int, hi: int) -> bytes:
        return self.data[lo:hi]

    def splice(self, at: int, data: bytes) -> bytes | Joined:
        return splice(self.data, at, data, LARGE_VALUE)


def getbit(s: Stored, offset: int) -> int | None:
    byte = offset >> 3
    if byte >= s.size:
        return 0
    got = s.read(byte, byte + 1)
    return None if got is None else bitops.getbit(got, offset & 7)


def setbit(s: Stored, offset: int, on: int) -> tuple[int, Spliced | None] | None:
    """(the bit's old value, the write or None when nothing changes). Past the end the
    string grows to hold the bit (zeros between), even for a 0, as in Redis."""
    byte = offset >> 3
    got = None
    if byte < s.size:
        got = s.read(byte, byte + 1)
        if got is None:
            return None
    old, new = bitops.setbit(got, offset & 7, on)  # (a byte: never a Joined)
    return old, (None if new is None else s.splice(byte, whole(new)))


def bitfield(s: Stored | Held, ops: list[FieldOp]
             ) -> tuple[list[int | None], Spliced | bytes | Joined | None] | None:
    """BITFIELD's operations: (its replies, the write or None when nothing changes).
    The writes and the reads that overlap them run on the bytes from the first written
    to the last (one write over the value); every other read reads its own bytes."""
    replies: list[int | None] = [None] * len(ops)
    lo, hi = _written(ops)
    inside = [i for i, op in enumerate(ops) if lo <= op.offset >> 3 and _end(op) <= hi]
    for i, op in enumerate(ops):
        if lo >= hi or i not in inside:
            got = _run(s, [op], op.offset >> 3, _end(op))
            if got is None:
                return None
            replies[i] = got[0][0]
    if lo >= hi:
        return replies, None
    got = _run(s, [ops[i] for i in inside], lo, hi)
    if got is None:
        return None
    for i, reply in zip(inside, got[0], strict=True):
        replies[i] = reply
    return replies, (None if got[1] is None else s.splice(lo, got[1]))


def _end(op: FieldOp) -> int:
    """The byte just past `op`'s field."""
    return (op.offset + op.bits + 7) >> 3


def _written(ops: list[FieldOp]) -> tuple[int, int]:
    """The bytes [lo, hi) the writes of `ops` span, with the reads that overlap them;
    lo == hi if none writes."""
    spans = [(op.offset >> 3, _end(op)) for op in ops if op.opcode != bitops.GET]
    if not spans:
        return 0, 0
    lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
    grown = True
    while grown:
        grown = False
        for op in ops:
            a, b = op.offset >> 3, _end(op)
            if a < hi and b > lo and (a < lo or b > hi):
                lo, hi, grown = min(a, lo), max(b, hi), True
    return lo, hi


def _run(s: Stored | Held, ops: list[FieldOp], lo: int, hi: int
         ) -> tuple[list[int | None], bytes | None] | None:
    """bitops.bitfield_run of `ops` over bytes [lo, hi) of the value (as many of them
    as it holds): its replies, and the new bytes from `lo` (None: unchanged)."""
    got = s.read(lo, min(hi, s.size)) if lo < s.size else b""
    if got is None:
        return None
    shift = lo << 3
    moved = [FieldOp(op.opcode, op.signed, op.bits, op.offset - shift, op.value, op.overflow)
             for op in ops]
    replies, new = bitops.bitfield_run(got, moved)
    return replies, (None if new is None or new == got else new)


def scan(s: Stored, lo: int, hi: int, step: Callable[[bytes, int], bool],
         done: Callable[[bool], None]) -> None:
    """Pass bytes [lo, hi) to `step(chunk, its first byte)` a SLICE at a time until it
    answers True (found); then `done(True)`, or `done(False)` if a slice cannot be read.
    The first slice now, each next one in a later loop turn (CollCoordinator.later)."""
    _Scan(s, lo, hi, step, done).turn()


class _Scan:
    """One `scan` under way: its bound `turn` goes to the next loop turn. An object, not
    a closure handing itself on (a reference cycle per BITCOUNT or BITPOS of a large
    value, that held the command's client and reply until the cyclic collector ran)."""

    __slots__ = ("s", "lo", "hi", "step", "done", "later")

    def __init__(self, s: Stored, lo: int, hi: int, step: Callable[[bytes, int], bool],
                 done: Callable[[bool], None]) -> None:
        self.s = s
        self.lo = lo
        self.hi = hi
        self.step = step
        self.done = done
        self.later = s.c.node.coll.later

    def turn(self, _: object = None) -> None:
        lo, hi = self.lo, self.hi
        got = self.s.read(lo, min(lo + SLICE, hi))
        if got is None:
            self.done(False)
            return
        self.lo = lo + len(got)
        if self.step(got, lo) or self.lo >= hi or not got:
            self.done(True)
            return
        self.later(self.turn)


def count(s: Stored, span: Span, answer: Callable[[int | None], None]) -> None:
    """BITCOUNT over `span`: `answer(bits set)`, or answer(None) (read it whole)."""
    total = 0

    def step(chunk: bytes, at: int) -> bool:
        nonlocal total
        total += bitops.count_in(chunk, at, span)
        return False

    if span[0] > span[1]:
        answer(0)
        return
    scan(s, span[0], span[1] + 1, step, lambda ok: answer(total if ok else None))


def find(s: Stored, bit: int, span: Span, end_given: bool,
         answer: Callable[[int | None], None]) -> None:
    """BITPOS of `bit` over `span`: `answer(position)`, or answer(None)."""
    found = -1

    def step(chunk: bytes, at: int) -> bool:
        nonlocal found
        found = bitops.find_in(chunk, at, bit, span)
        return found != -1

    def done(ok: bool) -> None:
        if not ok:
            answer(None)
        else:
            answer(found if found != -1 else bitops.not_found(bit, span, end_given))

    if span[0] > span[1]:
        answer(-1)
        return
    scan(s, span[0], span[1] + 1, step, done)
