"""List positions: dense, unique identifiers whose byte order is the list's order.

A list element's identity is its position: a sequence of levels `(int, dot)`, compared
level by level, a sequence before its extensions. Pushing at the head takes the first
element's first integer minus one, at the tail the last's plus one; inserting between
two neighbours extends the left one by a level that sorts before the right one. So any
two positions have room between them, positions never move, and concurrent inserts at
the same place differ by their dot (the event that made them): every replica orders
them the same way, with no coordination (a sequence CRDT in the family of Logoot and
LSEQ). Head and tail pushes keep positions one level deep however long the list grows.

Positions are encoded as bytes whose lexicographic order is the positions' order, so a
storage engine keeps a list's elements sorted by position in its key order, and in
memory a sorted list of byte strings is the list. Each level is self-delimiting: an
order-preserving integer (a type byte for sign and length, then big-endian magnitude;
negatives in one's complement), the dot's actor with its length, and its counter.
"""

from __future__ import annotations

from collections.abc import Iterator

Dot = tuple[bytes, int]
Level = tuple[int, bytes, int]  # (position integer, actor, counter)

_ZERO = 0x14  # type byte of integer 0; 0x15..0x1C positive, 0x0C..0x13 negative


def _enc_int(x: int) -> bytes:
    if x == 0:
        return b"\x14"
    if x > 0:
        body = x.to_bytes((x.bit_length() + 7) // 8, "big")
        if len(body) > 8:
            raise ValueError("list position out of range")
        return bytes((_ZERO + len(body),)) + body
    n = -x
    size = (n.bit_length() + 7) // 8
    if size > 8:
        raise ValueError("list position out of range")
    body = ((1 << (8 * size)) - 1 - n).to_bytes(size, "big")
    return bytes((_ZERO - size,)) + body


def _dec_int(data: bytes, i: int) -> tuple[int, int]:
    code = data[i]
    if code == _ZERO:
        return 0, i + 1
    if code > _ZERO:
        size = code - _ZERO
        return int.from_bytes(data[i + 1 : i + 1 + size], "big"), i + 1 + size
    size = _ZERO - code
    raw = int.from_bytes(data[i + 1 : i + 1 + size], "big")
    return -((1 << (8 * size)) - 1 - raw), i + 1 + size


def encode_level(x: int, dot: Dot) -> bytes:
    actor, counter = dot
    if len(actor) > 255:
        raise ValueError("actor id too long")
    return b"".join((_enc_int(x), bytes((len(actor),)), actor, counter.to_bytes(8, "big")))


def levels(pos: bytes) -> Iterator[Level]:
    """The levels of an encoded position."""
    i = 0
    end = len(pos)
    while i < end:
        x, i = _dec_int(pos, i)
        size = pos[i]
        actor = pos[i + 1 : i + 1 + size]
        i += 1 + size
        counter = int.from_bytes(pos[i : i + 8], "big")
        i += 8
        yield (x, actor, counter)


def _first_int(pos: bytes) -> int:
    return _dec_int(pos, 0)[0]


def first(dot: Dot) -> bytes:
    """The position of the only element of an empty list."""
    return encode_level(0, dot)


def before(head: bytes, dot: Dot) -> bytes:
    """A position before `head` (the current first element)."""
    return encode_level(_first_int(head) - 1, dot)


def after(tail: bytes, dot: Dot) -> bytes:
    """A position after `tail` (the current last element)."""
    return encode_level(_first_int(tail) + 1, dot)


def appended(tail: bytes | None, actor: bytes, n0: int, count: int) -> list[bytes]:
    """The positions of `count` items pushed one after the other after `tail` (None: into
    an empty list), the i-th with the dot (actor, n0 + i): as `after` (or `first`)
    gives them one at a time."""
    x = 0 if tail is None else _first_int(tail) + 1
    return [encode_level(x + i, (actor, n0 + i)) for i in range(count)]


def _split_levels(pos: bytes) -> list[bytes]:
    """The encoded levels of a position, each as its own bytes."""
    out: list[bytes] = []
    i = 0
    end = len(pos)
    while i < end:
        start = i
        _, i = _dec_int(pos, i)
        i += 1 + pos[i] + 8
        out.append(pos[start:i])
    return out


def between(left: bytes, right: bytes | None, dot: Dot) -> bytes:
    """A position after `left` and before `right` (None: `left` is the last element).

    At the first level where they differ, an integer strictly between theirs gives a
    position no deeper than that level; otherwise the new position keeps `left`'s
    prefix through that level and takes the next integer after `left`'s level below
    it (or, when `right` extends `left`, one before `right`'s next level). So inserting
    again and again next to the same item keeps positions shallow."""
    if right is None:
        return after(left, dot)
    ls = _split_levels(left)
    rs = _split_levels(right)
    i = 0
    while i < len(ls) and i < len(rs) and ls[i] == rs[i]:
        i += 1
    prefix = b"".join(ls[:i])
    if i == len(ls):  # right extends left: go before right's next level
        nxt = _dec_int(rs[i], 0)[0]
        return prefix + encode_level(nxt - 1, dot)
    xl = _dec_int(ls[i], 0)[0]
    xr = _dec_int(rs[i], 0)[0]
    if xr - xl >= 2:
        return prefix + encode_level(xl + 1, dot)
    # No integer between them at this level: stay under left's level i.
    below = prefix + ls[i]
    if i + 1 == len(ls):
        return below + encode_level(0, dot)
    return below + encode_level(_dec_int(ls[i + 1], 0)[0] + 1, dot)


def between_before(left: bytes | None, right: bytes, dot: Dot) -> bytes:
    """A position before `right` and after `left` (None: `right` is the first)."""
    if left is None:
        return before(right, dot)
    return between(left, right, dot)
