"""The timers of a command that waits (WAIT): its deadline and its pauses between rounds.

Commands never touch the event loop (commands/context.py): a command that must ask
again later, until a deadline, gets a `RetryTimer` from its connection
(`Context.retry_until`). Each call back into the command is an event of its own, as
the server runs every event: the node's clock set before, finished operations and
queued messages handled after (`NodeServer.pump`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import NodeServer
    from .client import ClientConnection


class RetryTimer:
    """`ask` again `every_ms` after each `again()`, `expired` at the deadline (none for a
    timeout of 0), until `stop()`; nothing more once the client is gone."""

    __slots__ = ("server", "conn", "every_s", "ask", "expired", "deadline", "handle",
                 "stopped")

    def __init__(self, server: NodeServer, conn: ClientConnection, timeout_ms: int,
                 every_ms: int, ask: Callable[[], None],
                 expired: Callable[[], None]) -> None:
        self.server = server
        self.conn = conn
        self.every_s = every_ms / 1000
        self.ask = ask
        self.expired = expired
        self.stopped = False
        loop = self._loop()
        self.deadline: float | None = None
        self.handle: asyncio.TimerHandle | None = None
        if timeout_ms:
            self.deadline = loop.time() + timeout_ms / 1000
            self.handle = loop.call_at(self.deadline, self._expire)

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self.server.loop
        assert loop is not None
        return loop

    def again(self) -> None:
        if self.stopped:
            return
        if self.conn.transport is None:
            self.stop()  # the client is gone: no one to answer
            return
        loop = self._loop()
        deadline = self.deadline
        if deadline is None or loop.time() + self.every_s < deadline:
            loop.call_later(self.every_s, self._ask)
        # else: the deadline answers

    def stop(self) -> None:
        self.stopped = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _ask(self) -> None:
        if self.stopped:
            return
        server = self.server
        server.set_now()
        self.ask()
        server.pump()

    def _expire(self) -> None:
        self.handle = None
        if self.stopped:
            return
        server = self.server
        server.set_now()
        self.expired()
        server.pump()
