"""The Python halves of the libraries scripts get: cjson's encode/decode and LuaBitOp.

Redis links lua-cjson and LuaBitOp into its Lua; the Lua of `lupa` has neither, so
their work is done here and reached through Lua closures (bridge.lua). They follow the
C libraries as Redis 7.0 ships them: cjson's number format (%.14g), escapes ("/" too),
sparse-array rule and messages; LuaBitOp's 32-bit normalisation (the 2^52+2^51 trick).
"""

from __future__ import annotations

import json
import math
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


def json_decoder(lua: Any) -> Any:
    """cjson.decode for one Lua state: JSON text -> Lua values (JSON null -> cjson.null)."""

    def to_lua(v: Any, null: Any) -> Any:
        if v is None:
            return null
        if isinstance(v, str):
            return v.encode("utf-8", "surrogateescape")
        if isinstance(v, list):
            return lua.table_from([to_lua(x, null) for x in v])
        if isinstance(v, dict):
            t = lua.table()
            for k, x in v.items():
                t[k.encode("utf-8", "surrogateescape")] = to_lua(x, null)
            return t
        return v

    def decode(text: bytes, null: Any) -> tuple[bool, Any]:
        s = text.decode("utf-8", "surrogateescape")
        try:
            value = json.loads(s, parse_int=float)
        except json.JSONDecodeError as exc:
            where = exc.pos + 1
            if exc.msg == "Extra data":
                return False, b"Expected the end but found invalid token at character %d" % where
            if exc.pos >= len(s):
                return False, b"Expected value but found T_END at character %d" % where
            return False, b"Expected value but found invalid token at character %d" % where
        except RecursionError:
            return False, b"Found too many nested data structures (%d)" % (MAX_DEPTH + 1)
        try:
            return True, to_lua(value, null)
        except RecursionError:
            return False, b"Found too many nested data structures (%d)" % (MAX_DEPTH + 1)

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
