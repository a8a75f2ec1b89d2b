"""One accepted connection: a Redis client, or (after DYN.PEER) a peer's inbound link.

Every command parsed from one read is executed before anything is written, and the
replies go out together at the end of the loop turn, in request order, even though
quorum commands finish later than local ones (reply slots keep the order).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hiredis

from ..commands.acl import noperm
from ..commands.common import ok_or_error
from ..commands.table import ERR_NOAUTH, err_arity, err_unknown, lookup
from ..resp import encode as resp
from ..resp.inline import split_inline
from .wire import unframe

if TYPE_CHECKING:
    from .app import NodeServer

log = logging.getLogger("dynredis.client")

# Input limits: a client may not make the node buffer more than this unparsed.
MAX_QUERY_BUFFER = (512 << 20) + (1 << 16)
MAX_INLINE = 64 << 10  # Redis' PROTO_INLINE_MAX_SIZE
# Commands of one client awaiting their replies before the node stops reading it.
MAX_IN_FLIGHT = 1024
ERR_LOADING = resp.error("LOADING dynredis is linking to its peers")
NOT_QUEUED = frozenset({"exec", "discard", "multi", "watch", "unwatch", "quit", "reset"})


# A reply still missing after this long is given up on (see ClientConnection.unstick).
STUCK_S = 60.0


def decimal_digits(n: int) -> int:
    """len(str(n)) for n >= 0, without making the string (called per argument)."""
    digits = 1
    while n >= 10:
        n //= 10
        digits += 1
    return digits


def frame_length(cmd: Any) -> int:
    """Bytes of the RESP frame hiredis parsed into `cmd` (its encoding is canonical:
    hiredis refuses lengths with signs, spaces or leading zeros)."""
    if type(cmd) is not list:
        return 0  # not a command: the connection is closed with a protocol error
    n = len(cmd)
    total = 3 + decimal_digits(n) + 5 * n
    try:
        for arg in cmd:
            size = len(arg)
            total += size + decimal_digits(size)
    except TypeError:
        return 0  # a non-bulk element: closed with a protocol error too
    return total


class ReplySlot:
    """A reply position reserved by a command that answers later."""

    __slots__ = ("conn", "data")

    def __init__(self, conn: ClientConnection | None, data: bytes | None = None) -> None:
        self.conn = conn
        self.data = data

    def set(self, reply: bytes) -> None:
        if self.data is not None:
            return
        self.data = reply
        conn = self.conn
        if conn is not None:
            conn.slot_filled()


class WriteReply(ReplySlot):
    """The reply of a write answered +OK (SET, SETEX), whose `written` method is the
    write's completion callback: one object per write (and a bound method) instead of
    a slot, the command's callback and the WAIT bookkeeping wrapper, each a closure.
    (A method rather than ``__call__``: a compiled subclass adding ``__call__`` to a
    class without one crashed.)"""

    __slots__ = ("key",)

    def __init__(self, conn: ClientConnection, key: bytes) -> None:
        super().__init__(conn)
        self.key = key

    def written(self, result: tuple) -> None:
        conn = self.conn
        if conn is not None:
            conn.note_write(self.key, result)
        self.set(ok_or_error(result))


class BlockingSlot(ReplySlot):
    """A reply that may wait without limit (WAIT with timeout 0)."""

    __slots__ = ()


class ClientConnection(asyncio.Protocol):
    def __init__(self, server: NodeServer, cluster_view: bool = False) -> None:
        self.server = server
        # A connection on the cluster port (README "Cluster-aware clients"): the same
        # commands, but SCAN, KEYS, DBSIZE, RANDOMKEY and INFO keyspace cover only the
        # partitions this node owns.
        self.cluster_view = cluster_view
        self.node = server.node
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.waiting: deque[ReplySlot] = deque()
        self._proto = 2
        self.nil = resp.NIL2
        users = server.users
        self.authed = users.default_open()
        # The ACL user (server/acl_table.py) and, unless it may run everything, the
        # user whose rules each command is checked against.
        self.user = "default"
        self.perms: Any = users.restrictions("default")
        self.r: int | None = None
        self.w: int | None = None
        self.id = server.next_client_id()
        self.name: bytes | None = None
        self.lib_name = ""
        self.lib_ver = ""
        self.last_cmd = "NULL"
        self.peer_name: str | None = None
        self.peer_pending: Any = None  # between DYN.PEER HELLO and PROOF (peerauth)
        self.closing = False
        self.created = time.monotonic()
        self.peer = "?"
        self.local = "?"
        self.inline = b""
        # Bytes fed to the reader and bytes of the commands it gave back: equal between
        # frames. hiredis does not say where a frame ends (its len() counts consumed
        # bytes until it drops them, even inside a frame), so frames are measured here.
        self.fed = 0
        self.consumed = 0
        self.chunks: deque[bytes] = deque()  # fed bytes from offset chunks_at on
        self.chunks_at = 0
        self.paused = False  # not read from: too many commands in flight (_run_commands)
        self.resume_scheduled = False
        # MULTI: the queued (command, args) pairs, or None outside a transaction.
        self.tx: list[tuple[Any, list[bytes]]] | None = None
        self.tx_failed = False
        self.watched: tuple[ReplySlot, float] | None = None  # see unstick()
        # WAIT: the key and object of this connection's last acknowledged write.
        self.last_write: tuple[bytes, Any] | None = None

    # --- attributes commands read ----------------------------------------------------

    @property
    def proto(self) -> int:
        return self._proto

    @proto.setter
    def proto(self, value: int) -> None:
        self._proto = value
        self.nil = resp.nil(value)

    # --- writes (remembered for WAIT) ------------------------------------------------

    def put(self, key: bytes, ctx: Any, data: bytes | None, expire_at: int,
            cb: Callable[[tuple], None], w: int | None = None) -> None:
        """`Node.put`, remembering the written object for WAIT."""
        self.node.put(key, ctx, data, expire_at, self._remember(key, cb), w)

    def put_ok(self, key: bytes, data: bytes, expire_at: int) -> None:
        """Write `data` and reply +OK (or the error) in order, remembered for WAIT."""
        slot = WriteReply(self, key)
        self.waiting.append(slot)
        self.node.put(key, None, data, expire_at, slot.written, self.w)

    def incr(self, key: bytes, delta: int, cb: Callable[[tuple], None],
             w: int | None = None) -> None:
        """`Node.incr`, remembering the written object for WAIT."""
        self.node.incr(key, delta, self._remember(key, cb), w)

    def _remember(self, key: bytes, cb: Callable[[tuple], None]) -> Callable[[tuple], None]:
        def written(result: tuple) -> None:
            self.note_write(key, result)
            cb(result)

        return written

    def note_write(self, key: bytes, result: tuple) -> None:
        """Remember an acknowledged write's object for WAIT."""
        if result[0] is None and result[1] is not None:
            self.last_write = (key, result[1])

    def age(self) -> int:
        return int(time.monotonic() - self.created)

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"
        if sock:
            self.local = f"{sock[0]}:{sock[1]}"
        self.server.clients[self.id] = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.clients.pop(self.id, None)
        self.waiting.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        server = self.server
        server.set_now()
        if self.peer_name is not None:
            self.reader.feed(data)
            self._peer_frames()
        else:
            self._client_input(data)
        server.pump()

    def _client_input(self, data: bytes) -> None:
        # As Redis decides at every command start: '*' begins a RESP frame, anything
        # else an inline command (redis-cli --pipe sends "\r\n" between frames).
        if self.inline or (data[:1] != b"*" and self.fed == self.consumed):
            data = self._inline_commands(data)
            if not data:
                return
        self.reader.feed(data)
        self.chunks.append(data)
        self.fed += len(data)
        if self.fed - self.consumed > MAX_QUERY_BUFFER:
            # More unparsed input than any command we accept (a huge bulk length or
            # array count): refuse it rather than buffer it, as Redis does.
            self.protocol_error("too big bulk length or multibulk count")
            return
        self._run_commands()

    def _run_commands(self) -> None:
        """Execute the complete commands buffered so far, in order.

        A client that pipelines more than MAX_IN_FLIGHT commands is not read from until
        half of them are answered: otherwise every buffered command would start its
        quorum request at once, and the last ones would time out queued behind the
        first ones at the replicas (as Redis, the node reads a client only as fast as
        it answers it)."""
        reader = self.reader
        waiting = self.waiting
        server = self.server
        try:
            while True:
                if len(waiting) >= MAX_IN_FLIGHT:
                    self._pause()
                    break
                cmd = reader.gets()
                if cmd is False:
                    break
                self.consumed += frame_length(cmd)
                self.execute(cmd)
                server.send_peers_if_backlogged()
                if self.peer_name is not None:
                    self._peer_frames()
                    return
                if self.closing:
                    return
        except hiredis.ProtocolError as exc:
            self._refused_frame(str(exc))
            return
        self._forget_consumed()

    def _forget_consumed(self) -> None:
        """Keep only the fed chunks that hold bytes not yet parsed into commands."""
        chunks = self.chunks
        if self.consumed == self.fed:
            chunks.clear()
            self.chunks_at = self.fed
            return
        while chunks and self.chunks_at + len(chunks[0]) <= self.consumed:
            self.chunks_at += len(chunks.popleft())

    def _refused_frame(self, detail: str) -> None:
        """hiredis refused the input. If it did so at a command start that is not '*',
        the command there is inline, as Redis reads it; otherwise it is a protocol error."""
        rest = b"".join(self.chunks)[self.consumed - self.chunks_at:]
        if not rest or rest[:1] == b"*":
            self.protocol_error(detail)
            return
        self.reader = hiredis.Reader()
        self.chunks.clear()
        self.fed = self.chunks_at = self.consumed
        self._client_input(rest)

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.server.paused_clients += 1
            if self.transport is not None:
                self.transport.pause_reading()

    def _resume(self) -> None:
        """Go on with the buffered commands, then read the client again."""
        self.resume_scheduled = False
        if self.closing or self.transport is None:
            return
        self.server.set_now()
        self.paused = False
        self._run_commands()
        if not self.paused:
            self.transport.resume_reading()
        self.server.pump()

    def _inline_commands(self, data: bytes) -> bytes:
        """Run complete inline lines; return what follows once a RESP frame starts."""
        buf = self.inline + data
        while buf:
            if buf[:1] == b"*":
                self.inline = b""
                return buf
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_INLINE:
                    self.protocol_error("too big inline request")
                    buf = b""
                break
            line, buf = buf[:end].rstrip(b"\r"), buf[end + 1 :]
            words = split_inline(line)
            if words is None:
                self.protocol_error("unbalanced quotes in request")
                buf = b""
                break
            if words:
                self.execute(words)
            if self.closing:
                buf = b""
                break
        self.inline = buf
        return b""

    # --- client commands -------------------------------------------------------------

    def execute(self, args: Any) -> None:
        if type(args) is not list:
            self.protocol_error("expected '*'")
            return
        if not args:
            return
        for arg in args:
            if type(arg) is not bytes:
                self.protocol_error("expected '$'")
                return
        cmd = lookup(args[0])
        if self.peer_pending is not None and args[0].upper() != b"DYN.PEER":
            self.server.peer_auth.not_proof(self)
            return
        if cmd is None:
            if args[0].upper() == b"DYN.PEER":
                self.server.peer_auth.on_command(self, args)
                return
            if self.tx is not None:
                self.tx_failed = True
            self.reply(err_unknown(args))
            return
        if not self.authed and "noauth" not in cmd.flags:
            self.reply(ERR_NOAUTH)
            return
        if not cmd.arity_ok(len(args)):
            if self.tx is not None:
                self.tx_failed = True
            self.reply(err_arity(cmd.name))
            return
        # As Redis: NOPERM only for a command of the right arity, LOADING after it.
        if self.perms is not None and "noauth" not in cmd.flags:
            denied = self.perms.denial(cmd, args)
            if denied is not None:
                if self.tx is not None:
                    self.tx_failed = True
                self.reply(noperm(*denied))
                return
        if self.server.loading and ("write" in cmd.flags or "readonly" in cmd.flags):
            # Redis answers LOADING while it loads its data; this node is still linking
            # to its peers (it would answer NOQUORUM). Clients retry on LOADING.
            if self.tx is not None:
                self.tx_failed = True
            self.reply(ERR_LOADING)
            return
        if self.tx is not None and cmd.name not in NOT_QUEUED:
            self.tx.append((cmd, args))
            self.reply(resp.QUEUED)
            return
        self.last_cmd = cmd.name
        self.server.commands_processed += 1
        before = len(self.waiting)
        try:
            reply = cmd.handler(self, args)
        except Exception:
            log.exception("command %s failed", cmd.name)
            reply = resp.error(f"ERR internal error executing '{cmd.name}'")
            if len(self.waiting) > before:
                self.waiting[before].set(reply)
                return
        if reply is not None:
            self.reply(reply)

    def reply(self, data: bytes) -> None:
        if self.waiting:
            self.waiting.append(ReplySlot(None, data))
        else:
            self.out.append(data)
            self.server.mark_dirty(self)

    def defer(self) -> ReplySlot:
        slot = ReplySlot(self)
        self.waiting.append(slot)
        return slot

    def defer_blocking(self) -> ReplySlot:
        """A reply slot that may legitimately stay empty for long (WAIT 0)."""
        slot = BlockingSlot(self)
        self.waiting.append(slot)
        return slot

    def unstick(self, now: float) -> bool:
        """Answer a reply that has waited more than STUCK_S with an error.

        Every operation behind a reply ends within its own timeout, so a reply still
        missing long after can only come from a bug (a completion callback that raised);
        without this, the client and every reply queued behind it would wait forever.
        True if a reply was given up on."""
        waiting = self.waiting
        head = waiting[0] if waiting else None
        if head is None or head.data is not None or type(head) is BlockingSlot:
            self.watched = None
            return False
        if self.watched is None or self.watched[0] is not head:
            self.watched = (head, now)
            return False
        if now - self.watched[1] < STUCK_S:
            return False
        log.error("client %s: no reply after %.0f s; answering with an error",
                  self.peer, now - self.watched[1])
        self.watched = None
        head.set(resp.error("ERR internal error: the reply to this command was lost"))
        return True

    def slot_filled(self) -> None:
        waiting = self.waiting
        out = self.out
        while waiting and waiting[0].data is not None:
            out.append(waiting.popleft().data)  # type: ignore[arg-type]
        if out:
            self.server.mark_dirty(self)
        if self.paused and not self.resume_scheduled and len(waiting) <= MAX_IN_FLIGHT // 2:
            self.resume_scheduled = True
            self.server.loop.call_soon(self._resume)  # type: ignore[union-attr]

    def flush(self) -> None:
        t = self.transport
        if t is None:
            self.out.clear()
            return
        if self.out:
            t.write(b"".join(self.out))
            self.out.clear()
        if self.closing and not self.waiting:
            t.close()

    def close_after_reply(self) -> None:
        self.closing = True
        self.server.mark_dirty(self)

    def protocol_error(self, detail: str) -> None:
        """Redis answers malformed input with an error and closes the connection."""
        self.reply(resp.error(f"ERR Protocol error: {detail}"))
        self.closing = True  # closed once the replies to earlier commands are out
        self.reader = hiredis.Reader()
        self.chunks.clear()
        self.server.mark_dirty(self)

    # --- peer links ------------------------------------------------------------------

    def _peer_frames(self) -> None:
        reader = self.reader
        node = self.node
        src = self.peer_name
        assert src is not None
        while True:
            body = reader.gets()
            if body is False:
                return
            try:
                msgs = unframe(body)
            except Exception:
                log.warning("bad frame from peer %s", src)
                continue
            for msg in msgs:
                try:
                    if msg[0] == "gs":
                        msg = self.server.admit_gossip(src, msg)
                    node.on_message(src, msg)
                except Exception:
                    log.exception("handling %r from %s failed", msg[:1], src)
                self.server.send_peers_if_backlogged()
