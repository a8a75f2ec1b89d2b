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

from collections.abc import Sequence

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
    k = len(columns)
    n = len(columns[0]) if k else 0
    end = 1 + k * n
    parts: list[bytes] = [b""] * (end + 1)
    parts[0] = head
    for j, col in enumerate(columns):
        parts[1 + j:end:k] = col
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


def pairs(keys: Sequence[bytes], values: Sequence[bytes], proto: int,
          as_map: bool) -> bytes:
    """keys[i], values[i] pairs: a flat array in RESP2; in RESP3 a map (`as_map`, as
    HGETALL) or an array of two-element arrays (HRANDFIELD ... WITHVALUES)."""
    n = len(keys)
    kh, vh = heads(keys), heads(values)
    if proto < 3:
        return lines(b"*%d" % (2 * n), [kh, keys, vh, values])
    if as_map:
        return lines(b"%%%d" % n, [kh, keys, vh, values])
    return lines(b"*%d" % n, [[b"*2"] * n, kh, keys, vh, values])


def nullable_array(items: Sequence[bytes | None], nil: bytes) -> bytes:
    """An array of bulk strings where None is `nil` (a whole encoded reply, as
    resp.nil gives it): SORT ... GET of missing keys."""
    if None not in items:
        return array(items)  # type: ignore[arg-type]
    out = [b"*%d\r\n" % len(items)]
    for v in items:
        out.append(nil if v is None else b"$%d\r\n%b\r\n" % (len(v), v))
    return b"".join(out)
