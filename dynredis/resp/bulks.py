"""Replies of many elements (HGETALL, SMEMBERS, ZRANGE, LRANGE ... of a whole collection),
built by C loops instead of a Python step per element.

A reply is a sequence of lines, each ended by CRLF: the array's header, then per
element `$len` and the bytes (or a RESP3 double `,score`, a `*2` pair header). The
lines are laid out column by column into one list by slice assignment, each `$len`
taken from a table by length, and joined by CRLF. The join is made in slices of
JOIN_SLICE lines, then the slices joined: bytes.join allocates an 80-byte buffer record
per item, and one of 800,000 items (a 200,000-field HGETALL) cost more in fresh memory
than the copying (100 ms against 15 ms in slices); slices of 4,096 (a 320 KB record,
mapped and unmapped each time) cost a node 10 ms more CPU per HGETALL than of 1,024.

A node's CPU per HGETALL of 200,000 fields: 130-138 ms with a bulk formatted per field,
57 ms this way (most of it now passes over the elements: each a cache miss).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..core.quietlist import untrack

CRLF = b"\r\n"
_TABLE = 1024  # `$len` lines kept ready, for elements shorter than this
_HEADS = [b"$%d" % n for n in range(_TABLE)]
JOIN_SLICE = 1024


def heads(items: Sequence[bytes]) -> list[bytes]:
    """The `$len` line of each item (TypeError if one is not bytes-like: a counter
    field's int, which the caller turns into its decimal first)."""
    try:
        return [_HEADS[n] for n in map(len, items)]
    except IndexError:
        return [b"$%d" % len(x) for x in items]


def lines(head: bytes, columns: Sequence[Sequence[bytes]]) -> bytes:
    """`head`, then for each row the row's line of every column in turn, each line
    ended by CRLF (the columns are equally long)."""
    return _layout([head], columns)


def rows(columns: Sequence[Sequence[bytes]]) -> bytes:
    """`lines` without a head line."""
    return _layout([], columns)


def _layout(first: list[bytes], columns: Sequence[Sequence[bytes]]) -> bytes:
    k = len(columns)
    n = len(columns[0]) if k else 0
    start = len(first)
    end = start + k * n
    parts: list[bytes] = [b""] * (end + 1)
    parts[:start] = first
    for j, col in enumerate(columns):
        parts[start + j:end:k] = col
    return join(parts)


def join(parts: list[bytes]) -> bytes:
    """CRLF.join(parts), in slices (module docstring)."""
    if len(parts) <= JOIN_SLICE:
        return CRLF.join(parts)
    j = CRLF.join
    return j([j(parts[i:i + JOIN_SLICE]) for i in range(0, len(parts), JOIN_SLICE)])


def array(items: Sequence[bytes], head: bytes = b"*") -> bytes:
    """The items as an array of bulk strings (`head` b"~": a RESP3 set)."""
    return lines(head + b"%d" % len(items), [heads(items), items])


def nullable_array(items: Sequence[bytes | None], nil: bytes) -> bytes:
    """An array of bulk strings where None is `nil` (a whole encoded reply, as
    resp.nil gives it): SORT ... GET of missing keys."""
    out = [b"*%d\r\n" % len(items)]
    for v in items:
        out.append(nil if v is None else b"$%d\r\n%b\r\n" % (len(v), v))
    return b"".join(out)


# --- replies written over loop turns ----------------------------------------------------

STREAM_ROWS = 16_384  # rows encoded in one loop turn; a reply of more takes several
Columns = Callable[[int, int], Sequence[Sequence[bytes]]]


class Pin(Protocol):
    """Values of elements as of a command (core/viewpin.py ViewPin)."""

    def values(self, elements: list[bytes]) -> list[Any]: ...

    def release(self) -> None: ...


class SlicedReply:
    """A reply of `n` rows after its head line, encoded STREAM_ROWS rows a loop turn
    while the connection writes it (server/streamed.py), so that a reply of 200,000
    elements does not hold the node's loop for the whole of its encoding. `columns(lo,
    hi)` gives rows lo..hi-1 as `lines` takes them, from a snapshot the command took
    when it ran (lists of the elements' bytes, which nothing changes in place): the
    reply is the collection as it was then, whatever is written meanwhile, and the
    client's later replies follow it."""

    __slots__ = ("before", "after", "columns", "n", "at", "estimate", "on_release", "spent",
                 "per_turn")
    turn = 1  # bytes a turn: one slice, whatever its size

    def __init__(self, head: bytes, n: int, columns: Columns,
                 on_release: Callable[[], None] | None = None,
                 spent: Sequence[list[Any]] = (), per_turn: int = 0) -> None:
        self.before = head + CRLF
        self.after = b""
        self.columns: Columns | None = columns
        self.n = n
        self.at = 0
        # Rows a slice: STREAM_ROWS, fewer where a row costs more to make.
        self.per_turn = per_turn or STREAM_ROWS
        self.on_release = on_release  # lets go of what `columns` reads (a view's pin)
        # Lists of the rows, by row, that `columns` reads and nothing else holds: each
        # slice's rows are let go of once sent. Let go of at the end, a million
        # references (a cache miss each) held the turn that sent the last slice for
        # 20-40 ms (MULTI of four million-element reads). They hold atomic values only:
        # the cyclic collector is told not to walk them (each young pass over a few
        # such lists of a million walked them all: 40-160 ms in the turns it fell in).
        self.spent = spent
        for items in spent:
            untrack(items)
        sample = min(n, 64)
        self.estimate = len(self.before) + len(rows(columns(0, sample))) * n // max(sample, 1)

    def alive(self) -> bool:
        return True

    def release(self) -> None:
        self.columns = None
        done, self.on_release = self.on_release, None
        if done is not None:
            done()

    def size(self) -> int:
        """About the reply's size (from its first rows), for the client's accounts."""
        return self.estimate

    def next_slice(self) -> bytes | None:
        columns = self.columns
        lo = self.at
        if columns is None or lo >= self.n:
            return None
        hi = min(self.n, lo + self.per_turn)
        self.at = hi
        out = rows(columns(lo, hi))
        for items in self.spent:
            items[lo:hi] = _NONES[:hi - lo]
        return out

    def done(self) -> bool:
        return self.at >= self.n or self.columns is None

    def whole(self) -> bytes:
        """The reply at once (where it cannot be written over turns: EXEC, scripts,
        another node's forwarded command)."""
        columns = self.columns
        assert columns is not None and self.at == 0
        out = self.before + rows(columns(0, self.n))
        self.release()
        return out


_NONES: list[None] = [None] * STREAM_ROWS


def reply(head: bytes, n: int, columns: Columns,
          on_release: Callable[[], None] | None = None,
          spent: Sequence[list[Any]] = (), per_turn: int = 0
          ) -> bytes | SlicedReply:
    """`lines(head, columns(0, n))`, or, for more than `per_turn` rows (0: STREAM_ROWS),
    that reply to be encoded over loop turns, `per_turn` rows a turn (`on_release`
    called once it is sent or dropped; `spent`: lists only it holds, row i of the reply
    at their index i, whose rows are let go of as they are sent)."""
    if n <= (per_turn or STREAM_ROWS):
        out = lines(head, columns(0, n))
        if on_release is not None:
            on_release()
        return out
    return SlicedReply(head, n, columns, on_release, spent, per_turn)


def whole(value: object) -> object:
    """A command's result with a SlicedReply encoded at once."""
    return value.whole() if isinstance(value, SlicedReply) else value


def take(items: list[Any], index: Sequence[int] | None, lo: int, hi: int) -> list[bytes]:
    """Rows lo..hi-1: of `items`, or of items[index[i]] (random picks, gathered a
    slice at a time: gathering 200,000 of a hash's fields at random places cost a cache
    miss each, 120 ms in one turn)."""
    if index is not None:
        return list(map(items.__getitem__, index[lo:hi]))
    return items[lo:hi] if lo or hi < len(items) else items


def decimals(items: list[Any]) -> list[bytes]:
    """The items with ints (a hash's counter fields) as their decimals: one C pass when
    there are none (a slice at a time: 1,000,000 values checked at once held HGETALL's
    turn for ~40% of its snapshot)."""
    if int not in set(map(type, items)):
        return items
    return [b"%d" % x if type(x) is int else x for x in items]


def array_reply(items: list[Any], head: bytes = b"*", index: Sequence[int] | None = None,
                counters: bool = False, pin: Pin | None = None, owned: bool = False
                ) -> bytes | SlicedReply:
    """`array` of the items (or of items[i] for i in `index`), over loop turns when it
    is long (`owned`: nothing else holds `items`, a list of bytes, numbers or tuples of
    them, whose rows are then let go of as they are sent); `counters`: ints among them are sent as their decimals; `pin`: the
    items are elements whose values are sent, looked up a slice at a time (and the pin
    released once the reply is sent: core/viewpin.py)."""
    n = len(items) if index is None else len(index)

    def columns(lo: int, hi: int) -> list[list[bytes]]:
        part = take(items, index, lo, hi)
        if pin is not None:
            part = pin.values(part)
        if counters:
            part = decimals(part)
        return [heads(part), part]

    return reply(head + b"%d" % n, n, columns, None if pin is None else pin.release,
                 (items,) if owned and index is None else ())


def pairs_reply(keys: list[bytes], values: list[Any], proto: int, as_map: bool,
                index: Sequence[int] | None = None, counters: bool = False,
                owned: bool = False) -> bytes | SlicedReply:
    """keys[i], values[i] pairs (i in `index` if given): a flat array in RESP2; in
    RESP3 a map (`as_map`, as HGETALL) or an array of two-element arrays (HRANDFIELD
    ... WITHVALUES); over loop turns when they are many; `counters` and `owned` (both
    lists) as array_reply's."""
    n = len(keys) if index is None else len(index)

    def columns(lo: int, hi: int) -> list[list[bytes]]:
        k, v = take(keys, index, lo, hi), take(values, index, lo, hi)
        if counters:
            v = decimals(v)
        cols = [heads(k), k, heads(v), v]
        return [[b"*2"] * len(k), *cols] if proto >= 3 and not as_map else cols

    if proto < 3:
        head = b"*%d" % (2 * n)
    else:
        head = (b"%%%d" if as_map else b"*%d") % n
    return reply(head, n, columns, None, (keys, values) if owned and index is None else ())
