"""Hybrid logical clock: wall-clock milliseconds with a logical counter in the low bits.

Timestamps order last-writer-wins picks. They never go backwards on a node and move
past any timestamp the node has seen from a peer, so a write that causally follows
another always carries a larger timestamp even under clock skew.
"""

from typing import Final

LOGICAL_BITS: Final = 16


class HLC:
    """A hybrid logical clock fed with the current wall time by its owner."""

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def now(self, wall_ms: int) -> int:
        """A fresh timestamp, strictly greater than every one issued or observed."""
        candidate = wall_ms << LOGICAL_BITS
        last = self.last
        self.last = candidate if candidate > last else last + 1
        return self.last

    def observe(self, ts: int) -> None:
        """Move past a timestamp seen in a peer's version."""
        if ts > self.last:
            self.last = ts


def wall_ms(ts: int) -> int:
    """The wall-clock milliseconds part of an HLC timestamp."""
    return ts >> LOGICAL_BITS
