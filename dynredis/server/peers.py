"""Outbound links to peers: one TCP connection per peer, reconnecting with backoff.

A link that cannot connect, or drops, marks the peer down in the node (so requests
stop choosing it) and drops what was queued: the requests that needed it time out
or are answered by other replicas, as Dynamo expects of a lost message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from .wire import peer_hello

if TYPE_CHECKING:
    from .app import NodeServer

log = logging.getLogger("dynredis.peers")

MAX_QUEUED_BYTES = 64 << 20
RETRY_MIN = 0.1
RETRY_MAX = 1.0


class PeerLink(asyncio.Protocol):
    def __init__(self, server: NodeServer, name: str) -> None:
        self.server = server
        self.name = name
        host, _, port = name.rpartition(":")
        self.host = host
        self.port = int(port)
        self.transport: asyncio.Transport | None = None
        self.queued: list[bytes] = []
        self.queued_bytes = 0
        self.connecting = False
        self.retry_at = 0.0
        self.backoff = RETRY_MIN
        self.closed = False
        self.refusal = b""  # the peer's last refusal (an error reply), logged once
        self.refused = False  # the current connection was refused

    def send(self, data: bytes) -> None:
        t = self.transport
        if t is not None:
            t.write(data)
            return
        if self.queued_bytes + len(data) <= MAX_QUEUED_BYTES:
            self.queued.append(data)
            self.queued_bytes += len(data)
        self.ensure_connecting()

    def ensure_connecting(self) -> None:
        if self.transport is not None or self.connecting or self.closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.retry_at:
            self.queued.clear()
            self.queued_bytes = 0
            return
        self.connecting = True
        loop.create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self, self.host, self.port), timeout=1.0
            )
        except (TimeoutError, OSError) as exc:
            self.connecting = False
            self.retry_at = loop.time() + self.backoff
            self.backoff = min(self.backoff * 2, RETRY_MAX)
            self.queued.clear()
            self.queued_bytes = 0
            log.debug("peer %s unreachable: %s", self.name, exc)
            self.server.peer_status(self.name, False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connecting = False
        self.backoff = RETRY_MIN
        self.refused = False
        if self.closed:
            transport.close()
            return
        self.transport = t = cast(asyncio.Transport, transport)
        t.write(peer_hello(self.server.secret, self.server.name) + b"".join(self.queued))
        self.queued.clear()
        self.queued_bytes = 0
        log.info("connected to peer %s", self.name)
        self.server.peer_status(self.name, True)

    def data_received(self, data: bytes) -> None:
        # Peers never answer on this link: anything here is the peer refusing it (a
        # wrong cluster secret, another peer protocol). Said once, not at every retry.
        self.refused = True
        if data[:200] != self.refusal:
            self.refusal = data[:200]
            log.warning("peer %s refused the link: %r", self.name, self.refusal)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.connecting = False
        if not self.closed:
            log.info("lost peer %s", self.name)
            # A refusing peer is asked again at the slowest pace.
            wait = RETRY_MAX if self.refused else RETRY_MIN
            if not self.refused:
                self.refusal = b""
            self.retry_at = asyncio.get_running_loop().time() + wait
            self.server.peer_status(self.name, False)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
