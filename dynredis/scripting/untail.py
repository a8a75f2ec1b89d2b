"""Turn a compiled Lua 5.1 chunk's tail calls into ordinary calls.

`redis.call` and its siblings are Lua functions here (they yield to the node), where
Redis has C functions. A tail call to a Lua function replaces the caller's stack frame,
so in `return redis.call('incr', k)` the script's own frame would be gone when the
command's error is raised, and the error could not say where it happened (Redis says
"script: <sha1>, on @user_script:<line>."). Redis' frames survive because a tail call to
a C function is an ordinary call.

A tail call compiles to `TAILCALL A B 0` followed by `RETURN A 0`; `CALL A B 0` followed
by the same `RETURN` returns the same values, keeping the frame. So scripts are
compiled, dumped (string.dump), patched here and loaded back. The cost: a script that
recurses through tail calls more than about 20000 deep runs out of stack, where plain
Lua 5.1 would run in constant space.
"""

from __future__ import annotations

import struct

OP_CALL = 28
OP_TAILCALL = 29
HEADER = b"\x1bLua\x51\x00\x01\x04\x08\x04\x08\x00"  # 5.1, little-endian, 4/8/4/8 sizes


class _Patcher:
    def __init__(self, data: bytes) -> None:
        if not data.startswith(HEADER):
            raise ValueError("not a Lua 5.1 chunk of this platform")
        self.buf = bytearray(data)
        self.pos = len(HEADER)

    def _int(self) -> int:
        (n,) = struct.unpack_from("<i", self.buf, self.pos)
        self.pos += 4
        return n

    def _string(self) -> None:
        (n,) = struct.unpack_from("<Q", self.buf, self.pos)
        self.pos += 8 + n

    def function(self) -> None:
        self._string()  # source
        self.pos += 4 + 4 + 4  # linedefined, lastlinedefined, 4 bytes of counts
        code = self._int()
        buf = self.buf
        for at in range(self.pos, self.pos + 4 * code, 4):
            if buf[at] & 0x3F == OP_TAILCALL:
                buf[at] = (buf[at] & 0xC0) | OP_CALL
        self.pos += 4 * code
        for _ in range(self._int()):  # constants
            kind = buf[self.pos]
            self.pos += 1
            if kind == 1:
                self.pos += 1
            elif kind == 3:
                self.pos += 8
            elif kind == 4:
                self._string()
            elif kind != 0:
                raise ValueError(f"unknown constant type {kind}")
        for _ in range(self._int()):  # nested functions
            self.function()
        lines = self._int()  # line info
        self.pos += 4 * lines
        for _ in range(self._int()):  # local variables
            self._string()
            self.pos += 8
        for _ in range(self._int()):  # upvalue names
            self._string()


def untail(chunk: bytes) -> bytes:
    """The dumped chunk with every TAILCALL made a CALL."""
    p = _Patcher(chunk)
    p.function()
    if p.pos != len(p.buf):
        raise ValueError("trailing bytes after the chunk")
    return bytes(p.buf)
