"""Bitmap commands: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.

The bit arithmetic is `bitops.py`'s; here keys are read and written. A command that
changes a string reads it with a quorum and writes the new string with the context it
read, as APPEND and SETRANGE do: it supersedes exactly what it saw, and a concurrent
write through another node stays a sibling (last writer wins for plain readers).
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.clock import Clock
from ..core.obj import Sibling
from ..resp import encode as resp
from . import bitops
from .bitops import BitError
from .common import Write, context_of, current, err, read_then_write
from .context import Context
from .stringreads import read_keys, string_value
from .table import command


def _error(e: BitError) -> bytes:
    return resp.error(str(e))


def _read_number(c: Context, key: bytes, missing: bytes,
                 number: Callable[[bytes], int]) -> None:
    """A read of the string at `key` answered with an integer (GETBIT, BITCOUNT,
    BITPOS): WRONGTYPE for another type, `missing` for no key, else `number(string)`
    (or the error of the arguments it reads)."""

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        data, wrong = string_value(sib)
        if wrong is not None:
            return wrong, None
        if data is None:
            return missing, None
        try:
            return resp.integer(number(data)), None
        except BitError as e:
            return _error(e), None

    read_then_write(c, key, decide)


@command("setbit", 4, ("write", "denyoom"), 1, 1, 1, "bitmap",
         "Sets or clears the bit at offset of the string value. Creates the key if it "
         "doesn't exist.", since="2.2.0")
def cmd_setbit(c: Context, args: list[bytes]) -> bytes | None:
    try:
        offset, on = bitops.setbit_args(args[2], args[3])
    except BitError as e:
        return _error(e)

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        data, wrong = string_value(sib)
        if wrong is not None:
            return wrong, None
        old, new = bitops.setbit(data, offset, on)
        reply = resp.integer(old)
        if new is None:
            return reply, None
        return reply, (new, sib[1] if sib is not None else 0)  # keeps the key's TTL

    read_then_write(c, args[1], decide)
    return None


@command("getbit", 3, ("readonly", "fast"), 1, 1, 1, "bitmap",
         "Returns a bit value by offset.", since="2.2.0")
def cmd_getbit(c: Context, args: list[bytes]) -> bytes | None:
    try:
        offset = bitops.bit_offset(args[2])
    except BitError as e:
        return _error(e)

    _read_number(c, args[1], resp.ZERO, lambda data: bitops.getbit(data, offset))
    return None


@command("bitcount", -2, ("readonly",), 1, 1, 1, "bitmap",
         "Counts the number of set bits (population counting) in a string.", since="2.6.0")
def cmd_bitcount(c: Context, args: list[bytes]) -> None:
    # a missing key counts 0 before its range is read
    _read_number(c, args[1], resp.ZERO, lambda data: bitops.bitcount(data, args[2:]))


@command("bitpos", -3, ("readonly",), 1, 1, 1, "bitmap",
         "Finds the first set (1) or clear (0) bit in a string.", since="2.8.7")
def cmd_bitpos(c: Context, args: list[bytes]) -> bytes | None:
    try:
        bit = bitops.bitpos_bit(args[2])
    except BitError as e:
        return _error(e)

    missing = resp.integer(-1 if bit else 0)  # endless zeros
    _read_number(c, args[1], missing, lambda data: bitops.bitpos(data, bit, args[3:]))
    return None


@command("bitop", -4, ("write", "denyoom"), 2, -1, 1, "bitmap",
         "Performs bitwise operations on multiple strings, and stores the result.",
         since="2.6.0")
def cmd_bitop(c: Context, args: list[bytes]) -> bytes | None:
    try:
        op = bitops.bitop_name(args[1], len(args) - 3)
    except BitError as e:
        return _error(e)
    node = c.node
    dest = args[2]
    slot = c.defer()

    def computed(objs: list[Clock | None]) -> None:
        sources: list[bytes] = []
        for obj in objs[1:]:
            data, wrong = string_value(current(obj, node.now))
            if wrong is not None:
                slot.set(wrong)
                return
            sources.append(data or b"")
        result = bitops.bitop(op, sources)
        dest_obj = objs[0]
        if not result and current(dest_obj, node.now) is None:
            slot.set(resp.ZERO)  # nothing to store and nothing to delete
            return
        reply = resp.integer(len(result))

        def written(r: tuple) -> None:
            slot.set(err(r[0]) if r[0] is not None else reply)

        # An empty result deletes the destination; any result drops its TTL (as SET).
        c.put(dest, context_of(dest_obj), result or None, 0, written, c.w)

    read_keys(c, args[2:], slot, computed)
    return None


def _bitfield(c: Context, args: list[bytes], readonly: bool) -> bytes | None:
    try:
        ops = bitops.bitfield_ops(args[2:])
    except BitError as e:
        return _error(e)
    writes = any(op.opcode != bitops.GET for op in ops)
    if writes and readonly:
        return resp.error(bitops.ERR_BITFIELD_RO)

    def render(replies: list[int | None]) -> bytes:
        return resp.array([c.nil if r is None else resp.integer(r) for r in replies])

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        data, wrong = string_value(sib)
        if wrong is not None:
            return wrong, None
        replies, new = bitops.bitfield_run(data, ops)
        if new is None or (new == data and sib is not None):
            return render(replies), None
        return render(replies), (new, sib[1] if sib is not None else 0)

    read_then_write(c, args[1], decide)
    return None


@command("bitfield", -2, ("write", "denyoom"), 1, 1, 1, "bitmap",
         "Performs arbitrary bitfield integer operations on strings.", since="3.2.0")
def cmd_bitfield(c: Context, args: list[bytes]) -> bytes | None:
    return _bitfield(c, args, False)


@command("bitfield_ro", -2, ("readonly", "fast"), 1, 1, 1, "bitmap",
         "Performs arbitrary read-only bitfield integer operations on strings.",
         since="6.0.0")
def cmd_bitfield_ro(c: Context, args: list[bytes]) -> bytes | None:
    return _bitfield(c, args, True)
