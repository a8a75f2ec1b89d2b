"""The arguments of the commands that pop from the first of several keys: LMPOP, BLMPOP,
ZMPOP and BZMPOP read `numkeys key [key ...] <where> [COUNT count]` alike, with the
same errors; only the words for <where> differ."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..resp import encode as resp
from .table import ERR_SYNTAX, parse_int

ERR_NUMKEYS = resp.error("ERR numkeys should be greater than 0")
ERR_COUNT = resp.error("ERR count should be greater than 0")

Where = TypeVar("Where")


def parse_mpop_args(args: list[bytes], numkeys_at: int,
                    where_of: Callable[[bytes], Where | None]
                    ) -> tuple[list[bytes], Where, int] | bytes:
    """(keys, where, count) from `args[numkeys_at]` on, `where_of` reading the <where>
    word (None: not one), or the error Redis gives."""
    numkeys = parse_int(args[numkeys_at])
    if numkeys is None or numkeys < 1:
        return ERR_NUMKEYS
    where_at = numkeys_at + numkeys + 1
    if where_at >= len(args):
        return ERR_SYNTAX
    where = where_of(args[where_at])
    if where is None:
        return ERR_SYNTAX
    count = -1
    j = where_at + 1
    while j < len(args):
        if count == -1 and args[j].upper() == b"COUNT" and j + 1 < len(args):
            j += 1
            n = parse_int(args[j])
            if n is None or n < 1:
                return ERR_COUNT
            count = n
        else:
            return ERR_SYNTAX
        j += 1
    return list(args[numkeys_at + 1:where_at]), where, max(count, 1)
