"""The INCR family. Integer increments are convergent counters (DESIGN.md §3):
concurrent INCRs through different nodes, or on both sides of a partition, all count.
INCRBYFLOAT is a read-modify-write of the string value (last writer wins)."""

from __future__ import annotations

from fractions import Fraction

from ..core import writes
from ..core.obj import Sibling
from ..core.shape import Unread
from ..resp import encode as resp
from . import longdouble
from .common import Write, current, err, read_then_write
from .context import Context
from .table import ERR_NOT_INT, ERR_WRONGTYPE, command, parse_int

ERR_NOT_FLOAT = resp.error("ERR value is not a valid float")
ERR_NAN_OR_INF = resp.error("ERR increment would produce NaN or Infinity")


# The core's reasons for refusing an increment (core/writes.py), in Redis' words.
INCR_REFUSALS = {
    writes.NOT_AN_INTEGER: ERR_NOT_INT,
    writes.OVERFLOW: resp.error("ERR increment or decrement would overflow"),
    writes.WRONG_TYPE: ERR_WRONGTYPE,
}


def _incr(c: Context, key: bytes, delta: int) -> None:
    node = c.node
    slot = c.defer()

    def done(result: tuple) -> None:
        e, obj = result
        if e is not None:
            slot.set(INCR_REFUSALS.get(e) or err(e))
            return
        sib = current(obj, node.now)
        slot.set(resp.integer(int(sib[2])) if sib is not None else resp.ZERO)

    c.incr(key, delta, done, c.w)


@command("incr", 2, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Increments the integer value of a key by one.")
def cmd_incr(c: Context, args: list[bytes]) -> None:
    _incr(c, args[1], 1)


@command("decr", 2, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Decrements the integer value of a key by one.")
def cmd_decr(c: Context, args: list[bytes]) -> None:
    _incr(c, args[1], -1)


@command("incrby", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Increments the integer value of a key by a number.")
def cmd_incrby(c: Context, args: list[bytes]) -> bytes | None:
    n = parse_int(args[2])
    if n is None:
        return ERR_NOT_INT
    _incr(c, args[1], n)
    return None


@command("decrby", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Decrements a number from the integer value of a key.")
def cmd_decrby(c: Context, args: list[bytes]) -> bytes | None:
    n = parse_int(args[2])
    if n is None or n == -(2**63):
        return ERR_NOT_INT if n is None else resp.error(
            "ERR decrement would overflow")
    _incr(c, args[1], -n)
    return None


@command("incrbyfloat", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Increment the floating point value of a key by a number.")
def cmd_incrbyfloat(c: Context, args: list[bytes]) -> bytes | None:
    delta = longdouble.parse(args[2])
    if delta is None:
        return ERR_NOT_FLOAT

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        base: Fraction | float = Fraction(0)
        expire = 0
        if sib is not None:
            if type(sib[2]) is Unread:
                return ERR_NOT_FLOAT, None  # LARGE_VALUE bytes: never a number, as Redis
            parsed = longdouble.parse(sib[2])  # type: ignore[arg-type]
            if parsed is None:
                return ERR_NOT_FLOAT, None
            base, expire = parsed, sib[1]
        if isinstance(base, float) or isinstance(delta, float):
            return ERR_NAN_OR_INF, None  # an infinity in: inf or NaN out
        total = longdouble.ld_round(base + delta)  # a finite sum may round to an infinity
        if isinstance(total, float):
            return ERR_NAN_OR_INF, None
        value = longdouble.format_ld(total)
        return resp.bulk(value), (value, expire)

    read_then_write(c, args[1], decide, whole=False)
    return None
