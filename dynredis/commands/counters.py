"""The INCR family. Integer increments are convergent counters (DESIGN.md §3):
concurrent INCRs through different nodes, or on both sides of a partition, all count.
INCRBYFLOAT is a read-modify-write of the string value (last writer wins)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..resp import encode as resp
from .common import context_of, current, err
from .table import ERR_NOT_INT, command, parse_int

ERR_NOT_FLOAT = resp.error("ERR value is not a valid float")


def _incr(c: Any, key: bytes, delta: int) -> None:
    node = c.node
    slot = c.defer()

    def done(result: tuple) -> None:
        e, obj = result
        if e is not None:
            slot.set(err(e))
            return
        sib = current(obj, node.now)
        slot.set(resp.integer(int(sib[2])) if sib is not None else resp.ZERO)

    c.incr(key, delta, done, c.w)


@command("incr", 2, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Increments the integer value of a key by one.")
def cmd_incr(c: Any, args: list[bytes]) -> None:
    _incr(c, args[1], 1)


@command("decr", 2, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Decrements the integer value of a key by one.")
def cmd_decr(c: Any, args: list[bytes]) -> None:
    _incr(c, args[1], -1)


@command("incrby", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Increments the integer value of a key by a number.")
def cmd_incrby(c: Any, args: list[bytes]) -> bytes | None:
    n = parse_int(args[2])
    if n is None:
        return ERR_NOT_INT
    _incr(c, args[1], n)
    return None


@command("decrby", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Decrements a number from the integer value of a key.")
def cmd_decrby(c: Any, args: list[bytes]) -> bytes | None:
    n = parse_int(args[2])
    if n is None or n == -(2**63):
        return ERR_NOT_INT if n is None else resp.error(
            "ERR decrement would overflow")
    _incr(c, args[1], -n)
    return None


def _decimal(raw: bytes) -> Decimal | None:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text or text != text.strip() or text.lower() in ("nan", "+nan", "-nan"):
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _format(d: Decimal) -> bytes:
    """Redis prints INCRBYFLOAT results with up to 17 significant digits, no exponent,
    no trailing zeros."""
    text = format(d.normalize(), "f") if d else "0"
    q = Decimal(text)
    if len(q.as_tuple().digits) > 17:
        q = Decimal(format(q, ".17g"))
        text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.encode()


@command("incrbyfloat", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Increment the floating point value of a key by a number.")
def cmd_incrbyfloat(c: Any, args: list[bytes]) -> bytes | None:
    delta = _decimal(args[2])
    if delta is None:
        return ERR_NOT_FLOAT
    node = c.node
    key = args[1]
    slot = c.defer()

    def read(result: tuple) -> None:
        e, obj = result
        if e is not None:
            slot.set(err(e))
            return
        sib = current(obj, node.now)
        base = Decimal(0)
        expire = 0
        if sib is not None:
            parsed = _decimal(sib[2])
            if parsed is None:
                slot.set(ERR_NOT_FLOAT)
                return
            base, expire = parsed, sib[1]
        value = _format(base + delta)
        c.put(key, context_of(obj), value, expire,
                 lambda r: slot.set(err(r[0]) if r[0] else resp.bulk(value)), c.w)

    node.get(key, read, c.r)
    return None
