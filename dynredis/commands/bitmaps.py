"""Bitmap commands: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.

The bit arithmetic is `bitops.py`'s; here keys are read and written. A command that
changes a string reads it with a quorum and writes the new string with the context it
read, as APPEND and SETRANGE do: it supersedes exactly what it saw, and a concurrent
write through another node stays a sibling (last writer wins for plain readers).

A large value the read leaves in the store (core/shape.Unread) is not read whole:
`storedbits.py` reads there the bytes a command concerns and writes the ones it
changes over it; BITOP reads its large sources there in place (pinned), in C.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.clock import Clock
from ..core.engine import Pinned
from ..core.obj import LARGE_VALUE, Sibling
from ..core.shape import Unread
from ..resp import encode as resp
from ..server.streamed import InTurns
from . import bitops, storedbits
from .bitops import BitError
from .common import READ_WHOLE, Write, context_of, current, err, read_then_write
from .context import Context, Slot
from .storedbits import Stored
from .stringreads import read_keys, string_value
from .table import command

Answer = Callable[[int | None], None]
# A number read from a large value left in the store: `counted(stored, answer)` calls
# `answer(n)`, at once or in a later loop turn (a scan), or answer(None) if the key
# holds another object by then (read it whole). It may raise BitError.
Counted = Callable[[Stored, Answer], None]

_LATER = b"later"  # (never a reply: RESP replies start with a type byte)


def _error(e: BitError) -> bytes:
    return resp.error(str(e))


class _Later:
    """A reply slot that passes its reply on, unless it is _LATER: a scan of a large
    value goes on, and fills the slot itself."""

    __slots__ = ("slot",)

    def __init__(self, slot: Slot) -> None:
        self.slot = slot

    def set(self, reply: bytes) -> None:
        if reply is not _LATER:
            self.slot.set(reply)


def _read_number(c: Context, key: bytes, missing: bytes, number: Callable[[bytes], int],
                 counted: Counted, slot: Slot | None = None, whole: bool = False) -> None:
    """A read of the string at `key` answered with an integer (GETBIT, BITCOUNT,
    BITPOS): WRONGTYPE for another type, `missing` for no key, else `number(string)`,
    or `counted` of a large value left in the store (or the error of the arguments
    they read)."""
    out = slot if slot is not None else c.defer()

    def later(n: int | None) -> None:
        if n is None:
            _read_number(c, key, missing, number, counted, out, True)
        else:
            out.set(resp.integer(n))

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        try:
            if sib is not None and type(sib[2]) is Unread:
                return _counted_now(counted, Stored(c, key, sib[2]), later)
            data, wrong = string_value(sib)
            if wrong is not None:
                return wrong, None
            if data is None:
                return missing, None
            return resp.integer(number(data)), None
        except BitError as e:
            return _error(e), None

    read_then_write(c, key, decide, _Later(out), whole=whole)


def _counted_now(counted: Counted, stored: Stored, later: Answer
                 ) -> tuple[bytes, Write | None]:
    """`decide`'s answer of a number read from a large value: the reply, READ_WHOLE, or
    _LATER when the number comes in a later loop turn (given to `later` then)."""
    now: list[int | None] = []
    sink: list[Answer] = [now.append]
    counted(stored, lambda n: sink[0](n))
    if not now:
        sink[0] = later
        return _LATER, None
    n = now[0]
    return (b"", READ_WHOLE) if n is None else (resp.integer(n), None)


@command("setbit", 4, ("write", "denyoom"), 1, 1, 1, "bitmap",
         "Sets or clears the bit at offset of the string value. Creates the key if it "
         "doesn't exist.", since="2.2.0")
def cmd_setbit(c: Context, args: list[bytes]) -> bytes | None:
    try:
        offset, on = bitops.setbit_args(args[2], args[3])
    except BitError as e:
        return _error(e)
    key = args[1]

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is not None and type(sib[2]) is Unread:
            done = storedbits.setbit(Stored(c, key, sib[2]), offset, on)
            if done is None:
                return b"", READ_WHOLE
            old, spliced = done
            return resp.integer(old), (None if spliced is None else (spliced, sib[1]))
        data, wrong = string_value(sib)
        if wrong is not None:
            return wrong, None
        old, new = bitops.setbit(data, offset, on)
        reply = resp.integer(old)
        if new is None:
            return reply, None
        return reply, (new, sib[1] if sib is not None else 0)  # keeps the key's TTL

    read_then_write(c, key, decide, whole=False)
    return None


@command("getbit", 3, ("readonly", "fast"), 1, 1, 1, "bitmap",
         "Returns a bit value by offset.", since="2.2.0")
def cmd_getbit(c: Context, args: list[bytes]) -> bytes | None:
    try:
        offset = bitops.bit_offset(args[2])
    except BitError as e:
        return _error(e)

    _read_number(c, args[1], resp.ZERO, lambda data: bitops.getbit(data, offset),
                 lambda s, answer: answer(storedbits.getbit(s, offset)))
    return None


@command("bitcount", -2, ("readonly",), 1, 1, 1, "bitmap",
         "Counts the number of set bits (population counting) in a string.", since="2.6.0")
def cmd_bitcount(c: Context, args: list[bytes]) -> None:
    words = args[2:]
    # a missing key counts 0 before its range is read
    _read_number(c, args[1], resp.ZERO, lambda data: bitops.bitcount(data, words),
                 lambda s, answer: storedbits.count(
                     s, bitops.bitcount_span(s.size, words), answer))


@command("bitpos", -3, ("readonly",), 1, 1, 1, "bitmap",
         "Finds the first set (1) or clear (0) bit in a string.", since="2.8.7")
def cmd_bitpos(c: Context, args: list[bytes]) -> bytes | None:
    try:
        bit = bitops.bitpos_bit(args[2])
    except BitError as e:
        return _error(e)
    words = args[3:]

    def counted(s: Stored, answer: Answer) -> None:
        span, end_given = bitops.bitpos_span(s.size, words)
        storedbits.find(s, bit, span, end_given, answer)

    missing = resp.integer(-1 if bit else 0)  # endless zeros
    _read_number(c, args[1], missing, lambda data: bitops.bitpos(data, bit, words), counted)
    return None


@command("bitop", -4, ("write", "denyoom"), 2, -1, 1, "bitmap",
         "Performs bitwise operations on multiple strings, and stores the result.",
         since="2.6.0")
def cmd_bitop(c: Context, args: list[bytes]) -> bytes | None:
    try:
        op = bitops.bitop_name(args[1], len(args) - 3)
    except BitError as e:
        return _error(e)
    _bitop(c, op, args[2], args[3:], c.defer(), False)
    return None


BITOP_SLICE = 16 << 20
"""Bytes of BITOP's result written in a loop turn (C: about 8 ms per 16 MiB, most of
it the kernel's page faults of the new result)."""
ERR_STOPPED = "ERR the node stopped while BITOP ran"


def _bitop(c: Context, op: bytes, dest: bytes, keys: list[bytes], slot: Slot,
           whole: bool) -> None:
    """BITOP's reads and write. Its large sources are left in the store (`whole`
    False) and read there in place (pinned until the result is made): reading a 100
    MiB value whole is a copy out of the store and one decoding it. Where one cannot
    be pinned, every key is read again whole. The result is made BITOP_SLICE bytes a
    loop turn (bitops.Combining): 100 MiB at once held the loop ~50 ms."""
    node = c.node

    def computed(objs: list[Clock | None]) -> None:
        sources: list[bytes | memoryview] = []
        pins: list[Pinned] = []
        for key, obj in zip(keys, objs[1:], strict=True):
            sib = current(obj, node.now)
            if sib is not None and type(sib[2]) is Unread:
                pinned = node.pin_value(key, sib[2])
                if pinned is None:
                    _release(pins)
                    _bitop(c, op, dest, keys, slot, True)
                    return
                pins.append(pinned[1])
                sources.append(pinned[0])
                continue
            data, wrong = string_value(sib)
            if wrong is not None:
                _release(pins)
                slot.set(wrong)
                return
            sources.append(data or b"")
        try:
            job = bitops.Combining(op, sources)
        except BaseException:
            _release(pins)
            raise
        sources.clear()

        def turn() -> bool:
            if not all(pin.alive() for pin in pins):  # the store closed (the node stops)
                _release(pins)
                slot.set(resp.error(ERR_STOPPED))
                return True
            if not job.step(BITOP_SLICE):
                return False
            _release(pins)
            store(objs[0], job.result())
            return True

        InTurns(node.coll.later, turn)()

    def store(dest_obj: Clock | None, result: bytes) -> None:
        if not result and current(dest_obj, node.now) is None:
            slot.set(resp.ZERO)  # nothing to store and nothing to delete
            return
        reply = resp.integer(len(result))

        def written(r: tuple) -> None:
            slot.set(err(r[0]) if r[0] is not None else reply)

        # An empty result deletes the destination; any result drops its TTL (as SET).
        c.put(dest, context_of(dest_obj), result or None, 0, written, c.w)

    # (the destination is only overwritten: its value is never needed)
    read_keys(c, [dest, *keys], slot, computed, whole)


def _release(pins: list[Pinned]) -> None:
    for pin in pins:
        pin.release()


def _bitfield(c: Context, args: list[bytes], readonly: bool) -> bytes | None:
    try:
        ops = bitops.bitfield_ops(args[2:])
    except BitError as e:
        return _error(e)
    writes = any(op.opcode != bitops.GET for op in ops)
    if writes and readonly:
        return resp.error(bitops.ERR_BITFIELD_RO)
    key = args[1]

    def render(replies: list[int | None]) -> bytes:
        return resp.array([c.nil if r is None else resp.integer(r) for r in replies])

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is not None and type(sib[2]) is Unread:
            done = storedbits.bitfield(Stored(c, key, sib[2]), ops)
            if done is None:
                return b"", READ_WHOLE
            replies, spliced = done
            return render(replies), (None if spliced is None else (spliced, sib[1]))
        data, wrong = string_value(sib)
        if wrong is not None:
            return wrong, None
        expire_at = sib[1] if sib is not None else 0
        if max(len(data or b""), _farthest(ops)) >= LARGE_VALUE:
            done = storedbits.bitfield(storedbits.Held(data or b""), ops)
            assert done is not None  # (a value held reads whole)
            replies, change = done
            return render(replies), (None if change is None else (change, expire_at))
        replies, new = bitops.bitfield_run(data, ops)
        if new is None or (new == data and sib is not None):
            return render(replies), None
        return render(replies), (new, expire_at)

    read_then_write(c, key, decide, whole=False)
    return None


def _farthest(ops: list[bitops.FieldOp]) -> int:
    """The length the writes of `ops` pad a string to (0 if none writes)."""
    return max([(op.offset + op.bits + 7) >> 3 for op in ops if op.opcode != bitops.GET],
               default=0)


@command("bitfield", -2, ("write", "denyoom"), 1, 1, 1, "bitmap",
         "Performs arbitrary bitfield integer operations on strings.", since="3.2.0")
def cmd_bitfield(c: Context, args: list[bytes]) -> bytes | None:
    return _bitfield(c, args, False)


@command("bitfield_ro", -2, ("readonly", "fast"), 1, 1, 1, "bitmap",
         "Performs arbitrary read-only bitfield integer operations on strings.",
         since="6.0.0")
def cmd_bitfield_ro(c: Context, args: list[bytes]) -> bytes | None:
    return _bitfield(c, args, True)
