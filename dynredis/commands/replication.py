"""WAIT: how many replicas hold this connection's last write.

In Redis, WAIT counts replicas that acknowledged the master's stream up to the client's
last write. Here every key has its own N replicas, so WAIT asks the replicas of the key
this connection last wrote (the current preference list, fallbacks standing in for down
primaries included) whether they hold that write or a later version of it, and asks again
until `numreplicas` do or the timeout passes (0: no timeout, as in Redis).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..resp import encode as resp
from .table import ERR_NOT_INT, command, parse_int

ERR_TIMEOUT_NOT_INT = resp.error("ERR timeout is not an integer or out of range")
ERR_TIMEOUT_NEGATIVE = resp.error("ERR timeout is negative")
RETRY_S = 0.01  # pause between two rounds of asking while fewer than wanted hold it


@command("wait", 3, ("noscript",), 0, 0, 0, "generic",
         "Blocks until the replicas of the connection's last written key hold that write, "
         "or the timeout (ms) passes; returns how many hold it.", since="3.0.0")
def cmd_wait(c: Any, args: list[bytes]) -> bytes | None:
    wanted = parse_int(args[1])
    if wanted is None:
        return ERR_NOT_INT
    timeout_ms = parse_int(args[2])
    if timeout_ms is None:
        return ERR_TIMEOUT_NOT_INT
    if timeout_ms < 0:
        return ERR_TIMEOUT_NEGATIVE
    node = c.node
    if c.last_write is None:
        # Nothing written on this connection: every reachable replica "holds" it.
        return resp.integer(min(node.cfg.n, len(node.members - node.down)))
    key, written = c.last_write
    slot = c.defer_blocking()  # it ends at its own deadline, or never for timeout 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_ms / 1000 if timeout_ms else None
    enough = max(wanted, 1)
    state: dict[str, Any] = {"best": 0, "done": False, "op": None}

    def finish() -> None:
        if not state["done"]:
            state["done"] = True
            # A round still in flight at the deadline counts what it has heard so far.
            best = max(state["best"], state["op"].held)
            slot.set(resp.integer(best))

    def counted(held: int) -> None:
        if state["done"]:
            return
        state["best"] = max(state["best"], held)
        if held >= wanted or c.transport is None:
            finish()
            return
        if deadline is None or loop.time() + RETRY_S < deadline:
            loop.call_later(RETRY_S, ask)
        # else: the deadline timer answers

    def ask() -> None:
        if not state["done"]:
            c.server.set_now()
            state["op"] = node.held_by(key, written, counted, enough)
            c.server.pump()

    if deadline is not None:
        loop.call_at(deadline, finish)
    state["op"] = node.held_by(key, written, counted, enough)
    return None
