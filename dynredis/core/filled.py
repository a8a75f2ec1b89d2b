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
from typing import Final

AVAILABLE: Final = platform.python_implementation() == "CPython"

if AVAILABLE:
    _new = ctypes.pythonapi.PyBytes_FromStringAndSize
    _new.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    _new.restype = ctypes.py_object
    _address = ctypes.pythonapi.PyBytes_AsString
    _address.argtypes = [ctypes.py_object]
    _address.restype = ctypes.c_void_p
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
    take) by slice assignment. Valid while `dst` is alive; the same rules as `fill`."""
    if type(dst) is not bytes:
        raise TypeError("window views a bytes object")
    if not dst:
        return memoryview(bytearray())
    raw = (ctypes.c_char * len(dst)).from_address(_address(dst))
    return memoryview(raw).cast("B")
