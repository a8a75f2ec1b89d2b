"""The versioned API: GETCTX / SETCTX / DELCTX expose Dynamo's contexts and siblings.

A client reads every concurrent value with the context that covers them, reconciles
them itself, and writes back with that context so its write supersedes exactly what
it saw; anything written concurrently stays a sibling.
"""

from __future__ import annotations

from typing import Any

from ..core import clock as dvv
from ..core import obj as objmod
from ..resp import encode as resp
from .common import answer, context_of, err, expiry_from
from .context import Context
from .table import ERR_SYNTAX, command, parse_int

ERR_CONTEXT = resp.error("ERR invalid context")
ERR_CONTEXT_TOO_LONG = resp.error(
    f"ERR invalid context: longer than {dvv.MAX_CONTEXT_BYTES} bytes (a context from "
    "GETCTX is far shorter)")


@command("getctx", 2, ("readonly", "fast"), 1, 1, 1, "dynamo",
         "Returns a key's causal context and all its concurrent values (siblings).",
         since="0.1.0")
def cmd_getctx(c: Context, args: list[bytes]) -> None:
    node = c.node

    def render(obj: Any) -> bytes:
        token = dvv.encode_vv(context_of(obj))
        values = [resp.bulk(s[2]) for s in objmod.live_siblings(obj, node.now)]
        return resp.array([resp.bulk(token), resp.array(values)])

    node.get(args[1], answer(c.defer(), render), c.r)


def _context(raw: bytes) -> dvv.VV | bytes:
    """The version vector of a context token, or the error reply."""
    try:
        return dvv.decode_vv(raw)
    except dvv.ContextTooLong:
        return ERR_CONTEXT_TOO_LONG
    except dvv.BadContext:
        return ERR_CONTEXT


@command("setctx", -4, ("write", "denyoom"), 1, 1, 1, "dynamo",
         "Writes a value that supersedes exactly the versions its context covers.",
         since="0.1.0")
def cmd_setctx(c: Context, args: list[bytes]) -> bytes | None:
    node = c.node
    ctx = _context(args[2])
    if isinstance(ctx, bytes):
        return ctx
    expire = 0
    if len(args) > 4:
        if len(args) != 6 or args[4].upper() not in (b"EX", b"PX"):
            return ERR_SYNTAX
        at, problem = expiry_from(args[4], args[5], node.now)
        if problem is not None:
            return problem
        if at is None:
            return resp.error("ERR invalid expire time in 'setctx' command")
        expire = at
    slot = c.defer()
    c.put(args[1], ctx, args[3], expire,
             lambda r: slot.set(err(r[0]) if r[0] else resp.OK), c.w)
    return None


@command("delctx", 3, ("write",), 1, 1, 1, "dynamo",
         "Deletes the versions a context covers (a causal tombstone).", since="0.1.0")
def cmd_delctx(c: Context, args: list[bytes]) -> bytes | None:
    ctx = _context(args[2])
    if isinstance(ctx, bytes):
        return ctx
    slot = c.defer()
    c.put(args[1], ctx, None, 0,
               lambda r: slot.set(err(r[0]) if r[0] else resp.OK), c.w)
    return None


@command("dyn.consistency", -1, ("fast", "stale"), group="dynamo",
         summary="Sets or shows this connection's read and write quorums (R, W).",
         since="0.1.0")
def cmd_consistency(c: Context, args: list[bytes]) -> bytes:
    """`DYN.CONSISTENCY [R r] [W w]`: quorums for this connection only; no arguments
    replies with the ones in force (the node's defaults unless set)."""
    n = c.node.cfg.n
    if len(args) > 1:
        if len(args) % 2 != 1:
            return ERR_SYNTAX
        updates: dict[bytes, int] = {}
        for i in range(1, len(args), 2):
            which = args[i].upper()
            value = parse_int(args[i + 1])
            if which not in (b"R", b"W"):
                return ERR_SYNTAX
            if value is None or not 1 <= value <= n:
                return resp.error(f"ERR {which.decode()} must be an integer between 1 and N ({n})")
            updates[which] = value
        if b"R" in updates:
            c.r = updates[b"R"]
        if b"W" in updates:
            c.w = updates[b"W"]
    return resp.encode({"n": n, "r": c.r or c.node.cfg.r, "w": c.w or c.node.cfg.w}, c.proto)
