"""A reference model of how Redis 7.0 reads a client's input: networking.c's
processInputBuffer, processInlineBuffer and processMultibulkBuffer, transcribed
statement by statement over one growing query buffer (slow, and meant to be obviously
Redis'). The request parser (dynredis/resp/request.py) is checked against it: the same
commands executed, the same protocol error, the same bytes held.

Differences from the C code are only in what cannot matter here: no argv objects, no
big-argument buffer tricks (they change copies, not results), no master/replica clients.
"""

from __future__ import annotations

from collections.abc import Callable

from dynredis.resp.inline import split_inline

PROTO_INLINE_MAX_SIZE = 64 * 1024
INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1
LONG_STR_SIZE = 21
INLINE, MULTIBULK = 1, 2


def string2ll(s: bytes) -> int | None:
    """util.c string2ll: None where it returns 0 (not a number it accepts)."""
    slen = len(s)
    if slen == 0 or slen >= LONG_STR_SIZE:
        return None
    if slen == 1 and s[0:1] == b"0":
        return 0
    p = 0
    negative = False
    if s[p:p + 1] == b"-":
        negative = True
        p += 1
        if p == slen:
            return None
    if b"1"[0] <= s[p] <= b"9"[0]:
        v = s[p] - 48
        p += 1
    else:
        return None
    while p < slen and b"0"[0] <= s[p] <= b"9"[0]:
        v = v * 10 + s[p] - 48
        p += 1
        if v > 2**64 - 1:
            return None
    if p < slen:
        return None
    if negative:
        return -v if v <= LLONG_MAX + 1 else None
    return v if v <= LLONG_MAX else None


class RedisReader:
    """One client's input as Redis reads it. `read(chunk)` is one readQueryFromClient;
    `executed` the commands run, `error` the protocol error replied (then closed)."""

    def __init__(self, proto_max_bulk_len: int, auth_required: Callable[[], bool],
                 on_command: Callable[[list[bytes]], None] | None = None) -> None:
        self.proto_max_bulk_len = proto_max_bulk_len
        self.auth_required = auth_required
        self.on_command = on_command
        self.querybuf = bytearray()
        self.qb_pos = 0
        self.reqtype = 0
        self.multibulklen = 0
        self.bulklen = -1
        self.argv: list[bytes] = []
        self.executed: list[list[bytes]] = []
        self.error: bytes | None = None

    # sds strings end with a NUL, and strchr stops at the first NUL.
    def strchr(self, start: int, ch: int) -> int:
        found = self.querybuf.find(bytes([ch]), start)
        nul = self.querybuf.find(b"\0", start, found if found >= 0 else len(self.querybuf))
        return -1 if found < 0 or nul >= 0 else found

    def held(self) -> int:
        return len(self.querybuf) - self.qb_pos + sum(len(a) for a in self.argv)

    def read(self, chunk: bytes) -> None:
        if self.error is not None:
            return
        self.querybuf += chunk
        self.process_input_buffer()
        del self.querybuf[:self.qb_pos]  # sdsrange(c->querybuf, c->qb_pos, -1)
        self.qb_pos = 0

    def protocol_error(self, reply: bytes) -> None:
        self.error = reply  # addReplyError + setProtocolError: close after reply

    def reset_client(self) -> None:
        self.reqtype = 0
        self.multibulklen = 0
        self.bulklen = -1
        self.argv = []

    def process_input_buffer(self) -> None:
        while self.qb_pos < len(self.querybuf):
            if self.error is not None:  # CLIENT_CLOSE_AFTER_REPLY
                break
            if not self.reqtype:
                if self.querybuf[self.qb_pos] == ord("*"):
                    self.reqtype = MULTIBULK
                else:
                    self.reqtype = INLINE
            if self.reqtype == INLINE:
                if not self.process_inline_buffer():
                    break
            else:
                if not self.process_multibulk_buffer():
                    break
            if len(self.argv) == 0:
                self.reset_client()
            else:
                argv = self.argv
                self.reset_client()
                self.executed.append(argv)
                if self.on_command is not None:
                    self.on_command(argv)

    def process_inline_buffer(self) -> bool:
        newline = self.strchr(self.qb_pos, ord("\n"))
        linefeed_chars = 1
        if newline < 0:
            if len(self.querybuf) - self.qb_pos > PROTO_INLINE_MAX_SIZE:
                self.protocol_error(b"too big inline request")
            return False
        if newline != self.qb_pos and self.querybuf[newline - 1] == ord("\r"):
            newline -= 1
            linefeed_chars += 1
        querylen = newline - self.qb_pos
        argv = split_inline(bytes(self.querybuf[self.qb_pos:newline]))
        if argv is None:
            self.protocol_error(b"unbalanced quotes in request")
            return False
        self.qb_pos += querylen + linefeed_chars
        self.argv = argv
        return True

    def process_multibulk_buffer(self) -> bool:
        buf = self.querybuf
        if self.multibulklen == 0:
            newline = self.strchr(self.qb_pos, ord("\r"))
            if newline < 0:
                if len(buf) - self.qb_pos > PROTO_INLINE_MAX_SIZE:
                    self.protocol_error(b"too big mbulk count string")
                return False
            if newline - self.qb_pos > len(buf) - self.qb_pos - 2:
                return False
            assert buf[self.qb_pos] == ord("*")
            ll = string2ll(bytes(buf[self.qb_pos + 1:newline]))
            if ll is None or ll > INT_MAX:
                self.protocol_error(b"invalid multibulk length")
                return False
            if ll > 10 and self.auth_required():
                self.protocol_error(b"unauthenticated multibulk length")
                return False
            self.qb_pos = newline + 2
            if ll <= 0:
                return True
            self.multibulklen = ll
            self.argv = []
        while self.multibulklen:
            if self.bulklen == -1:
                newline = self.strchr(self.qb_pos, ord("\r"))
                if newline < 0:
                    if len(buf) - self.qb_pos > PROTO_INLINE_MAX_SIZE:
                        self.protocol_error(b"too big bulk count string")
                        return False
                    break
                if newline - self.qb_pos > len(buf) - self.qb_pos - 2:
                    break
                if buf[self.qb_pos] != ord("$"):
                    got = buf[self.qb_pos]
                    if got in (ord("\r"), ord("\n")):
                        got = ord(" ")  # Redis writes no newline inside an error reply
                    self.protocol_error(b"expected '$', got '" + bytes([got]) + b"'")
                    return False
                ll = string2ll(bytes(buf[self.qb_pos + 1:newline]))
                if ll is None or ll < 0 or ll > self.proto_max_bulk_len:
                    self.protocol_error(b"invalid bulk length")
                    return False
                if ll > 16384 and self.auth_required():
                    self.protocol_error(b"unauthenticated bulk length")
                    return False
                self.qb_pos = newline + 2
                self.bulklen = ll
            if len(buf) - self.qb_pos < self.bulklen + 2:
                break
            self.argv.append(bytes(buf[self.qb_pos:self.qb_pos + self.bulklen]))
            self.qb_pos += self.bulklen + 2
            self.bulklen = -1
            self.multibulklen -= 1
        return self.multibulklen == 0
