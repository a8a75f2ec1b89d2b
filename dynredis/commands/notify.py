"""Keyspace notifications: Redis' `notify-keyspace-events` flags, and the events each
command emits once its reply is known.

A write is published where it is coordinated (the node that ran the command for the
client, a script, or the node a read-then-write was handed to), as
`__keyspace@<db>__:<key>` (message: the event) and `__keyevent@<db>__:<event>`
(message: the key), through the cluster's pub/sub (cluster/pubsub.py): a subscriber
on any node sees it. The events follow from the command, its arguments and its reply
(`RULES`), so they are Redis' for what the reply tells: a DEL of several keys names
each key it deleted; a collection emptied by a removal does not add Redis' "del".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..core import obj as objmod
from ..resp import encode as resp
from .common import KEYMISS, NEW, ok_or_error
from .databases import parse_db, shown, storage_key, user_key
from .table import Command, parse_int

log = logging.getLogger("dynredis.notify")

# --- the flags ----------------------------------------------------------------------

_LETTERS = "g$lshzxetdn"  # classes; A is all of them but n (and m)
BIT = {ch: 1 << i for i, ch in enumerate(_LETTERS + "KEm")}
ALL = sum(BIT[ch] for ch in "g$lshzxetd")
assert BIT["n"] == NEW and BIT["m"] == KEYMISS  # (common.py publishes new and keymiss)
KEYSPACE = BIT["K"]
KEYEVENT = BIT["E"]
ERR_EVENTS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def parse_events(text: str) -> int | None:
    """keyspaceEventsStringToFlags: the flags, or None for an unknown letter."""
    flags = 0
    for ch in text:
        if ch == "A":
            flags |= ALL
        elif ch in BIT:
            flags |= BIT[ch]
        else:
            return None
    return flags


def format_events(flags: int) -> str:
    """keyspaceEventsFlagsToString, as Redis 7.0 writes it (n is not written after A,
    though it is in effect)."""
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(ch for ch in "g$lshzxetdn" if flags & BIT[ch])
    return out + "".join(ch for ch in "KEm" if flags & BIT[ch])


def stored_events(flags: int) -> str:
    """The setting as the cluster keeps it: `format_events`, but n kept after A too."""
    out = format_events(flags)
    if flags & ALL == ALL and flags & BIT["n"]:
        out = "An" + out[1:]
    return out


def notify(c: Any, cls: str, event: bytes, key: bytes) -> None:
    """Publish `event` on `key` if notify-keyspace-events asks for its class."""
    publish_event(c.pubsub, cls, event, key)


def publish_event(ps: Any, cls: str, event: bytes, key: bytes) -> None:
    """`key` as stored (commands/databases.py): the channel names its database and the
    key as that database's clients name it (the connection's database; for COPY ... DB
    n's `copy_to`, database n's, as in Redis)."""
    flags = ps.flags
    if not flags & BIT[cls] or not flags & (KEYSPACE | KEYEVENT):
        return
    db_num, key = user_key(key)
    db = b"%d" % db_num
    if flags & KEYSPACE:
        ps.publish(b"__keyspace@" + db + b"__:" + key, event, False, None)
    if flags & KEYEVENT:
        ps.publish(b"__keyevent@" + db + b"__:" + event, key, False, None)


_UNIT_MS = {b"EX": 1000, b"PX": 1, b"EXAT": 1000, b"PXAT": 1}


def expiry_of(name: str, args: list[bytes], now: int) -> int | None:
    """The absolute expiry (ms) a write with an "expire" event gave its key."""
    if name in ("expire", "pexpire", "expireat", "pexpireat", "setex", "psetex"):
        n = parse_int(args[2])
        if n is None:
            return None
        ms = n * (1 if name.startswith("p") else 1000)
        return ms if name.endswith("at") else now + ms
    for i in range(2, len(args) - 1):
        unit = _UNIT_MS.get(args[i].upper())
        n = parse_int(args[i + 1]) if unit is not None else None
        if unit is not None and n is not None:
            return n * unit if args[i].upper().endswith(b"AT") else now + n * unit
    return None


# --- what a reply says --------------------------------------------------------------


def _int(reply: bytes) -> int | None:
    if reply[:1] != b":":
        return None
    return parse_int(reply[1:-2])


def _positive(reply: bytes) -> bool:
    n = _int(reply)
    return n is not None and n > 0


def _ok(reply: bytes) -> bool:
    return reply[:1] == b"+"


def _value(reply: bytes) -> bool:
    """A reply that carries something: not an error, not nil, not an empty array."""
    return reply[:1] != b"-" and reply not in (resp.NIL2, resp.NIL3, resp.NIL_ARRAY2,
                                               resp.EMPTY_ARRAY, b"~0\r\n")


Event = tuple[str, bytes, bytes]  # class letter, event, key
Rule = Callable[[list[bytes], bytes, int], list[Event]]


def _upper(args: list[bytes]) -> list[bytes]:
    return [a.upper() for a in args]


def _set(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    opts = _upper(args[3:])
    if b"GET" in opts:
        if reply[:1] == b"-" or (b"NX" in opts and _value(reply)) or \
                (b"XX" in opts and not _value(reply)):
            return []
    elif not _ok(reply):
        return []
    out = [("$", b"set", args[1])]
    if any(o in opts for o in (b"EX", b"PX", b"EXAT", b"PXAT")):
        out.append(("g", b"expire", args[1]))
    return out


def _expire(unit_ms: int, absolute: bool) -> Rule:
    def rule(args: list[bytes], reply: bytes, now: int) -> list[Event]:
        if _int(reply) != 1:
            return []
        n = parse_int(args[2]) or 0
        when = n * unit_ms if absolute else now + n * unit_ms
        return [("g", b"del" if when <= now else b"expire", args[1])]
    return rule


def _getex(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    if not _value(reply):
        return []
    opts = _upper(args[2:])
    if b"PERSIST" in opts:
        return [("g", b"persist", args[1])]
    if any(o in opts for o in (b"EX", b"PX", b"EXAT", b"PXAT")):
        return [("g", b"expire", args[1])]
    return []


def _when(test: Callable[[bytes], bool], cls: str, event: bytes, key_at: int = 1) -> Rule:
    def rule(args: list[bytes], reply: bytes, now: int) -> list[Event]:
        return [(cls, event, args[key_at])] if test(reply) else []
    return rule


def _each_pair(cls: str, event: bytes, test: Callable[[bytes], bool]) -> Rule:
    """MSET-like: every other word from args[1] is a key."""
    def rule(args: list[bytes], reply: bytes, now: int) -> list[Event]:
        if not test(reply):
            return []
        return [(cls, event, args[i]) for i in range(1, len(args), 2)]
    return rule


def _both(first: Event, second: Event) -> list[Event]:
    return [first, second]


def _move(args: list[bytes], reply: bytes, now: int, src_end: bytes,
          dst_end: bytes) -> list[Event]:
    # Redis pushes first, then pops (and deletes an emptied source: not known here).
    if not _value(reply):
        return []
    pop = b"lpop" if src_end == b"LEFT" else b"rpop"
    push = b"lpush" if dst_end == b"LEFT" else b"rpush"
    return _both(("l", push, args[2]), ("l", pop, args[1]))


def _lmove(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    return _move(args, reply, now, args[3].upper(), args[4].upper())


def _rpoplpush(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    return _move(args, reply, now, b"RIGHT", b"LEFT")


def _smove(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    if _int(reply) != 1 or args[1] == args[2]:
        return []  # (a move to the set it is in changes nothing: Redis publishes none)
    return _both(("s", b"srem", args[1]), ("s", b"sadd", args[2]))


def _rename(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    if not (_ok(reply) or _int(reply) == 1):
        return []
    return _both(("g", b"rename_from", args[1]), ("g", b"rename_to", args[2]))


def _bitfield(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    ops = _upper(args[2:])
    if reply[:1] == b"-" or not (b"SET" in ops or b"INCRBY" in ops):
        return []
    return [("$", b"setbit", args[1])]


def _move_db(args: list[bytes], reply: bytes, now: int) -> list[Event]:
    """MOVE: move_from on the source, move_to on the other database's key."""
    db = parse_db(args[2])
    if not _positive(reply) or isinstance(db, str):
        return []
    return [("g", b"move_from", args[1]),
            ("g", b"move_to", storage_key(db, user_key(args[1])[1]))]


def _blocking_pop(event: bytes, cls: str) -> Rule:
    """BLPOP-like: the reply names the key popped from."""
    def rule(args: list[bytes], reply: bytes, now: int) -> list[Event]:
        if not _value(reply) or reply[:1] not in (b"*", b">"):
            return []
        try:
            name = reply.split(b"\r\n")[2]
        except IndexError:
            return []
        # the reply names the key as the client knows it: the stored key is the one of
        # the command's keys (all of the client's database) that it names
        key = next((k for k in args[1:-1] if shown(k) == name), name)
        return [(cls, event, key)]
    return rule


_STR = [("append", b"append"), ("setrange", b"setrange"), ("incr", b"incrby"),
        ("decr", b"incrby"), ("incrby", b"incrby"), ("decrby", b"incrby"),
        ("incrbyfloat", b"incrbyfloat"), ("getset", b"set"), ("setbit", b"setbit")]
_POSITIVE = [("l", "lpush", b"lpush"), ("l", "lpushx", b"lpush"), ("l", "rpush", b"rpush"),
             ("l", "rpushx", b"rpush"), ("l", "linsert", b"linsert"), ("l", "lrem", b"lrem"),
             ("h", "hdel", b"hdel"), ("h", "hsetnx", b"hset"),
             ("s", "sadd", b"sadd"), ("s", "srem", b"srem"),
             ("s", "sinterstore", b"sinterstore"), ("s", "sunionstore", b"sunionstore"),
             ("s", "sdiffstore", b"sdiffstore"), ("z", "zrem", b"zrem"),
             ("z", "zremrangebyscore", b"zremrangebyscore"),
             ("z", "zremrangebyrank", b"zremrangebyrank"),
             ("z", "zremrangebylex", b"zremrangebylex"),
             ("z", "zunionstore", b"zunionstore"), ("z", "zinterstore", b"zinterstore"),
             ("z", "zdiffstore", b"zdiffstore"), ("z", "zrangestore", b"zrangestore"),
             ("$", "pfadd", b"pfadd"), ("g", "persist", b"persist"),
             ("g", "copy", b"copy_to")]
_VALUE = [("l", "lpop", b"lpop"), ("l", "rpop", b"rpop"), ("s", "spop", b"spop"),
          ("z", "zpopmin", b"zpopmin"), ("z", "zpopmax", b"zpopmax"),
          ("$", "getdel", b"del"), ("h", "hset", b"hset"), ("h", "hmset", b"hset"),
          ("h", "hincrby", b"hincrby"), ("h", "hincrbyfloat", b"hincrbyfloat"),
          ("z", "zadd", b"zadd"), ("z", "zincrby", b"zincr"), ("z", "geoadd", b"zadd"),
          ("l", "lset", b"lset"), ("l", "ltrim", b"ltrim"), ("$", "pfmerge", b"pfadd")]

RULES: dict[str, Rule] = {
    "set": _set,
    "setnx": _when(lambda r: _int(r) == 1, "$", b"set"),
    "setex": lambda a, r, now: [("$", b"set", a[1]), ("g", b"expire", a[1])] if _ok(r) else [],
    "psetex": lambda a, r, now: [("$", b"set", a[1]), ("g", b"expire", a[1])] if _ok(r) else [],
    "mset": _each_pair("$", b"set", _ok),
    "msetnx": _each_pair("$", b"set", lambda r: _int(r) == 1),
    "getex": _getex,
    "expire": _expire(1000, False), "pexpire": _expire(1, False),
    "expireat": _expire(1000, True), "pexpireat": _expire(1, True),
    "rename": _rename, "renamenx": _rename, "move": _move_db,
    "smove": _smove, "lmove": _lmove, "rpoplpush": _rpoplpush,
    "blmove": _lmove, "brpoplpush": _rpoplpush,
    "blpop": _blocking_pop(b"lpop", "l"), "brpop": _blocking_pop(b"rpop", "l"),
    "bzpopmin": _blocking_pop(b"zpopmin", "z"), "bzpopmax": _blocking_pop(b"zpopmax", "z"),
    "bitfield": _bitfield,
    "bitop": _when(_value, "$", b"set", 2),
}
for _name, _event in _STR:
    RULES[_name] = _when(_value, "$", _event)
for _cls, _name, _event in _POSITIVE:
    RULES[_name] = _when(_positive, _cls, _event, 2 if _name == "copy" else 1)
for _cls, _name, _event in _VALUE:
    RULES[_name] = _when(_value, _cls, _event)


# Removals after which Redis also publishes "del" if they emptied the key (args[1]).
EMPTYING = frozenset({"hdel", "srem", "spop", "smove", "zrem", "zremrangebyscore",
                      "zremrangebyrank", "zremrangebylex", "zpopmin", "zpopmax", "lpop",
                      "rpop", "lrem", "ltrim", "lmove", "rpoplpush"})


def events_of(c: Any, name: str, args: list[bytes], reply: bytes) -> list[Event]:
    rule = RULES.get(name)
    if rule is None:
        return []
    try:
        return rule(args, reply, c.node.now)
    except (IndexError, ValueError):
        return []


def with_del(events: list[Event], key: bytes) -> list[Event]:
    """`events` with "del" of `key` after its removal event (Redis' order)."""
    at = next((i + 1 for i, e in enumerate(events) if e[2] == key and e[0] != "g"
               and e[1] in _REMOVALS), len(events))
    return [*events[:at], ("g", b"del", key), *events[at:]]


_REMOVALS = frozenset({b"hdel", b"srem", b"spop", b"zrem", b"zremrangebyscore",
                       b"zremrangebyrank", b"zremrangebylex", b"zpopmin", b"zpopmax",
                       b"lpop", b"rpop", b"lrem", b"ltrim"})


def emit(c: Any, name: str, args: list[bytes], reply: bytes) -> None:
    """The notifications of command `name` that answered `reply`."""
    publish_all(c, name, args, events_of(c, name, args, reply))


def publish_all(c: Any, name: str, args: list[bytes], events: list[Event]) -> None:
    for cls, event, key in events:
        notify(c, cls, event, key)
        if event == b"expire" and c.pubsub.flags & BIT["x"]:
            when = expiry_of(name, args, c.node.now)
            if when is not None:
                c.pubsub.watch_expiry(key, when)


class _Watched:
    """Stands in for the context while a notifying command runs: its reply, caught on
    its way to the command's own reply slot, says what to publish."""

    def __init__(self, c: Any, slot: Any, name: str, args: list[bytes]) -> None:
        d = self.__dict__
        d["_c"] = c
        d["_slot"] = slot
        d["_name"] = name
        d["_args"] = args
        d["_answered"] = False
        d["_unchanged"] = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._c, name, value)

    def defer(self) -> _Watched:
        return self

    defer_blocking = defer

    def put_ok(self, key: bytes, data: bytes, expire_at: int) -> None:
        c = self._c
        c.put(key, None, data, expire_at, lambda r: self.set(ok_or_error(r)), c.w)

    def unchanged(self) -> None:
        """The command changed nothing (collection.QUIET_IF_UNCHANGED): no event."""
        self.__dict__["_unchanged"] = True

    def set(self, reply: bytes) -> None:
        if self._answered:
            return
        self.__dict__["_answered"] = True
        c, name, args = self._c, self._name, self._args
        events = [] if self._unchanged else events_of(c, name, args, reply)
        if name in EMPTYING and events and c.pubsub.flags & BIT["g"]:
            # Did the removal empty the key? Read it (the reply waits for the answer,
            # so the client hears back after its notifications, as from Redis).
            key = args[1]
            node = c.node

            def read(result: tuple) -> None:
                gone = result[0] is None and objmod.read_value(result[1], node.now) is None
                publish_all(c, name, args, with_del(events, key) if gone else events)
                self._slot.set(reply)

            node.get(key, read, c.r)
            return
        publish_all(c, name, args, events)
        self._slot.set(reply)


def run(cmd: Command, c: Any, args: list[bytes]) -> bytes | None:
    """Run `cmd` for `c`, publishing its notifications once it has answered (the plain
    handler call when notify-keyspace-events asks for none, or the command has none)."""
    if cmd.name not in RULES or not c.pubsub.flags & (KEYSPACE | KEYEVENT):
        return cmd.handler(c, args)
    slot = c.defer()
    watched = _Watched(c, slot, cmd.name, args)
    try:
        reply = cmd.handler(watched, args)
    except Exception:
        log.exception("command %s failed", cmd.name)
        reply = resp.error(f"ERR internal error executing '{cmd.name}'")
    if reply is not None:
        watched.set(reply)
    return None
