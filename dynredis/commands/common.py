"""Helpers shared by the data command families: quorum calls and fan-in of results."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ..core import clock as dvv
from ..core import obj as objmod
from ..core.attrs import attr_or
from ..core.clock import Clock
from ..core.shape import Unread
from ..core.writes import STALE_READ, TOO_MANY_SIBLINGS
from ..resp import encode as resp
from .context import Context, Slot
from .gate import unless_answered

# The core's reasons for refusing a write, as a Redis client reads them.
ERR_TOO_MANY_SIBLINGS = resp.error(
    f"TOOMANYSIBLINGS the key would keep more than {objmod.SIBLING_MAX} concurrent "
    "values: read them with GETCTX and write with its context to resolve them (or "
    "overwrite them with SET)")


def err(text: str) -> bytes:
    """A core error as a Redis error (NOQUORUM and the like are worded already)."""
    if text == TOO_MANY_SIBLINGS:
        return ERR_TOO_MANY_SIBLINGS
    return resp.error(text)


def ok_or_error(result: tuple) -> bytes:
    """The reply to a write answered +OK (SET, SETEX): +OK, or the write's error."""
    return err(result[0]) if result[0] else resp.OK


class Gather:
    """Collects the results of `n` parallel operations, then calls `finish(results)`."""

    __slots__ = ("results", "left", "finish")

    def __init__(self, n: int, finish: Callable[[list[Any]], None]) -> None:
        self.results: list[Any] = [None] * n
        self.left = n
        self.finish = finish

    def callback(self, index: int) -> Callable[[Any], None]:
        # (a bound method, not a closure: compiled, the closure and its environment
        # formed a reference cycle per command, freed only by the cyclic collector)
        return partial(self._store, index)

    def _store(self, index: int, result: Any) -> None:
        self.results[index] = result
        self.left -= 1
        if self.left == 0:
            self.finish(self.results)


def answer(slot: Slot, render: Callable[[Any], bytes]) -> Callable[[tuple], None]:
    """A completion callback filling `slot`: the error as a Redis error, else
    `render(value)` of the operation's `(error, value)` result."""

    def done(result: tuple) -> None:
        e, value = result
        slot.set(err(e) if e is not None else render(value))

    return done


def first_error(results: list[tuple[str | None, Any]]) -> str | None:
    for e, _ in results:
        if e is not None:
            return e
    return None


NEW = 1 << 10  # notify.BIT["n"] (notify imports this module)
KEYMISS = 1 << 13  # notify.BIT["m"]


def looked_up(c: Context, key: bytes, found: bool) -> None:
    """A key read for a reader, as Redis' lookupKeyRead: a keyspace hit or miss (INFO
    stats), and a miss is the "keymiss" keyspace event."""
    stats = c.node.stats
    if found:
        stats.keyspace_hits += 1
        return
    stats.keyspace_misses += 1
    if c.pubsub.flags & KEYMISS:
        from .notify import notify

        notify(c, "m", b"keymiss", key)


def created(c: Any, key: bytes) -> None:
    """A write created `key` (it read the key and found nothing): the "new" event."""
    from .notify import notify

    notify(c, "n", b"new", key)


def context_of(obj: Clock | None) -> dvv.VV:
    return dvv.join(obj) if obj is not None else ()


def current(obj: Clock | None, now: int) -> objmod.Sibling | None:
    """The value a plain reader sees."""
    return objmod.read_value(obj, now)


def is_string(data: Any) -> bool:
    """A sibling's data is a string value (a large one perhaps left unread by a read
    that needs no value: obj.Unread), not a collection's header."""
    return type(data) is bytes or type(data) is Unread


def value_len(data: Any) -> int:
    """The length of a string value, read or left unread."""
    return data.size if type(data) is Unread else len(data)


def expiry_from(
    unit: bytes, raw: bytes, now: int
) -> tuple[int | None, bytes | None]:
    """Absolute expiry (ms) from an EX/PX/EXAT/PXAT option.

    Returns (ms, None), (None, error reply) for a non-integer, or (None, None) for an
    out-of-range time (the caller names its command in the error), as Redis does.
    """
    from .table import ERR_NOT_INT, parse_int

    n = parse_int(raw)
    if n is None:
        return None, ERR_NOT_INT
    u = unit.upper()
    if n <= 0:
        return None, None
    if u in (b"EX", b"EXAT"):
        if n > MAX_MS // 1000:
            return None, None
        n *= 1000
    if u in (b"EX", b"PX"):
        if n > MAX_MS - now:
            return None, None
        return now + n, None
    return n, None


MAX_MS = 2**63 - 1


LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
MAX_STRING = 512 * 1024 * 1024
"""Redis' default proto-max-bulk-len: the largest string APPEND/SETRANGE may build."""

Write = tuple[Any, int]
# What `decide` answers when it needs the key read whole after all (a large value it
# must reply with could not be held in the store): the command runs again on that.
# Known by its expiry, -1, which no write has (compiled, the constant is a new tuple at
# each use: `is` would not find it).
READ_WHOLE: Write = (None, -1)
"""A new version to write: (data or None for a tombstone, absolute expiry ms or 0). The
data is bytes, or what EXPIRE/PERSIST read and write back: a counter's state, a
collection header's type marker."""


def read_then_write(
    c: Context,
    key: bytes,
    decide: Callable[[objmod.Sibling | None], tuple[bytes, Write | None]],
    slot: Slot | None = None,
    any_type: bool = False,
    lookup: bool = False,
    whole: bool = True,
) -> None:
    """A read-modify-write: quorum-read `key`, let `decide(current value or None)` choose
    the reply and an optional write, then write with the context that was read, so the
    new version supersedes exactly what the read saw. The reply goes out once the write
    is acknowledged (or at once when `decide` writes nothing). Unless `any_type`, a
    collection key (its header's value is its type's marker) gets WRONGTYPE. With
    `lookup`, a read command's (STRLEN, TYPE ...): the key's read counts as a keyspace
    hit or miss (`looked_up`). With `whole` False, `decide` needs no large value (it
    may see an obj.Unread: STRLEN, TYPE ...) and writes it back only as it is (EXPIRE,
    PERSIST: Writes.put copies it from the store); if it is no longer there to copy,
    the command runs again on the key read whole.

    On a node with a key gate (commands/gate.py) it runs when no other read-then-write
    of the key is in progress there."""
    if slot is None:
        slot = c.defer()
    gate = attr_or(c, "gate", None)
    if gate is None:
        _read_then_write(c, key, decide, slot, _stay, any_type, lookup, whole)
        return
    out = slot
    gate.enter(key, attr_or(c, "gate_owner", None),
               unless_answered(slot, lambda leave: _read_then_write(
                   c, key, decide, out, leave, any_type, lookup, whole)),
               attr_or(c, "gate_waiter", None), attr_or(slot, "touch", None))


def _stay() -> None:
    return None


def _read_then_write(c: Any, key: bytes,
                     decide: Callable[[objmod.Sibling | None], tuple[bytes, Write | None]],
                     slot: Any, leave: Callable[[], None], any_type: bool = False,
                     lookup: bool = False, whole: bool = True) -> None:
    node = c.node

    def read(result: tuple) -> None:
        e, obj = result
        if e is not None:
            slot.set(err(e))
            leave()
            return
        sib = current(obj, node.now)
        if lookup:
            looked_up(c, key, sib is not None)
        if not any_type and sib is not None and not is_string(sib[2]):
            from .table import ERR_WRONGTYPE
            slot.set(ERR_WRONGTYPE)
            leave()
            return
        reply, write = decide(sib)
        if write is not None and write[1] == -1:  # READ_WHOLE
            _read_then_write(c, key, decide, slot, leave, any_type, False, True)
            return
        if write is None:
            slot.set(reply)
            leave()
            return

        new = bool(sib is None and write[0] is not None and c.pubsub.flags & NEW)

        def written(result: tuple) -> None:
            if result[0] == STALE_READ:  # the value read is not there to copy any more
                # (its lookup counted once)
                _read_then_write(c, key, decide, slot, leave, any_type, False, True)
                return
            if new and result[0] is None:
                created(c, key)  # before the command's own event, as in Redis
            slot.set(err(result[0]) if result[0] is not None else reply)
            leave()

        c.put(key, context_of(obj), write[0], write[1], written, c.w)

    node.get(key, read, c.r, whole)
