"""Reading keys for the commands that work on string values (bitmaps, LCS, SUBSTR,
HyperLogLog): the type check every one of them goes through, and quorum reads of one
key (also TTL and PERSIST's) or of several in parallel.

`string_value` is the single place where such a command learns whether the key holds a
string. Strings (counters read as their decimal string) are the only type stored today;
when other types exist, their WRONGTYPE check goes there and every caller answers it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.clock import Clock
from ..core.obj import Sibling
from .common import Gather, err, first_error
from .context import Context, Slot
from .table import ERR_WRONGTYPE


def string_value(sib: Sibling | None) -> tuple[bytes | None, bytes | None]:
    """(the string a plain reader sees, or None for a missing key; None), or
    (None, the WRONGTYPE reply) for a key of another type."""
    if sib is None:
        return None, None
    data = sib[2]
    if type(data) is not bytes:
        return None, ERR_WRONGTYPE  # a collection's header
    return data, None


def read_key(c: Context, key: bytes, slot: Slot,
             then: Callable[[Clock | None], None], whole: bool = True) -> None:
    """Quorum-read `key`; `then(object)`, or the read's error as the reply in `slot`
    (`whole` False: `then` needs no large value, see Reads.get)."""

    def read(result: tuple[str | None, Any]) -> None:
        e, obj = result
        if e is not None:
            slot.set(err(e))
            return
        then(obj)

    c.node.get(key, read, c.r, whole)


def read_keys(c: Context, keys: list[bytes], slot: Slot,
              then: Callable[[list[Clock | None]], None], whole: bool = True) -> None:
    """Quorum-read every key at once; `then(objects)` in the order of `keys`, or the
    first read error as the reply in `slot` (`whole` as read_key's)."""
    node = c.node

    def finish(results: list[tuple[str | None, Any]]) -> None:
        e = first_error(results)
        if e is not None:
            slot.set(err(e))
            return
        then([obj for _, obj in results])

    g = Gather(len(keys), finish)
    for i, key in enumerate(keys):
        node.get(key, g.callback(i), c.r, whole)
