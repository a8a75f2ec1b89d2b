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

from typing import Any, Protocol

from ..core.engine import Pinned

STREAM_SLICE = 1 << 20  # bytes copied from the store and written at a time
STREAM_TURN = 4 << 20  # bytes written in one loop turn at most


class Streamed(Protocol):
    """A reply the connection writes over loop turns, in its place among the client's
    replies: `before` with the replies ahead of it, `next_slice()` until it answers
    None (`turn` bytes a turn at most), then `after`. A PiecesReply, or a collection's
    reply encoded a slice at a time (resp/bulks.py SlicedReply)."""

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
    """EXEC's reply when some of its commands' replies are written over turns (a GET of
    a large value pinned in the store, a collection's long reply): the array's head and
    the other replies' bytes whole, each streamed reply as it writes itself. A
    transaction's GET of a 100 MiB value no longer reads it whole into one reply."""

    __slots__ = ("before", "after", "items", "i", "bodies", "total")
    turn = STREAM_TURN

    def __init__(self, head: bytes, replies: list[Any]) -> None:
        self.total = len(head) + sum(len(r) if type(r) is bytes else r.size()
                                     for r in replies)
        items: list[Any] = []  # bytes and Streamed in turn, bytes first and last
        run = [head]
        for r in replies:
            if type(r) is bytes:
                run.append(r)
                continue
            run.append(r.before)
            items.append(b"".join(run))
            items.append(r)
            run = [r.after]
        items.append(b"".join(run))
        self.before: bytes = items[0]
        self.after: bytes = items[-1]
        self.items = items[1:-1]
        self.bodies: list[Streamed] = self.items[0::2]
        self.i = 0

    def alive(self) -> bool:
        return all(s.alive() for s in self.bodies)

    def release(self) -> None:
        for s in self.bodies:
            s.release()
        self.items = []

    def size(self) -> int:
        return self.total

    def next_slice(self) -> bytes | None:
        items = self.items
        while self.i < len(items):
            item = items[self.i]
            if self.i % 2:  # bytes between two streamed replies
                self.i += 1
                if item:
                    return item  # type: ignore[no-any-return]
                continue
            chunk = item.next_slice()
            if chunk is not None:
                return chunk  # type: ignore[no-any-return]
            self.i += 1
        return None

    def done(self) -> bool:
        return self.i >= len(self.items)

    def whole(self) -> bytes:
        """The reply at once (the client cannot take it over turns any more)."""
        out = [self.before]
        while (chunk := self.next_slice()) is not None:
            out.append(chunk)
        out.append(self.after)
        self.release()
        return b"".join(out)
