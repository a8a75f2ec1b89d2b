"""Requests in flight: kept by request id in the order they started, so in deadline order.

Every mechanism that waits for answers keeps its own `{reqid: op}` dict; ops carry a
`deadline` (the node's `now` at the start plus the request timeout, so deadlines grow
with insertion order) and the node's tick asks each mechanism for its overdue ones.
Reads, writes and forwards moving a large value also carry `extra`, the time its size
adds (Node.allowance): `overdue_sized` finds theirs. Time the node itself could not
run (its loop busy past a tick) is given back to every op: `postpone`.
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


def overdue_sized(pending: dict[int, Any], now: int) -> list[Any]:
    """`overdue` for ops whose `deadline + extra` is when they time out: the walk stops
    at the first op whose `deadline` (in insertion order) has not passed, and passes
    over the large ones given more time."""
    late = []
    for op in pending.values():
        deadline = op.deadline
        if deadline > now:
            break
        if deadline + op.extra <= now:
            late.append(op)
    return late


def postpone(pending: dict[int, Any], ms: int) -> None:
    """Move every deadline of `pending` `ms` later. The order stays deadline order: an
    op started after the time given back started at least `ms` after the others."""
    for op in pending.values():
        op.deadline += ms
