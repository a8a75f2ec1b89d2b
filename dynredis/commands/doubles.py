"""Redis' double arguments: what string2d (strtod over the whole argument) accepts.

Used for GEO coordinates and radii, and fit for any argument Redis reads with
getDoubleFromObject (ZADD scores, ZRANGEBYSCORE bounds without their '(' prefix). Redis
takes decimal and hexadecimal floats and inf/infinity, and refuses an empty argument, a
leading space, anything strtod leaves unread, NaN, an overflow, and an underflow to zero
(a subnormal result is accepted). Python's float() rounds decimals as strtod does.
"""

from __future__ import annotations

import math
import re

_DEC = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                  rb"(?:[pP][+-]?[0-9]+)?")
_INF = re.compile(rb"[+-]?inf(?:inity)?", re.IGNORECASE)
_NONZERO = re.compile(rb"[1-9a-fA-F]")


def parse_double(raw: bytes) -> float | None:
    """The double Redis reads from `raw`, or None where it answers "not a valid float"."""
    if _INF.fullmatch(raw):
        return -math.inf if raw[:1] == b"-" else math.inf
    if _DEC.fullmatch(raw):
        mantissa = raw.split(b"e")[0].split(b"E")[0]
        value = float(raw)
    elif _HEX.fullmatch(raw):
        body = raw.lstrip(b"+-")[2:]
        mantissa = body.split(b"p")[0].split(b"P")[0]
        try:
            value = float.fromhex(raw.decode())
        except OverflowError:
            return None
    else:
        return None
    if math.isinf(value):
        return None  # ERANGE: overflow
    if value == 0.0 and _NONZERO.search(mantissa):
        return None  # ERANGE: a nonzero number rounded to zero
    return value
