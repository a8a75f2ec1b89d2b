"""MULTI / EXEC / DISCARD as a batch: commands are queued, then run in order.

Not isolated: other clients' writes may interleave with a transaction's commands,
and a quorum failure in one command does not undo the others (each reply says what
happened). WATCH (watch.py) makes EXEC check first that the watched keys did not change.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from mypy_extensions import mypyc_attr

from ..core.engine import Pinned
from ..resp import encode as resp
from ..server.streamed import STREAM_SLICE, STREAM_TURN, ChainReply, pinned_reply
from .common import ok_or_error
from .context import Context
from .databases import map_args
from .notify import run as run_notifying
from .table import command
from .watch import check, unwatch

ERR_NESTED = resp.error("ERR MULTI calls can not be nested")
ERR_EXEC = resp.error("ERR EXEC without MULTI")
ERR_DISCARD = resp.error("ERR DISCARD without MULTI")
ERR_ABORT = resp.error("EXECABORT Transaction discarded because of previous errors.")


# A Python class (not a compiled one): it sets its own attributes past its __setattr__,
# which passes every other one to the connection, and reads the connection's through
# __getattr__.
@mypyc_attr(native_class=False)
class _Capture:
    """Stands in for the connection while one queued command runs, catching its reply.
    Blocking commands do not block here (`may_block`): they act as their non-blocking
    forms, as in Redis."""

    may_block = False

    def __init__(self, conn: Context, outer: Any) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_outer", outer)  # EXEC's own slot
        object.__setattr__(self, "_reply", None)
        object.__setattr__(self, "_then", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)  # CLIENT SETNAME, HELLO ... change the connection

    def defer(self) -> _Capture:
        return self

    def defer_blocking(self) -> _Capture:  # (not `= defer`: compiled, the class body
        return self  # runs before its methods are in it)

    def put_ok(self, key: bytes, data: bytes, expire_at: int) -> None:
        """The connection's write answered +OK, with this command's reply instead of a
        reply slot of the connection."""
        conn = self._conn
        conn.put(key, None, data, expire_at, self._put_done, conn.w)

    def _put_done(self, result: tuple) -> None:
        # (a method, not a lambda over self: mypyc fails on the lambda in this class)
        self.set(ok_or_error(result))

    # A reply written over turns (a large value pinned in the store, a long collection
    # reply) stays one in EXEC's reply (streamed.ChainReply) while EXEC's own slot can
    # take one; the connection's methods would refuse this stand-in's slot.
    def send_stored(self, slot: Any, key: bytes, value: Any, before: bytes, after: bytes,
                    span: tuple[int, int] | None = None) -> bool:
        if not self._streams(slot):
            return False
        pinned = self._conn.node.pin_value(key, value)
        return pinned is not None and self.send_pinned(slot, pinned, before, after, span)

    def send_pinned(self, slot: Any, pinned: tuple[Any, Pinned], before: bytes,
                    after: bytes, span: tuple[int, int] | None = None) -> bool:
        return self.send_streamed(slot, pinned_reply(pinned, before, after, span))

    def send_streamed(self, slot: Any, reply: Any) -> bool:
        if not self._streams(slot):
            return False
        self.set(reply)
        return True

    def _streams(self, slot: Any) -> bool:
        return slot is self and self._conn.may_stream(self._outer)

    def set(self, reply: Any) -> None:
        """The queued command's (possibly late) reply: bytes, or one written over turns
        (send_streamed's)."""
        if self._reply is not None:
            return
        object.__setattr__(self, "_reply", reply)
        then = self._then
        if then is not None:
            object.__setattr__(self, "_then", None)
            then(reply)


def _size(reply: Any) -> int:
    """A queued command's reply's size (a streamed one's estimate)."""
    return len(reply) if type(reply) is bytes else reply.size()  # type: ignore[no-any-return]


@command("multi", 1, ("noscript", "loading", "stale", "fast"), group="transactions",
         summary="Starts a transaction (a batch: queued, then run in order; not isolated).")
def cmd_multi(c: Context, args: list[bytes]) -> bytes:
    if c.tx is not None:
        return ERR_NESTED
    c.tx = []
    c.tx_failed = False
    return resp.OK


def _discard(c: Context) -> None:
    c.tx = None
    c.tx_failed = False
    unwatch(c)


def exec_refused(c: Context, refusal: bytes) -> bytes:
    """EXEC refused before it runs (arity, NOAUTH, NOPERM, LOADING ...): as Redis, its
    transaction (if any) is discarded and the reply names the reason, an ERR's without
    its code."""
    if c.tx is not None:
        _discard(c)
    reason = refusal[1:].rstrip(b"\r\n")
    if reason.startswith(b"ERR "):
        reason = reason[4:]
    return b"-EXECABORT Transaction discarded because of: " + reason + b"\r\n"


@command("discard", 1, ("noscript", "loading", "stale", "fast"), group="transactions",
         summary="Discards a transaction.")
def cmd_discard(c: Context, args: list[bytes]) -> bytes:
    if c.tx is None:
        return ERR_DISCARD
    _discard(c)
    return resp.OK


@command("exec", 1, ("noscript", "loading", "stale", "skip_slowlog"), group="transactions",
         summary="Runs all the commands queued by MULTI, in order.")
def cmd_exec(c: Context, args: list[bytes]) -> bytes | None:
    if c.tx is None:
        return ERR_EXEC
    queued, failed = c.tx, c.tx_failed
    c.tx = None
    c.tx_failed = False
    if failed:
        unwatch(c)
        return ERR_ABORT
    _Exec(c, queued, c.defer()).start()
    return None


class _Exec:
    """EXEC under way: its queued commands run one after the other, their replies
    gathered. An object, not a closure that hands itself on (a reference cycle: each
    EXEC's replies, 3 MB for an HGETALL of 200,000 fields, waited for Python's cyclic
    collector, which in a node doing little else runs every few dozen of them)."""

    __slots__ = ("c", "queued", "slot", "replies", "touch")

    def __init__(self, c: Context, queued: list[Any], slot: Any) -> None:
        self.c = c
        self.queued = queued
        self.slot = slot
        self.replies: list[Any] = []
        # each queued command answered is a step: EXEC is working, not lost (four reads
        # of a million elements each, slow to load, were answered "reply lost" after 60 s)
        self.touch = getattr(slot, "touch", None)

    def start(self) -> None:
        check(self.c, self.checked)

    def checked(self, instead: bytes | None) -> None:
        if instead is not None:
            self.slot.set(instead)
        else:
            self.run(0)

    def run(self, i: int, made: int = 0) -> None:
        # Each command starts when the previous one has answered, so later commands
        # see earlier ones' writes (through this coordinator). After STREAM_TURN bytes
        # of replies answered at once, the next in a later loop turn: on one node every
        # read answers at once, and a hundred reads of a million elements took their
        # snapshots in one turn. (`made`: bytes of replies since the last such turn.)
        c, queued, slot, replies = self.c, self.queued, self.slot, self.replies
        watchers = c.watchers
        while i < len(queued):
            if made >= STREAM_TURN:
                def later(_: Any, at: int = i) -> None:
                    self.run(at)

                c.node.coll.later(later)
                return
            cmd, words = queued[i]
            cap = _Capture(c, slot)
            c.monitor_feed(cmd, words)
            # mapped now: a SELECT queued before it decides its database, as in Redis
            words = map_args(cmd, words, c.db, c.cluster_view)
            watchers.wrote(cmd, words)  # other clients' watches of what it writes
            try:
                reply = run_notifying(cmd, cap, words)  # (keyspace notifications)
            except Exception:
                reply = resp.error(f"ERR internal error executing '{cmd.name}'")
            if reply is None:
                reply = cap._reply
            if reply is None:
                object.__setattr__(cap, "_then", partial(self.answered, i + 1, made))
                return
            replies.append(reply)
            made += _size(reply)
            i += 1
        self.replies = []
        if all(type(r) is bytes for r in replies) and sum(map(len, replies)) <= STREAM_SLICE:
            slot.set(resp.array(replies))
            return
        # written over turns: a slice of the whole replies, or of a streamed one's, a turn
        chained = ChainReply(b"*%d\r\n" % len(replies), replies)
        if not c.send_streamed(slot, chained):  # (the client went meanwhile)
            slot.set(chained.whole())

    def answered(self, nxt: int, made: int, late: Any) -> None:
        """A queued command's late reply: the next one runs."""
        self.replies.append(late)
        if self.touch is not None:
            self.touch()
        self.run(nxt, made + _size(late))
