"""RENAME, RENAMENX and COPY, for keys of every type, as plans of single-key steps.

The source and the destination may live on different nodes, so a rename cannot be one
atomic step as in Redis. It runs as three steps, each where its key lives and each
after a quorum sync of that key (see collection.py and the README):

1. `dyn.dumpcols` reads the source whole: its type, its value (a string's bytes, a counter
   as its decimal, an HLL with its concurrent versions merged; a collection's items),
   its expiry time, and what it saw of the key (its element events and its header's
   version vector);
2. `dyn.restore` writes the destination: whatever it held is replaced (as SET and DEL
   replace a key: every version its coordinator saw goes), or, for RENAMENX and COPY
   without REPLACE, nothing is written if it exists. It gets the source's expiry time.
   A collection's first 1,024 items go with it, the rest in later `dyn.append` steps of
   1,024 (slicedwrite.py): a reader may see the destination part-written meanwhile;
3. RENAME only: `dyn.unlink` deletes from the source what step 1 read, and only that:
   an element added or changed in the source since stays there, as does a value SET
   there since (the header is deleted only if nobody wrote it after the read).

A large string (obj.LARGE_VALUE or more) whose keys this node coordinates takes the same
steps on the plain string paths, never read whole (heldmoves.py).

A client may see the value under both names between steps 2 and 3, never under neither
(a collection: part of it under the destination's name during step 2).
A step that fails ends the command with its error: the source still holds everything
(a failed first or second step), and the destination may hold the copy (a write that
missed its quorum may still have reached some replicas, which then pass it on).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack

from ..core import obj as objmod
from ..core import records as rec
from ..core.collview import KeyView
from ..core.dotset import DotSet
from ..core.quietlist import quiet
from ..resp import encode as resp
from . import hll, slicedwrite
from .collection import (
    Built,
    Op,
    Plan,
    internal_step,
    plan_command,
    read_items,
    text_columns,
    write_items,
)
from .databases import DATABASES
from .heldmoves import Held
from .hyperloglog import hll_value
from .slicedwrite import Pairs, PinnedList, append_rest, split
from .table import ERR_SYNTAX, parse_int

ERR_NO_SUCH_KEY = resp.error("ERR no such key")
ERR_SAME_OBJECT = resp.error("ERR source and destination objects are the same")
ERR_DB_RANGE = resp.error("ERR DB index is out of range")
ERR_COPY_CLUSTER = resp.error("ERR Copying to another database is not allowed in cluster mode")
ERR_NOT_INT = resp.error("ERR value is not an integer or out of range")
ERR_NOT_C_INT = resp.error(
    "ERR value is out of range, value must between -2147483648 and 2147483647")

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _string_value(v: KeyView) -> tuple[bytes, int]:
    """A string key's value and expiry; an HLL with concurrent versions merged into one
    (PFCOUNT counts their union: the copy must too)."""
    sib = objmod.read_value(v.header, v.now)
    assert sib is not None and type(sib[2]) is bytes
    data: bytes = sib[2]
    if hll.is_valid(data):
        value, _ = hll_value(v.header, v.now)
        if value is not None and value.merged:
            merged = value.parse()
            if merged is not None:
                data = merged.encode()
    return data, sib[1]


def _columns(v: KeyView, t: str) -> Any:
    """A collection's items for dyn.dumpcols: a list's values from its head (a long
    list's as a PinnedList: taken a slice a step), a set's members, a hash's or sorted
    set's [names, values] (two flat lists, in no order: its destination orders them).
    Copied at C speed, no pair built per element: 2-3 ms of CPU for 200,000 fields or
    members, where read_items' pairs took 20-26 ms."""
    kind = rec.KIND_OF_TYPE[t]
    if kind == rec.LIST and len(v.lorder) > slicedwrite.SLICE:
        return PinnedList(list(v.lorder), v.pin(rec.LIST))
    if kind not in (rec.HASH, rec.ZSET):
        return read_items(v)[1]
    return list(text_columns(v, kind))


def _dump_op(columns: bool) -> Op:
    def op(v: KeyView) -> Any:
        t = v.type()
        if t is None:
            return [None, None, 0, b""]
        value: Any  # a string's bytes, or a collection's items
        if t == "string":
            value, expire = _string_value(v)
        else:
            value = _columns(v, t) if columns else read_items(v)[1]
            expire = v.expire_at()
        events, vv = v.seen()
        return [t, value, expire, msgpack.packb([events.pack(), vv])]

    return op


@internal_step("dyn.dumpcols")
def build_dumpcols(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.dumpcols, key] -> [type or None, value (a string's bytes, a collection's
    items as _columns gives them), expiry time (ms, 0: none), what the read saw (for
    dyn.unlink)]."""
    return args[1], _dump_op(True)


@internal_step("dyn.dump")
def build_dump(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.dump, key] -> as dyn.dumpcols, a collection's items as read_items gives
    them: what plans of the previous release ask for (a mixed cluster while upgrading)."""
    return args[1], _dump_op(False)


@internal_step("dyn.restore")
def build_restore(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.restore, key, replace|nx, msgpack([type, value, expiry])] -> 1 if written,
    0 if not (nx, and the key exists)."""
    key, nx = args[1], args[2] == b"nx"
    t, value, expire = msgpack.unpackb(args[3])

    def op(v: KeyView) -> Any:
        if nx and v.type() is not None:
            return 0
        if t == "string":
            v.replace(value, expire)  # removes every element version seen, if any
            return 1
        write_items(v, t, value)
        if expire:
            v.replace(rec.marker(t), expire)
        return 1

    return key, op


@internal_step("dyn.unlink")
def build_unlink(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.unlink, key, what dyn.dumpcols saw] -> 1: delete what that read saw, only."""
    events, vv = msgpack.unpackb(args[2])

    def op(v: KeyView) -> Any:
        v.remove_seen(DotSet.unpack(events), vv)
        return 1

    return args[1], op


@contextmanager
def _holding(dump: list[Any]) -> Iterator[None]:
    """Release a large value step 1 left pinned in the store (heldmoves.Held), or a
    long list's view it pinned (PinnedList), once the plan is done with it, however it
    ends (a failed step closes the plan)."""
    try:
        yield
    finally:
        if type(dump[1]) is Held or type(dump[1]) is PinnedList:
            dump[1].release()


def _seen(dump: list[Any]) -> Any:
    """What dyn.unlink deletes: what step 1 saw (a Held: its context, heldmoves.py)."""
    return dump[3] if type(dump[3]) is Held else bytes(dump[3])


def _restore(dst: bytes, nx: bool, dump: list[Any]) -> Generator[Any, Any, Any]:
    """Write what `dump` read into `dst`: the first step replaces it (or, with `nx`,
    writes nothing if it exists) and sets the expiry, later steps add a collection's
    other slices (slicedwrite.py); returns whether it was written."""
    t, value, expire = dump[0], dump[1], dump[2]
    if type(value) is Held:  # a large string left in the store (heldmoves.py)
        return (yield [b"dyn.restore", dst, b"nx" if nx else b"replace", value])
    rest: Iterable[Any] = ()
    # The plan holds the copies the dump made (or decoded from another node's answer)
    # across its steps: lists of bytes and numbers only, which the cyclic collector is
    # told not to walk (quietlist.quiet): each young pass over a million-element copy,
    # and each pass after it of the generation it moved to, touched every element
    # (collector pauses of 35-53 ms inside a RENAME's steps).
    if t in ("hash", "zset"):
        value = Pairs(quiet(value[0]), quiet(value[1]))
    elif type(value) is PinnedList:
        quiet(value.positions)
    elif type(value) is list:
        quiet(value)
    if t != "string":
        value, rest = split(value)
        value = list(value)
    written = yield [b"dyn.restore", dst, b"nx" if nx else b"replace",
                     msgpack.packb([t, value, expire])]
    if written:
        yield from append_rest(dst, t, rest)
    if type(dump[1]) is PinnedList:
        # Every value taken: released before RENAME's unlink, whose removals the pin
        # would otherwise keep, each one's value.
        dump[1].release()
    return written


@plan_command("rename", 3, ("write",), 1, 2, 1, "generic", "Renames a key and overwrites "
              "the destination.")
def plan_rename(args: list[bytes], proto: int) -> Plan | bytes:
    return _rename(args[1], args[2], False)


@plan_command("renamenx", 3, ("write", "fast"), 1, 2, 1, "generic",
              "Renames a key only when the target key name doesn't exist.")
def plan_renamenx(args: list[bytes], proto: int) -> Plan | bytes:
    return _rename(args[1], args[2], True)


def _rename(src: bytes, dst: bytes, nx: bool) -> Plan:
    if src == dst:
        # As Redis: nothing is done, but a missing key is still an error.
        t, _ = yield [b"dyn.type", src]
        if t is None:
            return ERR_NO_SUCH_KEY
        return resp.ZERO if nx else resp.OK
    dump = yield [b"dyn.dumpcols", src]
    if dump[0] is None:
        return ERR_NO_SUCH_KEY
    with _holding(dump):
        written = yield from _restore(dst, nx, dump)
        if not written:
            return resp.ZERO
        yield [b"dyn.unlink", src, _seen(dump)]
    return resp.ONE if nx else resp.OK


@plan_command("copy", -3, ("write", "denyoom"), 1, 2, 1, "generic",
              "Copies the value of a key to a new key.", "6.2.0")
def plan_copy(args: list[bytes], proto: int) -> Plan | bytes:
    """COPY source destination [DB n] [REPLACE], within one keyspace: on the main port
    commands/databases.py has already named the destination in database n and made
    DB n DB 0, so a DB 1..15 reaching here came through the cluster port (a Redis
    Cluster node, which refuses it as Redis Cluster does)."""
    replace = False
    i = 3
    while i < len(args):
        word = args[i].upper()
        if word == b"REPLACE":
            replace = True
        elif word == b"DB" and i + 1 < len(args):
            db = parse_int(args[i + 1])
            if db is None:
                return ERR_NOT_INT
            if not INT_MIN <= db <= INT_MAX:
                return ERR_NOT_C_INT
            if not 0 <= db < DATABASES:
                return ERR_DB_RANGE
            if db != 0:
                return ERR_COPY_CLUSTER
            i += 1
        else:
            return ERR_SYNTAX
        i += 1
    if args[1] == args[2]:
        return ERR_SAME_OBJECT
    return _copy(args[1], args[2], replace)


def _copy(src: bytes, dst: bytes, replace: bool) -> Plan:
    dump = yield [b"dyn.dumpcols", src]
    if dump[0] is None:
        return resp.ZERO
    with _holding(dump):
        written = yield from _restore(dst, not replace, dump)
    return resp.ONE if written else resp.ZERO


def move_plan(src: bytes, dst: bytes) -> Plan:
    """MOVE's steps (commands/server.py checks its words): as RENAMENX from `src` to
    `dst`, another database's key of the same name — read the source whole, write the
    destination only if it does not exist, then delete from the source what was read.
    Not atomic, as RENAME (README)."""
    dump = yield [b"dyn.dumpcols", src]
    if dump[0] is None:
        return resp.ZERO
    with _holding(dump):
        written = yield from _restore(dst, True, dump)
        if not written:
            return resp.ZERO
        yield [b"dyn.unlink", src, _seen(dump)]
    return resp.ONE
