"""The versioned API: GETCTX / SETCTX / DELCTX expose Dynamo's contexts and siblings.

A client reads every concurrent value with the context that covers them, reconciles
them itself, and writes back with that context so its write supersedes exactly what
it saw; anything written concurrently stays a sibling.
"""

from __future__ import annotations

from typing import Any

from ..core import clock as dvv
from ..core import obj as objmod
from ..core import records as rec
from ..core import shape
from ..core.changes import OPS
from ..core.clock import Clock
from ..core.collview import KeyView
from ..resp import encode as resp
from .collection import Built, error_reply, internal_step, run_step
from .common import context_of, err, expiry_from
from .context import Context, Slot
from .table import ERR_SYNTAX, command, parse_int

ERR_CONTEXT = resp.error("ERR invalid context")
ERR_CONTEXT_TOO_LONG = resp.error(
    f"ERR invalid context: longer than {dvv.MAX_CONTEXT_BYTES} bytes (a context from "
    "GETCTX is far shorter)")


SAMPLE = 10  # concurrent elements GETCTX names


@command("getctx", 2, ("readonly",), 1, 1, 1, "dynamo",
         "Returns a key's causal context and all its concurrent values (siblings).",
         since="0.1.0")
def cmd_getctx(c: Context, args: list[bytes]) -> None:
    """A string key: [context, [every live sibling, newest first]]. A collection key:
    [context of its header, its type, what concurrent updates it merged] (see
    `collection_context`), after a quorum sync of the key at its coordinator."""
    _getctx(c, c.defer(), args[1], False)


def _getctx(c: Context, slot: Slot, key: bytes, whole: bool) -> None:
    """GETCTX's read. A large value it leaves in the store is sent from there, as GET's
    (one such value: siblings of several are read whole)."""
    node = c.node

    def read(result: tuple[str | None, Any]) -> None:
        e, obj = result
        if e is not None:
            slot.set(err(e))
        elif obj is not None and _maybe_collection(obj, node.now):
            run_step(node, [b"dyn.getctx", key], c.proto,
                     lambda r: slot.set(error_reply(r[0]) if r[0] is not None else r[1]),
                     c.r, c.w)
        elif not whole and obj is not None and shape.holds_unread(obj):
            if not _send_context(c, slot, key, obj, node.now):  # type: ignore[arg-type]
                _getctx(c, slot, key, True)
        else:
            slot.set(_string_context(obj, node.now))

    node.get(key, read, c.r, whole)


def _send_context(c: Context, slot: Slot, key: bytes, obj: Clock, now: int) -> bool:
    """`_string_context` of an object holding one large value left in the store, that
    value sent from there (Context.send_stored); False if it cannot be."""
    sibs = objmod.live_siblings(obj, now)
    unread = [i for i, s in enumerate(sibs) if type(s[2]) is shape.Unread]
    if len(unread) != 1:
        return False
    at = unread[0]
    value = sibs[at][2]
    values = [resp.bulk(s[2]) if type(s[2]) is bytes else b"" for s in sibs]
    count = sum(1 for s in sibs if type(s[2]) is bytes or type(s[2]) is shape.Unread)
    token = dvv.encode_vv(context_of(obj))
    before = b"".join([b"*2\r\n", resp.bulk(token), b"*%d\r\n" % count, *values[:at],
                       b"$%d\r\n" % value.size])
    return c.send_stored(slot, key, value, before, b"".join([b"\r\n", *values[at + 1:]]))


def _maybe_collection(obj: Clock, now: int) -> bool:
    """Whether the key may be a collection: a version of its header is a collection's,
    or the newest one is a delete or has expired (elements added concurrently with a
    delete survive it)."""
    if any(rec.marker_type(s[2]) is not None for s in dvv.values(obj)):
        return True
    return objmod.read_value(obj, now) is None


def _string_context(obj: Clock | None, now: int) -> bytes:
    token = dvv.encode_vv(context_of(obj))
    values = [resp.bulk(s[2]) for s in objmod.live_siblings(obj, now)
              if type(s[2]) is bytes]
    return resp.array([resp.bulk(token), resp.array(values)])


@internal_step("dyn.getctx")
def build_getctx(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.getctx, key] -> GETCTX's reply, from the key's view."""

    def op(v: KeyView) -> bytes:
        t = v.type()
        if t is None or t == "string":
            return _string_context(v.header, v.now)
        return collection_context(v, t, proto)

    return args[1], op


def collection_context(v: KeyView, t: str, proto: int) -> bytes:
    """GETCTX of a collection: its header's context (what SETCTX and DELCTX with it
    replace), its type, and a map: `elements` (how many), `concurrent` (elements whose
    record holds versions written concurrently, through different nodes or on both sides
    of a partition, which the type's rule merged: the later value, an addition over a
    removal it did not see, counters summed), `concurrent-removed` (absent elements
    removed concurrently more than once: e.g. one list item popped by two clients),
    `sample` (up to 10 of the concurrent elements: names, or a list's items) and
    `header-versions` (concurrent versions of the header: type and expiry). A later
    write of an element through one coordinator supersedes its concurrent versions."""
    token = dvv.encode_vv(context_of(v.header)) if v.header is not None else b""
    present, absent, sample = v.concurrent(SAMPLE)
    info = {"elements": v.count(rec.KIND_OF_TYPE[t]), "concurrent": present,
            "concurrent-removed": absent, "sample": sample,
            "header-versions": len(objmod.live_siblings(v.header, v.now))}
    return resp.array([resp.bulk(token), resp.bulk(t.encode()), resp.encode(info, proto)])


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


@command("dyn.admin", -2, ("admin", "noscript", "loading", "stale"), group="dynamo",
         summary="Stages, plans and commits membership changes (join, leave, replace, "
                 "remove) at the claimant.", since="0.1.0")
def cmd_admin(c: Any, args: list[bytes]) -> bytes | None:
    """`DYN.ADMIN JOIN node | LEAVE node | REPLACE old new | REMOVE node | PLAN | COMMIT
    | CLEAR | SHOW`: Riak's `cluster` commands, sent to any node (it passes them to the
    claimant); each reply is an array of lines."""
    op = args[1].decode("utf-8", "replace").lower()
    if op not in OPS:
        return resp.error(f"ERR unknown DYN.ADMIN request '{op}' (try "
                          "JOIN, LEAVE, REPLACE, REMOVE, PLAN, COMMIT, CLEAR or SHOW)")
    slot = c.defer()

    def done(result: tuple[str | None, list[str]]) -> None:
        problem, lines = result
        if problem is not None:
            slot.set(resp.error("ERR " + problem))
        else:
            slot.set(resp.array([resp.bulk(x.encode()) for x in lines]))

    c.node.admin(op, [a.decode("utf-8", "replace") for a in args[2:]], done)
    return None
