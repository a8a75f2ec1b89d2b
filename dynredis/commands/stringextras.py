"""String commands beyond the everyday ones: LCS and SUBSTR (GETRANGE's old name)."""

from __future__ import annotations

from ..core.clock import Clock
from ..core.shape import Unread
from ..resp import encode as resp
from .common import current
from .context import Context
from .lcs import Lcs, too_big
from .stringreads import read_keys, string_value
from .strings import getrange_read
from .table import ERR_NOT_INT, ERR_SYNTAX, command, parse_int

ERR_LCS_TYPES = resp.error("ERR The specified keys must contain string values")
ERR_LCS_BOTH = resp.error("ERR If you want both the length and indexes, please just use IDX.")
ERR_LCS_MEMORY = resp.error(
    "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")


@command("substr", 4, ("readonly",), 1, 1, 1, "string",
         "Returns a substring from a string value.")
def cmd_substr(c: Context, args: list[bytes]) -> bytes | None:
    start, end = parse_int(args[2]), parse_int(args[3])
    if start is None or end is None:
        return ERR_NOT_INT
    # GETRANGE's read: of a large value, only the range (Redis runs GETRANGE for it too).
    getrange_read(c, c.defer(), args[1], start, end, False)
    return None


class LcsOptions:
    __slots__ = ("idx", "len", "withmatchlen", "minmatchlen")

    def __init__(self) -> None:
        self.idx = False
        self.len = False
        self.withmatchlen = False
        self.minmatchlen = 0


def parse_lcs_options(args: list[bytes]) -> tuple[LcsOptions, bytes | None]:
    """LCS's options after the two keys (read after the keys' types are checked)."""
    opts = LcsOptions()
    j = 0
    while j < len(args):
        opt = args[j].upper()
        if opt == b"IDX":
            opts.idx = True
        elif opt == b"LEN":
            opts.len = True
        elif opt == b"WITHMATCHLEN":
            opts.withmatchlen = True
        elif opt == b"MINMATCHLEN" and j + 1 < len(args):
            n = parse_int(args[j + 1])
            if n is None:
                return opts, ERR_NOT_INT
            opts.minmatchlen = max(n, 0)
            j += 1
        else:
            return opts, ERR_SYNTAX
        j += 1
    if opts.idx and opts.len:
        return opts, ERR_LCS_BOTH
    return opts, None


def lcs_reply(a: bytes, b: bytes, opts: LcsOptions, proto: int) -> bytes:
    if too_big(len(a), len(b)):
        return ERR_LCS_MEMORY
    table = Lcs(a, b)
    if opts.len and not opts.idx:
        return resp.integer(table.length())
    string, ranges = table.walk(not opts.idx)
    if not opts.idx:
        return resp.bulk(string)
    matches = []
    for a_start, a_end, b_start, b_end in ranges:
        size = a_end - a_start + 1
        if opts.minmatchlen and size < opts.minmatchlen:
            continue
        item = [resp.array([resp.integer(a_start), resp.integer(a_end)]),
                resp.array([resp.integer(b_start), resp.integer(b_end)])]
        if opts.withmatchlen:
            item.append(resp.integer(size))
        matches.append(resp.array(item))
    body = (resp.bulk(b"matches") + resp.array(matches)
            + resp.bulk(b"len") + resp.integer(table.length()))
    return (b"%2\r\n" if proto >= 3 else b"*4\r\n") + body


@command("lcs", -3, ("readonly",), 1, 2, 1, "string",
         "Finds the longest common substring.", since="7.0.0")
def cmd_lcs(c: Context, args: list[bytes]) -> None:
    node = c.node
    slot = c.defer()

    def sized(objs: list[Clock | None]) -> None:
        """The checks that need only the strings' lengths (a large value is left in
        the store): types, options, Redis' size bound, and an empty string (nothing in
        common); then the strings, read whole if one was left in the store."""
        sizes: list[int] = []
        unread = False
        for obj in objs:
            sib = current(obj, node.now)
            if sib is not None and type(sib[2]) is Unread:
                sizes.append(sib[2].size)
                unread = True
                continue
            data, wrong = string_value(sib)
            if wrong is not None:
                slot.set(ERR_LCS_TYPES)
                return
            sizes.append(len(data or b""))
        opts, problem = parse_lcs_options(args[3:])
        if problem is not None:
            slot.set(problem)
        elif too_big(sizes[0], sizes[1]):
            slot.set(ERR_LCS_MEMORY)
        elif 0 in sizes:
            slot.set(lcs_reply(b"", b"", opts, c.proto))
        elif unread:
            read_keys(c, args[1:3], slot, computed)
        else:
            computed(objs)

    def computed(objs: list[Clock | None]) -> None:
        values: list[bytes] = []
        for obj in objs:
            data, wrong = string_value(current(obj, node.now))
            if wrong is not None:
                slot.set(ERR_LCS_TYPES)
                return
            values.append(data or b"")
        opts, problem = parse_lcs_options(args[3:])
        if problem is not None:
            slot.set(problem)
            return
        slot.set(lcs_reply(values[0], values[1], opts, c.proto))

    read_keys(c, args[1:3], slot, sized, whole=False)
