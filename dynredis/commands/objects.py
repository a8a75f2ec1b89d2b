"""OBJECT ENCODING / REFCOUNT / IDLETIME / FREQ / HELP: Redis' introspection of a key.

dynredis stores every value its own way (versioned objects, a record per collection
element), so the encoding answered is the one Redis 7.0 gives the same value when it
loads it (from its RDB at a restart, or by RESTORE), chosen by type and size with
Redis' default thresholds (redis.conf's `*-max-listpack-*`, `set-max-intset-entries`):

| type | encoding |
|---|---|
| string | `int` (a 64-bit integer in canonical form, at most 20 bytes), `embstr` (at most 44 bytes), else `raw` |
| hash | `listpack` (at most 512 fields, every field and value at most 64 bytes), else `hashtable` |
| set | `intset` (at most 512 members, all integers), else `hashtable` |
| sorted set | `listpack` (at most 128 members, each at most 64 bytes), else `skiplist` |
| list | `quicklist` (Redis 7.0's only list encoding) |

A running Redis can disagree until it restarts: APPEND, SETRANGE, SETBIT and the other
in-place string edits leave `raw` (and INCRBYFLOAT `embstr`) where a load gives `int` or
`embstr`, and a hash or sorted set that grew past a threshold stays `hashtable` /
`skiplist` after it shrinks. REFCOUNT is Redis' too: 2147483647 for the integers 0-9999
Redis shares, else 1. IDLETIME is the seconds since the key's stored version was last
written (a collection's: since it was created or its expiry changed): reads and element
updates do not reset it, so it overstates a key's idleness. Redis notes every read in
the key's object; here a read would have to be noted by each replica it reaches (in its
object cache, as no storage write may follow a read), and that store cost a measured
+2,100 instructions per GET (+6.5%: bench/callgrind.py --server --clients 8 --pipeline 1
--engine lmdb, 32,450 -> 34,563, most of it the stamps' map growing with the keys read),
for an answer still blind to collections' element reads and to keys out of the cache.
FREQ is refused as Redis refuses it without an LFU maxmemory policy (dynredis has only
`noeviction`).

A large string's figures come from its shape (heldtypes.py: a quorum read that leaves
the value in the store), not from the collection path's sync, which carried the whole
value: 28 pipelined OBJECT ENCODING of a 100 MB string held their node 463 ms (each
~130 ms of its CPU).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..core import hlc
from ..core import records as rec
from ..core.collview import KeyView
from ..core.shape import Unread
from ..resp import encode as resp
from .collection import Built, error_reply, internal_step, run_step
from .context import Context
from .hashes import field_bytes
from .heldtypes import large_here, ours, read_shape
from .table import command, dispatch, help_reply, subcommand

# Redis 7.0's defaults (redis.conf), which its encodings follow.
HASH_MAX_LISTPACK_ENTRIES = 512
HASH_MAX_LISTPACK_VALUE = 64
SET_MAX_INTSET_ENTRIES = 512
ZSET_MAX_LISTPACK_ENTRIES = 128
ZSET_MAX_LISTPACK_VALUE = 64
OBJECT_THRESHOLDS = {  # CONFIG GET shows them (each fixed at Redis' default)
    "hash-max-listpack-entries": str(HASH_MAX_LISTPACK_ENTRIES),
    "hash-max-listpack-value": str(HASH_MAX_LISTPACK_VALUE),
    "set-max-intset-entries": str(SET_MAX_INTSET_ENTRIES),
    "zset-max-listpack-entries": str(ZSET_MAX_LISTPACK_ENTRIES),
    "zset-max-listpack-value": str(ZSET_MAX_LISTPACK_VALUE),
}
EMBSTR_SIZE_LIMIT = 44  # OBJ_ENCODING_EMBSTR_SIZE_LIMIT
SHARED_INTEGERS = 10000  # OBJ_SHARED_INTEGERS: 0..9999 are shared objects
SHARED_REFCOUNT = 2147483647  # OBJ_SHARED_REFCOUNT (INT_MAX)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

ERR_FREQ = resp.error(
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please "
    "note that when switching between policies at runtime LRU and LFU data will take "
    "some time to adjust.")


def strict_int(s: bytes) -> int | None:
    """The integer `s` spells as Redis' string2ll accepts it (no sign but '-', no
    leading zero, no blanks, within 64 bits), or None."""
    if not s or len(s) > 20:
        return None
    if s == b"0":
        return 0
    body = s[1:] if s[:1] == b"-" else s
    if not body or not body.isdigit() or body[:1] == b"0" or not body.isascii():
        return None
    n = int(s)
    return n if INT64_MIN <= n <= INT64_MAX else None


def string_encoding(value: bytes) -> str:
    if strict_int(value) is not None:
        return "int"
    return "embstr" if len(value) <= EMBSTR_SIZE_LIMIT else "raw"


def string_refcount(value: bytes) -> int:
    n = strict_int(value)
    return SHARED_REFCOUNT if n is not None and 0 <= n < SHARED_INTEGERS else 1


def _hash_encoding(v: KeyView) -> str:
    if v.count(rec.HASH) > HASH_MAX_LISTPACK_ENTRIES:
        return "hashtable"
    for field, value in v.items(rec.HASH):
        if len(field) > HASH_MAX_LISTPACK_VALUE \
                or len(field_bytes(value)) > HASH_MAX_LISTPACK_VALUE:
            return "hashtable"
    return "listpack"


def _set_encoding(v: KeyView) -> str:
    if v.count(rec.SET) > SET_MAX_INTSET_ENTRIES:
        return "hashtable"
    if all(strict_int(m) is not None for m in v.members(rec.SET)):
        return "intset"
    return "hashtable"


def _zset_encoding(v: KeyView) -> str:
    if v.count(rec.ZSET) > ZSET_MAX_LISTPACK_ENTRIES:
        return "skiplist"
    if any(len(m) > ZSET_MAX_LISTPACK_VALUE for m in v.members(rec.ZSET)):
        return "skiplist"
    return "listpack"


def _written_ms(header: Any) -> int:
    """The wall-clock milliseconds of the newest version of a key's header (its
    object: a string's, or a collection's header)."""
    if header is None:
        return 0
    newest = max((s[0] for entry in header[0] for s in entry[2]), default=0)
    newest = max([newest, *(s[0] for s in header[1])])
    return hlc.wall_ms(newest)


def _string_info(value: Any, header: Any) -> list[Any]:
    """dyn.objinfo's answer for a string (`value`: its bytes, or a large value's
    Unread: no integer, more than EMBSTR_SIZE_LIMIT bytes)."""
    if type(value) is Unread:
        return [b"raw", 1, _written_ms(header)]
    return [string_encoding(value).encode(), string_refcount(value), _written_ms(header)]


@internal_step("dyn.objinfo")
def build_objinfo(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.objinfo, key] -> None (no such key) or [encoding, refcount, wall-clock ms
    of its last write] (module docstring)."""

    def op(v: KeyView) -> Any:
        t = v.type()
        if t is None:
            return None
        if t == "string":
            return _string_info(v.header_value(), v.header)
        if t == "hash":
            enc = _hash_encoding(v)
        elif t == "set":
            enc = _set_encoding(v)
        elif t == "zset":
            enc = _zset_encoding(v)
        else:
            enc = "quicklist"
        return [enc.encode(), 1, _written_ms(v.header)]

    return args[1], op


@command("object", -2, (), group="generic",
         summary="A container for object introspection commands.", since="2.2.3")
def cmd_object(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("object", c, args)


def _object_sub(name: str, summary: str, since: str) -> Any:
    return subcommand("object", name, 3, ("readonly",), 2, 2, 1, summary=summary,
                      since=since)


def _answer(c: Context, args: list[bytes], render: Any) -> None:
    """Read the key's figures at its coordinator; `render(info)` makes the reply of an
    existing key's (a missing key answers null, as in Redis, whatever the subcommand)."""
    slot = c.defer()
    node = c.node

    def done(res: tuple) -> None:
        if res[0] is not None:
            slot.set(error_reply(res[0]))
        elif res[1] is None:
            slot.set(c.nil)
        else:
            slot.set(render(res[1]))

    key = args[2]
    collection_path = partial(run_step, node, [b"dyn.objinfo", key], c.proto, done, c.r,
                              c.w)
    if not (ours(node, key) and large_here(node, key)):
        collection_path()
        return
    read_shape(node, key, lambda value, obj: done((None, _string_info(value, obj))),
               collection_path, c.r)


@_object_sub("encoding", "Returns the internal encoding of a Redis object (as Redis "
             "encodes the value when it loads it).", "2.2.3")
def cmd_object_encoding(c: Context, args: list[bytes]) -> None:
    _answer(c, args, lambda info: resp.bulk(bytes(info[0])))


@_object_sub("refcount", "Returns the reference count of a value of a key.", "2.2.3")
def cmd_object_refcount(c: Context, args: list[bytes]) -> None:
    _answer(c, args, lambda info: resp.integer(int(info[1])))


@_object_sub("idletime", "Returns the seconds since the key was last written.", "2.2.3")
def cmd_object_idletime(c: Context, args: list[bytes]) -> None:
    now = c.node.now
    _answer(c, args, lambda info: resp.integer(max(0, now - int(info[2])) // 1000))


@_object_sub("freq", "Returns the logarithmic access frequency counter of a Redis "
             "object (refused: no LFU maxmemory policy).", "4.0.0")
def cmd_object_freq(c: Context, args: list[bytes]) -> None:
    _answer(c, args, lambda info: ERR_FREQ)


@subcommand("object", "help", 2, ("loading", "stale"), summary="Returns helpful text "
            "about the different subcommands.", since="6.2.0")
def cmd_object_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "object", [
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help."])
