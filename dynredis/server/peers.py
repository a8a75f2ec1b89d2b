"""Peer links, both directions: this node's link to each peer (`PeerLink`, outbound)
and each peer's link to this node (`PeerInbound`).

Messages flow one way on a link: a node sends on its own links and reads on its
peers' links to it (answers go back on the answerer's own link). Both kinds are
reached only through the secret's challenge-response (peerauth.py).

Outbound: one TCP (or TLS) connection per peer, reconnecting with backoff. A link
carries messages only once both sides proved the cluster secret; until then, as while
it connects, messages wait in a bounded queue. A link that cannot connect, is refused,
or drops, marks the peer down in the node (so requests stop choosing it) and drops what
was queued: the requests that needed it time out or are answered by other replicas, as
Dynamo expects of a lost message.

Small frames (heartbeats, acknowledgements, requests, small values) go out at once.
Bulk batches (wire.BULK_FROM bytes or more: large values) wait in their own queue and
go out a part at a time, only while the socket's buffer is nearly empty, so a small
frame is never queued behind more than a couple of parts: a 100 MB value in flight
does not delay a heartbeat by the time 100 MB take to cross (the peer would be marked
down) nor an acknowledgement (its write would time out). Messages may thus overtake a
bulk batch; Dynamo's messages are made to be reordered (the simulator reorders them).

Inbound: peers dial the client port, so a peer's link starts as a client connection
(server/client.py) whose first words are the DYN.PEER hello; once the dialer proved
the secret, the server hands its transport to a `PeerInbound` (`transport.set_protocol`)
with whatever input followed the proof. From then on its bytes are peer frames
(wire.py, a bulk batch in parts), each message handed to the node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, cast

import hiredis

from .peerauth import Dialer
from .wire import (
    BULK_FROM,
    PART,
    PART_END,
    PIECE_FROM,
    Gather,
    frame,
    frame_head,
    frame_reader,
    part_head,
    unframe,
)

if TYPE_CHECKING:
    from .app import NodeServer

log = logging.getLogger("dynredis.peers")

MAX_QUEUED_BYTES = 64 << 20
RETRY_MIN = 0.1
RETRY_MAX = 1.0
# A peer link's frames handled per loop turn at most (ns): at 20 ms, a replica applying
# a big removal's parts (each ~10 ms) did 20-30 ms of them a turn, then committed and
# folded them, and a PING waited through several such turns (150-280 ms, three nodes on
# two cores); at 8 ms, under 90 ms (bench/hostile.py).
READ_BUDGET_NS = 8_000_000
# The clock the budget is read from, as a Final name: compiled code calls it from a C
# global, not through a lookup of `time` and of its attribute, twice a frame.
_monotonic_ns: Final = time.monotonic_ns
HANDSHAKE_S = 2.0  # connect (TCP and TLS) and the secret's challenge-response, each
# A link's transport pauses its writing (pause_writing) past this many bytes unsent, and
# resumes it under LOW_WATER: while not paused it holds at most HIGH_WATER.
HIGH_WATER: Final = 2 * PART
LOW_WATER: Final = PART


def _to_itself(transport: asyncio.BaseTransport) -> bool:
    """A dial of a local port nobody listens on (a peer down, on this host) can connect
    to itself: the kernel may pick that very port as the dial's own when it lies in the
    ephemeral range, and the peer, restarted, then cannot bind it (a test's node failed
    with "address already in use")."""
    own = transport.get_extra_info("sockname")
    return own is not None and own == transport.get_extra_info("peername")


class PeerLink(asyncio.Protocol):
    def __init__(self, server: NodeServer, name: str) -> None:
        self.server = server
        self.name = name
        host, _, port = name.rpartition(":")
        self.host = host
        self.port = int(port)
        self.transport: asyncio.Transport | None = None
        self.queued: list[bytes] = []  # small frames waiting for the link
        self.queued_bytes = 0
        # Bulk batches waiting: their pieces, the first one `sent` bytes in; each
        # batch's size in `ends`, the first one `batch_sent` bytes in; `bulk_bytes`
        # not yet written in all.
        self.bulk: deque[bytes] = deque()
        self.sent = 0
        self.ends: deque[int] = deque()
        self.batch_sent = 0
        self.bulk_bytes = 0
        self.writing_paused = False
        self.connecting = False
        self.retry_at = 0.0
        self.backoff = RETRY_MIN
        self.closed = False
        self.refusal = b""  # the peer's last refusal (an error reply), logged once
        self.refused = False  # the current connection was refused
        # The handshake in progress: its transport, state and reply parser.
        self.dialer: Dialer | None = None
        self.handshaking: asyncio.Transport | None = None
        self.reader: Any = None
        self.timer: asyncio.TimerHandle | None = None

    def send(self, body: bytes | list[bytes]) -> None:
        """Send a batch's body (wire.encode, or wire.encode_pieces' pieces): at once if
        small, else in parts. Small pieces go as one frame, written as they are."""
        if type(body) is list:
            size = 0
            for piece in body:
                size += len(piece)
            if size >= BULK_FROM:
                self._queue_bulk(body)
                return
            if self.transport is not None:
                self.transport.writelines([frame_head(size), *body, PART_END])
                return
            body = b"".join(body)
        assert isinstance(body, bytes)
        if len(body) >= BULK_FROM:
            self._queue_bulk([body])
            return
        t = self.transport
        if t is not None and len(body) >= PIECE_FROM:
            # Written as it is, framed around: a copy into a frame of 128 KB or more was
            # fresh memory each time (glibc maps such blocks anew: limits.py).
            t.writelines((frame_head(len(body)), body, PART_END))
            return
        self.send_frame(frame(body))

    def send_frame(self, data: bytes) -> None:
        """Send a small batch's whole frame (wire.small_frame, or a body framed): at once,
        or queued while the link connects."""
        t = self.transport
        if t is not None:
            t.write(data)
            return
        if self.queued_bytes + self.bulk_bytes + len(data) <= MAX_QUEUED_BYTES:
            self.queued.append(data)
            self.queued_bytes += len(data)
        self.ensure_connecting()

    def _queue_bulk(self, pieces: list[bytes]) -> None:
        """Queue a bulk batch, its pieces as they are (a piece is never joined to another
        nor copied: it goes out a part at a time, as a view of it)."""
        bulk = self.bulk
        size = 0
        for piece in pieces:
            if piece:
                bulk.append(piece)
                size += len(piece)
        self.ends.append(size)
        self.bulk_bytes += size
        if self.transport is not None:
            self.pump()
        elif self.bulk_bytes + self.queued_bytes > MAX_QUEUED_BYTES:
            self._drop_bulk()
            self.ensure_connecting()
        else:
            self.ensure_connecting()

    def pump(self) -> None:
        """Write parts of the bulk batches until the transport holds two parts unsent
        (asyncio's pause_writing stops it, resume_writing starts it again). A part is a
        slice of one piece; the last part of a batch's last piece says so."""
        t = self.transport
        bulk = self.bulk
        while bulk and t is not None and not self.writing_paused:
            piece = bulk[0]
            start = self.sent
            end = min(start + PART, len(piece))
            self.batch_sent += end - start
            more = end < len(piece) or self.batch_sent < self.ends[0]
            t.writelines((part_head(end - start, more), memoryview(piece)[start:end],
                          PART_END))
            self.bulk_bytes -= end - start
            if end < len(piece):
                self.sent = end
            else:
                bulk.popleft()
                self.sent = 0
                if not more:
                    self.ends.popleft()
                    self.batch_sent = 0

    def unsent(self) -> int:
        """Bytes given to the link and not yet sent."""
        t = self.transport
        return (t.get_write_buffer_size() if t is not None else 0) + self.bulk_bytes

    def waiting(self) -> int:
        """Bulk bytes waiting behind the batch being written (what the output limit
        counts beside the transport's buffer): one batch in flight, a value of up to
        proto-max-bulk-len, is never over it, or no value over the `slave` class's 256 MB
        could be replicated (a 27-byte SETRANGE k 536870911 x cut both links and failed)."""
        ends = self.ends
        return self.bulk_bytes - (ends[0] - self.batch_sent) if ends else 0

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.pump()

    def _drop_bulk(self) -> None:
        self.bulk.clear()
        self.ends.clear()
        self.bulk_bytes = 0
        self.sent = 0
        self.batch_sent = 0

    def ensure_connecting(self) -> None:
        if self.transport is not None or self.connecting or self.closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.retry_at:
            self.queued.clear()
            self.queued_bytes = 0
            self._drop_bulk()
            return
        self.connecting = True
        loop.create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        ctx = self.server.peer_tls
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self, self.host, self.port, ssl=ctx),
                timeout=HANDSHAKE_S)
        except (TimeoutError, OSError) as exc:
            self.connecting = False
            self.retry_at = loop.time() + self.backoff
            self.backoff = min(self.backoff * 2, RETRY_MAX)
            self.queued.clear()
            self.queued_bytes = 0
            self._drop_bulk()
            log.debug("peer %s unreachable: %s", self.name, exc)
            self.server.peer_status(self.name, False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.closed or _to_itself(transport):
            transport.close()
            return
        self.backoff = RETRY_MIN
        self.refused = False
        t = cast(asyncio.Transport, transport)
        # asyncio's pause_writing past 2 parts unsent, resume_writing under one: bulk
        # parts are written only as the socket drains (see pump).
        t.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        self.handshaking = t
        self.dialer = Dialer(self.server.secret.encode(), self.server.name, self.name,
                             self._alias_ok)
        self.reader = hiredis.Reader()
        t.write(self.dialer.hello())
        self.timer = asyncio.get_running_loop().call_later(HANDSHAKE_S, self._too_slow)

    def _alias_ok(self, their_name: bytes) -> bool:
        """A challenge under another name than the one dialled is taken only on a dial
        of a seed address that names no member, from a node that is not one yet (a
        seed given by host name, which its node calls by its address)."""
        members = self.server.node.members
        return self.name not in members and their_name.decode(errors="replace") not in members

    def _too_slow(self) -> None:
        self.timer = None
        if self.handshaking is not None:
            self._refused(b"no answer to the peer hello in time")

    def data_received(self, data: bytes) -> None:
        if self.handshaking is None:
            # Peers never answer on a link: anything here is the peer refusing it
            # after the handshake.
            self._refused(data[:200])
            return
        self.reader.feed(data)
        try:
            reply = self.reader.gets()
        except hiredis.ProtocolError:
            self._refused(data[:200])
            return
        if reply is False:
            return
        if isinstance(reply, hiredis.ReplyError):
            self._refused(str(reply).encode())
            return
        dialer = self.dialer
        proof = dialer.answer(reply) if dialer is not None else None
        if proof is None:  # (`answer` says why in `failure`)
            self._refused((dialer.failure if dialer is not None
                           else "no handshake in progress").encode(), ours=True)
            return
        self._linked(proof)

    def _linked(self, proof: bytes) -> None:
        """Both sides proved the secret: the link carries messages from now on."""
        t = self.handshaking
        assert t is not None
        self._end_handshake()
        self.connecting = False
        self.transport = t
        t.write(proof + b"".join(self.queued))
        self.queued.clear()
        self.queued_bytes = 0
        self.pump()
        self.refusal = b""
        log.info("connected to peer %s", self.name)
        self.server.peer_proven(self.name)
        self.server.peer_status(self.name, True)

    def _end_handshake(self) -> None:
        self.handshaking = None
        self.dialer = None
        self.reader = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _refused(self, why: bytes, ours: bool = False) -> None:
        """The peer refused the link (a wrong cluster secret, another peer protocol) or,
        `ours`, this node refused the peer's challenge (it did not prove the secret, or
        came from another node than the one dialled): said once, not at every retry,
        and closed."""
        self.refused = True
        if why != self.refusal:
            self.refusal = why
            if ours:
                log.warning("not linking to peer %s: %s", self.name,
                            why.decode(errors="replace"))
            else:
                log.warning("peer %s refused the link: %r", self.name, why)
        t = self.transport or self.handshaking
        if t is not None:
            t.close()

    def connection_lost(self, exc: Exception | None) -> None:
        linked = self.transport is not None
        self._end_handshake()
        self.transport = None
        self.connecting = False
        self.writing_paused = False
        if self.batch_sent:
            # The peer saw the start of this batch on the lost connection only.
            left = self.ends.popleft() - self.batch_sent
            self.bulk_bytes -= left
            while left > 0:
                piece = self.bulk.popleft()
                left -= len(piece) - self.sent
                self.sent = 0
            self.batch_sent = 0
        if not self.closed:
            if linked:
                log.info("lost peer %s", self.name)
            # A refusing peer is asked again at the slowest pace.
            wait = RETRY_MAX if self.refused else RETRY_MIN
            if not self.refused:
                self.refusal = b""
            self.retry_at = asyncio.get_running_loop().time() + wait
            self.server.peer_status(self.name, False)

    def close(self) -> None:
        self.closed = True
        t = self.transport or self.handshaking
        if t is not None:
            t.close()


class PeerInbound(asyncio.Protocol):
    """A peer's proven link to this node: its frames, one message at a time, to the
    node (gossip through the server's admission first). Nothing is written back."""

    def __init__(self, server: NodeServer, name: str, transport: asyncio.Transport) -> None:
        self.server = server
        self.node = server.node
        self.name = name
        self.transport: asyncio.Transport | None = transport
        self.frames = frame_reader()
        self.parts = Gather()  # the parts of a bulk batch read so far
        self.held = False  # reading paused: frames read are left for later turns
        self.backlog: list[Any] = []  # frames read and left for a later turn (held)

    def data_received(self, data: bytes) -> None:
        server = self.server
        server.set_now()
        trace = server.trace
        if trace is not None:
            trace.peer_read = started = trace.begin()
            self.received(data)
            server.pump()
            trace.peer_event_done()
            server.reply_early()  # (after the quorum is stamped: the trace's order)
            trace.took("peer_read", started)
            return
        self.received(data)
        server.pump()
        server.reply_early()

    def _go_on(self) -> None:
        """The frames left by the last turn's budget (`received`), then reading again."""
        self.held = False
        if self.transport is None:
            return
        self.data_received(b"")
        if not self.held and self.transport is not None:
            self.transport.resume_reading()

    def received(self, data: bytes) -> None:
        """Hand the complete frames in `data` (and what came before it) to the node, for
        READ_BUDGET_NS at most: past it the link stops reading and the rest is handled in
        the next loop turns, other work between (a replica a plan did not wait for
        applied a backlog of thirty 1,024-record steps in one read: 0.3-0.5 s)."""
        items: list[Any] = self.frames.read(data)
        if self.backlog:
            items = self.backlog + items
            self.backlog = []
        if not items:
            return
        n = len(items)
        until = _monotonic_ns() + READ_BUDGET_NS
        i = 0
        while i < n:
            item = items[i]
            i += 1
            if type(item) is tuple:
                msgs: tuple = item  # (decoded where it was read: wire.frame_reader)
            else:
                if type(item) is list:
                    # A part of a bulk batch (wire.part_head): [more, bytes]. The parts
                    # are gathered as they come, one part per event, not joined at the
                    # end (a copy of the whole batch at once, 100 MB, held the loop for
                    # a second).
                    self.parts.add(item[1])
                    if item[0]:
                        continue
                try:
                    msgs = self.parts.take() if type(item) is list else unframe(item)
                except Exception:
                    log.warning("bad frame from peer %s", self.name)
                    continue
            handled = self._handle(msgs, until)
            if handled < len(msgs):
                self.backlog = [msgs[handled:], *items[i:]]
                return
            if i < n and _monotonic_ns() > until and self._hold():
                self.backlog = items[i:]
                return  # (at least one message a turn)

    def _handle(self, msgs: tuple, until: int) -> int:
        """A frame's messages, each to the node (gossip admitted by the server first),
        until the turn's budget is spent: how many were handled (the rest wait for a
        later turn). One frame may carry many messages that each start costly work (33
        MEMORY USAGE SAMPLES 0 of a 16,000-field hash pipelined by a client: their
        sync answers came back in one frame, and the commands ran back to back, 0.4-0.9
        s of a held loop)."""
        node = self.node
        server = self.server
        src = self.name
        trace = server.trace
        last = len(msgs) - 1
        msg: tuple  # (typed: compiled, its kind read as a tuple's item, not generically)
        for j, msg in enumerate(msgs):
            try:
                kind = msg[0]
                if isinstance(kind, str) and kind == "gs":
                    msg = server.admit_gossip(src, msg)
                if trace is None:
                    node.on_message(src, msg)
                else:
                    trace.on_peer_message(node, src, msg)
            except Exception:
                log.exception("handling %r from %s failed", msg[:1], src)
            server.send_peers_if_backlogged()
            if j < last and _monotonic_ns() > until and self._hold():
                return j + 1
        return last + 1

    def _hold(self) -> bool:
        """Stop reading and go on with the frames read in a later turn; False if that
        cannot be (no loop: everything now)."""
        loop = self.server.loop
        t = self.transport
        if loop is None or t is None:
            return False
        if not self.held:
            self.held = True
            t.pause_reading()
            loop.call_soon(self._go_on)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.frames = frame_reader()
        self.backlog = []
        self.parts = Gather()
        self.server.inbound.discard(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
