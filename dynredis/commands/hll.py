"""Redis' HyperLogLog string format, as a pure codec.

An HLL is a Redis string: a 16-byte header ("HYLL", the encoding, three unused bytes,
the cached cardinality as 8 little-endian bytes whose top bit marks it stale) and
16384 6-bit registers, either dense (12288 packed bytes) or sparse (run-length
opcodes ZERO, XZERO and VAL). Everything here reproduces Redis 7.0's hyperloglog.c
byte for byte (its sparse updates, their in-place opcode merges, the promotion to
dense, MurmurHash64A with Redis' seed, Ertl's estimator), so a value written here is
one redis-server accepts and the other way round.

Registers only grow, so the register-wise max of two HLLs (`merge_into`) is a
join-semilattice: commutative, associative, idempotent. That makes concurrent
versions of one HLL mergeable without losing an element.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from itertools import accumulate

P = 14
REGISTERS = 1 << P  # 16384
Q = 64 - P  # 50: the longest run of zeros a hash can show, plus one for the final 1
HDR_SIZE = 16
DENSE_BYTES = REGISTERS * 6 // 8  # 12288
DENSE_SIZE = HDR_SIZE + DENSE_BYTES
MAGIC = b"HYLL"
DENSE = 0
SPARSE = 1
SPARSE_MAX_BYTES = 3000  # Redis' hll-sparse-max-bytes default
SEED = 0xADC83B19
ALPHA_INF = 0.721347520444481703680  # 1 / (2 ln 2)

# Sparse opcodes (the kind of each run).
ZERO = 0  # 00xxxxxx: 1..64 zero registers
XZERO = 1  # 01xxxxxx yyyyyyyy: 1..16384 zero registers
VAL = 2  # 1vvvvvxx: 1..4 registers of value 1..32
VAL_MAX_VALUE = 32
VAL_MAX_LEN = 4
ZERO_MAX_LEN = 64

_M64 = (1 << 64) - 1
_MUL = 0xC6A4A7935BD1E995

# Byte translation tables that unpack/pack 4 registers to/from 3 bytes.
_AND63 = bytes(b & 63 for b in range(256))
_SHR2 = bytes(b >> 2 for b in range(256))
_SHR4 = bytes(b >> 4 for b in range(256))
_SHR6 = bytes(b >> 6 for b in range(256))
_LOW4_SHL2 = bytes(((b & 15) << 2) for b in range(256))
_LOW2_SHL4 = bytes(((b & 3) << 4) for b in range(256))
_LOW2_SHL6 = bytes(((b & 3) << 6) & 255 for b in range(256))
_LOW4_SHL4 = bytes(((b & 15) << 4) & 255 for b in range(256))
_SHL2 = bytes((b << 2) & 255 for b in range(256))


def murmur64a(data: bytes, seed: int = SEED) -> int:
    """MurmurHash64A as Redis computes it (endian neutral: words read little-endian)."""
    n = len(data)
    h = (seed ^ (n * _MUL)) & _M64
    whole = n - (n & 7)
    for i in range(0, whole, 8):
        k = int.from_bytes(data[i:i + 8], "little")
        k = (k * _MUL) & _M64
        k ^= k >> 47
        k = (k * _MUL) & _M64
        h ^= k
        h = (h * _MUL) & _M64
    if n & 7:
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * _MUL) & _M64
    h ^= h >> 47
    h = (h * _MUL) & _M64
    h ^= h >> 47
    return h


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, length of the 000..1 pattern) of an element (hllPatLen)."""
    h = murmur64a(element)
    index = h & (REGISTERS - 1)
    rest = (h >> P) | (1 << Q)  # the 1 past the hash's top bit ends every run
    return index, ((rest & -rest).bit_length())


def _or(a: bytes | bytearray, b: bytes | bytearray) -> bytes:
    return (int.from_bytes(a, "big") | int.from_bytes(b, "big")).to_bytes(len(a), "big")


def unpack_dense(packed: bytes | bytearray) -> bytearray:
    """The 16384 registers (one byte each) of a dense HLL's 12288 register bytes."""
    b0, b1, b2 = packed[0::3], packed[1::3], packed[2::3]
    out = bytearray(REGISTERS)
    out[0::4] = b0.translate(_AND63)
    out[1::4] = _or(b0.translate(_SHR6), b1.translate(_LOW4_SHL2))
    out[2::4] = _or(b1.translate(_SHR4), b2.translate(_LOW2_SHL4))
    out[3::4] = b2.translate(_SHR2)
    return out


def pack_dense(raw: bytes | bytearray) -> bytes:
    """The packed 6-bit form of 16384 registers (each below 64)."""
    r0, r1, r2, r3 = bytes(raw[0::4]), bytes(raw[1::4]), bytes(raw[2::4]), bytes(raw[3::4])
    out = bytearray(DENSE_BYTES)
    out[0::3] = _or(r0, r1.translate(_LOW2_SHL6))
    out[1::3] = _or(r1.translate(_SHR2), r2.translate(_LOW4_SHL4))
    out[2::3] = _or(r2.translate(_SHR4), r3.translate(_SHL2))
    return bytes(out)


def is_valid(data: bytes) -> bool:
    """Whether Redis takes `data` for an HLL (isHLLObjectOrReply): the magic, a known
    encoding and, when dense, the exact size. A sparse body is checked only when read."""
    if len(data) < HDR_SIZE or data[:4] != MAGIC or data[4] > SPARSE:
        return False
    return data[4] != DENSE or len(data) == DENSE_SIZE


def cached_card(data: bytes) -> int | None:
    """The cached cardinality, or None when it is marked stale."""
    if data[15] & 0x80:
        return None
    return int.from_bytes(data[8:16], "little")


def with_card(data: bytes, card: int) -> bytes:
    """`data` with `card` cached in its header."""
    return data[:8] + card.to_bytes(8, "little") + data[16:]


def empty() -> bytes:
    """A new HLL as Redis creates one: sparse, one XZERO run, cached cardinality 0."""
    return MAGIC + bytes((SPARSE, 0, 0, 0)) + bytes(8) + _xzero_bytes(REGISTERS)


def _xzero_bytes(n: int) -> bytes:
    return bytes((0x40 | ((n - 1) >> 8), (n - 1) & 0xFF))


# --- the estimator ---------------------------------------------------------------------


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def estimate(histogram: list[int]) -> int:
    """Ertl's estimate from a register histogram (64 counters), as hllCount computes it."""
    m = float(REGISTERS)
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    e = ALPHA_INF * m * m / z
    whole = math.floor(e)
    return int(whole) + (1 if e - whole >= 0.5 else 0)  # llroundl: halves away from 0


def histogram(raw: bytes | bytearray) -> list[int]:
    counts = [0] * 64
    for v in set(raw):
        counts[v] = raw.count(v)
    return counts


_HIGH = int.from_bytes(b"\x80" * REGISTERS, "big")
_ALL = int.from_bytes(b"\xff" * REGISTERS, "big")


def max_registers(a: bytes | bytearray, b: bytes | bytearray) -> bytes:
    """The register-wise max of two sets of 16384 registers (each below 64), computed
    on all of them at once: per byte, a + 128 - b keeps its top bit iff a >= b (no
    borrow crosses bytes), and that bit selects a or b."""
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    a_wins = (((x | _HIGH) - y) & _HIGH) >> 7
    mask = a_wins * 0xFF
    return ((x & mask) | (y & (mask ^ _ALL))).to_bytes(REGISTERS, "big")


def count_raw(raw: bytes | bytearray) -> int:
    """The cardinality estimate of 16384 registers."""
    return estimate(histogram(raw))


# Every other 6-bit register of the packed form read as one little-endian integer
# (register k is bits 6k..6k+5), and the bit just above each of those registers.
_EVEN_FIELDS = int.from_bytes(b"\x3f\xf0\x03" * (DENSE_BYTES // 3), "little")
_EVEN_GUARDS = int.from_bytes(b"\x40\x00\x04" * (DENSE_BYTES // 3), "little")


def _max6(x: int, y: int) -> int:
    out = 0
    for shift in (0, 6):
        xs, ys = (x >> shift) & _EVEN_FIELDS, (y >> shift) & _EVEN_FIELDS
        mask = ((((xs | _EVEN_GUARDS) - ys) & _EVEN_GUARDS) >> 6) * 63
        out |= ((xs & mask) | (ys & (mask ^ _EVEN_FIELDS))) << shift
    return out


def max_packed(first: bytes | bytearray, *more: bytes | bytearray) -> bytes:
    """The register-wise max of dense register blocks, without unpacking them: even
    and odd registers in turn sit in 12-bit lanes with room for a guard bit, and
    a + 64 - b keeps the guard iff a >= b (as `max_registers` does per byte)."""
    x = int.from_bytes(first, "little")
    for block in more:
        x = _max6(x, int.from_bytes(block, "little"))
    return x.to_bytes(DENSE_BYTES, "little")


# --- an HLL being worked on --------------------------------------------------------------

_ONE_BYTE = tuple(bytes((b,)) for b in range(256))
# Registers covered by a one-byte opcode (VAL or ZERO; XZERO takes two bytes).
_SPAN = tuple(((b & 3) + 1) if b & 0x80 else ((b & 0x3F) + 1) for b in range(256))
_XZERO_BYTE = re.compile(rb"[\x40-\x7f]")


class _Expanded(dict[bytes, bytes]):
    """Opcode -> the registers it stands for; XZERO runs are made when asked for."""

    def __missing__(self, code: bytes) -> bytes:
        return bytes(_span(code))


_EXPAND = _Expanded({_ONE_BYTE[b]: (bytes((((b >> 2) & 0x1F) + 1,)) * ((b & 3) + 1)
                                    if b & 0x80 else bytes((b & 0x3F) + 1))
                     for b in range(256) if not 0x40 <= b < 0x80})


def _kind(code: bytes) -> int:
    c = code[0]
    return VAL if c & 0x80 else XZERO if c & 0x40 else ZERO


def _span(code: bytes) -> int:
    c = code[0]
    if c & 0xC0 == 0x40:
        # A trailing XZERO cut short reads its second byte as 0 (the string's
        # terminator, in Redis).
        return (((c & 0x3F) << 8) | (code[1] if len(code) > 1 else 0)) + 1
    return _SPAN[c]


def _value(code: bytes) -> int:
    return ((code[0] >> 2) & 0x1F) + 1


def _val_code(value: int, span: int) -> bytes:
    return _ONE_BYTE[0x80 | ((value - 1) << 2) | (span - 1)]


def _zero_code(span: int) -> bytes:
    return _ONE_BYTE[span - 1] if span <= ZERO_MAX_LEN else _xzero_bytes(span)


class Hll:
    """A parsed HLL: its header, and its packed registers (dense) or its opcodes
    (sparse).

    Sparse opcodes are kept as a list of their bytes (`codes`), with the registers each
    covers (`lens`) and its first register (`starts`): a split or a merge of opcodes
    never moves the others' first registers, so finding a register is a bisection, and
    the bytes are the opcodes joined. Parsing, expanding and encoding run over whole
    byte strings (translations, joins), not a Python loop per opcode.
    """

    __slots__ = ("header", "dense", "codes", "lens", "starts", "body_bytes", "packed")

    def __init__(self, data: bytes) -> None:
        """`data` must pass `is_valid`."""
        self.header = bytearray(data[:HDR_SIZE])
        self.dense = data[4] == DENSE
        self.packed = bytearray()  # dense: the 12288 register bytes, as stored
        self.codes: list[bytes] = []
        self.lens: list[int] = []
        self.starts: list[int] = []
        self.body_bytes = 0
        if self.dense:
            self.packed = bytearray(data[HDR_SIZE:])
        else:
            self._parse_sparse(data[HDR_SIZE:])

    def _parse_sparse(self, body: bytes) -> None:
        codes, lens = self.codes, self.lens
        i = 0
        for m in _XZERO_BYTE.finditer(body):
            p = m.start()
            if p < i:
                continue  # the second byte of the XZERO before it
            seg = body[i:p]
            codes.extend(map(_ONE_BYTE.__getitem__, seg))
            lens.extend(map(_SPAN.__getitem__, seg))
            code = body[p:p + 2]
            codes.append(code)
            lens.append(_span(code))
            i = p + 2
        seg = body[i:]
        codes.extend(map(_ONE_BYTE.__getitem__, seg))
        lens.extend(map(_SPAN.__getitem__, seg))
        self.starts = list(accumulate(lens, initial=0))[:-1]
        self.body_bytes = len(body)

    def _covered(self) -> int:
        return self.starts[-1] + self.lens[-1] if self.lens else 0

    # --- reading -------------------------------------------------------------------------

    def registers(self) -> bytearray | None:
        """All 16384 registers, or None if the sparse runs do not cover exactly them."""
        if self.dense:
            return unpack_dense(self.packed)
        if self._covered() != REGISTERS:
            return None
        return bytearray(b"".join(map(_EXPAND.__getitem__, self.codes)))

    def count(self) -> int | None:
        """The estimated cardinality (not the cached one), or None if corrupt."""
        raw = self.registers()
        return None if raw is None else count_raw(raw)

    def merge_registers(self, into: bytearray) -> bool:
        """into[i] = max(into[i], register i) (hllMerge); False if corrupt."""
        raw = self.registers()
        if raw is None:
            return False
        into[:] = max_registers(into, raw)
        return True

    # --- writing -------------------------------------------------------------------------

    def invalidate(self) -> None:
        self.header[15] |= 0x80

    def set_card(self, card: int) -> None:
        self.header[8:16] = card.to_bytes(8, "little")

    def add(self, element: bytes) -> int:
        """PFADD of one element: 1 if a register grew, 0 if not, -1 if corrupt."""
        index, count = pattern(element)
        return self.set(index, count)

    def set(self, index: int, count: int) -> int:
        """Raise register `index` to `count` (hllDenseSet / hllSparseSet)."""
        if self.dense:
            return self._dense_set(index, count)
        return self._sparse_set(index, count)

    def _dense_set(self, index: int, count: int) -> int:
        """HLL_DENSE_GET_REGISTER / HLL_DENSE_SET_REGISTER on the packed bytes."""
        p = self.packed
        byte = index * 6 // 8
        fb = index * 6 & 7
        pair = p[byte] | (p[byte + 1] << 8 if byte + 1 < DENSE_BYTES else 0)
        if count <= (pair >> fb) & 63:
            return 0
        pair = (pair & ~(63 << fb)) | (count << fb)
        p[byte] = pair & 0xFF
        if byte + 1 < DENSE_BYTES:
            p[byte + 1] = pair >> 8
        return 1

    def raise_all(self, registers: bytes | bytearray) -> None:
        """Raise every register to `registers` where those are higher (dense only)."""
        self.packed = bytearray(max_packed(self.packed, pack_dense(registers)))

    def raise_to(self, others: list[Hll]) -> bool:
        """Raise every register to the highest of `others` (`self` dense); False if
        one of them is corrupt."""
        blocks: list[bytes | bytearray] = []
        for other in others:
            if other.dense:
                blocks.append(other.packed)
                continue
            raw = other.registers()
            if raw is None:
                return False
            blocks.append(pack_dense(raw))
        self.packed = bytearray(max_packed(self.packed, *blocks))
        return True

    def to_dense(self) -> bool:
        """Switch to the dense encoding (hllSparseToDense); False if corrupt."""
        if self.dense:
            return True
        raw = self.registers()
        if raw is None:
            return False
        self.packed = bytearray(pack_dense(raw))
        self.dense = True
        self.header[4] = DENSE
        self.codes, self.lens, self.starts = [], [], []
        self.body_bytes = 0
        return True

    def _promote(self, index: int, count: int) -> int:
        if not self.to_dense():
            return -1
        return self._dense_set(index, count)  # always a raise: the sparse value was lower

    def _sparse_set(self, index: int, count: int) -> int:
        if count > VAL_MAX_VALUE:
            return self._promote(index, count)
        codes, lens, starts = self.codes, self.lens, self.starts
        if not codes:
            return -1
        i = bisect_right(starts, index) - 1
        first = starts[i]
        span = lens[i]
        if index >= first + span:
            return -1  # past the last run: corrupt
        code = codes[i]
        kind = _kind(code)
        if kind == VAL:
            if _value(code) >= count:
                return 0
            if span == 1:
                codes[i] = _val_code(count, 1)
                return self._merge_runs(i - 1)
        if kind == ZERO and span == 1:
            codes[i] = _val_code(count, 1)
            return self._merge_runs(i - 1)

        # Split the run into up to three: before, the register, after.
        last = first + span - 1
        new_codes: list[bytes] = []
        new_lens: list[int] = []
        new_starts: list[int] = []
        if index != first:
            n = index - first
            new_codes.append(_val_code(_value(code), n) if kind == VAL else _zero_code(n))
            new_lens.append(n)
            new_starts.append(first)
        new_codes.append(_val_code(count, 1))
        new_lens.append(1)
        new_starts.append(index)
        if index != last:
            n = last - index
            new_codes.append(_val_code(_value(code), n) if kind == VAL else _zero_code(n))
            new_lens.append(n)
            new_starts.append(index + 1)
        delta = sum(map(len, new_codes)) - (2 if kind == XZERO else 1)
        if delta > 0 and HDR_SIZE + self.body_bytes + delta > SPARSE_MAX_BYTES:
            return self._promote(index, count)
        codes[i:i + 1] = new_codes
        lens[i:i + 1] = new_lens
        starts[i:i + 1] = new_starts
        self.body_bytes += sum(map(len, new_codes)) - len(code)
        return self._merge_runs(i - 1)

    def _merge_runs(self, prev: int) -> int:
        """Join adjacent VAL runs of one value, scanning 5 runs from `prev` (as Redis
        does after an update: the result is Redis' exact bytes, not a canonical form)."""
        codes, lens, starts = self.codes, self.lens, self.starts
        p = prev if prev >= 0 else 0
        scan = 5
        while p < len(codes) and scan > 0:
            scan -= 1
            if _kind(codes[p]) != VAL:
                p += 1
                continue
            if p + 1 < len(codes) and _kind(codes[p + 1]) == VAL:
                value = _value(codes[p])
                joined = lens[p] + lens[p + 1]
                if value == _value(codes[p + 1]) and joined <= VAL_MAX_LEN:
                    codes[p] = _val_code(value, joined)
                    lens[p] = joined
                    del codes[p + 1], lens[p + 1], starts[p + 1]
                    self.body_bytes -= 1
                    continue
            p += 1
        self.invalidate()  # as hllSparseSet does (so even a PFADD that fails later)
        return 1

    def encode(self) -> bytes:
        if self.dense:
            return bytes(self.header) + bytes(self.packed)
        return bytes(self.header) + b"".join(self.codes)


def merge_into(dest: Hll, registers: bytes | bytearray) -> None:
    """Raise `dest`'s registers to `registers` where those are higher, in register
    order, as PFMERGE writes its result (the caller has made `dest` dense if any
    input was); the cached cardinality is marked stale. A sparse `dest` takes them one
    by one (its bytes depend on the order, and it may turn dense part way); a dense one
    all at once, which gives the same bytes."""
    for j, value in enumerate(registers):
        if dest.dense:
            dest.raise_all(registers)
            break
        if value:
            dest.set(j, value)
    dest.invalidate()
