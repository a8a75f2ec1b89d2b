"""String commands over Dynamo quorum reads and writes.

GET SET MGET MSET SETNX SETEX PSETEX GETSET GETDEL GETEX MSETNX APPEND STRLEN GETRANGE
SETRANGE. Commands that depend on the current value read it with a quorum and write the
new version with the context they read (`read_then_write`), so they supersede exactly
what they saw; a concurrent writer's version stays a sibling (last-writer-wins for GET).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

from ..core.node import Node
from ..core.obj import LARGE_VALUE, Sibling
from ..core.pieces import splice
from ..core.shape import Spliced, Unread
from ..resp import encode as resp
from ..server.streamed import STREAM_SLICE, PiecesReply
from .common import (
    MAX_STRING,
    READ_WHOLE,
    Gather,
    Write,
    context_of,
    current,
    err,
    expiry_from,
    first_error,
    looked_up,
    read_then_write,
    value_len,
)
from .context import Context, Slot
from .table import ERR_NOT_INT, ERR_SYNTAX, ERR_WRONGTYPE, command, err_arity, parse_int
from .wholereply import whole_in_turns

ERR_TOO_BIG = resp.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


@command("get", 2, ("readonly", "fast"), 1, 1, 1, "string", "Returns the string value of a key.")
def cmd_get(c: Context, args: list[bytes]) -> None:
    _get(c, c.defer(), args[1], False)


def _get(c: Context, slot: Slot, key: bytes, whole: bool) -> None:
    """GET's read. A large value it leaves in the store (every replica holds the
    coordinator's copy) is sent from there a slice at a time (Context.send_stored), or,
    where it cannot be, read again whole."""
    # The node as its class, not as the Protocol (NodeRequests): compiled, its read and
    # its stats are then native calls and attribute reads, not generic ones (about 200
    # instructions each), and the result's sibling a typed tuple.
    node = cast(Node, c.node)

    def done(result: tuple[str | None, Sibling | None]) -> None:
        e, sib = result
        if e is not None:
            slot.set(err(e))
            return
        if sib is None:
            looked_up(c, key, False)
            slot.set(c.nil)
            return
        data = sib[2]
        if type(data) is bytes:
            node.stats.keyspace_hits += 1
            slot.set(resp.bulk(data))
        elif type(data) is not Unread:
            node.stats.keyspace_hits += 1
            slot.set(ERR_WRONGTYPE)  # a collection's header
        elif c.send_stored(slot, key, data, b"$%d\r\n" % data.size, b"\r\n"):
            node.stats.keyspace_hits += 1
        else:  # a reply given whole: joined from the store over turns, or read whole
            pinned = node.pin_value(key, data)
            if pinned is None:
                _get(c, slot, key, True)
                return
            node.stats.keyspace_hits += 1
            whole_in_turns(c, slot, pinned, b"$%d\r\n" % data.size, b"\r\n")

    node.get_value(key, done, c.r, whole)


_EXPIRY = frozenset((b"EX", b"PX", b"EXAT", b"PXAT"))


class StringOptions:
    """What SET's or GETEX's options asked for (parsed as Redis'
    parseExtendedStringArgumentsOrReply does: same accepted orders, same errors)."""

    __slots__ = ("flags", "unit", "raw")

    def __init__(self) -> None:
        self.flags: set[bytes] = set()
        self.unit: bytes | None = None  # EX PX EXAT PXAT
        self.raw: bytes = b""  # its argument, checked after the parse

    def expire_at(self, now: int, name: str) -> tuple[int, bytes | None]:
        """The absolute expiry in ms (0 for none) or an error reply naming `name`."""
        if self.unit is None:
            return 0, None
        at, problem = expiry_from(self.unit, self.raw, now)
        if problem is not None:
            return 0, problem
        if at is None:
            return 0, resp.error(f"ERR invalid expire time in '{name}' command")
        return at, None


def parse_string_options(args: list[bytes], start: int, is_set: bool
                         ) -> tuple[StringOptions, bytes | None]:
    opts = StringOptions()
    flags = opts.flags
    i = start
    n = len(args)
    while i < n:
        opt = args[i].upper()
        if opt == b"NX" and is_set and b"XX" not in flags:
            flags.add(opt)
        elif opt == b"XX" and is_set and b"NX" not in flags:
            flags.add(opt)
        elif opt == b"GET" and is_set:
            flags.add(opt)
        elif opt == b"KEEPTTL" and is_set and not flags & (_EXPIRY | {b"PERSIST"}):
            flags.add(opt)
        elif opt == b"PERSIST" and not is_set and not flags & (_EXPIRY | {b"KEEPTTL"}):
            flags.add(opt)
        elif (opt in _EXPIRY and i + 1 < n
              and not flags & ((_EXPIRY - {opt}) | {b"KEEPTTL", b"PERSIST"})):
            # The same option twice is accepted, the last one counting (as in Redis).
            flags.add(opt)
            opts.unit = opt
            opts.raw = args[i + 1]
            i += 1
        else:
            return opts, ERR_SYNTAX
        i += 1
    return opts, None


def _old_value(out: PinnedReply, sib: Sibling | None) -> bytes | None:
    """The reply of a command answering with the value it replaces (SET ... GET, GETSET,
    GETEX): nil, its bulk string, or b"" once a large value left in the store is pinned
    to be sent from there (PinnedReply); None if it cannot be (read the key whole)."""
    if sib is None:
        return out.c.nil
    data = sib[2]
    if type(data) is Unread:
        return b"" if out.hold(data) else None
    return resp.bulk(data)


@command("set", -3, ("write", "denyoom"), 1, 1, 1, "string",
         "Sets the string value of a key, ignoring its type.")
def cmd_set(c: Context, args: list[bytes]) -> bytes | None:
    node = c.node
    key, value = args[1], args[2]

    if len(args) == 3:
        c.put_ok(key, value, 0)
        return None
    opts, problem = parse_string_options(args, 3, True)
    if problem is not None:
        return problem
    expire, problem = opts.expire_at(node.now, "set")
    if problem is not None:
        return problem
    flags = opts.flags
    if not flags & {b"NX", b"XX", b"GET", b"KEEPTTL"}:
        c.put_ok(key, value, expire)
        return None
    nx, xx, keep = b"NX" in flags, b"XX" in flags, b"KEEPTTL" in flags
    if b"GET" in flags:
        _set_get(c, key, value, expire, nx, xx, keep)
        return None

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if (nx and sib is not None) or (xx and sib is None):
            return c.nil, None
        return resp.OK, (value, sib[1] if keep and sib is not None else expire)

    # Whether the key exists and its expiry are all it needs: a large value is not read.
    # A key of any type counts (SET XX replaces a collection, NX leaves it), as in Redis.
    read_then_write(c, key, decide, any_type=True, whole=False)
    return None


def _set_get(c: Context, key: bytes, value: bytes, expire: int, nx: bool = False,
             xx: bool = False, keep: bool = False) -> None:
    """SET ... GET and GETSET: the value replaced is the reply, a large one sent from the
    store once the write is acknowledged (PinnedReply), never read whole."""
    out = PinnedReply(c, c.defer(), key)

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        old = _old_value(out, sib)
        if old is None:
            return b"", READ_WHOLE
        if (nx and sib is not None) or (xx and sib is None):
            return old, None
        return old, (value, sib[1] if keep and sib is not None else expire)

    read_then_write(c, key, decide, out, whole=False)


@command("setnx", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Sets the string value of a key only when the key doesn't exist.")
def cmd_setnx(c: Context, args: list[bytes]) -> None:
    value = args[2]

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is not None:
            return resp.ZERO, None
        return resp.ONE, (value, 0)

    # (no value read: whether it is, of any type: a collection's key exists too)
    read_then_write(c, args[1], decide, any_type=True, whole=False)


def _setex(c: Context, args: list[bytes], unit: bytes) -> bytes | None:
    node = c.node
    at, problem = expiry_from(unit, args[2], node.now)
    if problem is not None:
        return problem
    if at is None:
        return resp.error(f"ERR invalid expire time in '{args[0].decode().lower()}' command")
    c.put_ok(args[1], args[3], at)
    return None


@command("setex", 4, ("write", "denyoom"), 1, 1, 1, "string",
         "Sets the string value and expiration time of a key.")
def cmd_setex(c: Context, args: list[bytes]) -> bytes | None:
    return _setex(c, args, b"EX")


@command("psetex", 4, ("write", "denyoom"), 1, 1, 1, "string",
         "Sets both string value and expiration time in milliseconds of a key.")
def cmd_psetex(c: Context, args: list[bytes]) -> bytes | None:
    return _setex(c, args, b"PX")


@command("getset", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Returns the previous string value of a key after setting it to a new value.")
def cmd_getset(c: Context, args: list[bytes]) -> None:
    _set_get(c, args[1], args[2], 0)  # SET key value GET: the new value has no expiry


@command("getdel", 2, ("write", "fast"), 1, 1, 1, "string",
         "Returns the string value of a key after deleting the key.")
def cmd_getdel(c: Context, args: list[bytes]) -> None:
    key = args[1]
    out = PinnedReply(c, c.defer(), key)

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is None:
            return c.nil, None
        data = sib[2]
        if type(data) is Unread:
            return b"", ((None, 0) if out.hold(data) else READ_WHOLE)
        return resp.bulk(data), (None, 0)

    # A large value is not read: it is sent from the store once deleted (PinnedReply).
    read_then_write(c, key, decide, out, whole=False)


class PinnedReply:
    """A command's reply slot while it writes: a large value it read is held in the
    store (pinned, `hold`) before the write replaces it, and sent from there a slice at
    a time once the write is acknowledged (GETDEL: reading it whole, a copy out of the
    store and one decoding it, held the coordinator's loop about 100 ms per 100 MB);
    released if the write fails. Filled with b"" where the value goes."""

    __slots__ = ("c", "slot", "key", "pinned")

    def __init__(self, c: Context, slot: Slot, key: bytes) -> None:
        self.c = c
        self.slot = slot
        self.key = key
        self.pinned: Any = None

    def hold(self, value: Unread) -> bool:
        """Pin `value` to reply with it; False if that cannot be (read it whole)."""
        self.release()
        self.pinned = self.c.node.pin_value(self.key, value)
        return self.pinned is not None

    def release(self) -> None:
        pinned = self.pinned
        self.pinned = None
        if pinned is not None:
            pinned[1].release()

    def set(self, reply: bytes) -> None:
        pinned = self.pinned
        if pinned is None or reply != b"":  # a small value, nil, or the write's error
            self.release()
            self.slot.set(reply)
            return
        self.pinned = None
        view = pinned[0]
        head = b"$%d\r\n" % len(view)
        if not self.c.send_pinned(self.slot, pinned, head, b"\r\n"):
            # A reply given whole (EXEC, scripts, a command handed over by another
            # node): copied once, framed, from the store, a slice a loop turn.
            whole_in_turns(self.c, self.slot, pinned, head, b"\r\n")


@command("getex", -2, ("write", "fast"), 1, 1, 1, "string",
         "Returns the string value of a key after setting its expiration time.")
def cmd_getex(c: Context, args: list[bytes]) -> bytes | None:
    node = c.node
    key = args[1]
    if len(args) == 2:
        # A read (as Redis', a keyspace hit or miss): a large value sent from the store
        # here, not handed to the key's first replica to come back over a peer link.
        _get(c, c.defer(), key, False)
        return None
    opts, problem = parse_string_options(args, 2, False)
    if problem is not None:
        return problem
    out = PinnedReply(c, c.defer(), key)

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is None:
            return c.nil, None  # Redis checks the expire argument only for a live key
        data = sib[2]
        write: Write | None = None
        if opts.unit is not None:
            at, bad = opts.expire_at(node.now, "getex")
            if bad is not None:
                return bad, None
            if opts.unit in (b"EXAT", b"PXAT") and at <= node.now:
                write = (None, 0)  # an absolute time in the past deletes the key
            else:
                write = (data, at)
        elif b"PERSIST" in opts.flags and sib[1] != 0:
            write = (data, 0)
        reply = _old_value(out, sib)
        if reply is None:
            return b"", READ_WHOLE
        return reply, write

    # A large value is not read: the new version keeps it as it is stored (as EXPIRE's)
    # and the reply is sent from the store (PinnedReply, pinned before the write).
    read_then_write(c, key, decide, out, lookup=True, whole=False)
    return None


@command("append", 3, ("write", "denyoom", "fast"), 1, 1, 1, "string",
         "Appends a string to the value of a key. Creates the key if it doesn't exist.")
def cmd_append(c: Context, args: list[bytes]) -> None:
    tail = args[2]

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is None:
            return resp.integer(len(tail)), (tail, 0)
        old = sib[2]
        size = value_len(old) + len(tail)
        if size > MAX_STRING:
            return ERR_TOO_BIG, None
        # A large value left in the store is not read: the new version is it and the
        # tail, copied from there (Writes.put).
        new = (Spliced(old, old.size, tail) if type(old) is Unread
               else splice(old, len(old), tail, LARGE_VALUE))
        return resp.integer(size), (new, sib[1])  # keeps the key's expiry

    read_then_write(c, args[1], decide, whole=False)


@command("strlen", 2, ("readonly", "fast"), 1, 1, 1, "string",
         "Returns the length of a string value.")
def cmd_strlen(c: Context, args: list[bytes]) -> None:
    read_then_write(c, args[1], lambda sib: (
        resp.integer(value_len(sib[2]) if sib is not None else 0), None), lookup=True,
        whole=False)


def getrange(data: bytes, start: int, end: int) -> bytes:
    """Redis 7.0's GETRANGE arithmetic, out-of-range quirks included."""
    lo, hi = range_of(len(data), start, end)
    return data[lo:hi]


def range_of(n: int, start: int, end: int) -> tuple[int, int]:
    """GETRANGE's [lo, hi) of a string of `n` bytes (lo == hi: empty)."""
    if start < 0 and end < 0 and start > end:
        return 0, 0
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = max(start, 0)
    end = max(end, 0)
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return 0, 0
    return start, end + 1


@command("getrange", 4, ("readonly",), 1, 1, 1, "string",
         "Returns a substring of the string stored at a key.")
def cmd_getrange(c: Context, args: list[bytes]) -> bytes | None:
    start, end = parse_int(args[2]), parse_int(args[3])
    if start is None or end is None:
        return ERR_NOT_INT
    getrange_read(c, c.defer(), args[1], start, end, False)
    return None


def getrange_read(c: Context, slot: Slot, key: bytes, start: int, end: int,
                  whole: bool) -> None:
    """GETRANGE's read: of a large value left in the store, only the range is read (in
    place), and a long range is sent from there a slice at a time; read again whole if
    the key holds another object by then."""

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        if sib is None:
            return resp.bulk(b""), None
        data = sib[2]
        if type(data) is not Unread:
            return resp.bulk(getrange(data, start, end)), None
        lo, hi = range_of(data.size, start, end)
        if hi - lo > STREAM_SLICE and c.send_stored(slot, key, data, b"$%d\r\n" % (hi - lo),
                                                    b"\r\n", (lo, hi)):
            return _SENT, None
        got = c.node.stored_range(key, data, lo, hi) if lo < hi else b""
        return (_AGAIN if got is None else resp.bulk(got)), None

    read_then_write(c, key, decide, _OrAgain(slot, lambda: getrange_read(
        c, slot, key, start, end, True)), lookup=True, whole=whole)


_AGAIN = b"again"  # (never a reply: RESP replies start with a type byte)
_SENT = b"sent"  # the reply went to the client's slot another way (streamed)


class _OrAgain:
    """A slot that passes its reply on, unless it is _AGAIN: then `again()`."""

    def __init__(self, slot: Slot, again: Callable[[], None]) -> None:
        self.slot = slot
        self.again = again

    def set(self, reply: bytes) -> None:
        if reply is _AGAIN:
            self.again()
        elif reply is not _SENT:
            self.slot.set(reply)


@command("setrange", 4, ("write", "denyoom"), 1, 1, 1, "string",
         "Overwrites a part of a string value with another by an offset. "
         "Creates the key if it doesn't exist.")
def cmd_setrange(c: Context, args: list[bytes]) -> bytes | None:
    offset = parse_int(args[2])
    if offset is None:
        return ERR_NOT_INT
    if offset < 0:
        return resp.error("ERR offset is out of range")
    value = args[3]
    if value and offset + len(value) > MAX_STRING:
        return ERR_TOO_BIG

    def decide(sib: Sibling | None) -> tuple[bytes, Write | None]:
        old = sib[2] if sib is not None else b""
        if not value:
            return resp.integer(value_len(old)), None  # nothing to write, not even a new key
        if type(old) is Unread:
            # A large value left in the store is not read: the new version is it with
            # the range written over it, copied from there (Writes.put).
            spliced = Spliced(old, offset, value)
            return resp.integer(spliced.size()), (spliced, sib[1] if sib is not None else 0)
        new = splice(old, offset, value, LARGE_VALUE)  # zero padding, as Redis
        return resp.integer(max(len(old), offset + len(value))), (
            new, sib[1] if sib is not None else 0)

    read_then_write(c, args[1], decide, whole=False)
    return None


@command("mget", -2, ("readonly", "fast"), 1, -1, 1, "string",
         "Atomically returns the string values of one or more keys.")
def cmd_mget(c: Context, args: list[bytes]) -> None:
    _mget(c, c.defer(), args[1:], False)


def _mget(c: Context, slot: Slot, keys: list[bytes], whole: bool) -> None:
    """MGET's reads. Large values they leave in the store (every replica holds the
    coordinator's copy) are pinned there and sent a slice at a time with the rest of the
    reply (server/streamed.py PiecesReply), or, where they cannot be, read again whole."""
    node = cast(Node, c.node)  # (as _get's)

    def finish(results: list) -> None:
        e = first_error(results)
        if e is not None:
            slot.set(err(e))
            return
        values: list[Any] = []
        for i, (_, sib) in enumerate(results):
            looked_up(c, keys[i], sib is not None)
            # (MGET answers nil for a key of another type, as Redis)
            data = sib[2] if sib is not None else None
            values.append(data if type(data) is bytes or type(data) is Unread else None)
        if Unread not in map(type, values):
            slot.set(resp.array([c.nil if v is None else resp.bulk(v) for v in values]))
        elif not _send_pieces(c, slot, keys, values):
            _mget(c, slot, keys, True)

    g = Gather(len(keys), finish)
    r = c.r
    for i, key in enumerate(keys):
        node.get_value(key, g.callback(i), r, whole)


def _send_pieces(c: Context, slot: Slot, keys: list[bytes], values: list[Any]) -> bool:
    """MGET's reply with its large values pinned in the store (PiecesReply); False (all
    let go) if one cannot be pinned or the slot cannot stream (EXEC, scripts)."""
    pieces: list[Any] = []
    pins: list[Any] = []
    framing = bytearray(b"*%d\r\n" % len(values))
    for key, v in zip(keys, values, strict=True):
        if type(v) is not Unread:
            framing += c.nil if v is None else resp.bulk(v)
            continue
        pinned = c.node.pin_value(key, v)
        if pinned is None:
            for pin in pins:
                pin.release()
            return False
        framing += b"$%d\r\n" % v.size
        pieces += [bytes(framing), pinned[0]]
        pins.append(pinned[1])
        framing = bytearray(b"\r\n")
    pieces.append(bytes(framing))
    reply = PiecesReply(pieces, pins)
    if c.send_streamed(slot, reply):
        return True
    reply.release()
    return False


@command("mset", -3, ("write", "denyoom"), 1, -1, 2, "string",
         "Atomically creates or modifies the string values of one or more keys.")
def cmd_mset(c: Context, args: list[bytes]) -> bytes | None:
    if len(args) % 2 != 1:
        return err_arity("mset")
    slot = c.defer()
    pairs = [(args[i], args[i + 1]) for i in range(1, len(args), 2)]

    def finish(results: list) -> None:
        e = first_error(results)
        slot.set(err(e) if e is not None else resp.OK)

    g = Gather(len(pairs), finish)
    for i, (key, value) in enumerate(pairs):
        c.put(key, None, value, 0, g.callback(i), c.w)
    return None


def _msetnx_wrote(slot: Slot, results: list) -> None:
    e = first_error(results)
    slot.set(err(e) if e is not None else resp.ONE)


@command("msetnx", -3, ("write", "denyoom"), 1, -1, 2, "string",
         "Atomically modifies the string values of one or more keys only when all keys "
         "don't exist.")
def cmd_msetnx(c: Context, args: list[bytes]) -> bytes | None:
    if len(args) % 2 != 1:
        return err_arity("msetnx")
    node = c.node
    slot = c.defer()
    values: dict[bytes, bytes] = {}
    for i in range(1, len(args), 2):
        values[args[i]] = args[i + 1]  # a repeated key takes its last value, as in Redis
    keys = list(values)
    # (the writes' callback a module function bound with partial, not a closure:
    # compiled, `read` naming another closure kept both in the environment they hold, a
    # reference cycle per MSETNX that held its values until the cyclic collector ran)
    wrote = partial(_msetnx_wrote, slot)

    def read(results: list) -> None:
        e = first_error(results)
        if e is not None:
            slot.set(err(e))
            return
        if any(current(obj, node.now) is not None for _, obj in results):
            slot.set(resp.ZERO)
            return
        g = Gather(len(keys), wrote)
        for i, (key, (_, obj)) in enumerate(zip(keys, results, strict=True)):
            c.put(key, context_of(obj), values[key], 0, g.callback(i), c.w)

    g = Gather(len(keys), read)
    for i, key in enumerate(keys):
        node.get(key, g.callback(i), c.r, False)  # whether each is there: no value read
    return None
