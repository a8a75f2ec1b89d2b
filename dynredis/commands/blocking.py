"""The blocking pops: BLPOP BRPOP BLMPOP BLMOVE BRPOPLPUSH BZPOPMIN BZPOPMAX BZMPOP.

Each is first run as its non-blocking form (LPOP, LMPOP, LMOVE, ZPOPMIN, ZMPOP: its keys
in the order given, each where it lives), with Redis' replies and errors. If that finds
nothing, the client waits on its keys at this node (core/blocking.py), which watches
them on their replicas (core/watches.py): when one of them is written through any node,
the clients waiting on it here try it again, the one that blocked first first, popping
from that key as the non-blocking form would. If another client (here or through
another node) got the item first, the client waits on. Until a deadline: the timeout,
in seconds as Redis reads it (a long double, rounded up to whole milliseconds; 0 waits
without limit), after which the reply is the command's nil.

Inside MULTI (EXEC) they do not block: they act as their non-blocking form, and answer
the nil at once if there is nothing, as Redis does. While a client waits, its later
commands wait in its input (as in Redis); a client that disconnects is forgotten.

A failed attempt of a waiting client (no read quorum: nothing was popped) lets it wait
on; a failure after something may have been written (a write quorum not reached, a
forwarded attempt that timed out) is its answer, as it would be for the non-blocking
form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

from ..resp import encode as resp
from . import longdouble, zfloat
from .collection import WRONGTYPE, drive, run_step
from .context import Client, Context, NodeRequests
from .databases import shown
from .listops import LEFT, RIGHT, WHERE_WORDS, WRONG, move, parse_where, pop_first
from .lists import bulks, lmpop_reply, nil_array, parse_mpop
from .table import ERR_SYNTAX, command
from .zsetplans import parse_zmpop, zmpop_reply

ERR_TIMEOUT_NOT_FLOAT = resp.error("ERR timeout is not a float or out of range")
ERR_TIMEOUT_NEGATIVE = resp.error("ERR timeout is negative")
ERR_UNBLOCKED = resp.error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
LLONG_MAX = 2**63 - 1

# An attempt: yields single-key steps, returns the reply, or None for "nothing there".
Attempt = Generator[list[bytes], Any, "bytes | None"]


class Blocker:
    """What one blocking command does: its keys, its first attempt (every key, in
    order), its attempt on one key after that key was written, its reply at the timeout
    (`nil`) and when it may not block (`nil_now`: in MULTI; BLMOVE's differ in RESP2, a
    null array and a null bulk string, as in Redis), and its timeout."""

    __slots__ = ("keys", "first", "retry", "nil", "nil_now", "timeout_ms")

    def __init__(self, keys: list[bytes], first: Callable[[], Attempt],
                 retry: Callable[[bytes], Attempt], nil: bytes, timeout_ms: int,
                 nil_now: bytes | None = None) -> None:
        self.keys = keys
        self.first = first
        self.retry = retry
        self.nil = nil
        self.nil_now = nil if nil_now is None else nil_now
        self.timeout_ms = timeout_ms


Build = Callable[[list[bytes], int], "Blocker | bytes"]
BLOCKERS: dict[str, Build] = {}


def parse_timeout(raw: bytes) -> int | bytes:
    """A timeout in seconds as Redis 7.0 reads it: a long double times 1000, rounded up
    to milliseconds (0.0001 is 1 ms; -0.0001 is 0: no limit), converted to a 64-bit
    integer (anything past its range, infinities included, comes out negative)."""
    x = longdouble.parse(raw)
    if x is None:
        return ERR_TIMEOUT_NOT_FLOAT
    ms_exact = x if isinstance(x, float) else longdouble.ld_round(x * 1000)
    if isinstance(ms_exact, float):  # an infinity
        return ERR_TIMEOUT_NEGATIVE
    ms = math.ceil(ms_exact)
    if ms < 0 or ms > LLONG_MAX:
        return ERR_TIMEOUT_NEGATIVE
    return ms


# --- running one -------------------------------------------------------------------------


def _nothing_done(err: str) -> bool:
    """A step failure before anything was written (the sync found no read quorum, or
    no replica was reachable)."""
    return err.startswith(("NOQUORUM read", "NOQUORUM any"))


def start(node: NodeRequests, blocker: Blocker, proto: int, r: int | None, w: int | None,
          may_block: bool, answer: Callable[[bytes], None],
          park: Callable[[Any], bool]) -> None:
    """Run a blocking command: its first attempt, then (if it found nothing and
    `may_block`) a wait at this node. `answer(reply)` once; `park(waiter)` is told the
    wait began and says whether the client is still there to wait (False: forget it)."""
    started = node.now

    def run(args: list[bytes], cb: Callable[[tuple[str | None, Any]], None]) -> None:
        run_step(node, args, proto, cb, r, w, home=True)

    def attempt(key: bytes, done: Callable[[Any], None]) -> None:
        first_failed = [False]
        steps = [0]

        def step(args: list[bytes], cb: Callable[[tuple[str | None, Any]], None]) -> None:
            steps[0] += 1
            if steps[0] == 1:
                def checked(result: tuple[str | None, Any]) -> None:
                    if result[0] is not None and _nothing_done(result[0]):
                        first_failed[0] = True
                    cb(result)

                run(args, checked)
            else:
                run(args, cb)

        drive(blocker.retry(key), step,  # type: ignore[arg-type]
              lambda reply: done(None if first_failed[0] else reply))

    def finish(result: Any) -> None:
        answer(blocker.nil if result is None else result)

    def first_done(reply: bytes | None) -> None:
        if reply is not None or not may_block:
            answer(blocker.nil_now if reply is None else reply)
            return
        deadline = started + blocker.timeout_ms if blocker.timeout_ms else 0
        if deadline and node.now >= deadline:
            answer(blocker.nil)
            return
        waiter = node.blocking.block(blocker.keys, attempt, finish, deadline)
        if not park(waiter):
            node.blocking.cancel(waiter)

    drive(blocker.first(), run, first_done)  # type: ignore[arg-type]


def blocking_command(name: str, arity: int, flags: tuple[str, ...], first_key: int,
                     last_key: int, step: int, group: str, summary: str, since: str,
                     keys_of: Any = None) -> Callable[[Build], Build]:
    """Register a Blocker builder as the command `name`."""

    def register(build: Build) -> Build:
        def handler(c: Context, args: list[bytes]) -> bytes | None:
            blocker = build(args, c.proto)
            if isinstance(blocker, bytes):
                return blocker
            slot = c.defer_blocking()
            may_block = c.may_block
            if not may_block:
                start(c.node, blocker, c.proto, c.r, c.w, False, slot.set, lambda w: False)
                return None
            c.start_blocking()  # its later commands wait until it answers

            def answer(reply: bytes) -> None:
                c.end_blocking()
                slot.set(reply)

            start(c.node, blocker, c.proto, c.r, c.w, True, answer, c.park)
            return None

        command(name, arity, flags, first_key, last_key, step, group, summary, since,
                keys_of)(handler)
        BLOCKERS[name] = build
        return build

    return register


# --- lists -------------------------------------------------------------------------------

FLAGS = ("write", "blocking")
FLAGS_NEW = ("write", "denyoom", "blocking")


def _pop_one(key: bytes, where: int, count: int) -> Generator[list[bytes], Any, Any]:
    """Pop from one key: None (nothing, or a key of another type) or the items."""
    got = yield [b"dyn.lpop", key, WHERE_WORDS[where], b"%d" % count]
    return None if got is None or got == WRONG else got


def _list_pops(keys: list[bytes], where: int, count: int, timeout: int, proto: int,
               reply: Callable[[bytes, list[bytes]], bytes]) -> Blocker:
    """Pop up to `count` items from the first of `keys` that has any (BLPOP, BRPOP,
    BLMPOP), answered with `reply(key, items)`."""

    def first() -> Attempt:
        got = yield from pop_first(keys, where, count)
        if got is None:
            return None
        if got == WRONG:
            return WRONGTYPE
        key, items = got
        return reply(key, items)

    def retry(key: bytes) -> Attempt:
        items = yield from _pop_one(key, where, count)
        return None if items is None else reply(key, list(items))

    return Blocker(keys, first, retry, nil_array(proto), timeout)


def _bmpop(args: list[bytes], proto: int, parse: Callable[[list[bytes], int], Any],
           pops: Callable[..., Blocker], reply: Callable[[bytes, Any], bytes]
           ) -> Blocker | bytes:
    """BLMPOP and BZMPOP: `parse` reads the arguments after the timeout (Redis reads the
    timeout last), `pops` (_list_pops, _zset_pops) makes the blocker."""
    parsed = parse(args, 2)
    if isinstance(parsed, bytes):
        return parsed
    keys, where, count = parsed
    timeout = parse_timeout(args[1])
    if isinstance(timeout, bytes):
        return timeout
    return pops(keys, where, count, timeout, proto, reply)


def _bpop(args: list[bytes], proto: int, where: int) -> Blocker | bytes:
    timeout = parse_timeout(args[-1])
    if isinstance(timeout, bytes):
        return timeout
    return _list_pops(list(args[1:-1]), where, 1, timeout, proto,
                      lambda key, items: bulks([shown(key), items[0]]))


@blocking_command("blpop", -3, FLAGS, 1, -2, 1, "list",
                  "Remove and get the first element in a list, or block until one is "
                  "available", "2.0.0")
def build_blpop(args: list[bytes], proto: int) -> Blocker | bytes:
    return _bpop(args, proto, LEFT)


@blocking_command("brpop", -3, FLAGS, 1, -2, 1, "list",
                  "Remove and get the last element in a list, or block until one is "
                  "available", "2.0.0")
def build_brpop(args: list[bytes], proto: int) -> Blocker | bytes:
    return _bpop(args, proto, RIGHT)


@blocking_command("blmpop", -5, ("write", "blocking", "movablekeys"), 0, 0, 0, "list",
                  "Pop elements from a list, or block until one is available", "7.0.0")
def build_blmpop(args: list[bytes], proto: int) -> Blocker | bytes:
    return _bmpop(args, proto, parse_mpop, _list_pops,
                  lambda key, items: lmpop_reply(shown(key), items))


def _bmove(src: bytes, dst: bytes, wherefrom: int, whereto: int, timeout: int,
           proto: int) -> Blocker:
    def first() -> Attempt:
        got = yield from move(src, dst, wherefrom, whereto)
        if got is None:
            return None
        return WRONGTYPE if got == WRONG else resp.bulk(got)

    def retry(key: bytes) -> Attempt:
        # A source of another type: wait on. A destination of another type when the
        # source has an item: WRONGTYPE, the item left in the source (as Redis).
        got = yield from move(src, dst, wherefrom, whereto, source_wrong=None)
        if got is None:
            return None
        return WRONGTYPE if got == WRONG else resp.bulk(got)

    return Blocker([src], first, retry, nil_array(proto), timeout, resp.nil(proto))


@blocking_command("blmove", 6, FLAGS_NEW, 1, 2, 1, "list",
                  "Pop an element from a list, push it to another list and return it; or "
                  "block until one is available", "6.2.0")
def build_blmove(args: list[bytes], proto: int) -> Blocker | bytes:
    wherefrom, whereto = parse_where(args[3]), parse_where(args[4])
    if wherefrom is None or whereto is None:
        return ERR_SYNTAX
    timeout = parse_timeout(args[5])
    if isinstance(timeout, bytes):
        return timeout
    return _bmove(args[1], args[2], wherefrom, whereto, timeout, proto)


@blocking_command("brpoplpush", 4, FLAGS_NEW, 1, 2, 1, "list",
                  "Pop an element from a list, push it to another list and return it; or "
                  "block until one is available", "2.2.0")
def build_brpoplpush(args: list[bytes], proto: int) -> Blocker | bytes:
    timeout = parse_timeout(args[3])
    if isinstance(timeout, bytes):
        return timeout
    return _bmove(args[1], args[2], RIGHT, LEFT, timeout, proto)


# --- sorted sets -------------------------------------------------------------------------


def _zpop_one(key: bytes, where: bytes, count: int) -> Generator[list[bytes], Any, Any]:
    """Pop from one key: [type or None, popped (member, score) pairs]."""
    return (yield [b"dyn.zpop", key, where, b"%d" % count])


def _zset_pops(keys: list[bytes], where: bytes, count: int, timeout: int, proto: int,
               reply: Callable[[bytes, Any], bytes]) -> Blocker:
    """Pop up to `count` members from the first of `keys` that has any (BZPOPMIN,
    BZPOPMAX, BZMPOP), answered with `reply(key, popped (member, score) pairs)`."""

    def first() -> Attempt:
        for key in keys:
            t, popped = yield from _zpop_one(key, where, count)
            if t is None:
                continue
            if t != "zset":
                return WRONGTYPE
            if popped:
                return reply(key, popped)
        return None

    def retry(key: bytes) -> Attempt:
        t, popped = yield from _zpop_one(key, where, count)
        return reply(key, popped) if t == "zset" and popped else None

    return Blocker(keys, first, retry, nil_array(proto), timeout)


def _bzpop(args: list[bytes], proto: int, where: bytes) -> Blocker | bytes:
    timeout = parse_timeout(args[-1])
    if isinstance(timeout, bytes):
        return timeout

    def reply(key: bytes, popped: Any) -> bytes:
        member, score = popped[0]
        return resp.array([resp.bulk(shown(key)), resp.bulk(member),
                           zfloat.reply(score, proto)])

    return _zset_pops(list(args[1:-1]), where, 1, timeout, proto, reply)


@blocking_command("bzpopmin", -3, ("write", "blocking", "fast"), 1, -2, 1, "sorted_set",
                  "Remove and return the member with the lowest score from one or more "
                  "sorted sets, or block until one is available", "5.0.0")
def build_bzpopmin(args: list[bytes], proto: int) -> Blocker | bytes:
    return _bzpop(args, proto, b"min")


@blocking_command("bzpopmax", -3, ("write", "blocking", "fast"), 1, -2, 1, "sorted_set",
                  "Remove and return the member with the highest score from one or more "
                  "sorted sets, or block until one is available", "5.0.0")
def build_bzpopmax(args: list[bytes], proto: int) -> Blocker | bytes:
    return _bzpop(args, proto, b"max")


@blocking_command("bzmpop", -5, ("write", "blocking", "movablekeys"), 0, 0, 0,
                  "sorted_set", "Remove and return members with scores in a sorted set or "
                  "block until one is available", "7.0.0")
def build_bzmpop(args: list[bytes], proto: int) -> Blocker | bytes:
    return _bmpop(args, proto, parse_zmpop, _zset_pops, lambda key, popped: zmpop_reply(
        shown(key), [(m, s) for m, s in popped], proto))


# --- CLIENT UNBLOCK ----------------------------------------------------------------------


def unblock(node: NodeRequests, target: Client | None, error: bool) -> bool:
    """CLIENT UNBLOCK: end the wait of the client `target`, a client of `node` (with the
    UNBLOCKED error, or as a timeout); False if it is not waiting."""
    waiter = target.blocked if target is not None else None
    if waiter is None or waiter is True:
        return False
    node.blocking.end(waiter, ERR_UNBLOCKED if error else None)
    return True
