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
from bisect import bisect_right

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


def _or(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") | int.from_bytes(b, "big")).to_bytes(len(a), "big")


def unpack_dense(packed: bytes) -> bytearray:
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


# --- an HLL being worked on --------------------------------------------------------------


class Hll:
    """A parsed HLL: its header, and its registers (dense) or its opcode runs (sparse).

    Sparse runs are kept as parallel lists with each run's first register (`starts`),
    which a split or a merge of runs never moves for the other runs, so finding a
    register is a bisection. `encode()` gives the bytes back, Redis' own.
    """

    __slots__ = ("header", "dense", "kinds", "vals", "lens", "starts", "body_bytes",
                 "raw")

    def __init__(self, data: bytes) -> None:
        """`data` must pass `is_valid`."""
        self.header = bytearray(data[:HDR_SIZE])
        self.dense = data[4] == DENSE
        self.raw = bytearray()
        self.kinds: list[int] = []
        self.vals: list[int] = []
        self.lens: list[int] = []
        self.starts: list[int] = []
        self.body_bytes = 0
        if self.dense:
            self.raw = unpack_dense(data[HDR_SIZE:])
        else:
            self._parse_sparse(data[HDR_SIZE:])

    def _parse_sparse(self, body: bytes) -> None:
        kinds, vals, lens, starts = self.kinds, self.vals, self.lens, self.starts
        i = 0
        first = 0
        n = len(body)
        while i < n:
            b = body[i]
            if b & 0x80:
                kinds.append(VAL)
                vals.append(((b >> 2) & 0x1F) + 1)
                span = (b & 3) + 1
                i += 1
            elif b & 0x40:
                kinds.append(XZERO)
                vals.append(0)
                # A trailing XZERO cut short reads its second byte as 0 (the string's
                # terminator in Redis).
                span = (((b & 0x3F) << 8) | (body[i + 1] if i + 1 < n else 0)) + 1
                i += 2
            else:
                kinds.append(ZERO)
                vals.append(0)
                span = (b & 0x3F) + 1
                i += 1
            lens.append(span)
            starts.append(first)
            first += span
        self.body_bytes = n

    # --- reading -------------------------------------------------------------------------

    def registers(self) -> bytearray | None:
        """All 16384 registers, or None if the sparse runs do not cover exactly them."""
        if self.dense:
            return bytearray(self.raw)
        out = bytearray(REGISTERS)
        covered = 0
        for kind, val, span in zip(self.kinds, self.vals, self.lens, strict=True):
            if covered + span > REGISTERS:
                return None
            if kind == VAL:
                out[covered:covered + span] = bytes((val,)) * span
            covered += span
        return out if covered == REGISTERS else None

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
            if count > self.raw[index]:
                self.raw[index] = count
                return 1
            return 0
        return self._sparse_set(index, count)

    def to_dense(self) -> bool:
        """Switch to the dense encoding (hllSparseToDense); False if corrupt."""
        if self.dense:
            return True
        raw = self.registers()
        if raw is None:
            return False
        self.raw = raw
        self.dense = True
        self.header[4] = DENSE
        self.kinds, self.vals, self.lens, self.starts = [], [], [], []
        self.body_bytes = 0
        return True

    def _promote(self, index: int, count: int) -> int:
        if not self.to_dense():
            return -1
        self.raw[index] = count  # always a raise: the sparse value was lower
        return 1

    def _sparse_set(self, index: int, count: int) -> int:
        if count > VAL_MAX_VALUE:
            return self._promote(index, count)
        kinds, vals, lens, starts = self.kinds, self.vals, self.lens, self.starts
        if not kinds:
            return -1
        i = bisect_right(starts, index) - 1
        first = starts[i]
        if index >= first + lens[i]:
            return -1  # past the last run: corrupt
        kind, span = kinds[i], lens[i]
        if kind == VAL:
            if vals[i] >= count:
                return 0
            if span == 1:
                vals[i] = count
                return self._merge_runs(i - 1)
        if kind == ZERO and span == 1:
            kinds[i], vals[i] = VAL, count
            return self._merge_runs(i - 1)

        # Split the run into up to three: before, the register, after.
        last = first + span - 1
        seq: list[tuple[int, int, int, int]] = []  # (kind, val, len, start)
        if kind == VAL:
            cur = vals[i]
            if index != first:
                seq.append((VAL, cur, index - first, first))
            seq.append((VAL, count, 1, index))
            if index != last:
                seq.append((VAL, cur, last - index, index + 1))
        else:
            if index != first:
                n = index - first
                seq.append((XZERO if n > ZERO_MAX_LEN else ZERO, 0, n, first))
            seq.append((VAL, count, 1, index))
            if index != last:
                n = last - index
                seq.append((XZERO if n > ZERO_MAX_LEN else ZERO, 0, n, index + 1))
        seq_bytes = sum(2 if s[0] == XZERO else 1 for s in seq)
        delta = seq_bytes - (2 if kind == XZERO else 1)
        if delta > 0 and HDR_SIZE + self.body_bytes + delta > SPARSE_MAX_BYTES:
            return self._promote(index, count)
        kinds[i:i + 1] = [s[0] for s in seq]
        vals[i:i + 1] = [s[1] for s in seq]
        lens[i:i + 1] = [s[2] for s in seq]
        starts[i:i + 1] = [s[3] for s in seq]
        self.body_bytes += delta
        return self._merge_runs(i - 1)

    def _merge_runs(self, prev: int) -> int:
        """Join adjacent VAL runs of one value, scanning 5 runs from `prev` (as Redis
        does after an update: the result is Redis' exact bytes, not a canonical form)."""
        kinds, vals, lens, starts = self.kinds, self.vals, self.lens, self.starts
        p = prev if prev >= 0 else 0
        scan = 5
        while p < len(kinds) and scan > 0:
            scan -= 1
            if kinds[p] != VAL:
                p += 1
                continue
            if p + 1 < len(kinds) and kinds[p + 1] == VAL and vals[p] == vals[p + 1]:
                joined = lens[p] + lens[p + 1]
                if joined <= VAL_MAX_LEN:
                    lens[p] = joined
                    del kinds[p + 1], vals[p + 1], lens[p + 1], starts[p + 1]
                    self.body_bytes -= 1
                    continue
            p += 1
        self.invalidate()  # as hllSparseSet does (so even a PFADD that fails later)
        return 1

    def encode(self) -> bytes:
        if self.dense:
            return bytes(self.header) + pack_dense(self.raw)
        out = bytearray(self.header)
        for kind, val, span in zip(self.kinds, self.vals, self.lens, strict=True):
            if kind == VAL:
                out.append(0x80 | ((val - 1) << 2) | (span - 1))
            elif kind == ZERO:
                out.append(span - 1)
            else:
                out += _xzero_bytes(span)
        return bytes(out)


def merge_into(dest: Hll, registers: bytes | bytearray) -> None:
    """Raise `dest`'s registers to `registers` where those are higher, in register
    order, as PFMERGE writes its result (the caller has made `dest` dense if any
    input was); the cached cardinality is marked stale."""
    for j, value in enumerate(registers):
        if value:
            dest.set(j, value)
    dest.invalidate()
