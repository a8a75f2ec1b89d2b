"""An object's shape: a stored object decoded with its large values left where they are.

A request of a few bytes about a 100 MB value (DEL, EXISTS, TTL, TYPE, STRLEN, GETRANGE,
even GET, whose reply can be sent from the store a slice at a time) needs of it only
whether it is there, its expiry, its length or where it lies in the stored bytes:
copying it out of the store and decoding it held a node's loop for 0.2-0.7 s. The
shape has every sibling but its large values, which are `Unread`s: their length, their
place in the stored object, and the header naming that object (a large value is
always in a headed object: header.py).

An `Unread` is written only as it is (EXPIRE, PERSIST) or with bytes written over or
after it (`Spliced`: SETRANGE, APPEND), copied from the store into the new version's encoding
(LocalStore.encoding_in_place, called by writes.py).
"""

from __future__ import annotations

from typing import Any

import msgpack
import msgspec

from . import clock as dvv
from . import header as hdr
from . import obj as objmod
from .clock import Clock
from .obj import LARGE_VALUE, Sibling

# msgpack's bin formats: the first byte, and how many length bytes follow it.
_BIN_LENGTH = {0xC4: 1, 0xC5: 2, 0xC6: 4}


class Unread:
    """A large value left in the store: `size` bytes from offset `at` of the stored
    object that `name` (its header) names."""

    __slots__ = ("size", "at", "name")

    def __init__(self, size: int, at: int, name: bytes) -> None:
        self.size = size
        self.at = at
        self.name = name


class Spliced:
    """A large value left unread with `data` written over it from offset `at` (zeros
    between its end and `at`, if `at` is past it): what APPEND (`at` its size) and
    SETRANGE write, copied once from the store into the new version (Writes.put,
    LocalStore.encoding_in_place)."""

    __slots__ = ("value", "at", "data")

    def __init__(self, value: Unread, at: int, data: bytes) -> None:
        self.value = value
        self.at = at
        self.data = data

    def size(self) -> int:
        return max(self.value.size, self.at + len(self.data))


def is_kept(data: Any) -> bool:
    """Whether a value to write is (or starts with) a value left in the store."""
    return type(data) is Unread or type(data) is Spliced


# An object's shape with each sibling's data left undecoded (msgspec.Raw: a view of the
# input, not a copy).
_RawSibling = tuple[int, int, msgspec.Raw]
_raw = msgspec.msgpack.Decoder(
    tuple[tuple[tuple[bytes, int, tuple[_RawSibling, ...]], ...], tuple[_RawSibling, ...]])


def decode_shape(data: Any) -> Clock | None:
    """The shape of a stored headed object: `data` may be a view of the stored bytes
    (valid during the call only: nothing returned refers to it). None if it is not of
    the usual shape (decode it all)."""
    if not (len(data) > hdr.SIZE and data[0] == hdr.MAGIC):
        return None
    view = memoryview(data)
    try:
        entries, anon = _raw.decode(view[hdr.SIZE:])
    except msgspec.MsgspecError:
        return None
    name = bytes(view[: hdr.SIZE])
    places = iter(_large_places(view, hdr.SIZE))
    shaped_entries = tuple((actor, n, tuple([_shaped(sib, places, name) for sib in sibs]))
                           for actor, n, sibs in entries)
    return shaped_entries, tuple([_shaped(sib, places, name) for sib in anon])


def _shaped(sib: Any, places: Any, name: bytes) -> Sibling:
    raw = memoryview(sib[2])
    width = _BIN_LENGTH.get(raw[0], 0) if len(raw) >= LARGE_VALUE else 0
    if width:
        return (sib[0], sib[1], Unread(len(raw) - 1 - width, next(places), name))
    return (sib[0], sib[1], msgpack.unpackb(raw, use_list=False))


def _large_places(buf: Any, i: int) -> list[int]:
    """Where the data of each large bin sibling starts, in decoding order, walking the
    body [[[actor, n, [[ts, expire, data] ...]] ...], [[ts, expire, data] ...]] at `i`."""
    places: list[int] = []
    i += 1  # the body's 2-array
    count, i = _array(buf, i)
    for _ in range(count):
        i += 1  # an entry's 3-array
        i = _skip(buf, _skip(buf, i))  # actor, counter
        n, i = _array(buf, i)
        for _ in range(n):
            i = _sibling(buf, i, places)
    n, i = _array(buf, i)
    for _ in range(n):
        i = _sibling(buf, i, places)
    return places


def _sibling(buf: Any, i: int, places: list[int]) -> int:
    i = _skip(buf, _skip(buf, i + 1))  # its 3-array, ts, expire
    width = _BIN_LENGTH.get(buf[i], 0)
    end = _skip(buf, i)
    if width and end - i >= LARGE_VALUE:
        places.append(i + 1 + width)
    return end


def _array(buf: Any, i: int) -> tuple[int, int]:
    """(length, where its items start) of the msgpack array at `i`."""
    b = buf[i]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F, i + 1
    if b == 0xDC:
        return _uint(buf, i + 1, 2), i + 3
    if b == 0xDD:
        return _uint(buf, i + 1, 4), i + 5
    raise ValueError("not a msgpack array")


def _uint(buf: Any, i: int, n: int) -> int:
    return int.from_bytes(bytes(buf[i : i + n]), "big")


# Fixed sizes of msgpack's one-byte-typed formats (first byte -> bytes in all).
_FIXED = {0xC0: 1, 0xC2: 1, 0xC3: 1, 0xCA: 5, 0xCB: 9, 0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9,
          0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9, 0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18}
# Formats with a length: first byte -> (length bytes, extra type byte).
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),
          0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}


def _skip(buf: Any, i: int) -> int:
    """Where the msgpack value at `i` ends."""
    b = buf[i]
    if b <= 0x7F or b >= 0xE0:
        return i + 1
    if 0xA0 <= b <= 0xBF:
        return i + 1 + (b & 0x1F)
    fixed = _FIXED.get(b)
    if fixed is not None:
        return i + fixed
    sized = _SIZED.get(b)
    if sized is not None:
        width, extra = sized
        return i + 1 + width + extra + _uint(buf, i + 1, width)
    if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF):  # maps: twice as many items
        if b <= 0x8F:
            n, i = (b & 0x0F) * 2, i + 1
        else:
            width = 2 if b == 0xDE else 4
            n, i = _uint(buf, i + 1, width) * 2, i + 1 + width
    else:
        n, i = _array(buf, i)
    for _ in range(n):
        i = _skip(buf, i)
    return i


def holds_unread(obj: Clock) -> bool:
    """Whether a shape (or a version built on one) still holds a value left unread."""
    return any(is_kept(sib[2]) for sib in dvv.values(obj))


def unread_size(obj: Clock) -> int:
    """The bytes of the values a shape left unread."""
    return sum(sib[2].size for sib in dvv.values(obj) if type(sib[2]) is Unread)


def encoded_size(obj: Clock) -> int:
    """The length of `obj.encode(obj)` of a shape, its values left unread counted
    without being read (MEMORY USAGE of a 100 MB value copied it out to measure it):
    the object packed with each of them as b"" (c4 00), header first, plus each one's
    bin head and bytes."""
    sizes = [sib[2].size for sib in dvv.values(obj) if type(sib[2]) is Unread]
    if not sizes:
        return len(objmod.encode(obj))
    bare = (tuple((actor, n, tuple(_bare(sib) for sib in sibs)) for actor, n, sibs in obj[0]),
            tuple(_bare(sib) for sib in obj[1]))
    return hdr.SIZE + len(objmod.pack(bare)) + sum(_bin_head(n) + n - 2 for n in sizes)


def _bare(sib: Sibling) -> Sibling:
    return (sib[0], sib[1], b"") if type(sib[2]) is Unread else sib


def _bin_head(n: int) -> int:
    """Bytes of msgpack's bin head for `n` bytes."""
    return 2 if n < 1 << 8 else 3 if n < 1 << 16 else 5
