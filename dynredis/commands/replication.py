"""WAIT: how many replicas hold this connection's last write.

In Redis, WAIT counts replicas that acknowledged the master's stream up to the client's
last write. Here every key has its own N replicas, so WAIT asks the replicas of the key
this connection last wrote (the current preference list, fallbacks standing in for down
primaries included) whether they hold that write or a later version of it, and asks again
until `numreplicas` do or the timeout passes (0: no timeout, as in Redis).
"""

from __future__ import annotations

from ..core.probes import HeldOp
from ..resp import encode as resp
from .context import Context, Retry
from .table import ERR_NOT_INT, command, parse_int

ERR_TIMEOUT_NOT_INT = resp.error("ERR timeout is not an integer or out of range")
ERR_TIMEOUT_NEGATIVE = resp.error("ERR timeout is negative")
RETRY_MS = 10  # pause between two rounds of asking while fewer than wanted hold it


class _Wait:
    """One WAIT: rounds of asking the key's replicas (Node.held_by) until `wanted` hold
    the write, the client is gone, or the deadline (the server's timer) answers with the
    best count seen."""

    __slots__ = ("c", "key", "written", "wanted", "slot", "best", "done", "op", "retry")

    def __init__(self, c: Context, wanted: int, timeout_ms: int) -> None:
        assert c.last_write is not None
        self.c = c
        self.key, self.written = c.last_write
        self.wanted = wanted
        self.slot = c.defer_blocking()  # it ends at its own deadline, or never for 0
        self.best = 0
        self.done = False
        self.op: HeldOp | None = None
        self.retry: Retry = c.retry_until(timeout_ms, RETRY_MS, self.ask, self.finish)

    def ask(self) -> None:
        if not self.done:
            self.op = self.c.node.held_by(self.key, self.written, self.counted,
                                          max(self.wanted, 1))

    def counted(self, held: int) -> None:
        if self.done:
            return
        self.best = max(self.best, held)
        if held >= self.wanted:
            self.finish()
        else:
            self.retry.again()  # (the deadline answers if it comes first)

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.retry.stop()
            # A round still in flight at the deadline counts what it has heard so far.
            held = self.op.held if self.op is not None else 0
            self.slot.set(resp.integer(max(self.best, held)))


@command("wait", 3, ("noscript",), 0, 0, 0, "generic",
         "Blocks until the replicas of the connection's last written key hold that write, "
         "or the timeout (ms) passes; returns how many hold it.", since="3.0.0")
def cmd_wait(c: Context, args: list[bytes]) -> bytes | None:
    wanted = parse_int(args[1])
    if wanted is None:
        return ERR_NOT_INT
    timeout_ms = parse_int(args[2])
    if timeout_ms is None:
        return ERR_TIMEOUT_NOT_INT
    if timeout_ms < 0:
        return ERR_TIMEOUT_NEGATIVE
    if c.last_write is None:
        # Nothing written on this connection: every reachable replica "holds" it.
        node = c.node
        return resp.integer(min(node.cfg.n, len(node.members - node.down)))
    _Wait(c, wanted, timeout_ms).ask()
    return None


# ROLE of a Redis master at replication offset 0 with no replica.
ROLE_MASTER = b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"


@command("role", 1, ("noscript", "loading", "stale", "fast"), group="server", since="2.8.12",
         summary="Returns the replication role.")
def cmd_role(c: Context, args: list[bytes]) -> bytes:
    """What a Redis master with no replica answers, as INFO replication says: every
    node takes writes for the keys it coordinates, and its replicas are the keys'
    others, not a stream of this node's (clients that ask ROLE to find a writable
    node find one in every node)."""
    return ROLE_MASTER
