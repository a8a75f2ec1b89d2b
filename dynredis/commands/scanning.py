"""HSCAN, SSCAN and ZSCAN: cursors over one collection's elements.

A collection of up to SMALL elements comes back whole with cursor 0, as Redis returns
its small (listpack) encodings. A larger one is walked in the order of a 64-bit hash of
each element (collstore.scan_entry, an order the key's state keeps once a scan asked
for it): the cursor is the hash to go on from, so an element present for the whole
walk is returned exactly once (elements sharing a hash are never split between calls),
whatever is added or removed meanwhile, on whichever node each call runs.

COUNT is a hint, in Redis as here: a call walks at most MOST elements whatever COUNT
asks, and answers a cursor to go on from (a client walks to cursor 0 anyway). Redis
walks all of them at once; SSCAN k 0 COUNT 1000000000 of a million members, MATCH or
not, held a node's loop ~0.7 s of CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.collview import KeyView
from ..resp import encode as resp
from .glob import matcher
from .table import ERR_NOT_INT, ERR_SYNTAX, parse_int

SMALL = 128
MOST = 16_384  # elements one call walks at most (module docstring)
ERR_CURSOR = resp.error("ERR invalid cursor")
# The reply to a scan of a missing key: the last cursor, no elements.
EMPTY_SCAN = resp.array([resp.bulk(b"0"), resp.EMPTY_ARRAY])


@dataclass
class ScanArgs:
    cursor: int
    pattern: bytes | None
    count: int


class scan_elements:  # noqa: N801 (a namespace of two functions)
    @staticmethod
    def parse(args: list[bytes]) -> ScanArgs | bytes:
        """Cursor, MATCH and COUNT of `XSCAN key cursor [MATCH p] [COUNT n]`."""
        raw = args[2]
        if not raw.isdigit() or len(raw) > 20 or int(raw) >= 2**64:
            return ERR_CURSOR
        out = ScanArgs(int(raw), None, 10)
        i = 3
        while i < len(args):
            opt = args[i].upper()
            if i + 1 >= len(args):
                return ERR_SYNTAX
            if opt == b"MATCH":
                out.pattern = args[i + 1]
            elif opt == b"COUNT":
                n = parse_int(args[i + 1])
                if n is None:
                    return ERR_NOT_INT
                if n < 1:
                    return ERR_SYNTAX
                out.count = n
            else:
                return ERR_SYNTAX
            i += 2
        return out

    @staticmethod
    def page(scan: ScanArgs, v: KeyView, kind: bytes) -> tuple[int, list[bytes]] | None:
        """The next cursor and the elements of this call, or None for a small
        collection (the caller returns it whole, with cursor 0)."""
        if v.count(kind) <= SMALL:
            return None
        return v.scan(kind, scan.cursor, min(scan.count, MOST))

    @staticmethod
    def reply(scan: ScanArgs, cursor: int, items: list[tuple[bytes, bytes]],
              pairs: bool) -> bytes:
        """The reply for (element, value) items: [next cursor, [element, value, ...]]
        (just the elements unless `pairs`), those MATCH drops left out."""
        match = matcher(scan.pattern)  # None for `*`: every element, the empty one too
        chosen = items if match is None else [(e, v) for e, v in items if match(e)]
        flat: list[bytes] = []
        for e, v in chosen:
            flat.append(resp.bulk(e))
            if pairs:
                flat.append(resp.bulk(v))
        return resp.array([resp.bulk(b"%d" % cursor), resp.array(flat)])
