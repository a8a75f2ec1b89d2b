"""One accepted connection: a Redis client (until DYN.PEER proves it a peer's link, then
handed to peers.py).

Client input is read as Redis reads it (resp/request.py). The commands of one read are
executed before anything is written (for at most `NodeServer.turn_ms`, then the other
clients are served first), and the replies go out together at the end of the loop turn,
in request order, even though quorum commands finish later than local ones (reply slots
keep the order). A client is read only as fast as it is answered (see _run_commands),
and held to the limits of server/limits.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..cluster.affinity import ROUTED
from ..cluster.keyscan import KeyScan
from ..commands.acl import noperm
from ..commands.collection import BUILDERS as COLLECTION_COMMANDS
from ..commands.common import ok_or_error
from ..commands.context import ServerFigures
from ..commands.databases import key_positions, map_args, storage_key
from ..commands.monitor import feed
from ..commands.notify import run as run_notifying
from ..commands.pubsub import SUBSCRIBER_COMMANDS, subscriber_refusal
from ..commands.table import (
    ERR_NOAUTH,
    Command,
    err_arity,
    err_protected,
    err_unknown,
    find_subcommand,
    lookup,
)
from ..commands.transactions import exec_refused
from ..commands.watch import Watchers, unmark
from ..resp import encode as resp
from ..resp.request import RequestParser
from .acl_table import UserTable
from .limits import BIG_ALLOCATION, ERR_MAXCLIENTS, Limits
from .retry import RetryTimer
from .streamed import Streamed, pinned_reply
from .subscriptions import SubState

if TYPE_CHECKING:
    from ..core.engine import Pinned
    from .app import NodeServer

log = logging.getLogger("dynredis.client")

# The clock every command's run is timed with (INFO commandstats), as a Final name:
# compiled code calls it from a C global, not through a lookup of `time` and of its
# attribute, twice a command.
_perf_ns: Final = time.perf_counter_ns

# Commands of one client awaiting their replies before the node stops reading it: at
# most MAX_IN_FLIGHT, and fewer for big requests or replies (about IN_FLIGHT_BYTES of
# them, as the client's recent commands go: 1000 pipelined GETs of a 1 MB value once
# started together, and asked the replicas for 2 GB at once). A new client starts at
# FIRST_WINDOW, before its sizes are known. (16 MB and 64 let the replies of 64 GETs of
# 1 MB finish in one turn: the coordinator stalled 52-78 ms per such pipeline, 19-42 ms
# at 8 MB and 16, and the 1,000 GETs took 2.3-3.0 s instead of 3.8-4.5 s.)
MAX_IN_FLIGHT: Final = 1024
ERR_LOADING = resp.error("LOADING dynredis is linking to its peers")
IN_FLIGHT_BYTES: Final = 8 << 20
FIRST_WINDOW: Final = 16
SMALL_COMMAND: Final = IN_FLIGHT_BYTES // MAX_IN_FLIGHT  # below it, MAX_IN_FLIGHT of them
# A request this large whose reading took a whole turn runs in the next turn.
LARGE_REQUEST: Final = 1 << 20
NOT_QUEUED = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
# A command flagged `no_multi` (as in Redis' command table: SAVE) is refused in MULTI, as
# is one flagged `protected` (DEBUG, MODULE LOAD: refused everywhere, as Redis' default
# enable-debug-command no and enable-module-command no).
ERR_NO_MULTI = resp.error("ERR Command not allowed inside a transaction")
# A connection over maxclients may still be a peer linking: it has this long to say so.
PEER_GRACE_S = 1.0
TLS_HANDSHAKE = b"\x16"  # a TLS record's first byte: no Redis command starts with it


# A reply still missing after this long is given up on (see ClientConnection.unstick).
STUCK_S = 60.0
# A blocked client's deadline further away than this is left to the node's tick (no
# timer of its own).
BLOCK_TIMER_MAX_S = 86_400.0


class ReplySlot:
    """A reply position reserved by a command that answers later."""

    __slots__ = ("conn", "data", "stat", "stream", "steps", "marked")

    def __init__(self, conn: ClientConnection | None, data: bytes | None = None) -> None:
        self.conn = conn
        self.data = data
        # The watches its command marked, taken back if it answers that it wrote
        # nothing (commands/watch.py's unmark)
        self.marked: list[Any] | None = None
        self.stat: Any = None  # the command's CallStat (failed_calls), commands/callstats.py
        self.stream: Streamed | None = None  # sent over turns (send_stored, send_streamed)
        self.steps = 0  # steps its command took so far (`touch`: see unstick())

    def touch(self) -> None:
        """The command took another step (a plan's): it is working, not lost."""
        self.steps += 1

    def set(self, reply: bytes) -> None:
        if self.data is not None:
            return
        self.data = reply
        if self.marked is not None and reply[:1] == b"-":
            unmark(self.marked, reply)
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


DROP: Final = object()  # a ReplySlot's `stat` when CLIENT REPLY OFF/SKIP drops its reply


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
        # The selected database (SELECT; commands/databases.py maps its keys).
        self.db = 0
        self.id = server.next_client_id()
        self.name: bytes | None = None
        self.lib_name = ""
        self.lib_ver = ""
        self.last_cmd = "NULL"
        self.no_evict = False  # CLIENT NO-EVICT on: never closed by maxmemory-clients
        self.peer_name: str | None = None
        self.peer_pending: Any = None  # between DYN.PEER HELLO and PROOF (peerauth)
        self.closing = False
        self.created = time.monotonic()
        self.last_active = server.node.now  # ms (node time) of its last command: idle
        self.peer = "?"
        self.local = "?"
        # Client input, read as Redis reads it (resp/request.py).
        self.parser = RequestParser(server.limits.proto_max_bulk_len)
        self.held = 0  # input held (parser.held()), as counted in server.input_held
        self.counted = False  # counted in server.client_count (a client, not a peer)
        self.first_input = False
        self.over_limit = False  # arrived over maxclients: refused unless it is a peer
        self.marked_dirty = False  # listed in server.dirty (written at the turn's end)
        self.paused = False  # not read from (see _run_commands)
        self.resume_scheduled = False
        self.write_blocked = False  # the transport's unsent output is over its high mark
        self.window = FIRST_WINDOW  # commands that may await replies (see _size_window)
        self.request_size = 0  # moving averages of its requests' and replies' bytes
        self.reply_size = 0
        self.turn_out = 0  # reply bytes added since the last write (see _run_commands)
        self.obuf_soft_since = 0.0  # when unsent output passed the soft limit (0: under)
        # MULTI: the queued (command, args) pairs, or None outside a transaction.
        self.tx: list[tuple[Command, list[bytes]]] | None = None
        self.tx_failed = False
        self.reply_mode = "on"  # CLIENT REPLY: on, off, skip (the next command)
        self.silent = False  # the command running now has its reply dropped
        # The CallStat of the command running now (_run): the slots it takes count its
        # failed calls.
        self.running_stat: Any = None
        self.postponed: list[bytes] | None = None  # a command held by CLIENT PAUSE
        self.watch: Any = None  # WATCH: the watched keys' versions (commands/watch.py)
        self.watched: tuple[ReplySlot, float, int] | None = None  # see unstick()
        # WAIT: the key and object of this connection's last acknowledged write.
        self.last_write: tuple[bytes, Any] | None = None
        # A script of this client is running: its later commands wait for its reply
        # (they must see its effects, as in Redis).
        self.script_held = False
        # Keys (as stored) its read-then-writes in a key gate (commands/gate.py) and its
        # collection commands in flight work on, and a later command waiting for them
        # (see _waits_for_key).
        self.gate_keys: dict[bytes, int] = {}
        self.coll_keys: dict[bytes, int] = {}
        self.held_cmd: list[bytes] | None = None
        self.gate = server.gate  # read-then-writes of one key, one at a time (commands/gate.py)
        # A blocking command (commands/blocking.py) in progress: True during its first
        # attempt, then the core's waiter while it waits; its later commands wait (the
        # connection is still read, so a disconnect is seen and the wait forgotten).
        self.blocked: Any = None
        self.block_timer: asyncio.TimerHandle | None = None
        self.may_block = True  # (EXEC's and scripts' stand-ins for it say False)
        self.subs = SubState()  # its channels, patterns and shard channels (pub/sub)
        self.subscribed = False  # subs.any, kept by server/subscriptions.py (hot path)
        # The latency trace (server/latency.py), when it is on: when this client's last
        # input was read, and its sampled requests whose replies are not written yet.
        self.read_ns = 0
        self.traced: Any = None
        # The reply being sent from the store (send_stored): the head of `waiting`.
        self.streaming: Streamed | None = None
        self.stream_scheduled = False
        # It started in this turn: its first slice goes in a later one (`flush`).
        self.stream_fresh = False

    # --- attributes commands read ----------------------------------------------------

    @property
    def proto(self) -> int:
        return self._proto

    @proto.setter
    def proto(self, value: int) -> None:
        self._proto = value
        self.nil = resp.nil(value)

    # --- the server's facilities, as commands may use them (commands/context.py) -----

    @property
    def users(self) -> UserTable:
        return self.server.users

    @property
    def limits(self) -> Limits:
        return self.server.limits

    @property
    def keyscan(self) -> KeyScan:
        return self.server.keyscan

    @property
    def scripts(self) -> Any:
        return self.server.scripts

    @property
    def affinity(self) -> Any:
        return self.server.affinity

    @property
    def pubsub(self) -> Any:
        return self.server.pubsub

    @property
    def callstats(self) -> Any:
        return self.server.callstats

    @property
    def watchers(self) -> Watchers:
        return self.server.watchers

    @property
    def clients(self) -> dict[int, ClientConnection]:
        return self.server.clients

    @property
    def topology_replies(self) -> dict[tuple[str, int], tuple[tuple, bytes]]:
        return self.server.topology_replies

    def figures(self) -> ServerFigures:
        return self.server.figures()

    def reset_stats(self) -> None:
        self.server.reset_stats()

    def save(self, schedule: bool) -> str:
        return self.server.save(schedule)

    def sync_state(self) -> tuple[int, int, bool]:
        return self.server.sync_state()

    def evict_clients(self) -> None:
        self.server.evict_clients()

    def cluster_port_of(self, member: str) -> int:
        return self.server.cluster_ports.of(member)

    def retry_until(self, timeout_ms: int, every_ms: int, ask: Callable[[], None],
                    expired: Callable[[], None]) -> RetryTimer:
        return RetryTimer(self.server, self, timeout_ms, every_ms, ask, expired)

    # --- writes (remembered for WAIT) ------------------------------------------------

    def put(self, key: bytes, ctx: Any, data: Any, expire_at: int,
            cb: Callable[[tuple], None], w: int | None = None) -> None:
        """`Node.put`, remembering the written object for WAIT."""
        self.node.put(key, ctx, data, expire_at, self._remember(key, cb), w)

    def put_ok(self, key: bytes, data: bytes, expire_at: int) -> None:
        """Write `data` and reply +OK (or the error) in order, remembered for WAIT."""
        slot = WriteReply(self, key)
        slot.stat = DROP if self.silent else self.running_stat
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

    def hold(self) -> None:
        """Run nothing more of this client until `release_hold` (a script runs)."""
        self.script_held = True

    def release_hold(self) -> None:
        self.script_held = False
        self._schedule_resume()

    @property
    def gate_waiter(self) -> ClientConnection:
        """Who waits while one of its commands waits at a key gate: this connection."""
        return self

    def gate_wait(self, key: bytes) -> None:
        """One of its read-then-writes entered `key`'s gate: its later commands on the
        key wait until it has written (they would overtake it: commands/gate.py)."""
        self.gate_keys[key] = self.gate_keys.get(key, 0) + 1

    def gate_passed(self, key: bytes) -> None:
        self._key_done(self.gate_keys, key)

    def coll_started(self, key: bytes) -> None:
        """One of its collection commands on `key` (as stored) started."""
        self.coll_keys[key] = self.coll_keys.get(key, 0) + 1

    def coll_done(self, key: bytes) -> None:
        self._key_done(self.coll_keys, key)

    def _key_done(self, busy: dict[bytes, int], key: bytes) -> None:
        """One of its commands on `key` counted in `busy` is done; a command held for
        the key may go on once none is left."""
        n = busy.get(key, 0) - 1
        if n > 0:
            busy[key] = n
            return
        busy.pop(key, None)
        if self.held_cmd is not None:
            self._schedule_resume()

    def _waits_for_key(self, args: list[bytes]) -> bool:
        """Whether `args` names a key that one of this client's read-then-writes is
        between reading and writing (any command waits for it), or, not being a
        collection command, a key one of its collection commands still works on.
        Collection commands on one key run in the order their key's coordinator gets
        them; any other command (DEL, TYPE, EXPIRE ...) reads the key's header by quorum
        and would not see what an earlier collection command has yet to write (a DEL
        sent after an SADD would leave the member), where Redis runs a connection's
        commands in order. Commands on other keys go on meanwhile."""
        cmd = lookup(args[0])
        if cmd is None:
            return False
        coll = cmd.name in COLLECTION_COMMANDS
        gate_keys = self.gate_keys
        coll_keys = self.coll_keys
        if not gate_keys and (coll or not coll_keys):
            return False
        if cmd.name == "exec":
            return True  # its WATCH check reads the watched keys: after what came before
        db = self.db
        for i in key_positions(cmd, args):
            k = storage_key(db, args[i])
            if k in gate_keys or (not coll and k in coll_keys):
                return True
        return False

    def age(self) -> int:
        return int(time.monotonic() - self.created)

    def start_monitor(self) -> None:
        if self not in self.server.monitors:
            self.server.monitors.append(self)

    def pause_clients(self, until: int, writes_only: bool) -> None:
        self.server.pause_clients(until, writes_only)

    def unpause_clients(self) -> None:
        self.server.end_pause()

    def shutdown_node(self) -> bool:
        return self.server.request_stop(f"SHUTDOWN from client {self.peer}")

    def monitor_feed(self, cmd: Command, args: list[bytes]) -> None:
        """A command run for this client other than by `execute` (MULTI's queue)."""
        if self.server.monitors:
            feed(self.server.monitors, cmd, args, self.db, self.peer)

    def kill(self) -> None:
        """CLIENT KILL from another client: closed at once (as Redis frees it)."""
        self.drop()

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"
        if sock:
            self.local = f"{sock[0]}:{sock[1]}"
        # A TLS handshake on the plain port: closed at its first byte rather than read
        # as an inline command that never ends (the client would wait for a reply).
        self.first_input = transport.get_extra_info("sslcontext") is None
        server = self.server
        server.clients[self.id] = self
        if server.client_count >= server.limits.maxclients:
            # Refused as Redis refuses it, unless its first words are a peer's hello
            # (peers link over the client port and must not be locked out by clients).
            self.over_limit = True
            if server.loop is not None:
                server.loop.call_later(PEER_GRACE_S, self._refuse_over_limit)
        else:
            self.counted = True
            server.client_count += 1

    def connection_lost(self, exc: Exception | None) -> None:
        """Everything the connection held goes with it (its input, its unsent replies)."""
        server = self.server
        if self.write_blocked or self.memory() >= BIG_ALLOCATION:
            server.trim_owed = True  # it left replies or input unread: give them back
        self.transport = None
        server.clients.pop(self.id, None)
        if self.counted:
            self.counted = False
            server.client_count -= 1
        if self.subscribed:
            server.pubsub.subs.drop(self)
        self._forget_waiting()
        self.out.clear()
        self.tx = None
        if self in server.monitors:
            server.monitors.remove(self)
        if self.watch is not None:
            server.watchers.remove(self.watch)
            self.watch = None
        self._end_stream()
        self.parser.clear()
        self._account_input_quietly()
        if self.blocked is not None:
            self._forget_block()

    def pause_writing(self) -> None:
        """The transport holds more unsent output than its high-water mark: read and run
        nothing more of this client until it drains (the client is not reading)."""
        self.write_blocked = True
        self._pause()

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.streaming is not None:
            self._schedule_stream()
        self._schedule_resume()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        server = self.server
        server.net_input += len(data)
        server.reads_processed += 1
        server.set_now()
        trace = server.trace
        if trace is not None:
            self.read_ns = started = trace.begin()
            self._client_input(data)
            server.pump()
            trace.took("client_read", started)
            return
        self._client_input(data)
        server.pump()

    def _client_input(self, data: bytes) -> None:
        if self.first_input:
            self.first_input = False
            if data[:1] == TLS_HANDSHAKE:
                log.warning("Closing client that sent a TLS handshake to a plain port: %s",
                            self.describe())
                self.drop()
                return
        self.parser.feed(data)
        if self._account_input():
            self._run_commands()

    def _account_input(self) -> bool:
        """Count the input this client makes the node hold; close it if that passes its
        limit (client-query-buffer-limit), or close the biggest clients if all of them
        together pass theirs (maxmemory-clients). False if this client was closed."""
        held = self.parser.held()
        server = self.server
        server.input_held += held - self.held
        self.held = held
        if held > server.limits.query_buffer:
            log.warning("Closing client that reached max query buffer length: %s "
                        "(qbuf initial bytes: %r)", self.describe(), self.parser.head())
            self.drop()
            return False
        limit = server.limits.maxmemory_clients
        if limit and server.input_held > limit:
            server.evict_clients()
            return not self.closing
        return True

    def memory(self) -> int:
        """Bytes this client makes the node hold: its input, and its unsent output."""
        return self.held + self.output_bytes()

    def output_bytes(self) -> int:
        """Bytes of replies not yet written to the client (Redis' omem)."""
        t = self.transport
        unsent = t.get_write_buffer_size() if t is not None else 0
        return unsent + sum(len(b) for b in self.out)

    def query_bytes(self) -> int:
        """Its input not yet parsed into arguments (Redis' qbuf)."""
        return self.parser.query_bytes()

    def argv_bytes(self) -> int:
        """The arguments of the command being read (Redis' argv-mem)."""
        return self.parser.args_bytes

    def idle(self) -> int:
        """Seconds since its last command (since it connected, if none)."""
        return max(int(time.time() * 1000) - self.last_active, 0) // 1000

    def describe(self) -> str:
        return f"id={self.id} addr={self.peer} laddr={self.local} name={self.name!r}"

    def drop(self) -> None:
        """Close at once, without a reply, forgetting its input (a limit was passed)."""
        self.closing = True
        self.parser.clear()
        self._account_input_quietly()
        self._forget_waiting()
        self.out.clear()
        self._end_stream()
        if self.subscribed:
            self.server.pubsub.subs.drop(self)
        if self.transport is not None:
            self.transport.abort()

    def _account_input_quietly(self) -> None:
        held = self.parser.held()
        self.server.input_held += held - self.held
        self.held = held

    def _run_commands(self) -> None:
        """Execute the complete commands buffered so far, in order, one at a time (each
        command's effects, AUTH's say, hold when the next one's header is judged).

        The node stops reading a client (and running its buffered commands) while a
        window of its commands await replies (see _size_window), or while its unsent replies
        are over the transport's high-water mark: otherwise a client that pipelines
        without reading makes the node buffer replies without bound, and every buffered
        command would start its quorum request at once. As Redis, the node reads a client
        only as fast as it answers it. After `server.turn_ms` of commands it serves the
        other clients first."""
        parser = self.parser
        waiting = self.waiting
        server = self.server
        node = self.node
        started = node.now
        trace = server.trace
        fresh = True  # the clock was read just before this call (data_received, _resume)
        while True:
            if self.blocked is not None:
                break  # still read (a disconnect is seen), not run until it answers
            if len(waiting) >= self.window or self.write_blocked or self.script_held:
                self._pause()
                break
            cmd = self.held_cmd
            if cmd is not None:
                if (self.coll_keys or self.gate_keys) and self._waits_for_key(cmd):
                    self._pause()
                    break
                self.held_cmd = None
            else:
                cmd = parser.command(not self.authed)
                if cmd is None:
                    if parser.error:
                        self.protocol_error_raw(parser.error)
                    break
                size = parser.last_size
                self.request_size = size if not self.request_size else \
                    (self.request_size * 7 + size) >> 3
                self._size_window()
                if self.over_limit and not self._may_be_peer(cmd):
                    return
                if (self.coll_keys or self.gate_keys) and self._waits_for_key(cmd):
                    self.held_cmd = cmd
                    self._pause()
                    break
                if size >= LARGE_REQUEST:
                    fresh = False  # reading it (a copy of a large value) took time
            if fresh:
                fresh = False
            else:
                server.set_now()  # a request's deadline counts from its start, not the read's
                if node.now - started >= server.turn_ms:
                    # The turn is spent (by the commands before: a SCAN of a million keys
                    # takes 35 ms; or by reading this one, a copy of a large value, so that
                    # a loop does not read and then encode 100 MB in one stretch): it runs
                    # in the next turn, after the other clients.
                    self.held_cmd = cmd
                    self._pause()
                    self._schedule_resume()
                    break
            if trace is None:
                self.execute(cmd)
            else:
                before = node._next_id
                queued = len(waiting)
                at = time.monotonic_ns()
                self.execute(cmd)
                trace.dispatched(self, cmd, before, node._next_id, queued, at)
            server.send_peers_if_backlogged()
            if self.peer_name is not None:
                self._became_peer()
                return
            if self.closing:
                break
            if node.now - started >= server.turn_ms or self.turn_out >= IN_FLIGHT_BYTES:
                # Also after IN_FLIGHT_BYTES of replies: they are written first (500
                # pipelined CLUSTER SHARDS made 25 MB of replies to join and write in
                # one turn).
                self._pause()
                self._schedule_resume()
                break
        self._account_input_quietly()

    def _may_be_peer(self, cmd: list[bytes]) -> bool:
        """A connection over maxclients: go on only with a peer's hello."""
        if cmd[0].upper() == b"DYN.PEER":
            return True
        self._refuse_over_limit()
        return False

    def _refuse_over_limit(self) -> None:
        if not self.over_limit or self.peer_name is not None or self.transport is None:
            return
        self.over_limit = False
        self.server.rejected_connections += 1
        self.closing = True
        self.parser.clear()
        self._account_input_quietly()
        self._forget_waiting()
        self.out = [ERR_MAXCLIENTS]
        self.server.mark_dirty(self)

    def _became_peer(self) -> None:
        """The connection proved itself a peer's link (DYN.PEER, peerauth.py): from now
        on it belongs to peers.py, which gets its transport and the rest of its input.
        Nothing of it is a client any more (not counted, not listed, never written)."""
        name = self.peer_name
        t = self.transport
        assert name is not None and t is not None
        self.over_limit = False
        server = self.server
        if self.counted:
            self.counted = False
            server.client_count -= 1
        server.clients.pop(self.id, None)
        rest = self.parser.rest()
        self.parser.clear()
        self._account_input_quietly()
        if self.out:  # (the hello's challenge went out turns ago; nothing is left behind)
            t.write(b"".join(self.out))
            self.out.clear()
        self.transport = None
        server.accept_peer(name, t, rest)
        if self.paused:
            self.paused = False
            t.resume_reading()

    def _charge_reply(self, size: int) -> None:
        self.turn_out += size
        self.reply_size = size if not self.reply_size else (self.reply_size * 7 + size) >> 3
        self._size_window()

    def _size_window(self) -> None:
        """As many commands in flight as make about IN_FLIGHT_BYTES of requests or
        replies, at the sizes this client's recent ones had (FIRST_WINDOW at most until a
        reply says how big they are)."""
        cost = self.request_size if self.request_size > self.reply_size else self.reply_size
        if cost < SMALL_COMMAND:  # the common case, without a division
            window = MAX_IN_FLIGHT
        else:
            window = IN_FLIGHT_BYTES // (cost + 1)
            if window < 1:
                window = 1
        if not self.reply_size and window > FIRST_WINDOW:
            window = FIRST_WINDOW
        self.window = window

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.server.paused_clients += 1
            if self.transport is not None:
                self.transport.pause_reading()

    def _schedule_resume(self) -> None:
        """Come back to a paused client once nothing holds it any more."""
        if (self.paused and not self.resume_scheduled and not self.write_blocked
                and not self.script_held and len(self.waiting) <= self.window // 2):
            self.resume_scheduled = True
            self.server.loop.call_soon(self._resume)  # type: ignore[union-attr]

    def _resume(self) -> None:
        """Go on with the buffered commands, then read the client again."""
        self.resume_scheduled = False
        if self.closing or self.transport is None:
            return
        self.server.set_now()
        self.paused = False
        self._run_commands()
        if not self.paused and self.transport is not None and not self.closing:
            self.transport.resume_reading()
        self.server.pump()

    # --- client commands -------------------------------------------------------------

    def _tx_refusal(self, cmd: Command, args: list[bytes]) -> bytes | None:
        """What Redis refuses before it queues a command in MULTI: what it finds first
        (`_found_refusal`; outside MULTI the command answers the same), or a command
        flagged `no_multi`."""
        refusal = self._found_refusal(cmd, args)
        if refusal is None and "no_multi" in cmd.flags:
            return ERR_NO_MULTI
        return refusal

    @staticmethod
    def _found_refusal(cmd: Command, args: list[bytes]) -> bytes | None:
        """What Redis finds wrong before it queues a command in MULTI or answers NOAUTH:
        an unknown subcommand or one of the wrong arity, or a command or subcommand
        flagged `protected` (DEBUG, MODULE LOAD: its handler is its refusal)."""
        protected = "protected" in cmd.flags
        if cmd.subcommands and len(args) > 1:
            sub = find_subcommand(cmd, args)
            if isinstance(sub, bytes):
                return sub
            protected = protected or "protected" in sub.flags
        return err_protected(cmd.name) if protected else None

    def _reject(self, cmd: Command, refusal: bytes) -> None:
        """Refuse a command before it runs, as Redis' rejectCommand: a transaction being
        queued fails (EXECABORT at its EXEC), EXEC itself answers EXECABORT with the
        reason, and the command's rejected_calls counts it."""
        if cmd.name == "exec":
            refusal = exec_refused(self, refusal)
        elif self.tx is not None:
            self.tx_failed = True
        self.server.callstats.stat(cmd.name).rejected += 1
        self.reply(refusal)

    def _unauthed_refusal(self, cmd: Command, args: list[bytes]) -> bytes:
        """What Redis answers a client that has not authenticated: what it checks
        before authentication (the arity, an unknown subcommand or one of the wrong
        arity, a `protected` command's refusal: DEBUG's), else NOAUTH. None of them runs
        anything."""
        if not cmd.arity_ok(len(args)):
            return err_arity(cmd.name)
        refusal = self._found_refusal(cmd, args)
        return ERR_NOAUTH if refusal is None else refusal

    def execute(self, args: list[bytes]) -> None:
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
            self._reject(cmd, self._unauthed_refusal(cmd, args))
            return
        if not cmd.arity_ok(len(args)):
            self._reject(cmd, err_arity(cmd.name))
            return
        if self.tx is not None:
            refusal = self._tx_refusal(cmd, args)
            if refusal is not None:  # as Redis: and the transaction fails (EXECABORT)
                self._reject(cmd, refusal)
                return
        # As Redis: NOPERM only for a command of the right arity, LOADING after it.
        if self.perms is not None and "noauth" not in cmd.flags:
            denied = self.perms.denial(cmd, args)
            if denied is not None:
                self._reject(cmd, noperm(*denied))
                return
        if self.subscribed and self._proto == 2 and cmd.name not in SUBSCRIBER_COMMANDS:
            # RESP2 subscriber mode (a RESP3 client runs anything between its pushes).
            self._reject(cmd, subscriber_refusal(self._full_name(cmd, args)))
            return
        if self.server.loading and ("write" in cmd.flags or "readonly" in cmd.flags):
            # Redis answers LOADING while it loads its data; this node is still linking
            # to its peers (it would answer NOQUORUM). Clients retry on LOADING.
            self._reject(cmd, ERR_LOADING)
            return
        if self.server.script_busy is not None:
            busy = self.server.scripts.busy_reply(args)
            if busy is not None:
                self._reject(cmd, busy)
                return
        if self.tx is not None and cmd.name not in NOT_QUEUED:
            self.tx.append((cmd, args))
            self.reply(resp.QUEUED)
            return
        server = self.server
        if server.pause_until and server.paused_for(cmd):
            self.postponed = args  # runs when the pause ends (server.end_pause)
            self.hold()
            server.postponed.append(self)
            return
        given = args  # as the client sent it (MONITOR shows it so)
        # The keys as stored for the selected database (the same list in database 0).
        args = map_args(cmd, args, self.db, self.cluster_view)
        watchers = server.watchers
        marked = watchers.wrote(cmd, args) if server.watch_states else None
        mode = self.reply_mode
        if mode != "on":
            self.silent = True
            if mode == "skip":
                self.reply_mode = "on"
        name = cmd.name
        if cmd.subcommands and len(args) > 1:
            sub = args[1].decode("utf-8", "replace").lower()
            if sub in cmd.subcommands:
                name = name + "|" + sub
        stat = server.callstats.stat(name)
        if self.server.monitors:
            feed(self.server.monitors, cmd, given, self.db, self.peer)
        self.last_cmd = name
        self.last_active = self.node.now
        self.server.commands_processed += 1
        before = len(self.waiting)
        try:
            reply = self._run(cmd, args, stat)
        finally:
            self.silent = False
        if marked:
            # Its reply: given at once, or in the slot it holds (filled later).
            slot = self.waiting[before] if len(self.waiting) > before else None
            now = reply if slot is None else slot.data
            if now is None:
                if slot is not None:
                    slot.marked = marked
            elif now[:1] == b"-":
                unmark(marked, now)

    def _run(self, cmd: Command, args: list[bytes], stat: Any) -> bytes | None:
        """Run the command; its reply when it answered at once (else a slot waits)."""
        stats = self.server.callstats
        started = _perf_ns()
        # The reply slots the command takes (defer, put_ok) count its failures in `stat`
        # as they are made (no lookup of the slot in `waiting` after it ran).
        self.running_stat = stat
        if cmd.name in ROUTED and self.server.affinity.forward(self, cmd.name, args):
            self.running_stat = None
            stats.ran(stat, _perf_ns() - started, args, self)
            return None
        before = len(self.waiting)
        try:
            if self.server.notify_flags:
                reply = run_notifying(cmd, self, args)  # keyspace notifications
            else:
                reply = cmd.handler(self, args)
        except Exception:
            self.running_stat = None
            log.exception("command %s failed", cmd.name)
            reply = resp.error(f"ERR internal error executing '{cmd.name}'")
            if len(self.waiting) > before:
                self.waiting[before].set(reply)
                stats.ran(stat, _perf_ns() - started, args, self)
                return None
        self.running_stat = None
        stats.ran(stat, _perf_ns() - started, args, self)
        if reply is not None:
            if reply[:1] == b"-":
                stat.failed += 1
            self.reply(reply)
        return reply

    @staticmethod
    def _full_name(cmd: Command, args: list[bytes]) -> str:
        """`config|get` for a subcommand, as Redis names it in errors."""
        if cmd.subcommands and len(args) > 1:
            sub = args[1].decode("utf-8", "replace").lower()
            if sub in cmd.subcommands:
                return f"{cmd.name}|{sub}"
        return cmd.name

    def push(self, data: bytes) -> None:
        """A pub/sub message or a MONITOR line: after the replies still awaited, so a
        RESP2 client never sees one in the middle of them; the output limit of the pubsub
        class applies."""
        if self.transport is None or self.closing:
            return
        if self.waiting:
            self.waiting.append(ReplySlot(None, data))
        else:
            self.out.append(data)
            self.server.mark_dirty(self)

    def reply(self, data: bytes) -> None:
        if data[:1] == b"-":
            self.server.callstats.error(data)
        if self.silent:
            if self.waiting:
                slot = ReplySlot(None, data)
                slot.stat = DROP
                self.waiting.append(slot)
            return
        if self.waiting:
            self.waiting.append(ReplySlot(None, data))  # counted when it goes out
        else:
            self._charge_reply(len(data))
            self.out.append(data)
            self.server.mark_dirty(self)

    def defer(self) -> ReplySlot:
        slot = ReplySlot(self)
        slot.stat = DROP if self.silent else self.running_stat
        self.waiting.append(slot)
        return slot

    def defer_blocking(self) -> ReplySlot:
        """A reply slot that may legitimately stay empty for long (WAIT 0)."""
        slot = BlockingSlot(self)
        slot.stat = DROP if self.silent else self.running_stat
        self.waiting.append(slot)
        return slot

    # --- blocking commands (commands/blocking.py) --------------------------------------

    def start_blocking(self) -> None:
        """A blocking command started: run none of the later commands until it answers
        (`end_blocking`)."""
        self.blocked = True

    def park(self, waiter: Any) -> bool:
        """Its first attempt found nothing: the client waits (the core's `waiter`), with
        a timer for its deadline. False if the client is gone."""
        if self.transport is None or self.closing:
            self.blocked = None
            return False
        self.blocked = waiter
        deadline = waiter.deadline
        if deadline:
            delay = (deadline - self.node.now + 1) / 1000
            if delay < BLOCK_TIMER_MAX_S and self.server.loop is not None:
                self.block_timer = self.server.loop.call_later(delay, self._block_deadline)
        return True

    def _block_deadline(self) -> None:
        self.block_timer = None
        server = self.server
        server.set_now()
        self.node.blocking.expire(self.node.now)
        server.pump()

    def end_blocking(self) -> None:
        """The blocking command answered: go on with the commands that came after it."""
        self.blocked = None
        timer = self.block_timer
        if timer is not None:
            self.block_timer = None
            timer.cancel()
        if self.transport is not None and not self.closing and not self.resume_scheduled \
                and self.server.loop is not None:
            self.resume_scheduled = True
            self.server.loop.call_soon(self._resume)

    def _forget_block(self) -> None:
        """The connection is gone: the core forgets its waiter."""
        blocked = self.blocked
        self.blocked = None
        timer = self.block_timer
        if timer is not None:
            self.block_timer = None
            timer.cancel()
        if blocked is not True:
            self.node.blocking.cancel(blocked)

    def unstick(self, now: float) -> bool:
        """Answer a reply that has waited more than STUCK_S with an error.

        Every operation behind a reply ends within its own timeout, so a reply still
        missing long after can only come from a bug (a completion callback that raised);
        without this, the client and every reply queued behind it would wait forever.
        A plan of many steps (COPY of a collection of a million elements, a slice a
        step) takes longer, but each step ends within its timeout: the wait counts from
        its last step (`ReplySlot.touch`). True if a reply was given up on."""
        waiting = self.waiting
        head = waiting[0] if waiting else None
        if head is None or head.data is not None or type(head) is BlockingSlot \
                or head.stream is not None:  # (sent as fast as the client reads it)
            self.watched = None
            return False
        if self.watched is None or self.watched[0] is not head \
                or self.watched[2] != head.steps:
            self.watched = (head, now, head.steps)
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
        # Unsent replies mean this client is marked dirty already (every append to
        # `out` marks it, `flush` empties it): one mark a flush, not one a reply.
        marked = len(out) > 0
        while waiting and waiting[0].data is not None:
            slot = waiting.popleft()
            data = slot.data
            assert data is not None
            if slot.stat is DROP:
                continue
            if slot.stat is not None and data[:1] == b"-":
                slot.stat.failed += 1
                self.server.callstats.error(data)
            self._charge_reply(len(data))
            out.append(data)
        if waiting and self.streaming is None:
            stream = waiting[0].stream
            if stream is not None:  # its turn: its start goes with the replies before it
                self.streaming = stream
                self.stream_fresh = True
                self._charge_reply(stream.size())
                out.append(stream.before)
        if out and not marked:
            self.server.mark_dirty(self)
        if self.paused:
            self._schedule_resume()

    def flush(self) -> None:
        t = self.transport
        if t is None:
            self.out.clear()
            return
        if self.out:
            data = b"".join(self.out)
            self.server.net_output += len(data)
            t.write(data)
            self.out.clear()
            self.turn_out = 0
            if self.traced:
                trace = self.server.trace
                if trace is not None:
                    trace.written(self)
            # Redis' client classes: a client subscribed to anything is a pubsub client.
            limit = self.server.limits.output["pubsub" if self.subscribed else "normal"]
            if not limit.none and self._over_output_limit(limit, t.get_write_buffer_size()):
                return
        if self.streaming is not None:
            if self.stream_fresh and self.server.loop is not None:
                # Its first slice after the loop polled for input again: the turn that
                # made the reply (a search, a random pick or a merge over a million
                # elements, in a peer's sync answer) had its share; encoding 16,384
                # rows more in it held the node 20-35 ms longer (bench/hostile.py
                # --trace). Two hops: callbacks made ready during an event run before
                # the next poll, so one hop would still run ahead of other input.
                if not self.stream_scheduled:
                    self.stream_scheduled = True
                    self.server.loop.call_soon(self._stream_after_poll)
            else:
                self._stream(t)
        if self.closing and not self.waiting:
            t.close()

    # --- replies sent from the store (server/streamed.py) ------------------------------

    def send_stored(self, slot: Any, key: bytes, value: Any, before: bytes,
                    after: bytes, span: tuple[int, int] | None = None) -> bool:
        """Fill `slot` with `before`, a large value a read left in the store
        (core/shape.py Unread; with `span`, its bytes lo to hi) and `after`, the value
        written a slice at a time over the next loop turns. False if that cannot be (a
        stand-in's slot: EXEC, scripts; too many values pinned; the key holds another
        object now): the caller reads the value whole."""
        if not self.may_stream(slot):
            return False
        pinned = self.node.pin_value(key, value)
        if pinned is None:
            return False
        self._fill_streamed(slot, pinned_reply(pinned, before, after, span))
        return True

    def send_pinned(self, slot: Any, pinned: tuple[Any, Pinned], before: bytes,
                    after: bytes) -> bool:
        """`send_stored` of a value pinned already (Node.pin_value), whose pin the reply
        then releases when sent; False as `send_stored` (the caller still holds the pin)."""
        if not self.may_stream(slot):
            return False
        self._fill_streamed(slot, pinned_reply(pinned, before, after))
        return True

    def send_streamed(self, slot: Any, reply: Streamed) -> bool:
        """Fill `slot` with a reply written over the next loop turns (a collection's
        reply encoded a slice at a time). False if that cannot be (a stand-in's slot:
        EXEC, scripts): the caller gives the reply whole."""
        if not self.may_stream(slot):
            return False
        self._fill_streamed(slot, reply)
        return True

    def may_stream(self, slot: Any) -> bool:
        """Whether `slot` (this client's own) can still take a reply written over turns."""
        return type(slot) is ReplySlot and slot.conn is self and slot.data is None \
            and self.transport is not None and not self.closing

    def _fill_streamed(self, slot: ReplySlot, reply: Streamed) -> None:
        if slot.stat is DROP:  # CLIENT REPLY OFF / SKIP
            reply.release()
            slot.set(b"")
            return
        slot.stream = reply
        self.slot_filled()

    def _stream(self, t: asyncio.Transport) -> None:
        """Write the next slices of the reply being streamed (its `turn` bytes at most,
        and none while the transport is over its high-water mark), its end once it is
        all written."""
        stream = self.streaming
        assert stream is not None
        self.stream_fresh = False
        budget = stream.turn
        if not stream.alive():  # the store closed under it (the node stops)
            self._end_stream()
            self.drop()
            return
        while budget > 0 and not self.write_blocked:
            chunk = stream.next_slice()
            if not chunk:  # (None: all written; empty: the rest in the next turns)
                break
            self.server.net_output += len(chunk)
            t.write(chunk)
            budget -= len(chunk)
        if stream.done():
            slot = self.waiting[0]
            self._end_stream()
            slot.stream = None
            slot.data = stream.after
            self.slot_filled()  # its end, and the replies after it
        elif not self.write_blocked:
            self._schedule_stream()

    def _schedule_stream(self) -> None:
        if not self.stream_scheduled and self.server.loop is not None:
            self.stream_scheduled = True
            self.server.loop.call_soon(self._stream_turn)

    def _stream_after_poll(self) -> None:
        """The first hop of a fresh reply's first slice (`flush`): the second runs it."""
        self.stream_scheduled = False
        self._schedule_stream()

    def _stream_turn(self) -> None:
        self.stream_scheduled = False
        t = self.transport
        if t is not None and self.streaming is not None and not self.write_blocked:
            # timed as "stream": a turn of a reply written over turns (its slice encoded)
            trace = self.server.trace
            if trace is None:
                self._stream(t)
                return
            started = trace.begin()
            self._stream(t)
            trace.took("stream", started)

    def _forget_waiting(self) -> None:
        """Drop the replies not sent yet, releasing those to be written over turns (a
        pinned value or view: core/viewpin.py) that had not started."""
        for slot in self.waiting:
            stream = slot.stream
            if stream is not None and stream is not self.streaming:
                slot.stream = None
                stream.release()
        self.waiting.clear()

    def _end_stream(self) -> None:
        """Let go of the stored value being streamed (sent, or the client is gone)."""
        stream = self.streaming
        if stream is not None:
            self.streaming = None
            stream.release()

    def _over_output_limit(self, limit: Any, used: int) -> bool:
        """Close the client if its unsent output passed client-output-buffer-limit."""
        over, self.obuf_soft_since = limit.over(used, self.obuf_soft_since, time.monotonic())
        if over:
            log.warning("Client %s closed for overcoming of output buffer limits.",
                        self.describe())
            self.drop()
        return over

    def close_after_reply(self) -> None:
        self.closing = True
        self.server.mark_dirty(self)

    def protocol_error(self, detail: str) -> None:
        """Redis answers malformed input with an error and closes the connection."""
        self.protocol_error_raw(detail.encode())

    def protocol_error_raw(self, detail: bytes) -> None:
        self.reply(b"-ERR Protocol error: " + detail + b"\r\n")
        self.closing = True  # closed once the replies to earlier commands are out
        self.parser.clear()
        self._account_input_quietly()
        self.server.mark_dirty(self)
