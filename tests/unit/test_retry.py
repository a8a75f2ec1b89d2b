"""The server's timers for a command that waits (server/retry.py, WAIT's rounds)."""

from __future__ import annotations

import asyncio
from typing import Any

from dynredis.server.retry import RetryTimer


class Server:
    """What a RetryTimer needs of the server: its loop, and the event's start and end."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.events: list[str] = []

    def set_now(self) -> None:
        self.events.append("now")

    def pump(self) -> None:
        self.events.append("pump")


class Conn:
    transport: Any = object()


def timer(timeout_ms: int, every_ms: int = 1) -> tuple[RetryTimer, Server, Conn, list[str]]:
    srv, conn = Server(), Conn()
    calls: list[str] = []
    t = RetryTimer(srv, conn, timeout_ms, every_ms,  # type: ignore[arg-type]
                   lambda: calls.append("ask"), lambda: calls.append("expired"))
    return t, srv, conn, calls


def test_it_asks_again_only_when_told_and_each_call_is_an_event() -> None:
    async def run() -> None:
        t, srv, _, calls = timer(0)
        await asyncio.sleep(0.02)
        assert calls == []  # nothing until again()
        t.again()
        await asyncio.sleep(0.02)
        assert calls == ["ask"] and srv.events == ["now", "pump"]
        t.again()
        t.stop()
        await asyncio.sleep(0.02)
        assert calls == ["ask"]  # stopped before its pause ended

    asyncio.run(run())


def test_the_deadline_answers_once_and_ends_the_asking() -> None:
    async def run() -> None:
        t, srv, _, calls = timer(5, every_ms=1000)
        t.again()  # the pause would end after the deadline: the deadline answers
        await asyncio.sleep(0.05)
        assert calls == ["expired"] and srv.events == ["now", "pump"]
        t.stop()
        await asyncio.sleep(0.01)
        assert calls == ["expired"]

    asyncio.run(run())


def test_a_gone_client_stops_it() -> None:
    async def run() -> None:
        t, _, conn, calls = timer(20)
        conn.transport = None
        t.again()
        await asyncio.sleep(0.05)
        assert calls == []  # neither asked again nor answered: no one is left

    asyncio.run(run())
