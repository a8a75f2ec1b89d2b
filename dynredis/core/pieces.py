"""msgpack encodings in pieces: each large bytes value a piece of its own, not copied.

msgpack is compositional: an array's encoding is its header followed by its items'
encodings, so an encoding can be written as a list of pieces whose join is exactly what
the encoder gives for the whole. Keeping a large value as its own piece spares a copy
of it: a 100 MB value once went through a node's loop as several copies in one event
(its object's encoding, the header put in front of it, each peer's batch), each a pass
over fresh memory.
"""

from __future__ import annotations

from typing import Any

import msgspec

_pack = msgspec.msgpack.Encoder().encode


def bin_head(n: int) -> bytes:
    """msgpack's header of a bin (bytes) of `n` bytes (the shortest, as encoders write)."""
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def array_head(n: int) -> bytes:
    """msgpack's header of an array of `n` items."""
    if n < 16:
        return (0x90 | n).to_bytes(1, "big")
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


class Joined:
    """Bytes-like parts encoded as one bin, each a piece of its own: a value viewed in
    the store with bytes appended (APPEND of a large value: LocalStore.encoding_in_place)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts


def splice(old: bytes, at: int, data: bytes, large: int) -> bytes | Joined:
    """`old` with `data` written over it from offset `at`, zeros between old's end and
    `at` if `at` is past it (SETRANGE, SETBIT, APPEND of a value read whole). A result of
    `large` bytes or more is a Joined of views of `old`, the zeros (`bytes(n)`: memory
    the kernel maps on first write only) and `data`: its one copy is made into the new
    version's encoding. Built as bytes and then encoded, a 100 MiB value was two passes
    over fresh memory (80-90 ms each on an idle node; a 512 MB SETBIT made four)."""
    end = at + len(data)
    size = max(len(old), end)
    if size < large:
        if len(old) < at:
            old += bytes(at - len(old))
        return old[:at] + data + old[end:]
    view = memoryview(old)
    parts: list[Any] = [view[:at]] if at <= len(old) else [view, bytes(at - len(old))]
    parts.append(data)
    if end < len(old):
        parts.append(view[end:])
    return Joined([part for part in parts if len(part)])


def whole(data: Any) -> Any:
    """`data` as bytes if it is a Joined (to send it in a message, or store it as what
    the encoding of a whole object cannot take in pieces); else `data` as it is."""
    return b"".join(data.parts) if type(data) is Joined else data


def pieces(value: Any, large: int) -> list[Any]:
    """`value`'s msgpack encoding as pieces: every bytes value of `large` bytes or more
    (inside lists and tuples at any depth) is a piece as it is; what lies between them
    is packed and joined into one piece each. A memoryview of bytes (a value viewed in
    the store) is encoded as a bin, as a piece of its own, whatever its size; a Joined
    as the bin of its parts' bytes, each part a piece."""
    out: list[Any] = []
    small: list[bytes] = []
    _walk(value, large, out, small)
    if small:
        out.append(b"".join(small))
    return out


def _walk(value: Any, large: int, out: list[Any], small: list[bytes]) -> None:
    t = type(value)
    if (t is bytes and len(value) >= large) or t is memoryview:
        small.append(bin_head(len(value)))
        out.append(b"".join(small))
        small.clear()
        out.append(value)
    elif t is Joined:
        parts = value.parts
        small.append(bin_head(sum([len(part) for part in parts])))
        out.append(b"".join(small))
        small.clear()
        out.extend(parts)
    elif t is list or t is tuple:
        small.append(array_head(len(value)))
        for item in value:
            _walk(item, large, out, small)
    else:
        small.append(_pack(value))
