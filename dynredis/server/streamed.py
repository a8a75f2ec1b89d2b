"""A reply whose large value is sent from the store a slice at a time.

A GET of a 100 MB value copied it out of LMDB, decoded it (a copy), framed it (a copy)
and handed it to the transport (a copy of what the socket did not take at once): 0.2-0.3
s of the coordinator's loop in one turn. When the read found every replica holding the
coordinator's copy, the value is instead viewed in place (a read transaction of its own
keeps it while the reply goes out: LmdbEngine.pin) and written a slice at a time,
STREAM_TURN bytes a loop turn at most, pausing while the transport is over its
high-water mark (the client reads slowly) and going on when it drains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..core.engine import Pinned

STREAM_SLICE = 1 << 20  # bytes copied from the store and written at a time
STREAM_TURN = 4 << 20  # bytes written in one loop turn at most
ERR_CLOSED = b"-ERR internal error: the store closed while the reply was made\r\n"


class Streamed(Protocol):
    """A reply the connection writes over loop turns, in its place among the client's
    replies: `before` with the replies ahead of it, `next_slice()` until it answers
    None (`turn` bytes a turn at most; an empty slice ends the turn early), then
    `after`. A PiecesReply, a collection's reply encoded a slice at a time
    (resp/bulks.py SlicedReply), or EXEC's ChainReply of such replies."""

    before: bytes
    after: bytes
    turn: int

    def alive(self) -> bool: ...

    def release(self) -> None: ...

    def size(self) -> int: ...

    def next_slice(self) -> bytes | None: ...

    def done(self) -> bool: ...


class PiecesReply:
    """Bytes and values pinned in the store, in turn: `pieces` is [bytes, view, bytes,
    view, ..., bytes], the views being large values (MGET of some); the bytes between
    them are written whole, each view a slice at a time (a copy: the transport may keep
    it past the pin). GET's reply is [before, the value, after]."""

    __slots__ = ("before", "after", "middle", "pins", "i", "at")
    turn = STREAM_TURN

    def __init__(self, pieces: list[Any], pins: list[Pinned]) -> None:
        self.before = pieces[0]
        self.after = pieces[-1]
        self.middle = pieces[1:-1]
        self.pins = pins
        self.i = 0  # the piece being written
        self.at = 0  # how much of it (a view's)

    def alive(self) -> bool:
        return all(pin.alive() for pin in self.pins)

    def release(self) -> None:
        self.middle = []
        for pin in self.pins:
            pin.release()

    def size(self) -> int:
        return len(self.before) + sum(map(len, self.middle)) + len(self.after)

    def next_slice(self) -> bytes | None:
        middle = self.middle
        while self.i < len(middle):
            piece = middle[self.i]
            if self.i % 2:  # bytes between two views
                self.i += 1
                if piece:
                    return piece  # type: ignore[no-any-return]
                continue
            at, n = self.at, len(piece)
            if at < n:
                end = at + STREAM_SLICE if at + STREAM_SLICE < n else n
                self.at = end
                return bytes(piece[at:end])
            self.i += 1
            self.at = 0
        return None

    def done(self) -> bool:
        return self.i >= len(self.middle)


def pinned_reply(pinned: tuple[Any, Pinned], before: bytes, after: bytes,
                 span: tuple[int, int] | None = None) -> PiecesReply:
    """GET's reply of a value pinned in the store (Node.pin_value): `before`, the value
    (with `span`, its bytes lo to hi) and `after`; the reply releases the pin."""
    view = pinned[0] if span is None else memoryview(pinned[0])[span[0]:span[1]]
    return PiecesReply([before, view, after], [pinned[1]])


class ChainReply:
    """EXEC's reply over loop turns: its head, then each command's reply, the whole
    ones (bytes) joined into slices of STREAM_SLICE bytes at most, each streamed one (a
    GET of a large value pinned in the store, a collection's long reply) as it writes
    itself. A turn writes STREAM_TURN bytes at most, and of a streamed reply only its
    own `turn`'s worth (a collection's reply: one slice of rows): the chain ends each
    turn itself, with an empty slice, as the connection's budget would end a single
    streamed reply's. Four million-element reads in one transaction were encoded ~13
    slices a turn (4 MB), and a transaction of many whole replies was joined in one."""

    __slots__ = ("before", "after", "items", "i", "opened", "spent", "total")
    turn = 1 << 62  # (the connection's budget never ends a turn: the chain does)

    def __init__(self, head: bytes, replies: list[Any]) -> None:
        self.total = len(head) + sum(len(r) if type(r) is bytes else r.size()
                                     for r in replies)
        self.before = head
        self.after = b""
        self.items: list[Any] = replies  # bytes and Streamed, in order
        self.i = 0  # the reply being written
        self.opened = False  # its `before` is written (a streamed one's)
        self.spent = 0  # this turn's cost so far

    def alive(self) -> bool:
        """(Not once released.)"""
        items = self.items
        return bool(items) and all(r.alive() for r in items[self.i:] if type(r) is not bytes)

    def release(self) -> None:
        """Let go of the streamed replies not written yet (those written were, as each
        ended)."""
        items, self.items = self.items[self.i:], []
        for r in items:
            if type(r) is not bytes:
                r.release()

    def size(self) -> int:
        return self.total

    def next_slice(self) -> bytes | None:
        if self.spent >= STREAM_TURN:
            self.spent = 0
            return b""  # this turn's share is written: the rest in the next ones
        items = self.items
        while self.i < len(items):
            item = items[self.i]
            if type(item) is bytes:
                return self._whole_ones()
            if not self.opened:
                self.opened = True
                if item.before:
                    self.spent += len(item.before)
                    return item.before  # type: ignore[no-any-return]
            chunk = item.next_slice()
            if chunk is not None:
                # its cost: its bytes against its own turn (a collection reply's slice
                # spends the chain's whole turn); an empty one ended the turn
                self.spent = len(chunk) * STREAM_TURN // item.turn + self.spent if chunk else 0
                return chunk  # type: ignore[no-any-return]
            self.i += 1  # (it is done)
            self.opened = False
            item.release()
            if item.after:
                return item.after  # type: ignore[no-any-return]
        return None

    def _whole_ones(self) -> bytes:
        """The next whole replies, joined up to STREAM_SLICE bytes (one at least)."""
        items = self.items
        i, n = self.i, len(items)
        run = [items[i]]
        size = len(run[0])
        i += 1
        while i < n and type(items[i]) is bytes and size + len(items[i]) <= STREAM_SLICE:
            run.append(items[i])
            size += len(items[i])
            i += 1
        self.i = i
        self.spent += size
        return run[0] if len(run) == 1 else b"".join(run)

    def done(self) -> bool:
        return self.i >= len(self.items)

    def whole(self) -> bytes:
        """The reply at once (the client cannot take it over turns any more)."""
        out = [self.before]
        while (chunk := self.next_slice()) is not None:
            out.append(chunk)
        self.release()
        return b"".join(out)


def gather(reply: Streamed, later: Callable[[Callable[[Any], None]], None],
           done: Callable[[Any], None], parts: bool = False) -> None:
    """Make `reply` whole over loop turns, as a connection would write it (its `turn`'s
    worth a turn, the first in the turn after this one), and hand it to `done`: a
    script's redis.call waits for it in the script's thread (or another node for a
    command it handed over). `later(fn)` calls `fn(anything)` in a later loop turn. The
    million rows of a SMEMBERS were encoded in one turn (whole()), 60-100 ms. With
    `parts`, `done` gets the list of slices as made, not joined: the script's thread
    joins them (a 100 MiB value joined here was one copy of it in one loop turn)."""
    if type(reply) is MadeReply:
        # Nothing to make (a script's reply, to the node that handed the script over):
        # copied a slice a turn and joined, a 100 MiB one took 50 ms of CPU in one turn.
        done(reply.data)
        return
    out = [reply.before]

    def turn() -> bool:
        if not reply.alive():  # the store closed under it (the node stops)
            reply.release()
            done(ERR_CLOSED)
            return True
        budget = reply.turn
        while budget > 0:
            chunk = reply.next_slice()
            if not chunk:
                break
            out.append(chunk)
            budget -= len(chunk)
        if not reply.done():
            return False
        out.append(reply.after)
        reply.release()
        done(out if parts else b"".join(out))
        return True

    later(InTurns(later, turn))


class InTurns:
    """`step()` (called with this as `later`'s callback, or directly) and, while it
    answers False (not finished), again in a later loop turn. An object handed to
    `later`, where a closure would hand itself on: a closure naming itself is a
    reference cycle, and what it holds waits for Python's cyclic collector, which in a
    node doing little else runs a full collection only every few dozen commands (a
    script's HGETALL of 200,000 fields left its 5 MB reply each time: +8 MB of RSS a
    call; a BITOP its result)."""

    __slots__ = ("later", "step")

    def __init__(self, later: Callable[[Callable[[Any], None]], None],
                 step: Callable[[], bool]) -> None:
        self.later = later
        self.step = step

    def __call__(self, _: Any = None) -> None:
        if not self.step():
            self.later(self)


class MadeReply(PiecesReply):
    """Bytes made already (a script's reply of a million elements) written STREAM_SLICE
    at a time, STREAM_TURN a turn, instead of at once; `gather` hands them on as they
    are."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        super().__init__([b"", memoryview(data), b""], [])
        self.data = data


def bytes_reply(data: bytes) -> MadeReply:
    return MadeReply(data)
