"""The client connection's own bookkeeping, driven in-process (no sockets)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dynredis.server.app import NodeOptions, NodeServer
from dynredis.server.client import STUCK_S, ClientConnection


class FakeTransport:
    def __init__(self) -> None:
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    def get_extra_info(self, name: str) -> None:
        return None

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_a_lost_reply_becomes_an_error_and_the_replies_behind_it_flow(tmp_path: Path) -> None:
    async def run() -> bytes:
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="memory",
                                     n=1, r=1, w=1))
        srv.loop = asyncio.get_running_loop()
        conn = ClientConnection(srv)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        lost = conn.defer()  # as if the callback meant to fill it had raised
        conn.data_received(b"*1\r\n$4\r\nPING\r\n")
        await asyncio.sleep(0)
        assert transport.sent == b""  # PONG waits behind the missing reply
        assert not conn.unstick(100.0)  # first sighting
        assert not conn.unstick(100.0 + STUCK_S / 2)
        assert conn.unstick(100.0 + STUCK_S)
        assert lost.data is not None
        await asyncio.sleep(0)
        blocking = conn.defer_blocking()  # WAIT 0 may wait forever: never given up on
        assert not conn.unstick(0.0) and not conn.unstick(10 * STUCK_S)
        assert blocking.data is None
        return transport.sent

    sent = asyncio.run(run())
    assert sent == b"-ERR internal error: the reply to this command was lost\r\n+PONG\r\n"
