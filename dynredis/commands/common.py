"""Helpers shared by the data command families: quorum calls and fan-in of results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import clock as dvv
from ..core import obj as objmod
from ..core.clock import Clock
from ..resp import encode as resp


def err(text: str) -> bytes:
    return resp.error(text)


class Gather:
    """Collects the results of `n` parallel operations, then calls `finish(results)`."""

    __slots__ = ("results", "left", "finish")

    def __init__(self, n: int, finish: Callable[[list[Any]], None]) -> None:
        self.results: list[Any] = [None] * n
        self.left = n
        self.finish = finish

    def callback(self, index: int) -> Callable[[Any], None]:
        def store(result: Any) -> None:
            self.results[index] = result
            self.left -= 1
            if self.left == 0:
                self.finish(self.results)

        return store


def first_error(results: list[tuple[str | None, Any]]) -> str | None:
    for e, _ in results:
        if e is not None:
            return e
    return None


def context_of(obj: Clock | None) -> dvv.VV:
    return dvv.join(obj) if obj is not None else ()


def current(obj: Clock | None, now: int) -> objmod.Sibling | None:
    """The value a plain reader sees."""
    return objmod.read_value(obj, now)


def expiry_from(
    unit: bytes, raw: bytes, now: int
) -> tuple[int | None, bytes | None]:
    """Absolute expiry (ms) from an EX/PX/EXAT/PXAT option.

    Returns (ms, None), (None, error reply) for a non-integer, or (None, None) for an
    out-of-range time (the caller names its command in the error), as Redis does.
    """
    from .table import ERR_NOT_INT, parse_int

    n = parse_int(raw)
    if n is None:
        return None, ERR_NOT_INT
    u = unit.upper()
    if n <= 0:
        return None, None
    if u in (b"EX", b"EXAT"):
        if n > MAX_MS // 1000:
            return None, None
        n *= 1000
    if u in (b"EX", b"PX"):
        if n > MAX_MS - now:
            return None, None
        return now + n, None
    return n, None


MAX_MS = 2**63 - 1
