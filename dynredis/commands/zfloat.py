"""Sorted-set scores as Redis 7.0 reads and prints them.

Reading: Redis reads scores with C's strtod, under two sets of rules:
- a score argument (ZADD, ZINCRBY, WEIGHTS) must be all number (`string2d`): no leading
  space, nothing after it, not NaN, and no overflow to +-inf or underflow to 0 from a
  finite literal; `inf`, `-inf`, `infinity` and hexadecimal (`0x1p3`) are numbers;
- a range bound (ZRANGEBYSCORE, ZCOUNT ...) is plain strtod up to the end of the C string:
  leading spaces allowed, `""` reads as 0, `1e400` as inf, anything after a NUL byte is
  ignored; only NaN and unread characters are refused.
Printing: `%.17g` (inf and -inf spelled so), as a bulk string in RESP2 and a double in
RESP3; ZSCAN prints a small set's scores as its listpack holds them (integers up to
2^62 as integers).
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(
    rb"[+-]?(?:"
    rb"(?P<hex>0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)"
    rb"|(?P<dec>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    rb"|(?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    rb"|(?P<nan>[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)"
    rb")")
_SPACE = b" \t\n\v\f\r"
_LISTPACK_INT = float(2**62)


def strtod(text: bytes) -> tuple[float, int, bool]:
    """C's strtod: (value, characters read, ERANGE). Nothing read: (0.0, 0, False)."""
    i = 0
    while i < len(text) and text[i] in _SPACE:
        i += 1
    m = _NUMBER.match(text, i)
    if m is None:
        return 0.0, 0, False
    word = m.group(0)
    neg = word[:1] == b"-"
    if m.group("inf") is not None:
        return (-math.inf if neg else math.inf), m.end(), False
    if m.group("nan") is not None:
        return math.nan, m.end(), False
    if m.group("hex") is not None:
        try:
            value = float.fromhex(word.decode())
        except OverflowError:
            return (-math.inf if neg else math.inf), m.end(), True
        digits = m.group("hex")[2:].split(b"p")[0].split(b"P")[0]
    else:
        value = float(word)
        digits = m.group("dec").lower().split(b"e")[0]
    erange = math.isinf(value) or (value == 0 and digits.strip(b"0.") != b"")
    return value, m.end(), erange


def parse_score(raw: bytes) -> float | None:
    """A score argument (Redis' string2d), or None: `ERR value is not a valid float`."""
    if not raw or raw[0] in _SPACE:
        return None
    value, end, erange = strtod(raw)
    if end != len(raw) or value != value:
        return None
    if erange and (math.isinf(value) or value == 0):
        return None
    return value


def parse_bound(raw: bytes) -> tuple[float, bool] | None:
    """A score range bound `x` or `(x` (exclusive) as Redis' zslParseRange reads it, or
    None: `ERR min or max is not a float`."""
    text = raw.split(b"\0", 1)[0]
    exclusive = text[:1] == b"("
    if exclusive:
        text = text[1:]
    value, end, _ = strtod(text)
    if end != len(text) or value != value:
        return None
    return value, exclusive


def fmt(x: float) -> bytes:
    """A score as Redis prints a double."""
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    return b"%.17g" % x


def reply(x: float, proto: int) -> bytes:
    """A score reply: a bulk string in RESP2, a double in RESP3."""
    text = fmt(x)
    if proto >= 3:
        return b",%b\r\n" % text
    return b"$%d\r\n%b\r\n" % (len(text), text)


def listpack_text(x: float) -> bytes:
    """A score as a small set's listpack holds it (what ZSCAN prints)."""
    if -_LISTPACK_INT <= x <= _LISTPACK_INT and x == int(x):
        return b"%d" % int(x)
    return fmt(x)
