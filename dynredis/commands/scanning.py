"""HSCAN, SSCAN and ZSCAN: cursors over one collection's elements.

A collection of up to SMALL elements comes back whole with cursor 0, as Redis returns
its small (listpack) encodings. A larger one is walked in the order of a 63-bit hash of
each element: the cursor is the hash to go on from, so an element present for the
whole walk is returned exactly once (elements sharing a hash are never split between
calls), whatever is added or removed meanwhile, on whichever node each call runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import blake2b

from ..resp import encode as resp
from .glob import matcher
from .table import ERR_NOT_INT, ERR_SYNTAX, parse_int

SMALL = 128
ERR_CURSOR = resp.error("ERR invalid cursor")
# The reply to a scan of a missing key: the last cursor, no elements.
EMPTY_SCAN = resp.array([resp.bulk(b"0"), resp.EMPTY_ARRAY])


@dataclass
class ScanArgs:
    cursor: int
    pattern: bytes | None
    count: int


def element_hash(element: bytes) -> int:
    return int.from_bytes(blake2b(element, digest_size=8).digest(), "big") >> 1 or 1


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
    def reply(scan: ScanArgs, items: list[tuple[bytes, bytes]], pairs: bool) -> bytes:
        """The reply for (element, value) items: [next cursor, [element, value, ...]]
        (just the elements unless `pairs`)."""
        if len(items) <= SMALL:
            chosen = items
            cursor = 0
        else:
            ordered = sorted((element_hash(e), e, v) for e, v in items)
            chosen = []
            cursor = 0
            for h, e, v in ordered:
                if h < scan.cursor:
                    continue
                if len(chosen) >= scan.count and h != element_hash(chosen[-1][0]):
                    cursor = h
                    break
                chosen.append((e, v))
        match = matcher(scan.pattern)  # None for `*`: every element, the empty one too
        if match is not None:
            chosen = [(e, v) for e, v in chosen if match(e)]
        flat: list[bytes] = []
        for e, v in chosen:
            flat.append(resp.bulk(e))
            if pairs:
                flat.append(resp.bulk(v))
        return resp.array([resp.bulk(b"%d" % cursor), resp.array(flat)])
