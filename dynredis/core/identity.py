"""Which clock identity (actor id) a starting node stamps its writes with.

A node must never reuse a dot, or a counter entry, that it may have issued before:
replicas that saw the old one would silently discard the new write (riak_kv#679,
"key amnesia"). So a node takes a fresh identity when its data directory is new, and
when it restarts after a crash in a durability mode that may have lost acknowledged
local writes (none, buffered). Only a clean shutdown, or fsync mode, keeps the old one.
"""

from __future__ import annotations


def choose_actor(stored: bytes | None, clean_shutdown: bool, durability: str,
                 fresh: bytes) -> bytes:
    """The actor to use: `stored` if it is safe to keep, else `fresh` (random bytes the
    caller drew, so this stays a pure function)."""
    if stored is None:
        return fresh
    if durability != "fsync" and not clean_shutdown:
        return fresh
    return stored
