"""Client requests read exactly as Redis 7 reads them (networking.c processInputBuffer,
processMultibulkBuffer, processInlineBuffer): bytes in, commands or one protocol error out.

A pure state machine, no I/O. Why not hiredis' reader: it parses replies, so it accepts
elements a request may not hold (`+`, `:`, `=`, nested arrays), allocates an aggregate
for whatever count it is given before any element arrives (`*2147483647` froze a node),
reads bulks of any length, and does not say where a frame ends.

The rules, each Redis' own (asked of a real redis-server 7.0):

- At a command start, `*` begins a multibulk request; anything else is an inline command
  (a line split like `sdssplitargs`). Blank lines, `*0` and negative counts are ignored.
- A header (`*N`, `$N`) ends at the first `\\r`; the byte after it is skipped unread. Its
  number is `string2ll`'s: no sign but `-`, no leading zero, no spaces.
- `*N` with N > INT_MAX: `invalid multibulk length`; `$N` with N < 0 or over
  proto-max-bulk-len: `invalid bulk length`, at the header, before any body arrives.
- Before authentication: at most 10 elements and 16384-byte bulks.
- Only `$` elements: `expected '$', got 'c'`.
- An unterminated header or inline line longer than 64 KB: `too big mbulk count
  string`, `too big bulk count string`, `too big inline request`.
- A bulk body is its declared length; the two bytes after it are skipped unread.
- As Redis searches with strchr, a NUL byte before the terminator hides it: the line
  counts as unterminated.

After an error nothing more is read (the connection is answered and closed).

Memory: nothing is allocated for a declared count or length. Input not yet parsed is
held once (no second copy while a command is read); a big bulk's body (32 KB and more,
Redis' PROTO_MBULK_BIG_ARG) is gathered in one growing buffer as it arrives, and made
an argument when complete. `held()` says how many bytes a client makes the node keep.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

from .inline import split_inline

INLINE_MAX: Final = 64 * 1024  # PROTO_INLINE_MAX_SIZE
BIG_ARG: Final = 32 * 1024  # PROTO_MBULK_BIG_ARG
MULTIBULK_MAX: Final = 2**31 - 1  # INT_MAX
UNAUTH_MULTIBULK_MAX: Final = 10
UNAUTH_BULK_MAX: Final = 16384
DEFAULT_MAX_BULK: Final = 512 * 1024 * 1024  # proto-max-bulk-len

_BAD: Final = -2  # _number(): not a string2ll number
_NEGATIVE: Final = -1  # _number(): a valid negative number
_LONG_STR_SIZE: Final = 21

ERR_MBULK: Final = b"invalid multibulk length"
ERR_BULK: Final = b"invalid bulk length"
ERR_UNAUTH_MBULK: Final = b"unauthenticated multibulk length"
ERR_UNAUTH_BULK: Final = b"unauthenticated bulk length"
ERR_BIG_MBULK: Final = b"too big mbulk count string"
ERR_BIG_BULK: Final = b"too big bulk count string"
ERR_BIG_INLINE: Final = b"too big inline request"
ERR_QUOTES: Final = b"unbalanced quotes in request"


def _number(buf: bytes, start: int, end: int) -> int:
    """Redis' string2ll over buf[start:end]: the value if it is >= 0, _NEGATIVE for a
    valid negative one, _BAD if it is not a number string2ll accepts."""
    size = end - start
    if size <= 0 or size >= _LONG_STR_SIZE:
        return _BAD
    c = buf[start]
    if size == 1:
        return c - 48 if 48 <= c <= 57 else _BAD
    negative = c == 45  # '-'
    i = start + 1 if negative else start
    if i == end:
        return _BAD
    c = buf[i]
    if not 49 <= c <= 57:  # the first digit is 1-9
        return _BAD
    value = c - 48
    i += 1
    while i < end:
        c = buf[i]
        if not 48 <= c <= 57:
            return _BAD
        value = value * 10 + (c - 48)
        i += 1
    if negative:
        return _NEGATIVE if value <= 2**63 else _BAD
    return value if value <= 2**63 - 1 else _BAD


def _fast_number(buf: bytes, start: i64, end: i64) -> i64:
    """The common header: a canonical number of at most 12 digits at buf[start], then
    \r and one more byte. Its value times 16 plus its digits (the header's length), or
    -1 for anything else (left to the exact path). Positions and value are i64 (plain
    C integers compiled: a tagged int's checks cost ~230 instructions a header)."""
    i: i64 = start
    stop: i64 = start + 12
    if stop > end:
        stop = end
    value: i64 = 0
    while i < stop:
        c: i64 = buf[i]
        if c < 48 or c > 57:
            break
        value = value * 10 + (c - 48)
        i += 1
    if i == start or i + 1 >= end or buf[i] != 13 or (buf[start] == 48 and i > start + 1):
        return -1
    return (value << 4) | (i - start)


def _nul(buf: bytes, start: int, end: int) -> bool:
    """A NUL byte in buf[start:end]: Redis' strchr stops there, the terminator unseen."""
    return buf.find(b"\0", start, end) >= 0


def _reason(message: bytes, c: int) -> bytes:
    """Redis' "expected '$', got 'c'" with the byte as it is (\\r and \\n as spaces, as
    Redis writes any error reply)."""
    if c == 13 or c == 10:
        c = 32
    return message + bytes([c]) + b"'"


class RequestParser:
    """Turns one client's input into commands, one at a time (`command`), so that a
    command runs (AUTH, the DYN.PEER hello) before the next one's header is judged."""

    def __init__(self, max_bulk: int = DEFAULT_MAX_BULK) -> None:
        self.max_bulk = max_bulk  # proto-max-bulk-len
        self.buf = b""  # input from `pos` on is not parsed yet
        self.pos = 0
        self.args: list[bytes] = []  # the multibulk command being read
        self.args_bytes = 0
        self.left = 0  # its elements still to read; 0 at a command start
        self.bulk = -1  # the length of the bulk being read, -1 before its header
        self.big: bytearray | None = None  # a big bulk's body as it arrives
        self.error = b""  # the protocol error, once there was one
        self.last_size = 0  # the bytes of the last command's arguments

    def feed(self, data: bytes) -> None:
        if self.error:
            return
        big = self.big
        if big is not None:
            need = self.bulk + 2 - len(big)
            if len(data) < need:
                big += data
                return
            big += data[:need]
            data = data[need:]
            del big[self.bulk :]
            self._append(bytes(big))
            self.big = None
        if self.pos < len(self.buf):
            self.buf = self.buf[self.pos :] + data
        else:
            self.buf = data
        self.pos = 0

    def held(self) -> int:
        """Bytes of input held: unparsed, and the arguments of the command being read."""
        big = self.big
        return (len(self.buf) - self.pos + self.args_bytes
                + (len(big) if big is not None else 0))

    def query_bytes(self) -> int:
        """Bytes of input not yet parsed into arguments (Redis' qbuf; the arguments
        read so far are `args_bytes`, Redis' argv-mem)."""
        big = self.big
        return len(self.buf) - self.pos + (len(big) if big is not None else 0)

    def head(self) -> bytes:
        """The first bytes of the input held (for a log line)."""
        big = self.big
        if big is not None:
            return bytes(big[:64])
        return self.buf[self.pos : self.pos + 64]

    def rest(self) -> bytes:
        """The input not parsed yet (what follows a command that ends the RESP stream)."""
        rest = self.buf[self.pos :]
        self.buf = b""
        self.pos = 0
        return rest

    def clear(self) -> None:
        """Forget all input (the connection is gone)."""
        self.buf = b""
        self.pos = 0
        self.args = []
        self.args_bytes = 0
        self.big = None
        self.left = 0
        self.bulk = -1

    def _append(self, arg: bytes) -> None:
        self.args.append(arg)
        self.args_bytes += len(arg)
        self.left -= 1
        self.bulk = -1

    def _fail(self, reason: bytes) -> None:
        self.error = reason
        self.clear()

    def command(self, auth_required: bool) -> list[bytes] | None:
        """The next complete command, or None: more input is needed, or `error` is set.

        `auth_required`: the client has not authenticated (smaller limits apply)."""
        while not self.error and self.big is None:
            buf = self.buf
            pos = self.pos
            end = len(buf)
            if self.left == 0:
                if self.args:  # completed by the end of a big bulk (`feed`)
                    done = self.args
                    self.last_size = self.args_bytes
                    self.args = []
                    self.args_bytes = 0
                    return done
                if pos >= end:
                    if end:
                        self.buf = b""  # let go of the last chunk
                        self.pos = 0
                    return None
                if buf[pos] != 42:  # not '*': an inline command
                    words = self._inline(buf, pos, end)
                    if words is None:
                        return None
                    if words:
                        return words
                    continue
                if not self._multibulk_header(buf, pos, end, auth_required):
                    return None
                continue
            return self._elements(buf, pos, end, auth_required)
        return None

    def _inline(self, buf: bytes, pos: int, end: int) -> list[bytes] | None:
        """One inline line: its words ([] for a blank line), or None (incomplete or an
        error)."""
        nl = buf.find(b"\n", pos)
        if nl < 0 or _nul(buf, pos, nl):
            if end - pos > INLINE_MAX:
                self._fail(ERR_BIG_INLINE)
            return None
        stop = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        self.pos = nl + 1
        self.last_size = stop - pos
        words = split_inline(buf[pos:stop])
        if words is None:
            self._fail(ERR_QUOTES)
            return None
        return words

    def _multibulk_header(self, buf: bytes, pos: int, end: int, auth_required: bool) -> bool:
        """Read `*N`: True if read (the command's elements, if any, come next)."""
        packed = _fast_number(buf, pos + 1, end)
        n = packed >> 4
        if packed < 0 or n > MULTIBULK_MAX or (n > UNAUTH_MULTIBULK_MAX and auth_required):
            return self._multibulk_header_slow(buf, pos, end, auth_required)
        self.pos = pos + 3 + (packed & 15)
        if n > 0:
            self.left = n
            self.args = []
            self.args_bytes = 0
        return True

    def _multibulk_header_slow(self, buf: bytes, pos: int, end: int,
                               auth_required: bool) -> bool:
        cr = buf.find(b"\r", pos)
        if cr < 0 or cr + 1 >= end:
            # No terminator, or not the byte after it yet.
            if (cr < 0 or _nul(buf, pos, cr)) and end - pos > INLINE_MAX:
                self._fail(ERR_BIG_MBULK)
            return False
        n = _number(buf, pos + 1, cr)
        if n == _BAD or n > MULTIBULK_MAX:
            if _nul(buf, pos, cr):
                # strchr stops at NUL: Redis sees no terminator.
                if end - pos > INLINE_MAX:
                    self._fail(ERR_BIG_MBULK)
                return False
            self._fail(ERR_MBULK)
            return False
        if n > UNAUTH_MULTIBULK_MAX and auth_required:
            self._fail(ERR_UNAUTH_MBULK)
            return False
        self.pos = cr + 2
        if n > 0:
            self.left = n
            self.args = []
            self.args_bytes = 0
        return True

    def _elements(self, buf: bytes, pos: i64, end: i64,
                  auth_required: bool) -> list[bytes] | None:
        """Read the current command's elements: the command once all are there.
        Positions and counts are i64 (plain C integers compiled)."""
        n: i64 = self.bulk
        args = self.args
        left: i64 = self.left
        size: i64 = self.args_bytes
        fast_max: i64 = self.max_bulk
        if auth_required and fast_max > UNAUTH_BULK_MAX:
            fast_max = UNAUTH_BULK_MAX
        packed: i64
        while True:
            if n < 0:
                packed = -1
                if pos < end and buf[pos] == 36:  # '$'
                    packed = _fast_number(buf, pos + 1, end)
                    if packed >> 4 > fast_max:
                        packed = -1
                if packed >= 0:
                    n = packed >> 4
                    pos += 3 + (packed & 15)
                else:
                    n = self._bulk_header_slow(buf, pos, end, auth_required)
                    if n == _BAD:
                        return None  # failed: everything is cleared
                    if n < 0:
                        break
                    pos = buf.find(b"\r", pos) + 2
            if end - pos < n + 2:
                if n >= BIG_ARG:
                    # Gather the body in its own buffer as it arrives (`feed`).
                    self.bulk = n
                    self.big = bytearray(buf[pos:end])
                    self.buf = b""
                    self.pos = 0
                    self.left = left
                    self.args_bytes = size
                    return None
                break
            args.append(buf[pos : pos + n])
            pos += n + 2
            size += n
            n = -1
            left -= 1
            if left == 0:
                self.pos = pos
                self.bulk = -1
                self.left = 0
                self.last_size = size
                self.args = []
                self.args_bytes = 0
                return args
        self.pos = pos
        self.bulk = n
        self.left = left
        self.args_bytes = size
        return None

    def _bulk_header_slow(self, buf: bytes, pos: int, end: int, auth_required: bool) -> int:
        """A `$N` header the fast path did not take: N, or -1 (incomplete) or _BAD (a
        protocol error, now set)."""
        cr = buf.find(b"\r", pos)
        if cr < 0 or cr + 1 >= end:
            if (cr < 0 or _nul(buf, pos, cr)) and end - pos > INLINE_MAX:
                self._fail(ERR_BIG_BULK)
                return _BAD
            return -1
        if buf[pos] != 36:  # '$'
            if _nul(buf, pos, cr):
                if end - pos > INLINE_MAX:
                    self._fail(ERR_BIG_BULK)
                    return _BAD
                return -1
            self._fail(_reason(b"expected '$', got '", buf[pos]))
            return _BAD
        n = _number(buf, pos + 1, cr)
        if n < 0 or n > self.max_bulk:
            if _nul(buf, pos, cr):
                if end - pos > INLINE_MAX:
                    self._fail(ERR_BIG_BULK)
                    return _BAD
                return -1
            self._fail(ERR_BULK)
            return _BAD
        if n > UNAUTH_BULK_MAX and auth_required:
            self._fail(ERR_UNAUTH_BULK)
            return _BAD
        return n
