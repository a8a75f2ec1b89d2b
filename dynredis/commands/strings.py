"""String commands over Dynamo quorum reads and writes: GET, SET, MGET, MSET."""

from __future__ import annotations

from typing import Any

from ..resp import encode as resp
from .common import Gather, context_of, current, err, expiry_from, first_error
from .table import ERR_SYNTAX, command

ERR_SET_EXPIRE = resp.error("ERR invalid expire time in 'set' command")


@command("get", 2, ("readonly", "fast"), 1, 1, 1, "string", "Returns the string value of a key.")
def cmd_get(c: Any, args: list[bytes]) -> None:
    slot = c.defer()
    node = c.node

    def done(result: tuple) -> None:
        e, obj = result
        if e is not None:
            slot.set(err(e))
            return
        sib = current(obj, node.now)
        slot.set(resp.bulk(sib[2]) if sib is not None else c.nil)

    node.get(args[1], done, c.r)


def _parse_set(args: list[bytes], now: int) -> tuple[dict, bytes | None]:
    opts: dict[str, Any] = {"cond": None, "get": False, "expire": 0, "keepttl": False}
    has_expire = False
    i = 3
    while i < len(args):
        word = args[i].upper()
        if word in (b"NX", b"XX"):
            if opts["cond"] is not None:
                return opts, ERR_SYNTAX
            opts["cond"] = word
        elif word == b"GET":
            opts["get"] = True
        elif word == b"KEEPTTL":
            if has_expire:
                return opts, ERR_SYNTAX
            opts["keepttl"] = True
        elif word in (b"EX", b"PX", b"EXAT", b"PXAT"):
            if has_expire or opts["keepttl"] or i + 1 >= len(args):
                return opts, ERR_SYNTAX
            at, problem = expiry_from(word, args[i + 1], now)
            if problem is not None:
                return opts, problem
            if at is None:
                return opts, ERR_SET_EXPIRE
            opts["expire"] = at
            has_expire = True
            i += 1
        else:
            return opts, ERR_SYNTAX
        i += 1
    return opts, None


@command("set", -3, ("write", "denyoom"), 1, 1, 1, "string",
         "Sets the string value of a key, ignoring its type.")
def cmd_set(c: Any, args: list[bytes]) -> bytes | None:
    node = c.node
    key, value = args[1], args[2]
    slot = c.defer()

    def written(result: tuple) -> None:
        e, _ = result
        slot.set(err(e) if e is not None else resp.OK)

    if len(args) == 3:
        node.put(key, None, value, 0, written, c.w)
        return None
    opts, problem = _parse_set(args, node.now)
    if problem is not None:
        slot.set(problem)
        return None
    if opts["cond"] is None and not opts["get"] and not opts["keepttl"]:
        node.put(key, None, value, opts["expire"], written, c.w)
        return None

    def read(result: tuple) -> None:
        e, obj = result
        if e is not None:
            slot.set(err(e))
            return
        sib = current(obj, node.now)
        old = c.nil if sib is None else resp.bulk(sib[2])
        if (opts["cond"] == b"NX" and sib is not None) or (opts["cond"] == b"XX" and sib is None):
            slot.set(old if opts["get"] else c.nil)
            return
        expire = opts["expire"]
        if opts["keepttl"] and sib is not None:
            expire = sib[1]

        def after(result: tuple) -> None:
            e2, _ = result
            if e2 is not None:
                slot.set(err(e2))
            else:
                slot.set(old if opts["get"] else resp.OK)

        node.put(key, context_of(obj), value, expire, after, c.w)

    node.get(key, read, c.r)
    return None


@command("mget", -2, ("readonly", "fast"), 1, -1, 1, "string",
         "Atomically returns the string values of one or more keys.")
def cmd_mget(c: Any, args: list[bytes]) -> None:
    node = c.node
    slot = c.defer()
    keys = args[1:]

    def finish(results: list) -> None:
        e = first_error(results)
        if e is not None:
            slot.set(err(e))
            return
        out = []
        for _, obj in results:
            sib = current(obj, node.now)
            out.append(resp.bulk(sib[2]) if sib is not None else c.nil)
        slot.set(resp.array(out))

    g = Gather(len(keys), finish)
    for i, key in enumerate(keys):
        node.get(key, g.callback(i), c.r)


@command("mset", -3, ("write", "denyoom"), 1, -1, 2, "string",
         "Atomically creates or modifies the string values of one or more keys.")
def cmd_mset(c: Any, args: list[bytes]) -> bytes | None:
    if len(args) % 2 != 1:
        from .table import err_arity

        return err_arity("mset")
    node = c.node
    slot = c.defer()
    pairs = [(args[i], args[i + 1]) for i in range(1, len(args), 2)]

    def finish(results: list) -> None:
        e = first_error(results)
        slot.set(err(e) if e is not None else resp.OK)

    g = Gather(len(pairs), finish)
    for i, (key, value) in enumerate(pairs):
        node.put(key, None, value, 0, g.callback(i), c.w)
    return None
