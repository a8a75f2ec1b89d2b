"""Requests in flight: kept by request id in the order they started, so in deadline order.

Every mechanism that waits for answers keeps its own `{reqid: op}` dict; ops carry a
`deadline` (the node's `now` at the start plus the request timeout, so deadlines grow
with insertion order) and the node's tick asks each mechanism for its overdue ones.
"""

from __future__ import annotations

from typing import Any


def overdue(pending: dict[int, Any], now: int) -> list[Any]:
    """The ops of `pending` whose deadline has passed, oldest first (left in place)."""
    late = []
    for op in pending.values():
        if op.deadline > now:
            break
        late.append(op)
    return late
