"""The Python halves of the libraries scripts get: cjson's encode/decode and LuaBitOp.

Redis links lua-cjson and LuaBitOp into its Lua; the Lua of `lupa` has neither, so
their work is done here and reached through Lua closures (bridge.lua). They follow the
C libraries as Redis 7.0 ships them: cjson's number format (%.14g), escapes ("/" too),
sparse-array rule and messages; LuaBitOp's 32-bit normalisation (the 2^52+2^51 trick).
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

from lupa.lua51 import lua_type

# --- cjson ---------------------------------------------------------------------------------

MAX_DEPTH = 1000
SPARSE_RATIO = 2
SPARSE_SAFE = 10

_ESCAPES = {i: b"\\u%04x" % i for i in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r", 34: b'\\"',
                 92: b"\\\\", 47: b"\\/", 127: b"\\u007f"})
_ESCAPE_TABLE = {k: v for k, v in _ESCAPES.items()}


class JsonError(Exception):
    pass


def _number(x: float | int) -> bytes:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        raise JsonError("Cannot serialise number: must not be NaN or Inf")
    return b"%.14g" % x


def _string(s: bytes) -> bytes:
    out = bytearray(b'"')
    for b in s:
        esc = _ESCAPE_TABLE.get(b)
        if esc is None:
            out.append(b)
        else:
            out += esc
    out += b'"'
    return bytes(out)


def _array_length(table: Any) -> int:
    """cjson's lua_array_length: the array size, or -1 for an object."""
    highest = 0
    items = 0
    for k in table.keys():
        if isinstance(k, (int, float)) and not isinstance(k, bool) and k and k >= 1 \
                and math.floor(k) == k:
            highest = max(highest, int(k))
            items += 1
            continue
        return -1
    if highest > items * SPARSE_RATIO and highest > SPARSE_SAFE:
        raise JsonError("Cannot serialise table: excessively sparse array")
    return highest


def _encode(v: Any, null: Any, depth: int, out: list[bytes]) -> None:
    if v is None:
        out.append(b"null")
    elif v is True:
        out.append(b"true")
    elif v is False:
        out.append(b"false")
    elif isinstance(v, (int, float)):
        out.append(_number(v))
    elif isinstance(v, bytes):
        out.append(_string(v))
    else:
        kind = lua_type(v)
        if kind == "table":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonError(f"Cannot serialise, excessive nesting ({depth})")
            n = _array_length(v)
            if n > 0:
                out.append(b"[")
                for i in range(1, n + 1):
                    if i > 1:
                        out.append(b",")
                    _encode(v[i], null, depth, out)
                out.append(b"]")
                return
            out.append(b"{")
            first = True
            for k, x in v.items():
                if not first:
                    out.append(b",")
                first = False
                if isinstance(k, bytes):
                    out.append(_string(k))
                elif isinstance(k, (int, float)) and not isinstance(k, bool):
                    out.append(b'"' + _number(k) + b'"')
                else:
                    raise JsonError(f"Cannot serialise {_type_name(k)}: table key must be a "
                                    "number or string")
                out.append(b":")
                _encode(x, null, depth, out)
            out.append(b"}")
        elif kind == "userdata":
            out.append(b"null")  # cjson.null (Redis: a NULL lightuserdata)
        else:
            raise JsonError(f"Cannot serialise {_type_name(v)}: type not supported")


def _type_name(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, bytes):
        return "string"
    return lua_type(v) or "userdata"


def json_encode(value: Any, null: Any) -> tuple[bool, bytes]:
    out: list[bytes] = []
    try:
        _encode(value, null, 0, out)
    except JsonError as exc:
        return False, str(exc).encode()
    return True, b"".join(out)


# cjson's decoder (lua_cjson.c 2.1.0, as Redis links it), token for token, so that its
# errors are Redis' too: "Expected <what> but found <token> at character <n>".
T_OBJ_BEGIN, T_OBJ_END, T_ARR_BEGIN, T_ARR_END, T_STRING, T_NUMBER, T_BOOLEAN, T_NULL, \
    T_COLON, T_COMMA, T_END, T_ERROR = ("T_OBJ_BEGIN", "T_OBJ_END", "T_ARR_BEGIN", "T_ARR_END",
                                        "T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL",
                                        "T_COLON", "T_COMMA", "T_END", "T_ERROR")
_SINGLE = {ord("{"): T_OBJ_BEGIN, ord("}"): T_OBJ_END, ord("["): T_ARR_BEGIN,
           ord("]"): T_ARR_END, ord(":"): T_COLON, ord(","): T_COMMA}
_SPACE = frozenset(b" \t\n\r")
_UNKNOWN = frozenset(b'"-+0123456789tfnNiI')
_ESCAPE = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b",
           ord("t"): b"\t", ord("n"): b"\n", ord("f"): b"\f", ord("r"): b"\r"}
_NUMBER = re.compile(rb"[+-]?(?:0[xX][0-9a-fA-F]+|(?:inf(?:inity)?|nan)|"
                     rb"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.IGNORECASE)


class _Token:
    __slots__ = ("type", "value", "index")

    def __init__(self, type_: str, value: Any, index: int) -> None:
        self.type = type_
        self.value = value
        self.index = index


class _Lexer:
    def __init__(self, data: bytes) -> None:
        self.data = data.split(b"\0", 1)[0]  # a NUL byte ends the text, as in C
        self.pos = 0

    def _error(self, what: str) -> _Token:
        return _Token(T_ERROR, what, self.pos)

    def next(self) -> _Token:
        data = self.data
        n = len(data)
        while self.pos < n and data[self.pos] in _SPACE:
            self.pos += 1
        if self.pos >= n:
            return _Token(T_END, None, self.pos)
        ch = data[self.pos]
        single = _SINGLE.get(ch)
        if single is not None:
            self.pos += 1
            return _Token(single, None, self.pos - 1)
        if ch not in _UNKNOWN:
            return self._error("invalid token")
        start = self.pos
        if ch == ord('"'):
            return self._string(start)
        if ch in b"-+0123456789":
            return self._number(start)
        for word, kind, value in ((b"true", T_BOOLEAN, True), (b"false", T_BOOLEAN, False),
                                  (b"null", T_NULL, None)):
            if data.startswith(word, start):
                self.pos += len(word)
                return _Token(kind, value, start)
        low = data[start:start + 3].lower()
        if low in (b"inf", b"nan"):
            return self._number(start)
        return self._error("invalid token")

    def _number(self, start: int) -> _Token:
        m = _NUMBER.match(self.data, start)
        if m is None:
            return self._error("invalid number")
        text = m.group(0)
        self.pos = m.end()
        body = text.lstrip(b"+-")
        if body[:2].lower() == b"0x":
            value = float(int(body, 16))
            return _Token(T_NUMBER, -value if text.startswith(b"-") else value, start)
        return _Token(T_NUMBER, float(text), start)

    def _string(self, start: int) -> _Token:
        data = self.data
        n = len(data)
        self.pos += 1
        out = bytearray()
        while True:
            if self.pos >= n:
                return self._error("unexpected end of string")
            ch = data[self.pos]
            if ch == ord('"'):
                self.pos += 1
                return _Token(T_STRING, bytes(out), start)
            if ch == ord("\\"):
                esc = data[self.pos + 1] if self.pos + 1 < n else 0
                if esc == ord("u"):
                    got = self._unicode()
                    if got is None:
                        return self._error("invalid unicode escape code")
                    out += got
                    continue
                plain = _ESCAPE.get(esc)
                if plain is None:
                    return self._error("invalid escape code")
                out += plain
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1

    def _hex4(self, at: int) -> int | None:
        digits = self.data[at:at + 4]
        if len(digits) != 4 or not all(c in b"0123456789abcdefABCDEF" for c in digits):
            return None
        return int(digits, 16)

    def _unicode(self) -> bytes | None:
        code = self._hex4(self.pos + 2)
        if code is None:
            return None
        size = 6
        if code & 0xF800 == 0xD800:
            if code & 0x400:
                return None  # a low surrogate first
            if self.data[self.pos + 6:self.pos + 8] != b"\\u":
                return None
            low = self._hex4(self.pos + 8)
            if low is None or low & 0xFC00 != 0xDC00:
                return None
            code = 0x10000 + ((code & 0x3FF) << 10) + (low & 0x3FF)
            size = 12
        self.pos += size
        return chr(code).encode("utf-8")


class _DecodeError(Exception):
    pass


def _expected(what: str, token: _Token) -> _DecodeError:
    found = token.value if token.type == T_ERROR else token.type
    return _DecodeError(f"Expected {what} but found {found} at character {token.index + 1}")


def json_decoder(lua: Any) -> Any:
    """cjson.decode for one Lua state: JSON text -> Lua values (JSON null -> cjson.null)."""

    def decode(text: bytes, null: Any) -> tuple[bool, Any]:
        if len(text) >= 2 and (text[0] == 0 or text[1] == 0):
            return False, b"JSON parser does not support UTF-16 or UTF-32"
        lex = _Lexer(text)
        try:
            value = _parse(lex, lex.next(), null)
            tok = lex.next()
            if tok.type != T_END:
                raise _expected("the end", tok)
        except _DecodeError as exc:
            return False, str(exc).encode()
        return True, value

    def _parse(lex: _Lexer, tok: _Token, null: Any) -> Any:
        stack: list[list[Any]] = []  # ["a", items] or ["o", table, key]
        depth = 0
        while True:
            t = tok.type
            if t in (T_STRING, T_NUMBER, T_BOOLEAN):
                value = tok.value
            elif t == T_NULL:
                value = null
            elif t in (T_OBJ_BEGIN, T_ARR_BEGIN):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _DecodeError(f"Found too many nested data structures ({depth}) "
                                       f"at character {lex.pos}")
                tok = lex.next()
                if t == T_ARR_BEGIN:
                    if tok.type == T_ARR_END:
                        depth -= 1
                        value = lua.table()
                    else:
                        stack.append(["a", []])
                        continue
                else:
                    table = lua.table()
                    if tok.type == T_OBJ_END:
                        depth -= 1
                        value = table
                    else:
                        if tok.type != T_STRING:
                            raise _expected("object key string", tok)
                        key = tok.value
                        tok = lex.next()
                        if tok.type != T_COLON:
                            raise _expected("colon", tok)
                        stack.append(["o", table, key])
                        tok = lex.next()
                        continue
            else:
                raise _expected("value", tok)
            # a value is complete: into its container, then what follows it
            while True:
                if not stack:
                    return value
                frame = stack[-1]
                if frame[0] == "a":
                    frame[1].append(value)
                    tok = lex.next()
                    if tok.type == T_ARR_END:
                        depth -= 1
                        stack.pop()
                        value = lua.table_from(frame[1])
                        continue
                    if tok.type != T_COMMA:
                        raise _expected("comma or array end", tok)
                    tok = lex.next()
                    break
                frame[1][frame[2]] = value
                tok = lex.next()
                if tok.type == T_OBJ_END:
                    depth -= 1
                    stack.pop()
                    value = frame[1]
                    continue
                if tok.type != T_COMMA:
                    raise _expected("comma or object end", tok)
                tok = lex.next()
                if tok.type != T_STRING:
                    raise _expected("object key string", tok)
                frame[2] = tok.value
                tok = lex.next()
                if tok.type != T_COLON:
                    raise _expected("colon", tok)
                tok = lex.next()
                break

    return decode


# --- bit (LuaBitOp) ------------------------------------------------------------------------

_MAGIC = 6755399441055744.0  # 2^52 + 2^51: the double whose low word is the integer


def tobit(x: float) -> int:
    bits = struct.unpack("<Q", struct.pack("<d", float(x) + _MAGIC))[0] & 0xFFFFFFFF
    return bits - (1 << 32) if bits & 0x80000000 else bits


def _signed(u: int) -> int:
    u &= 0xFFFFFFFF
    return u - (1 << 32) if u & 0x80000000 else u


def _u(x: float) -> int:
    return tobit(x) & 0xFFFFFFFF


def bnot(x: float) -> int:
    return _signed(~_u(x))


def band(x: float, *rest: float) -> int:
    r = _u(x)
    for y in rest:
        r &= _u(y)
    return _signed(r)


def bor(x: float, *rest: float) -> int:
    r = _u(x)
    for y in rest:
        r |= _u(y)
    return _signed(r)


def bxor(x: float, *rest: float) -> int:
    r = _u(x)
    for y in rest:
        r ^= _u(y)
    return _signed(r)


def lshift(x: float, n: float) -> int:
    return _signed(_u(x) << (_u(n) & 31))


def rshift(x: float, n: float) -> int:
    return _signed(_u(x) >> (_u(n) & 31))


def arshift(x: float, n: float) -> int:
    return _signed(tobit(x) >> (_u(n) & 31))


def rol(x: float, n: float) -> int:
    b, k = _u(x), _u(n) & 31
    return _signed((b << k) | (b >> (32 - k)))


def ror(x: float, n: float) -> int:
    b, k = _u(x), _u(n) & 31
    return _signed((b >> k) | (b << (32 - k)))


def bswap(x: float) -> int:
    return _signed(int.from_bytes(_u(x).to_bytes(4, "little"), "big"))


def tohex(x: float, n: float = 8) -> bytes:
    b = _u(x)
    count = tobit(n)
    digits = "0123456789abcdef"
    if count < 0:
        count = -count
        digits = digits.upper()
    count = min(count, 8)
    out = []
    for _ in range(count):
        out.append(digits[b & 15])
        b >>= 4
    return "".join(reversed(out)).encode()


BIT = {"tobit": tobit, "tohex": tohex, "bnot": bnot, "band": band, "bor": bor, "bxor": bxor,
       "lshift": lshift, "rshift": rshift, "arshift": arshift, "rol": rol, "ror": ror,
       "bswap": bswap}
