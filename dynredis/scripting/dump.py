"""FUNCTION DUMP / RESTORE payloads, in Redis' own format (so that a dump taken from
redis-server restores here and the other way round).

A payload is, for each library, the RDB opcode FUNCTION2 (245) and the library's code
as an RDB string; then the RDB version (2 bytes, little-endian) and the CRC64 (Jones,
reflected, as Redis') of everything before it (8 bytes, little-endian). Strings are
written plain; LZF-compressed and integer-encoded strings are read too.
"""

from __future__ import annotations

import struct

RDB_VERSION = 10  # Redis 7.0
OPCODE_FUNCTION2 = 245
OPCODE_FUNCTION_PRE_GA = 246
_POLY = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9, bit-reflected


def _table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc64(data: bytes, crc: int = 0) -> int:
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


class PayloadError(Exception):
    pass


def _length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def dump(codes: list[bytes]) -> bytes:
    body = b"".join(bytes([OPCODE_FUNCTION2]) + _length(len(c)) + c for c in codes)
    body += struct.pack("<H", RDB_VERSION)
    return body + struct.pack("<Q", crc64(body))


def lzf_decompress(data: bytes, size: int) -> bytes:
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
            continue
        length = ctrl >> 5
        if length == 7:
            length += data[i]
            i += 1
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
        i += 1
        if ref < 0:
            raise PayloadError("bad LZF data")
        for _ in range(length + 2):
            out.append(out[ref])
            ref += 1
    if len(out) != size:
        raise PayloadError("bad LZF length")
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PayloadError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def length(self) -> tuple[int, bool]:
        """(length, encoded?) as rdbLoadLen reads it."""
        first = self.take(1)[0]
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.take(1)[0], False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return struct.unpack(">I", self.take(4))[0], False
        if first == 0x81:
            return struct.unpack(">Q", self.take(8))[0], False
        raise PayloadError("bad length")

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n == 0:
            return b"%d" % struct.unpack("<b", self.take(1))[0]
        if n == 1:
            return b"%d" % struct.unpack("<h", self.take(2))[0]
        if n == 2:
            return b"%d" % struct.unpack("<i", self.take(4))[0]
        if n == 3:
            clen, _ = self.length()
            size, _ = self.length()
            return lzf_decompress(self.take(clen), size)
        raise PayloadError("bad string encoding")


def verify(payload: bytes) -> bool:
    """rdbVerifyDumpPayload: a known RDB version and a matching (or absent) CRC."""
    if len(payload) < 10:
        return False
    version = struct.unpack("<H", payload[-10:-8])[0]
    if version > RDB_VERSION + 2:  # later Redis versions write the same function format
        return False
    crc = struct.unpack("<Q", payload[-8:])[0]
    return crc == 0 or crc == crc64(payload[:-8])


def load(payload: bytes) -> list[bytes]:
    """The libraries' code in a verified payload; PayloadError with Redis' reason."""
    r = _Reader(payload[:-10])
    codes = []
    while r.pos < len(r.data):
        kind = r.take(1)[0]
        if kind == OPCODE_FUNCTION_PRE_GA:
            raise PayloadError("Pre-GA function format not supported")
        if kind != OPCODE_FUNCTION2:
            raise PayloadError("given type is not a function")
        codes.append(r.string())
    return codes
