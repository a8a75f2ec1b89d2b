"""Bit arithmetic on string values, as Redis 7.0's bitops.c does it (pure functions).

Argument parsing, range conversion (negative indexes, BYTE/BIT units) and overflow
rules follow Redis to the reply; the handlers in `bitmaps.py` only read and write keys.
A problem with the arguments raises `BitError` carrying Redis' reply text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.obj import LARGE_VALUE
from ..core.pieces import Joined, splice
from .common import MAX_STRING
from .table import parse_int

ERR_OFFSET = "ERR bit offset is not an integer or out of range"
ERR_BIT_VALUE = "ERR bit is not an integer or out of range"
ERR_NOT_INT = "ERR value is not an integer or out of range"
ERR_SYNTAX = "ERR syntax error"
ERR_BITPOS_BIT = "ERR The bit argument must be 1 or 0."
ERR_BITOP_NOT = "ERR BITOP NOT must be called with a single source key."
ERR_OVERFLOW_TYPE = "ERR Invalid OVERFLOW type specified"
ERR_BITFIELD_TYPE = ("ERR Invalid bitfield type. Use something like i16 u8. "
                     "Note that u64 is not supported but i64 is.")
ERR_BITFIELD_RO = "ERR BITFIELD_RO only supports the GET subcommand"

_M64 = (1 << 64) - 1


class BitError(Exception):
    """Bad arguments; `str(e)` is Redis' error text."""


def _int(raw: bytes, text: str = ERR_NOT_INT) -> int:
    n = parse_int(raw)
    if n is None:
        raise BitError(text)
    return n


def _signed64(n: int) -> int:
    n &= _M64
    return n - (1 << 64) if n >> 63 else n


def bit_offset(raw: bytes, hash_bits: int = 0) -> int:
    """A bit offset argument (getBitOffsetFromArgument); with `hash_bits`, BITFIELD's
    `#n` form counts in fields of that many bits. At most the largest string's bits."""
    usehash = raw[:1] == b"#" and hash_bits > 0
    n = parse_int(raw[1:] if usehash else raw)
    if n is None:
        raise BitError(ERR_OFFSET)
    if usehash:
        n = _signed64(n * hash_bits)  # C's long long product
    if n < 0 or (n >> 3) >= MAX_STRING:
        raise BitError(ERR_OFFSET)
    return n


def grown(data: bytes, last_bit: int) -> bytes:
    """`data` zero-padded to hold bit `last_bit` (lookupStringForBitCommand)."""
    need = (last_bit >> 3) + 1
    return data if len(data) >= need else data + bytes(need - len(data))


# --- SETBIT / GETBIT ---------------------------------------------------------------------


def setbit_args(offset_raw: bytes, value_raw: bytes) -> tuple[int, int]:
    offset = bit_offset(offset_raw)
    n = parse_int(value_raw)
    if n is None or n & ~1:
        raise BitError(ERR_BIT_VALUE)
    return offset, n


def getbit(data: bytes, offset: int) -> int:
    byte = offset >> 3
    if byte >= len(data):
        return 0
    return (data[byte] >> (7 - (offset & 7))) & 1


def setbit(data: bytes | None, offset: int, on: int) -> tuple[int, bytes | Joined | None]:
    """(the bit's old value, the new string or None when nothing changes). A missing
    key or a string too short is created or padded even when the bit stays 0; a large
    new string is a pieces.Joined of the old one, zeros and the changed byte (copied
    once, into the new version's encoding)."""
    base = data if data is not None else b""
    at = offset >> 3
    old = getbit(base, offset)
    if at < len(base) and data is not None and old == on:
        return old, None
    mask = 1 << (7 - (offset & 7))
    byte = base[at] if at < len(base) else 0
    byte = (byte & ~mask) | (mask if on else 0)
    return old, splice(base, at, bytes((byte,)), LARGE_VALUE)


# --- BITCOUNT / BITPOS -------------------------------------------------------------------


def _unit(raw: bytes) -> bool:
    """True for BIT, False for BYTE."""
    u = raw.lower()
    if u == b"bit":
        return True
    if u == b"byte":
        return False
    raise BitError(ERR_SYNTAX)


def _byte_span(n: int, start: int, end: int, isbit: bool) -> tuple[int, int, int, int]:
    """BITCOUNT's and BITPOS's range over an n-byte string, as Redis sanitizes it: (first
    byte, last byte, mask of the bits before a BIT range in its first byte, mask of those
    after it in its last byte); first > last for an empty range."""
    first_mask = last_mask = 0
    total = n << 3 if isbit else n
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    if isbit and start <= end:
        first_mask = ~((1 << (8 - (start & 7))) - 1) & 0xFF
        last_mask = (1 << (7 - (end & 7))) - 1
        start >>= 3
        end >>= 3
    return start, end, first_mask, last_mask


def popcount(data: bytes) -> int:
    return int.from_bytes(data, "big").bit_count()


Span = tuple[int, int, int, int]
"""A BITCOUNT or BITPOS range: (first byte, last byte, mask of the bits before a BIT
range in its first byte, mask of those after it in its last byte); empty if first >
last. Counting or searching it a slice at a time (`count_in`, `find_in`) gives what
one pass over it gives: a large value is read from the store in slices."""

EMPTY: Span = (0, -1, 0, 0)


def bitcount_span(n: int, args: list[bytes]) -> Span:
    """BITCOUNT's range over an n-byte string; `args` are the words after the key."""
    if len(args) in (2, 3):
        start, end = _int(args[0]), _int(args[1])
        if start < 0 and end < 0 and start > end:
            return EMPTY
        isbit = _unit(args[2]) if len(args) == 3 else False
        return _byte_span(n, start, end, isbit)
    if not args:
        return 0, n - 1, 0, 0
    raise BitError(ERR_SYNTAX)


def count_in(chunk: bytes, at: int, span: Span) -> int:
    """The bits set in `chunk`, the string's bytes from byte `at` (within `span`),
    less those of the span's edge bytes that lie outside a BIT range."""
    start, end, first_mask, last_mask = span
    count = popcount(chunk)
    if first_mask and at <= start < at + len(chunk):
        count -= (chunk[start - at] & first_mask).bit_count()
    if last_mask and at <= end < at + len(chunk):
        count -= (chunk[end - at] & last_mask).bit_count()
    return count


def bitcount(data: bytes, args: list[bytes]) -> int:
    """BITCOUNT of an existing string; `args` are the words after the key."""
    span = bitcount_span(len(data), args)
    start, end = span[0], span[1]
    return count_in(data[start:end + 1], start, span) if start <= end else 0


def bitpos_bit(raw: bytes) -> int:
    bit = _int(raw)
    if bit not in (0, 1):
        raise BitError(ERR_BITPOS_BIT)
    return bit


def bitpos_span(n: int, args: list[bytes]) -> tuple[Span, bool]:
    """BITPOS's range over an n-byte string and whether it names its end (then no
    zero past the string counts); `args` are the words after the bit."""
    if not args:
        return (0, n - 1, 0, 0), False
    if len(args) > 3:
        raise BitError(ERR_SYNTAX)
    start = _int(args[0])
    isbit = _unit(args[2]) if len(args) == 3 else False
    if len(args) >= 2:
        return _byte_span(n, start, _int(args[1]), isbit), True
    return _byte_span(n, start, (n << 3) + 7 if isbit else n - 1, isbit), False


def find_in(chunk: bytes, at: int, bit: int, span: Span) -> int:
    """The position of the first `bit` in `chunk`, the string's bytes from byte `at`
    (within `span`), counting a BIT range's edge bytes only inside it; -1 if none."""
    start, end, first_mask, last_mask = span
    if (first_mask and at <= start < at + len(chunk)) or (
            last_mask and at <= end < at + len(chunk)):
        b = bytearray(chunk)
        for i, mask in ((start - at, first_mask), (end - at, last_mask)):
            if mask and 0 <= i < len(b):  # the bits outside read as not `bit`
                b[i] = b[i] & ~mask & 0xFF if bit else b[i] | mask
        chunk = bytes(b)
    nbits = len(chunk) * 8
    v = int.from_bytes(chunk, "big")
    if bit == 0:
        v ^= (1 << nbits) - 1
    return (at << 3) + nbits - v.bit_length() if v else -1


def not_found(bit: int, span: Span, end_given: bool) -> int:
    """BITPOS' answer when its range holds no `bit`: for a 0 without an end, the first
    bit past the range (the string reads as padded with zeros)."""
    return -1 if bit or end_given else (span[1] + 1) << 3


def bitpos(data: bytes, bit: int, args: list[bytes]) -> int:
    """BITPOS of an existing string; `args` are the words after the bit."""
    span, end_given = bitpos_span(len(data), args)
    start, end = span[0], span[1]
    if start > end:
        return -1
    pos = find_in(data[start:end + 1], start, bit, span)
    return pos if pos != -1 else not_found(bit, span, end_given)


# --- BITOP -------------------------------------------------------------------------------

BITOP_OPS = (b"and", b"or", b"xor", b"not")


def bitop_name(raw: bytes, nsources: int) -> bytes:
    op = raw.lower()
    if op not in BITOP_OPS:
        raise BitError(ERR_SYNTAX)
    if op == b"not" and nsources != 1:
        raise BitError(ERR_BITOP_NOT)
    return op


_INVERTED = bytes(255 - i for i in range(256))

Buffer = bytes | bytearray | memoryview
"""A source of BITOP: a value read, or a view of one pinned in the store."""

# BITOP in C (dynredis/csrc/bitop.c), built with the compiled modules; else bitop_pure.
_c: Any
try:
    from .. import _bitop as _c
except ImportError:
    _c = None
_native_bitop: Callable[[int, Sequence[Buffer]], bytes] | None = (
    _c.bitop if _c is not None else None)
_NativeJob: Any = _c.Job if _c is not None else None


def bitop(op: bytes, sources: Sequence[Buffer]) -> bytes:
    """The result string (empty when every source is empty or missing): in C when
    built (AND of two 100 MiB values in about 30 ms, not 180), else `bitop_pure`."""
    if _native_bitop is not None and sources:
        return _native_bitop(BITOP_OPS.index(op), sources)
    return bitop_pure(op, sources)


class Combining:
    """`bitop`'s result written `step(n)` bytes at a time (the caller runs each step in
    a loop turn of its own), then handed out by `result()`. The sources must stay as
    they are until the last step. In C when built; else made at once."""

    __slots__ = ("job", "made")

    def __init__(self, op: bytes, sources: Sequence[Buffer]) -> None:
        self.job: Any = None
        self.made: bytes | None = None
        if _NativeJob is not None and sources:
            self.job = _NativeJob(BITOP_OPS.index(op), sources)
        else:
            self.made = bitop_pure(op, sources)

    def step(self, n: int) -> bool:
        """Write the next `n` bytes; whether the result is all written."""
        return self.made is not None or bool(self.job.step(n))

    def result(self) -> bytes:
        if self.made is not None:
            return self.made
        return self.job.result()  # type: ignore[no-any-return]


def bitop_pure(op: bytes, sources: Sequence[Buffer]) -> bytes:
    """`bitop` in Python: each source as one int, shorter ones shifted to be
    zero-padded, the result back to bytes."""
    size = max((len(s) for s in sources), default=0)
    if size == 0:
        return b""
    if op == b"not":  # (one source) a byte table in C: 100 MiB in 94 ms, not 385
        return bytes(sources[0]).translate(_INVERTED)
    values = [int.from_bytes(s, "big") << ((size - len(s)) << 3) for s in sources]
    out = values[0]
    for v in values[1:]:
        if op == b"and":
            out &= v
        elif op == b"or":
            out |= v
        else:
            out ^= v
    return out.to_bytes(size, "big")


# --- BITFIELD ----------------------------------------------------------------------------

GET, SET, INCRBY = 0, 1, 2
WRAP, SAT, FAIL = 0, 1, 2
_OVERFLOW = {b"wrap": WRAP, b"sat": SAT, b"fail": FAIL}


class FieldOp:
    __slots__ = ("opcode", "signed", "bits", "offset", "value", "overflow")

    def __init__(self, opcode: int, signed: bool, bits: int, offset: int, value: int,
                 overflow: int) -> None:
        self.opcode = opcode
        self.signed = signed
        self.bits = bits
        self.offset = offset
        self.value = value
        self.overflow = overflow


def field_type(raw: bytes) -> tuple[bool, int]:
    """(signed, bits) of `i1`..`i64` / `u1`..`u63`."""
    kind = raw[:1]
    if kind not in (b"i", b"u"):
        raise BitError(ERR_BITFIELD_TYPE)
    bits = parse_int(raw[1:].split(b"\0", 1)[0])  # read as a C string
    signed = kind == b"i"
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise BitError(ERR_BITFIELD_TYPE)
    return signed, bits


def bitfield_ops(args: list[bytes]) -> list[FieldOp]:
    """The operations of `BITFIELD key <args>`, parsed as Redis parses them."""
    ops: list[FieldOp] = []
    overflow = WRAP
    j = 0
    n = len(args)
    while j < n:
        left = n - j - 1
        word = args[j].lower()
        if word == b"get" and left >= 2:
            opcode = GET
        elif word == b"set" and left >= 3:
            opcode = SET
        elif word == b"incrby" and left >= 3:
            opcode = INCRBY
        elif word == b"overflow" and left >= 1:
            kind = _OVERFLOW.get(args[j + 1].lower())
            if kind is None:
                raise BitError(ERR_OVERFLOW_TYPE)
            overflow = kind
            j += 2
            continue
        else:
            raise BitError(ERR_SYNTAX)
        signed, bits = field_type(args[j + 1])
        offset = bit_offset(args[j + 2], bits)
        value = 0
        if opcode != GET:
            value = _int(args[j + 3])
        ops.append(FieldOp(opcode, signed, bits, offset, value, overflow))
        j += 3 if opcode == GET else 4
    return ops


def get_unsigned(data: bytes | bytearray, offset: int, bits: int) -> int:
    """`bits` bits from bit `offset` (most significant first); missing bytes read 0."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = bytes(data[first:last + 1]).ljust(last - first + 1, b"\0")
    v = int.from_bytes(chunk, "big")
    shift = (last - first + 1) * 8 - (offset & 7) - bits
    return (v >> shift) & ((1 << bits) - 1)


def get_signed(data: bytes | bytearray, offset: int, bits: int) -> int:
    v = get_unsigned(data, offset, bits)
    if v >> (bits - 1):
        v -= 1 << bits
    return v


def set_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    """Write the low `bits` bits of `value` at bit `offset` (buf is long enough)."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    width = (last - first + 1) * 8
    shift = width - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    v = int.from_bytes(buf[first:last + 1], "big")
    v = (v & ~mask) | ((value << shift) & mask)
    buf[first:last + 1] = v.to_bytes(width // 8, "big")


def _unsigned_overflow(value: int, incr: int, bits: int, owtype: int) -> tuple[int, int]:
    """(overflow: 0 or ±1, the value to store) of checkUnsignedBitfieldOverflow;
    `value` is an unsigned 64-bit, `incr` a signed 64-bit number."""
    top = (1 << bits) - 1
    maxincr = _signed64(top - value)
    minincr = _signed64(-value)
    if value > top or (incr > 0 and incr > maxincr):
        direction, limit = 1, top
    elif incr < 0 and incr < minincr:
        direction, limit = -1, 0
    else:
        return 0, 0
    if owtype == WRAP:
        return 1, (value + incr) & top
    return direction, limit


def _signed_overflow(value: int, incr: int, bits: int, owtype: int) -> tuple[int, int]:
    """checkSignedBitfieldOverflow: `value` and `incr` are signed 64-bit numbers."""
    top = (1 << 63) - 1 if bits == 64 else (1 << (bits - 1)) - 1
    bottom = -top - 1
    maxincr = _signed64(top - value)
    minincr = _signed64(bottom - value)
    if (value > top or (bits != 64 and incr > maxincr)
            or (value >= 0 and incr > 0 and incr > maxincr)):
        direction, limit = 1, top
    elif (value < bottom or (bits != 64 and incr < minincr)
          or (value < 0 and incr < 0 and incr < minincr)):
        direction, limit = -1, bottom
    else:
        return 0, 0
    if owtype == WRAP:
        c = (value + incr) & _M64
        if bits < 64:
            c &= (1 << bits) - 1
            if c >> (bits - 1):
                c -= 1 << bits
        else:
            c = _signed64(c)
        return 1, c
    return direction, limit


def bitfield_run(data: bytes | None, ops: list[FieldOp]) -> tuple[list[int | None], bytes | None]:
    """Run the operations: (one reply per op, None where OVERFLOW FAIL refused; the new
    string, or None when no op writes). A write pads the string to its farthest field
    first, even if every write then fails."""
    writes = [op for op in ops if op.opcode != GET]
    buf: bytearray | None = None
    if writes:
        last = max(op.offset + op.bits - 1 for op in writes)
        buf = bytearray(grown(data if data is not None else b"", last))
    src: bytes | bytearray = buf if buf is not None else (data or b"")
    replies: list[int | None] = []
    for op in ops:
        if op.opcode == GET:
            get = get_signed if op.signed else get_unsigned
            replies.append(get(src, op.offset, op.bits))
            continue
        assert buf is not None
        if op.signed:
            old = get_signed(buf, op.offset, op.bits)
            if op.opcode == INCRBY:
                over, wrapped = _signed_overflow(old, op.value, op.bits, op.overflow)
                new = wrapped if over else old + op.value
                reply = new
            else:
                over, wrapped = _signed_overflow(op.value, 0, op.bits, op.overflow)
                new = wrapped if over else op.value
                reply = old
        else:
            old = get_unsigned(buf, op.offset, op.bits)
            if op.opcode == INCRBY:
                over, wrapped = _unsigned_overflow(old, op.value, op.bits, op.overflow)
                new = wrapped if over else (old + op.value) & _M64
                reply = new
            else:
                over, wrapped = _unsigned_overflow(op.value & _M64, 0, op.bits, op.overflow)
                new = wrapped if over else op.value & _M64
                reply = old
        if over and op.overflow == FAIL:
            replies.append(None)
            continue
        replies.append(reply)
        set_field(buf, op.offset, op.bits, new)
    return replies, (bytes(buf) if buf is not None else None)
