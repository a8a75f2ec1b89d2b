"""Coverage: which replica answers for each partition in a walk of the whole keyspace.

A cluster-wide walk (riak_core's coverage plan) reads every partition from ONE up
primary, so that each live key is reported exactly once: this node when it is a
primary of the partition (no message needed), else the first up primary of the
preference list. Replicas that did not answer in time are avoided on the retry.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .ring import Ring


def covering(ring: Ring, n: int, me: str, down: Collection[str], avoid: Collection[str],
             p: int) -> str | None:
    """The replica that answers for partition `p` (None when no primary is reachable)."""
    prefs = ring.preference_list(p, n)
    if me in prefs and me not in avoid:
        return me
    for x in prefs:
        if x not in down and x not in avoid:
            return x
    return None


def plan(ring: Ring, n: int, me: str, down: Collection[str], avoid: Collection[str],
         parts: Sequence[int]) -> tuple[dict[str, list[int]], int | None]:
    """The partitions each replica answers for, in the order given; with the first
    partition no primary can answer for (then the plan is incomplete), or None."""
    groups: dict[str, list[int]] = {}
    for p in parts:
        target = covering(ring, n, me, down, avoid, p)
        if target is None:
            return groups, p
        groups.setdefault(target, []).append(p)
    return groups, None
