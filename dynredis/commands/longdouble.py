"""Redis' long double arithmetic for INCRBYFLOAT, exactly.

Redis computes INCRBYFLOAT in x87 80-bit long double (64-bit significand), reading numbers
with strtold and printing the sum with "%.17Lf" (trailing zeros cut): 1234.5678 prints as
1234.56779999999999997, 1e308 with its 309 exact digits. Values are exact Fractions
rounded to that format; an infinity is a float.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_LD_DEC = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_LD_HEX = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                     rb"(?:[pP][+-]?[0-9]+)?")
_LD_INF = re.compile(rb"[+-]?inf(?:inity)?", re.IGNORECASE)
_LD_QMIN = -16445  # exponent of the smallest subnormal long double
_LD_MAX = (2**64 - 1) * 2**16320
_LD_CHARS = 5 * 1024  # Redis' MAX_LONG_DOUBLE_CHARS


def ld_round(x: Fraction) -> Fraction | float:
    """`x` rounded (to nearest, ties to even) to a long double; +-inf past the largest."""
    if x == 0:
        return Fraction(0)
    a = abs(x)
    n, d = a.numerator, a.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(-e, 0)) < (d << max(e, 0)):
        e -= 1  # now 2**e <= a < 2**(e + 1)
    q = max(e - 63, _LD_QMIN)
    m = round(Fraction(n, d << q) if q >= 0 else Fraction(n << -q, d))
    r = Fraction(m << q) if q >= 0 else Fraction(m, 1 << -q)
    if r > _LD_MAX:
        return math.inf if x > 0 else -math.inf
    return r if x > 0 else -r


def parse(text: bytes) -> Fraction | float | None:
    """Redis' string2ld: the long double strtold reads from the whole argument, or None
    (empty, too long, leading space, anything left unread, NaN, overflow, underflow to 0)."""
    if not text or len(text) >= _LD_CHARS or text[:1].isspace():
        return None
    if _LD_INF.fullmatch(text):
        return -math.inf if text[:1] == b"-" else math.inf
    neg = text[:1] == b"-"
    body = text.lstrip(b"+-").lower()
    if _LD_DEC.fullmatch(text):
        mant, _, exp = body.partition(b"e")
        ip, _, fp = mant.partition(b".")
        digits = (ip + fp).lstrip(b"0")
        if not digits:
            return Fraction(0)
        e10 = int(exp or b"0") - len(fp)
        magnitude = len(digits) + e10  # 10**(magnitude - 1) <= value < 10**magnitude
        if magnitude > 4934 or magnitude < -4952:
            return None
        x = Fraction(int(digits) * 10 ** max(e10, 0), 10 ** max(-e10, 0))
    elif _LD_HEX.fullmatch(text):
        mant, _, exp = body[2:].partition(b"p")
        ip, _, fp = mant.partition(b".")
        mantissa = int(ip + fp or b"0", 16)
        if not mantissa:
            return Fraction(0)
        e2 = int(exp or b"0") - 4 * len(fp)
        bits = mantissa.bit_length() + e2
        if bits > 16385 or bits < -16450:
            return None
        x = Fraction(mantissa << max(e2, 0), 1 << max(-e2, 0))
    else:
        return None
    r = ld_round(-x if neg else x)
    if isinstance(r, float) or r == 0:
        return None  # ERANGE: overflow, or underflow to zero
    return r


def format_ld(x: Fraction) -> bytes:
    """A long double as Redis' "%.17Lf" without trailing zeros ("-0" prints as "0")."""
    q = round(x * 10**17)
    digits = str(abs(q)).rjust(18, "0")
    whole, frac = digits[:-17], digits[-17:].rstrip("0")
    text = ("-" if q < 0 else "") + whole + ("." + frac if frac else "")
    return text.encode()
