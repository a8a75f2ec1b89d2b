"""Key-space commands: DEL UNLINK EXISTS TOUCH TYPE TTL PTTL EXPIRE PEXPIRE EXPIREAT
PEXPIREAT EXPIRETIME PEXPIRETIME PERSIST FLUSHALL (DBSIZE, SCAN, KEYS, RANDOMKEY: keyspace.py).

Commands that change a key read it with a quorum first and write the new version
with the context they read, so they supersede exactly what they saw.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..core import records as rec
from ..core.attrs import attr_or
from ..core.clock import Clock
from ..core.obj import Sibling
from ..resp import encode as resp
from .common import (
    LLONG_MAX,
    LLONG_MIN,
    Gather,
    Write,
    context_of,
    current,
    err,
    first_error,
    looked_up,
    read_then_write,
)
from .context import Context, Slot
from .gate import unless_answered
from .notify import notify
from .stringreads import read_key
from .table import ERR_NOT_INT, ERR_SYNTAX, command, parse_int


def _stay() -> None:
    return None


def _delete_keys(c: Context, keys: list[bytes], slot: Slot) -> None:
    node = c.node
    g = Gather(len(keys), partial(_deleted, slot))  # (not a closure: see Gather.callback)
    gate = attr_or(c, "gate", None)
    owner = attr_or(c, "gate_owner", None)
    for i, key in enumerate(keys):
        cb = g.callback(i)

        def delete(leave: Any, key: bytes = key, cb: Any = cb) -> None:
            def read(result: tuple) -> None:
                e, obj = result
                if e is not None or current(obj, node.now) is None:
                    cb((e, 0))
                    leave()
                    return

                def written(r: tuple) -> None:
                    if r[0] is None:
                        notify(c, "g", b"del", key)
                    cb((r[0], 1))
                    leave()

                c.put(key, context_of(obj), None, 0, written, c.w)

            node.get(key, read, c.r, False)  # a large value is not read to delete it

        if gate is None:
            delete(_stay)
        else:
            gate.enter(key, owner, unless_answered(slot, delete),
                       attr_or(c, "gate_waiter", None), attr_or(slot, "touch", None))


def _deleted(slot: Slot, results: list) -> None:
    e = first_error(results)
    slot.set(err(e) if e is not None else resp.integer(sum(r[1] for r in results)))


@command("del", -2, ("write",), 1, -1, 1, "generic", "Deletes one or more keys.")
def cmd_del(c: Context, args: list[bytes]) -> None:
    _delete_keys(c, list(dict.fromkeys(args[1:])), c.defer())  # a repeated key counts once


@command("unlink", -2, ("write", "fast"), 1, -1, 1, "generic",
         "Asynchronously deletes one or more keys.", since="4.0.0")
def cmd_unlink(c: Context, args: list[bytes]) -> None:
    _delete_keys(c, list(dict.fromkeys(args[1:])), c.defer())  # as DEL


@command("exists", -2, ("readonly", "fast"), 1, -1, 1, "generic",
         "Determines whether one or more keys exist.")
def cmd_exists(c: Context, args: list[bytes]) -> None:
    node = c.node
    slot = c.defer()

    def finish(results: list) -> None:
        e = first_error(results)
        if e is not None:
            slot.set(err(e))
            return
        found = 0
        for i, (_, o) in enumerate(results):
            here = current(o, node.now) is not None
            looked_up(c, args[i + 1], here)
            found += here
        slot.set(resp.integer(found))

    g = Gather(len(args) - 1, finish)
    for i, key in enumerate(args[1:]):
        node.get(key, g.callback(i), c.r, False)


@command("touch", -2, ("readonly", "fast"), 1, -1, 1, "generic",
         "Returns the number of existing keys out of those specified (a repeated key counts "
         "each time, as in Redis).", since="3.2.1")
def cmd_touch(c: Context, args: list[bytes]) -> None:
    cmd_exists(c, args)


def _ttl(c: Context, key: bytes, millis: bool) -> None:
    node = c.node
    slot = c.defer()

    def answer(obj: Clock | None) -> None:
        sib = current(obj, node.now)
        looked_up(c, key, sib is not None)
        if sib is None:
            slot.set(resp.integer(-2))
        elif sib[1] == 0:
            slot.set(resp.integer(-1))
        else:
            left = sib[1] - node.now
            slot.set(resp.integer(left if millis else (left + 500) // 1000))

    read_key(c, key, slot, answer, whole=False)


@command("ttl", 2, ("readonly", "fast"), 1, 1, 1, "generic",
         "Returns the expiration time in seconds of a key.")
def cmd_ttl(c: Context, args: list[bytes]) -> None:
    _ttl(c, args[1], False)


@command("pttl", 2, ("readonly", "fast"), 1, 1, 1, "generic",
         "Returns the expiration time in milliseconds of a key.")
def cmd_pttl(c: Context, args: list[bytes]) -> None:
    _ttl(c, args[1], True)


def _expire(c: Context, args: list[bytes], unit_ms: int, absolute: bool) -> bytes | None:
    """EXPIRE PEXPIRE EXPIREAT PEXPIREAT with NX XX GT LT, checked in Redis' order."""
    node = c.node
    flags: set[bytes] = set()
    for opt in args[3:]:
        word = opt.upper()
        if word not in (b"NX", b"XX", b"GT", b"LT"):
            return resp.error(f"ERR Unsupported option {opt.decode('utf-8', 'replace')}")
        flags.add(word)
    if b"NX" in flags and flags & {b"XX", b"GT", b"LT"}:
        return resp.error("ERR NX and XX, GT or LT options at the same time are not compatible")
    if b"GT" in flags and b"LT" in flags:
        return resp.error("ERR GT and LT options at the same time are not compatible")
    when = parse_int(args[2])
    if when is None:
        return ERR_NOT_INT
    bad_time = resp.error(f"ERR invalid expire time in '{args[0].decode().lower()}' command")
    if unit_ms == 1000:
        # Negative times are allowed (they delete); only overflow is refused, as Redis.
        if when > LLONG_MAX // 1000 or when < -(-LLONG_MIN // 1000):
            return bad_time
        when *= 1000
    base = 0 if absolute else node.now
    if when > LLONG_MAX - base:
        return bad_time
    at = when + base

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is None:
            return resp.ZERO, None
        has = sib[1] != 0
        if (b"NX" in flags and has) or (b"XX" in flags and not has) or (
            b"GT" in flags and (not has or at <= sib[1])) or (
            b"LT" in flags and has and at >= sib[1]):
            return resp.ZERO, None
        if at <= node.now:
            return resp.ONE, (None, 0)  # an expiry in the past deletes the key, as in Redis
        return resp.ONE, (sib[2], at)

    # A large value is not read: the new version keeps it as it is stored (Writes.put).
    read_then_write(c, args[1], decide, any_type=True, whole=False)
    return None


@command("expire", -3, ("write", "fast"), 1, 1, 1, "generic",
         "Sets the expiration time of a key in seconds.")
def cmd_expire(c: Context, args: list[bytes]) -> bytes | None:
    return _expire(c, args, 1000, False)


@command("pexpire", -3, ("write", "fast"), 1, 1, 1, "generic",
         "Sets the expiration time of a key in milliseconds.")
def cmd_pexpire(c: Context, args: list[bytes]) -> bytes | None:
    return _expire(c, args, 1, False)


@command("expireat", -3, ("write", "fast"), 1, 1, 1, "generic",
         "Sets the expiration time of a key to a Unix timestamp.", since="1.2.0")
def cmd_expireat(c: Context, args: list[bytes]) -> bytes | None:
    return _expire(c, args, 1000, True)


@command("pexpireat", -3, ("write", "fast"), 1, 1, 1, "generic",
         "Sets the expiration time of a key to a Unix milliseconds timestamp.",
         since="2.6.0")
def cmd_pexpireat(c: Context, args: list[bytes]) -> bytes | None:
    return _expire(c, args, 1, True)


def _expiretime(c: Context, key: bytes, millis: bool) -> None:
    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is None:
            return resp.integer(-2), None
        if sib[1] == 0:
            return resp.integer(-1), None
        return resp.integer(sib[1] if millis else (sib[1] + 500) // 1000), None

    read_then_write(c, key, decide, any_type=True, whole=False)


@command("expiretime", 2, ("readonly", "fast"), 1, 1, 1, "generic",
         "Returns the expiration time of a key as a Unix timestamp.", since="7.0.0")
def cmd_expiretime(c: Context, args: list[bytes]) -> None:
    _expiretime(c, args[1], False)


@command("pexpiretime", 2, ("readonly", "fast"), 1, 1, 1, "generic",
         "Returns the expiration time of a key as a Unix milliseconds timestamp.",
         since="7.0.0")
def cmd_pexpiretime(c: Context, args: list[bytes]) -> None:
    _expiretime(c, args[1], True)


@command("type", 2, ("readonly", "fast"), 1, 1, 1, "generic",
         "Determines the type of value stored at a key.")
def cmd_type(c: Context, args: list[bytes]) -> None:
    read_then_write(c, args[1], lambda sib: (_type_reply(sib), None), any_type=True,
                    lookup=True, whole=False)


def _type_reply(sib: Sibling | None) -> bytes:
    if sib is None:
        return _NONE
    kind = rec.marker_type(sib[2])
    return _STRING if kind is None else resp.simple(kind)


_STRING = resp.simple("string")
_NONE = resp.simple("none")


@command("persist", 2, ("write", "fast"), 1, 1, 1, "generic",
         "Removes the expiration time of a key.")
def cmd_persist(c: Context, args: list[bytes]) -> None:
    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is None or sib[1] == 0:
            return resp.ZERO, None
        return resp.ONE, (sib[2], 0)  # a large value kept as stored, as EXPIRE's

    read_then_write(c, args[1], decide, any_type=True, whole=False)


@command("flushall", -1, ("write",), group="server",
         summary="Removes all keys from every node of the cluster.")
def cmd_flushall(c: Context, args: list[bytes]) -> bytes | None:
    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC")):
        return ERR_SYNTAX
    slot = c.defer()
    c.node.flush_all(lambda r: slot.set(err(r[0]) if r[0] else resp.OK))
    return None
