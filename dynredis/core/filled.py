"""Bytes filled in place: a large value received in parts, copied as each part arrives
into the bytes object that will hold it (wire.Gather).

A replica that gathered a 100 MB write into one buffer and then decoded it copied the
value out of that buffer in one loop turn: 55-115 ms, about half of it page faults on
the fresh copy. Filled in place, the value is copied a part (256 KB) per event, and
its pages are touched as the parts come.

A bytes object cannot be written from Python; CPython's own C code fills the buffer of
`PyBytes_FromStringAndSize(NULL, n)` before it hands the object out, and so does this
module (through `ctypes.pythonapi`): `blank(n)` makes such an object (its memory not yet
touched), `fill` copies into it. The caller shares it with nobody until it is full, and
never fills it again after: bytes are immutable to everything else (their hash is
computed and cached on first use). Elsewhere than CPython, `AVAILABLE` is False and
callers copy as they always did.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable
from typing import Any, Final

AVAILABLE: Final = platform.python_implementation() == "CPython"

if AVAILABLE:
    _new = ctypes.pythonapi.PyBytes_FromStringAndSize
    _new.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    _new.restype = ctypes.py_object
    _address = ctypes.pythonapi.PyBytes_AsString
    _address.argtypes = [ctypes.py_object]
    _address.restype = ctypes.c_void_p
    _from_memory = ctypes.pythonapi.PyMemoryView_FromMemory
    _from_memory.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int]
    _from_memory.restype = ctypes.py_object
_BUF_WRITE: Final = 0x200  # PyBUF_WRITE
COPY_SLICE: Final = 16 << 20
"""Bytes of a large value copied a loop turn by those who copy it over turns (a write's
new version, a reply given whole, RENAME's copy): about 10 ms of a node's CPU, most of
it page faults of the fresh memory."""
_memmove: Final = ctypes.memmove


def blank(n: int) -> bytes:
    """A bytes object of `n` bytes to be filled (its content undefined until then)."""
    if n < 0:
        raise ValueError("negative size")
    return _new(None, n)  # type: ignore[no-any-return]


def fill(dst: bytes, at: int, src: bytes, start: int, end: int) -> None:
    """Copy `src[start:end]` into `dst` at offset `at` (a blank's, not yet shared)."""
    if type(dst) is not bytes or type(src) is not bytes:
        raise TypeError("fill copies between bytes objects")
    n = end - start
    if not (0 <= start <= end <= len(src) and 0 <= at and at + n <= len(dst)):
        raise ValueError("fill out of bounds")
    if n:
        _memmove(_address(dst) + at, _address(src) + start, n)


def window(dst: bytes) -> memoryview:
    """A writable view of a blank's bytes (unsigned bytes, as a bytes' own view), to
    copy any buffer into (a view of a stored value included, which `fill` does not
    take) by slice assignment. It holds no reference to `dst`: valid while `dst` is
    alive; the same rules as `fill`. (Made from the address alone: a ctypes array type
    per size, `c_char * n`, stays in ctypes' cache for good, each a reference cycle.)"""
    if type(dst) is not bytes:
        raise TypeError("window views a bytes object")
    return _from_memory(_address(dst), len(dst), _BUF_WRITE)  # type: ignore[no-any-return]


class Joining:
    """`parts` (bytes-like) joined into one bytes object a budget of bytes a `step`, after
    `room` bytes left for the caller to fill last (`put_head`: a header that depends on
    what follows): a 100 MB join at once held a node's loop 30-60 ms, most of it page
    faults of the fresh memory. `seen`, if given, is called with each chunk copied (a
    digest taken as the bytes go). Elsewhere than CPython, joined at the first step."""

    __slots__ = ("parts", "room", "seen", "out", "view", "part", "offset", "at", "done")

    def __init__(self, parts: list[Any], room: int = 0,
                 seen: Callable[[Any], Any] | None = None) -> None:
        self.parts = parts
        self.room = room
        self.seen = seen
        self.out = b""
        self.view: memoryview | None = None
        self.part = 0  # the part being copied
        self.offset = 0  # bytes of it copied
        self.at = room  # where its next bytes go in `out`
        self.done = False

    def size(self) -> int:
        """Bytes of the parts (the room excluded)."""
        return sum([len(part) for part in self.parts])

    def step(self, budget: int) -> bool:
        """Copy up to `budget` bytes more; True once every part is copied."""
        if self.done:
            return True
        parts = self.parts
        if not AVAILABLE:
            if self.seen is not None:
                for part in parts:
                    self.seen(part)
            self.out = bytes(self.room) + b"".join(parts)
            self.done = True
            return True
        view = self.view
        if view is None:
            self.out = blank(self.room + self.size())
            view = self.view = window(self.out)
        seen = self.seen
        at = self.at
        while budget > 0 and self.part < len(parts):
            part = parts[self.part]
            start = self.offset
            n = min(budget, len(part) - start)
            chunk = memoryview(part)[start : start + n]
            view[at : at + n] = chunk
            if seen is not None:
                seen(chunk)
            at += n
            budget -= n
            if start + n == len(part):
                self.part += 1
                self.offset = 0
            else:
                self.offset = start + n
        self.at = at
        self.done = self.part >= len(parts)
        return self.done

    def put_head(self, head: bytes) -> None:
        """Write `head` (`room` bytes) in front, once every part is copied."""
        if len(head) != self.room or not self.done:
            raise ValueError("a head fills the room, once the parts are copied")
        if self.view is not None:
            self.view[: self.room] = head
        else:
            self.out = head + self.out[self.room:]

    def result(self) -> bytes:
        """The joined bytes (once `step` answered True); the parts are let go."""
        self.release()
        return self.out

    def release(self) -> None:
        """Let go of the parts and the writable view (the result is kept)."""
        if self.view is not None:
            self.view.release()
            self.view = None
        self.parts = []
        self.seen = None
