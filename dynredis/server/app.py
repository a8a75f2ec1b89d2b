"""The asyncio shell around one node: listener, peer links, timers, group commit.

It only moves bytes and time. Each loop turn: requests and peer messages go into
the node, finished operations' callbacks run, and at the end of the turn (one
`call_soon`) staged writes are committed if the durability mode demands it before
anything is acknowledged, then every peer's messages go out as one write and every
client's replies as one write.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import signal
import ssl
import time
from collections.abc import Callable
from typing import Any, Final

from .. import commands as _commands  # noqa: F401  (registers the command table)
from .. import native
from ..cluster.affinity import Affinity
from ..cluster.keyscan import KeyScan
from ..cluster.ports import ClusterPorts, default_cluster_port
from ..commands.callstats import CallStats
from ..commands.collection import run_forwarded
from ..commands.context import ServerFigures
from ..commands.gate import KeyGate
from ..commands.notify import run as run_notifying
from ..commands.table import lookup
from ..commands.watch import Watchers
from ..core import driver
from ..core.config import Config
from ..core.node import Node
from ..scripting.service import Scripts
from ..storage import open_engine
from . import tls
from .acl_table import UserTable
from .client import ClientConnection
from .latency import LatencyTrace
from .latereport import LateReport
from .limits import Limits, fit_maxclients, give_back_freed_memory, trim_freed_memory
from .opsrate import OpsRate
from .peerauth import Acceptor
from .peers import HIGH_WATER, PeerInbound, PeerLink
from .subscriptions import PubSub
from .wire import encode_pieces, small_frame


def resp_error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"

log = logging.getLogger("dynredis.server")

TICK_S = 0.05
# A tick this much later than due means the loop was busy (a large value encoded or
# committed, a long command): requests in flight get the time back (Node.stalled).
STALL_S = 0.05
# The wall clock (node.now) moving this much more or less than the monotonic clock
# between two ticks is a step (a paused virtual machine's clock set again, a manual
# date), not drift: requests in flight and the failure detector get it back
# (Node.clock_stepped). Drift corrections are slews, well under a millisecond a tick.
CLOCK_STEP_MS = 100
CLOCK_READ_S = 0.01  # the two clocks read further apart than this: not compared
COMMIT_INTERVAL_S = {"none": 0.1, "buffered": 0.005, "fsync": 0.005}
RECLAIM_FSYNC_S = 0.1  # fsync mode: the commit timer's reclaim of a wiped db at most this often
SYNC_INTERVAL_S = 1.0
# Messages queued for peers after which they are sent at once rather than at the end
# of the loop turn: a deep pipeline (or a big batch from a peer) then keeps the
# replicas (or the coordinator) busy while the rest is parsed, instead of the
# processes taking turns. Below it one write per peer per turn: 50 clients at -P 1
# queue at most 100 messages a turn, and splitting those cost 10% of GET throughput.
PEER_SEND_AT: Final = 256
# A client's commands run for at most this long in one go (ms) before the node serves
# the others and comes back to it: one read of many slow commands does not freeze it.
TURN_MS = 10
# A settle's chains of operations that finish at once run this long, then wait for a
# later loop turn (driver.settle).
SETTLE_NS: Final = 10_000_000
ANNOUNCE_INTERVAL_S = 2.0  # how often a node tells its peers its cluster port
UNSTICK_INTERVAL_S = 1.0  # how often clients are checked for a lost reply
# Members named by gossip but not yet proven (see admit_gossip): how many are dialled
# at once, and for how long each before it is forgotten.
CANDIDATES_MAX = 64
CANDIDATE_TTL_S = 10.0
PROVEN_MAX = 4096
WILDCARDS = ("0.0.0.0", "::")  # listen on every (IPv4, IPv6) address


@dataclasses.dataclass
class NodeOptions:
    port: int = 7000
    # The port for cluster-aware clients (see README "Cluster-aware clients"): None for
    # port + 10000, 0 for none.
    cluster_port: int | None = None
    # The address(es) to listen on: one, or several separated by spaces or commas (as
    # Redis' bind); 0.0.0.0 or :: for every address (then announce_ip is needed).
    bind: str = "127.0.0.1"
    # What peers and clients should use for this node, where it differs from what it
    # listens on (NAT, containers): its address, main port and cluster port.
    announce_ip: str | None = None
    announce_port: int | None = None
    announce_cluster_port: int | None = None
    zone: str = ""  # the node's zone (rack, data center): replicas spread across zones
    data_dir: str = "./data/node"
    seeds: tuple[str, ...] = ()
    n: int = 3
    r: int = 2
    w: int = 2
    ring_size: int = 256
    timeout_ms: int = 2000
    ae_interval_ms: int = 200
    tombstone_grace_ms: int = 600_000
    phi_threshold: float = 8.0
    object_cache_max_memory: int = 64 << 20
    engine: str = "lmdb"
    durability: str = "buffered"
    requirepass: str | None = None
    # The secret peers prove to each other (server/peerauth.py). There is none built
    # in: the CLI reads it from a file or the environment, or makes one (credentials.py);
    # a node given none and no seeds gets a random one nobody else knows.
    cluster_secret: str = ""
    tls_port: int = 0
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_cert_file: str | None = None
    tls_auth_clients: str = "yes"
    tls_cluster: bool = False  # peers dial each other's TLS port
    # Follow one request in this many through the node (server/latency.py; DYN.LATENCY):
    # 0, off.
    latency_trace: int = 0

    @property
    def bind_addresses(self) -> list[str]:
        return [a for a in self.bind.replace(",", " ").split() if a]

    @property
    def name(self) -> str:
        """The node's name in the ring: the address its peers dial (its TLS port with
        --tls-cluster yes), as announced; CLUSTER SLOTS/SHARDS/NODES give it to clients."""
        host = self.announce_ip or self.bind_addresses[0]
        port = self.announce_port or (self.tls_port if self.tls_cluster else self.port)
        return f"{host}:{port}"

    def check_addresses(self) -> None:
        """Refuse a name peers could not dial."""
        addrs = self.bind_addresses
        if not addrs:
            raise ValueError("--bind needs an address")
        if not self.announce_ip and addrs[0] in WILDCARDS:
            raise ValueError(f"--bind {addrs[0]} listens on every address: give "
                             "--announce-ip, the address peers and clients should use")
        if self.announce_ip is not None and (not self.announce_ip or any(
                c in self.announce_ip for c in " ,@")):
            raise ValueError(f"--announce-ip {self.announce_ip!r} is not an address")
        for what, port in (("--announce-port", self.announce_port),
                           ("--announce-cluster-port", self.announce_cluster_port)):
            if port is not None and not 0 < port <= 65535:
                raise ValueError(f"{what} must be between 1 and 65535")


def _callback_failed(exc: Exception) -> None:
    log.error("completion callback failed", exc_info=exc)


# (Final: every event's pump passes it from a C global, not by a lookup in the module's dict.)
_CALLBACK_FAILED: Final = _callback_failed


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the request path.

    Request handling allocates only acyclic objects (freed by reference counting),
    and the data cache holds bytes, which the collector never tracks. With the
    default thresholds the collector still walks every in-flight request hundreds
    of times a second (a third of a busy node's CPU); freezing what startup made
    and raising the young-generation threshold leaves it for the rare real cycles.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class NodeServer:
    def __init__(self, opts: NodeOptions) -> None:
        if opts.durability not in COMMIT_INTERVAL_S:
            raise ValueError("durability must be none, buffered or fsync")
        if not opts.cluster_secret and opts.seeds:
            raise ValueError("a node with seeds needs the cluster's secret")
        tls.check_options(opts.tls_port, opts.tls_cert_file, opts.tls_key_file,
                          opts.tls_ca_cert_file, opts.tls_auth_clients, opts.tls_cluster)
        if not opts.port and not opts.tls_port:
            raise ValueError("the node needs a --port or a --tls-port")
        opts.check_addresses()
        self.opts = opts
        self.name = opts.name
        # The wall clock every event and every command starts by reading (set_now): an
        # attribute, read natively (a module-level name was a dict lookup at each read;
        # tests that move the clock replace it).
        self.wall_clock: Callable[[], float] = time.time
        self.secret = opts.cluster_secret or os.urandom(32).hex()
        self.requirepass = opts.requirepass
        self.client_tls: ssl.SSLContext | None = None
        self.peer_tls: ssl.SSLContext | None = None
        if opts.tls_port:
            try:
                self.client_tls = tls.server_context(
                    opts.tls_cert_file or "", opts.tls_key_file or "", opts.tls_ca_cert_file,
                    opts.tls_auth_clients)
                if opts.tls_cluster:
                    self.peer_tls = tls.client_context(
                        opts.tls_cert_file, opts.tls_key_file, opts.tls_ca_cert_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"TLS: {exc}") from exc
        self.peer_auth = Acceptor(self.secret.encode(), self.name, opts.tls_cluster)
        # Names that proved the secret (either way) in this process's life, and names
        # gossip brought that have not yet: name -> when they are given up on.
        self.proven: set[str] = set()
        self.candidates: dict[str, float] = {}
        os.makedirs(opts.data_dir, exist_ok=True)
        self.engine = open_engine(opts.engine, opts.data_dir, opts.durability)
        started = driver.boot(self.engine, opts.durability, os.urandom(8))
        if started.renewed:
            log.warning("unclean shutdown in %s durability: new clock identity",
                        opts.durability)
        self.actor = started.actor
        ring, members = started.ring, started.members
        config = Config(n=opts.n, r=opts.r, w=opts.w,
                        q=ring.q if ring is not None else opts.ring_size,
                        timeout_ms=opts.timeout_ms, ae_interval_ms=opts.ae_interval_ms,
                        tombstone_grace_ms=opts.tombstone_grace_ms,
                        phi_threshold=opts.phi_threshold, zone=opts.zone,
                        cache_max_memory=opts.object_cache_max_memory)
        self.node = Node(self.name, self.actor, self.engine, config, ring=ring, members=members,
                         seeds=opts.seeds, rng=random.Random())
        self.cluster_port = (default_cluster_port(opts.port or opts.tls_port)
                             if opts.cluster_port is None else opts.cluster_port)
        # Extra peer message kinds: cluster ports, and cluster-wide keyspace walks.
        self.cluster_ports = ClusterPorts(
            self.node, opts.announce_cluster_port or self.cluster_port)
        # ACL users, the same on every node (extra peer message kind "acl").
        self.users = UserTable(self.node, self.engine, opts.requirepass)
        self.users.on_change = self._users_changed
        self._walk_scheduled = False
        self.keyscan = KeyScan(self.node, wake=self._walk_soon)
        self.node.coll.store.wake = self._walk_soon
        self.node.coll.spent = self._settle_spent
        self.node.graveyard.wake = self._walk_soon
        node = self.node
        # Collection commands other nodes forward to this replica (commands rebuild them).
        node.coll.remote = lambda payload, answer: run_forwarded(node, payload, answer)
        # A script past busy-reply-threshold: other commands are answered BUSY.
        self.script_busy: Any = None
        # Read-then-writes of one key run one at a time (commands/gate.py), at the key's
        # first up replica (cluster/affinity.py: extra peer message kinds "af", "afa").
        self.gate = KeyGate()
        self.affinity = Affinity(self.node, self._run_forwarded)
        # Keys this node's clients WATCH: writes through this node mark them.
        self.watchers = Watchers()
        # Its set of WATCH states (never rebound), read at every command: a native
        # attribute of this server, not a lookup in the (interpreted) Watchers.
        self.watch_states: set[Any] = self.watchers.states
        # Command figures: INFO commandstats/errorstats/latencystats, SLOWLOG, LATENCY.
        self.callstats = CallStats()
        self.monitors: list[ClientConnection] = []  # MONITOR clients (commands/monitor.py)
        # CLIENT PAUSE: until when (node ms, 0: not paused), whether only writes wait,
        # and the clients whose command waits for it to end.
        self.pause_until = 0
        self.pause_writes_only = False
        self.postponed: list[ClientConnection] = []
        self._forward_conn: ClientConnection | None = None
        # Pub/sub across the cluster and keyspace notifications (cluster/pubsub.py:
        # extra peer message kinds "pp", "ppa", "pq", "pqa", "pne").
        self.pubsub = PubSub(self.node)
        # notify-keyspace-events' bits, as pubsub.flags (kept in step by it): every
        # command reads them here (a native attribute) to know whether to notify.
        self.notify_flags = self.pubsub.flags
        self.pubsub.flags_changed = self._notify_flags_changed
        self._next_announce = 0.0
        self._next_unstick = 0.0
        self._tick_due = 0.0  # when the next tick should run (monotonic; 0: first)
        # The wall clock minus the monotonic one at the last tick (seconds): a change
        # is a step of the wall clock (`_follow_clock_step`).
        self._wall_offset = self.wall_clock() - time.monotonic()
        self.late_report = LateReport()  # collection commands that timed out: logged
        # Set by `stop`: the engine is closed, and the timers that fire while the
        # event loop winds down (the tick, the commit timer, a flush) do nothing.
        self.stopped = False
        self.clients: dict[int, ClientConnection] = {}
        self.limits = Limits()
        self.client_count = 0  # connections counted against maxclients (not peers)
        self.input_held = 0  # client input held, all clients (see ClientConnection.held)
        self.rejected_connections = 0  # refused: maxclients
        self.evicted_clients = 0  # closed: maxmemory-clients
        self.trim_owed = False  # a client left replies or input unread (limits.trim_...)
        self.peer_obuf_since: dict[str, float] = {}  # see _peer_output_over
        # CLUSTER SLOTS/SHARDS/NODES replies with the topology they describe (see
        # commands/cluster.py): (subcommand, protocol) -> (topology, reply)
        self.turn_ms = TURN_MS
        self.topology_replies: dict[tuple[str, int], tuple[tuple, bytes]] = {}
        self.links: dict[str, PeerLink] = {}  # ours to each peer
        self.inbound: set[PeerInbound] = set()  # each peer's to us
        self.dirty: list[ClientConnection] = []
        # `flush` bound once: scheduled once or twice a request (a bound method made
        # at each schedule was an attribute lookup and an object).
        self.flush_soon: Callable[[], None] = self.flush
        self.flush_scheduled = False
        # Not in fsync mode (see send_peers_if_backlogged): a replica's acknowledgement
        # must not leave before the turn's group commit (the coordinator's own sends
        # could, but one rule is simpler).
        self.send_peers_early = opts.durability != "fsync"
        self.commands_processed = 0
        self.ops_rate = OpsRate()  # INFO's instantaneous_ops_per_sec
        self.flushes = 0
        self.peer_writes = 0
        self.client_writes = 0
        self.connections_received = 0
        self.net_input = 0  # bytes read from clients
        self.net_output = 0  # bytes written to clients
        self.reads_processed = 0  # reads from client sockets
        self.paused_clients = 0  # times a client was not read: too many commands in flight
        self._client_ids = 0
        self.started = time.time()
        self.started_mono = time.monotonic()
        # Until the node has heard from its peers, data commands answer -LOADING (a
        # node alone, without seeds, has no one to wait for).
        self.loading = bool(self.node.members - {self.name}) or bool(opts.seeds)
        self.stop_event: asyncio.Event | None = None  # set: serve_forever stops the node
        self.run_id = os.urandom(20).hex()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.base_events.Server | None = None
        self.tls_server: asyncio.base_events.Server | None = None
        self.cluster_server: asyncio.base_events.Server | None = None
        self._last_sync = time.monotonic()
        self.saves = 0  # SAVEs and BGSAVEs started (INFO rdb_saves)
        self.save_scheduled = False  # a BGSAVE SCHEDULE waits for the running sync
        self._last_reclaim = 0.0  # (fsync mode: when the timer last reclaimed)
        # The latency breakdown (server/latency.py), when it is on.
        self.trace: LatencyTrace | None = None
        self.set_now()
        # Lua scripts and functions (their own thread; extra peer message kinds "rg*").
        self.scripts = Scripts(self)
        # Callbacks a settle left to later turns (driver.settle's `spent`), and when the
        # settle running now first asked whether its time is spent (0: not yet).
        self._settle_left: list[tuple[Any, Any]] = []
        self._settle_from = 0

    def _notify_flags_changed(self, flags: int) -> None:
        self.notify_flags = flags

    # --- the loop turn ---------------------------------------------------------------

    def set_now(self) -> None:
        self.node.now = int(self.wall_clock() * 1000)

    def next_client_id(self) -> int:
        self._client_ids += 1
        self.connections_received += 1
        return self._client_ids

    def pump(self) -> None:
        """End an event as the driver contract says (core/driver.py: callbacks, saved
        membership) and schedule the end-of-turn flush."""
        if self.stopped:
            return
        node = self.node
        left = driver.settle(node, _CALLBACK_FAILED, self._settle_spent)
        self._settle_from = 0  # (the next event's time starts at its first ask)
        if left is not None:
            self._settle_left.extend(left)
            self._walk_soon()
        if (node.outbox or self.dirty) and not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush_soon)  # type: ignore[union-attr]

    def _settle_spent(self) -> bool:
        """Whether a settle ran its chains of callbacks, or the collection coordinator
        a key's queued commands (CollCoordinator.spent), for SETTLE_NS in this event
        (timed from the first time it is asked since the last pump ended: a settle asks
        before its first callback, a walk step as it starts; both shared one budget, a
        walk's commands and its callbacks). What they leave runs in the walk's step, in
        the coming loop turns: the other events of this turn would each run it again.
        Timed from the first ask after the first callback (or command), a walk step
        ran two or three of each: 71-80 ms for 33 pipelined SORT BY of 100,000, whose
        slices are 20-30 ms each."""
        now = time.monotonic_ns()
        if not self._settle_from:
            self._settle_from = now
            return False
        return now - self._settle_from > SETTLE_NS

    def mark_dirty(self, conn: ClientConnection) -> None:
        """`conn` has output to write at the end of this turn: listed once (its flag)."""
        if conn.marked_dirty:
            return
        conn.marked_dirty = True
        self.dirty.append(conn)
        if not self.flush_scheduled and self.loop is not None:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush_soon)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.stopped:
            return
        self.flushes += 1
        trace = self.trace
        if trace is not None:
            self._traced_flush(trace)
            return
        # In fsync mode staged writes are committed before any acknowledgement leaves.
        self._send(driver.release(self.node, self.engine, self.opts.durability == "fsync"))
        self._flush_clients()

    def _traced_flush(self, trace: LatencyTrace) -> None:
        """`flush`, timed: the group commit (fsync mode) on its own, then the whole."""
        started = trace.begin()
        if self.opts.durability == "fsync" and self.engine.pending():
            self.engine.commit(True)  # (what driver.release would do first)
            trace.took("group_commit", started)
            trace.committed()
        self._send(driver.release(self.node, self.engine, self.opts.durability == "fsync"))
        self._flush_clients()
        trace.took("flush", started)

    def reply_early(self) -> None:
        """Write the replies a peer's answers just completed now, not at the end of the
        loop turn: that turn goes on to read every other ready client (at -P 16, 50
        clients' 800 commands), and a finished reply waited through it (the `flush`
        stage of `make latency`: a quarter of a request's time). Not in fsync mode, whose
        replies wait for the group commit (`flush`)."""
        if self.dirty and self.opts.durability != "fsync":
            self._flush_clients()

    def _flush_clients(self) -> None:
        if self.dirty:
            dirty = self.dirty
            self.dirty = []
            self.client_writes += len(dirty)
            for conn in dirty:  # (each once: mark_dirty lists a connection once)
                conn.marked_dirty = False  # (before its flush, which may mark it again)
                conn.flush()

    def send_peers(self) -> None:
        """Send every peer its queued messages now (never in fsync mode: no commit)."""
        self._send(driver.release(self.node, self.engine, False))

    def _send(self, outbox: dict[str, list[tuple]]) -> None:
        """One write per peer."""
        if outbox:
            self.peer_writes += len(outbox)
            for peer, msgs in outbox.items():
                link = self.link(peer)
                if not self._peer_output_over(link):
                    data = small_frame(msgs)
                    if data is not None:
                        link.send_frame(data)
                    else:
                        link.send(encode_pieces(msgs))
            if self.trace is not None:
                self.trace.sent()

    def _peer_output_over(self, link: PeerLink) -> bool:
        """client-output-buffer-limit's `slave` class, for the links to peers (what a
        Redis primary sends its replicas, a node sends its peers): a link whose unsent
        output, before this write, passed the limit is cut (its messages are lost, as
        Dynamo allows; the link reconnects). Measured before the write, and without the
        bulk batch being written (PeerLink.waiting), so that a value bigger than the
        limit still goes."""
        t = link.transport
        limit = self.limits.output["slave"]
        if t is None or limit.none:
            return False
        waiting = link.waiting()
        if not link.writing_paused and limit.under(HIGH_WATER + waiting):
            # Its transport holds at most HIGH_WATER unsent (past it, it would have
            # paused the link): under the limit without asking it (a Python-level call
            # per peer per turn).
            if self.peer_obuf_since:
                self.peer_obuf_since.pop(link.name, None)
            return False
        used = t.get_write_buffer_size() + waiting
        if limit.under(used):  # every send of a healthy link: nothing to time
            if self.peer_obuf_since:
                self.peer_obuf_since.pop(link.name, None)
            return False
        since = self.peer_obuf_since.get(link.name, 0.0)
        over, since = limit.over(used, since, time.monotonic())
        self.peer_obuf_since[link.name] = since
        if over:
            log.warning("link to peer %s closed for overcoming of output buffer limits "
                        "(%d bytes unsent, %d of them waiting behind a batch being "
                        "written)", link.name, link.unsent(), waiting)
            self.peer_obuf_since[link.name] = 0.0
            t.abort()
        return over

    def evict_clients(self) -> None:
        """maxmemory-clients: while all clients together hold more than it, close the
        one holding the most (Redis' client eviction; peers are never evicted, nor the
        clients that said CLIENT NO-EVICT on)."""
        limit = self.limits.maxmemory_clients
        if not limit:
            return
        sized = [(conn.memory(), conn) for conn in self.clients.values() if not conn.closing]
        total = sum(size for size, _ in sized)
        if total <= limit:
            return
        sized.sort(key=lambda pair: pair[0], reverse=True)
        for size, conn in sized:
            if total <= limit:
                break
            if conn.no_evict:
                continue  # CLIENT NO-EVICT on: counted, never closed (as in Redis)
            log.warning("Evicting client: %s (it holds %d bytes; all clients %d, "
                        "maxmemory-clients %d)", conn.describe(), size, total, limit)
            self.evicted_clients += 1
            conn.drop()
            total -= size

    def send_peers_if_backlogged(self) -> None:
        """Send the queued peer messages now, mid-turn, once there are PEER_SEND_AT
        of them (called between commands and between a peer batch's messages)."""
        if self.node.outbox_msgs >= PEER_SEND_AT and self.send_peers_early:
            self.send_peers()

    def link(self, peer: str) -> PeerLink:
        link = self.links.get(peer)
        if link is None:
            link = self.links[peer] = PeerLink(self, peer)
        return link

    def accept_peer(self, name: str, transport: asyncio.Transport, rest: bytes) -> None:
        """A client connection proved itself `name`'s link (server/client.py): its
        transport, and the input that followed the proof, go to a PeerInbound."""
        link = PeerInbound(self, name, transport)
        self.inbound.add(link)
        transport.set_protocol(link)
        if rest:
            link.received(rest)

    def peer_proven(self, peer: str) -> None:
        """`peer` proved the cluster secret, on a link to it or from it."""
        if len(self.proven) < PROVEN_MAX:
            self.proven.add(peer)
        self.candidates.pop(peer, None)

    def admit_gossip(self, src: str, msg: tuple) -> tuple:
        """A gossip message as the node may take it: members it does not know yet are
        taken only once they have proven the cluster secret (the sender, or a name this
        node linked with); the others are dialled and taken from a later gossip once
        they pass the handshake. So no one can add a member that never proved itself,
        which would be dialled forever and, never up, block tombstone reaping."""
        members = self.node.members
        taken = []
        for raw in msg[1]:
            m = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            if m in members or m == src or m in self.proven:
                taken.append(m)
            elif m not in self.candidates and len(self.candidates) < CANDIDATES_MAX:
                self.candidates[m] = time.monotonic() + CANDIDATE_TTL_S
        if len(taken) == len(msg[1]):
            return msg
        return (msg[0], tuple(taken), *msg[2:])

    def _dial_candidates(self, now: float) -> None:
        for name, until in list(self.candidates.items()):
            if now >= until or name == self.name:
                del self.candidates[name]
                link = self.links.pop(name, None)
                if link is not None and name not in self.node.members:
                    link.close()
            else:
                self.link(name).ensure_connecting()

    def peer_status(self, peer: str, up: bool) -> None:
        if peer not in self.node.members:
            return  # a candidate (admit_gossip): not the node's business yet
        if up:
            self.node.peer_up(peer)
            self.cluster_ports.tell(peer)
            self.users.tell(peer)
            self.scripts.registry.tell(peer)
            self.pubsub.cluster.tell(peer)
        else:
            self.node.peer_down(peer)
        self.pump()

    # --- the latency trace (server/latency.py) ---------------------------------------

    def trace_on(self, every: int) -> None:
        """Follow one request in `every` (a trace already on keeps its records)."""
        if self.trace is None:
            self.trace = LatencyTrace(every, self.name)
        self.trace.every = max(1, every)
        self.trace.start(self.loop)

    def trace_off(self) -> None:
        if self.trace is not None:
            self.trace.stop()
            self.trace = None
        for conn in self.clients.values():
            conn.traced = None

    # --- CLIENT PAUSE ----------------------------------------------------------------

    def paused_for(self, cmd: Any) -> bool:
        """Whether `cmd` waits for the pause to end (the pause may have ended)."""
        if self.node.now >= self.pause_until:
            self.end_pause()
            return False
        if not self.pause_writes_only:
            return True
        return "write" in cmd.flags or cmd.name in ("eval", "evalsha", "fcall")

    def pause_clients(self, until: int, writes_only: bool) -> None:
        if until > self.pause_until or not self.pause_until:
            self.pause_until = until
        # ALL wins over WRITE while both are in force, as in Redis
        self.pause_writes_only = writes_only and (self.pause_writes_only or
                                                  not self.postponed)
        if self.loop is not None:
            self.loop.call_later(max(0.0, (until - self.node.now) / 1000) + 0.001,
                                 self._pause_timer)

    def _pause_timer(self) -> None:
        self.set_now()
        if self.pause_until and self.node.now >= self.pause_until:
            self.end_pause()
            self.pump()

    def end_pause(self) -> None:
        """The pause is over: the commands it held run, in the order they came."""
        self.pause_until = 0
        self.pause_writes_only = False
        waiting, self.postponed = self.postponed, []
        for conn in waiting:
            args = conn.postponed
            conn.postponed = None
            conn.script_held = False
            if args is not None and conn.transport is not None:
                conn.execute(args)
            conn.release_hold()

    def _walk_soon(self) -> None:
        """A walk was queued (a keyspace walk for KEYS, DBSIZE or INFO keyspace; a walk
        of a collection's records after a DEL), a plan waits for a turn, the graveyard
        holds what a wipe let go of, the tick left writes to fold into the hash trees, or a
        settle left callbacks (driver.settle): run their slices in the coming loop turns,
        between other clients' requests."""
        if not self._walk_scheduled:
            self._walk_scheduled = True
            self.loop.call_soon(self._walk_step)  # type: ignore[union-attr]

    def _walk_step(self) -> None:
        self._walk_scheduled = False
        if self.stopped:
            return
        if self.flush_scheduled:
            # Replies to the input this turn read first: their flush was queued behind
            # this step, which may run a long stretch of a plan (CollCoordinator.later).
            self.flush()
        # Timed as "walk" (after the flush, timed on its own): a long slice of a walk,
        # a plan or the graveyard shows as a piece of loop work in DYN.LATENCY.
        trace = self.trace
        started = 0 if trace is None else trace.begin()
        self.set_now()
        self._settle_spent()  # (its time counts from here: commands, then callbacks)
        if self._settle_left:
            self.node.done.extend(self._settle_left)  # (settled by the pump below)
            self._settle_left = []
        more = self.keyscan.step()
        more = self.node.coll.step() or more
        more = self.node.fold_step() or more
        if self.node.graveyard.step() or more:
            self._walk_soon()
        self.pump()
        if trace is not None:
            trace.took("walk", started)

    # --- timers ----------------------------------------------------------------------

    def _tick(self) -> None:
        loop = self.loop
        assert loop is not None
        if self.stopped:
            return
        started = time.monotonic_ns() if self.trace is None else self.trace.begin()
        try:
            self._give_back_stall()
            self._follow_clock_step()
            self.set_now()
            self.node.tick()
            if self.node.fold_owed:
                self._walk_soon()  # the trees' share of the writes, a slice a turn
            if self.node.coll.late or self.node.coll.late_dropped:
                self._report_late()
            self.keyscan.tick()
            self.scripts.registry.tick()
            self.scripts.tick()
            self.affinity.tick()
            self.pubsub.tick()
            mono = time.monotonic()
            self.ops_rate.sample(mono * 1000, self.commands_processed)
            if mono >= self._next_unstick:
                self._next_unstick = mono + UNSTICK_INTERVAL_S
                for conn in list(self.clients.values()):
                    conn.unstick(mono)
                self.evict_clients()  # output counts too, and it grows without reads
                if self.trim_owed:
                    self.trim_owed = False
                    trim_freed_memory()
            if mono >= self._next_announce:
                self._next_announce = mono + ANNOUNCE_INTERVAL_S
                self.cluster_ports.announce()
                self.users.gossip()
            for peer in self.node.members:
                if peer != self.name:
                    self.link(peer).ensure_connecting()
            if self.candidates:
                self._dial_candidates(mono)
            if self.loading:
                self._check_linked(mono)
            self.pump()
            if self.node.left and self.stop_event is not None and not self.stop_event.is_set():
                log.info("node %s left the cluster and handed off its data: stopping",
                         self.name)
                self.stop_event.set()
        except Exception:
            log.exception("tick failed")
        if self.trace is not None:
            self.trace.took("tick", started)
        self._tick_due = time.monotonic() + TICK_S
        loop.call_later(TICK_S, self._tick)

    def _give_back_stall(self) -> None:
        """Before requests are timed out: if this tick runs late, the loop was busy
        and could not read their answers meanwhile; that time is given back to them."""
        due = self._tick_due
        if due:
            late = time.monotonic() - due
            if late >= STALL_S:
                self.node.stalled(int(late * 1000))

    def _follow_clock_step(self) -> None:
        """Before requests are timed out: if the wall clock (node.now) jumped ahead
        since the last tick, the time it skipped did not pass; it is given back to
        requests in flight and to the failure detector (Node.clock_stepped). A step
        back is only reported: requests in flight then wait that much longer."""
        mono = time.monotonic()
        wall = self.wall_clock()
        if time.monotonic() - mono > CLOCK_READ_S:
            return  # preempted between the two reads: measured at the next tick
        offset = wall - mono
        old, self._wall_offset = self._wall_offset, offset
        step = int((offset - old) * 1000)
        if -CLOCK_STEP_MS < step < CLOCK_STEP_MS:
            return
        before = int((mono + old) * 1000)  # now, as the old timeline runs
        if step > 0:
            log.warning("the wall clock jumped %d ms ahead of the time that passed: "
                        "requests in flight and peers' heartbeats are given it back", step)
            self.node.clock_stepped(step, before)
        else:
            log.warning("the wall clock went %d ms back: requests in flight wait that "
                        "much longer", -step)

    def _report_late(self) -> None:
        """Log the collection commands the tick timed out (server/latereport.py)."""
        coll = self.node.coll
        line = self.late_report.take(coll.late, coll.late_dropped, time.monotonic(),
                                     self._peer_state)
        coll.late = []
        coll.late_dropped = 0
        if line is not None:
            log.warning(line)

    def _peer_state(self, peer: str) -> str:
        """How a peer looks from here: the detector's verdict, this node's link to it,
        its last heartbeat."""
        node = self.node
        link = self.links.get(peer)
        if link is not None and link.transport is not None:
            how = f"linked, {link.unsent()} bytes unsent"
        elif link is not None and link.connecting:
            how = "connecting"
        else:
            how = "not linked"
        heard = node.membership.fd.heard(peer)
        since = "never" if heard is None else f"{node.now - heard} ms ago"
        return f"{node.member_status(peer)}, {how}, last heartbeat {since}"

    def _run_forwarded(self, args: list[bytes], user: str, proto: int, r: int, w: int,
                       db: int, done: Callable[[bytes], None],
                       touch: Callable[[], None] | None = None) -> None:
        """Run a command another node handed over (cluster/affinity.py) as its client
        would have run it here: same user, protocol, quorum settings and database (its
        keys come as stored, commands/databases.py; a script's as the client named
        them). `touch`: its reply's, called at each step of a plan (or of the plan it
        waits for at a key gate)."""
        from ..scripting.calls import ScriptCall

        conn = self._forward_conn
        if conn is None:
            conn = self._forward_conn = ClientConnection(self)
        cmd = lookup(args[0])
        if cmd is None:
            done(resp_error("ERR unknown command"))
            return
        self.watchers.wrote(cmd, args)
        # Its writes wait for every replica that is up, not W of them: when the client
        # hears back, no copy is still on its way to a replica (a FLUSHALL the client
        # sends next through its own node could otherwise be overtaken by one), and it
        # reads its write through any node. Not for a silent one (core/membership.py:
        # nothing heard for silent_ms since a request): a paused replica is counted down
        # seconds later, and meanwhile every handed-over SET NX, RENAME or COPY failed
        # with NOQUORUM at the request timeout, written, where a plain SET succeeded.
        node = self.node
        silent = node.membership.silent
        every = min(node.cfg.n, sum(1 for m in node.members
                                    if node.member_status(m) == "up" and m not in silent))
        call = ScriptCall(conn, proto, done, None, user=user, authed=True,
                          perms=self.users.restrictions(user), r=r or None,
                          w=max(w or node.cfg.w, every), db=db, touch=touch)
        try:
            reply = run_notifying(cmd, call, args)
        except Exception:
            log.exception("command %s failed", cmd.name)
            reply = resp_error(f"ERR internal error executing '{cmd.name}'")
        if reply is not None:
            call.set(reply)

    def _users_changed(self, names: set[str]) -> None:
        """ACL users changed (here or on another node): connections of those users get
        their new rules at once; those of a deleted user are closed, and so are those
        subscribed to a channel or pattern their user may no longer access (as Redis)."""
        users = self.users
        for conn in list(self.clients.values()):
            if conn.user not in names:
                continue
            user = users.get(conn.user)
            if user is None:
                conn.close_after_reply()
                continue
            conn.perms = users.restrictions(conn.user)
            if conn.subscribed and not user.may_keep(conn.subs):
                log.info("Closing client subscribed to channels its user may no longer "
                         "access: %s", conn.describe())
                conn.drop()

    def _check_linked(self, mono: float) -> None:
        """Serve data commands once every other member has been heard from (its link
        to this node carries answers) or counts as down (the node's startup grace),
        instead of answering NOQUORUM while the links come up after a restart. A node
        that knows no member yet but has seeds waits for them up to the same grace."""
        node = self.node
        membership = node.membership
        others = node.members - {self.name}
        waited = (mono - self.started_mono) * 1000 >= node.cfg.startup_grace_ms
        if not others and membership.seeds and not waited:
            return
        for peer in others:
            if not membership.fd.known(peer) and peer not in node.down:
                return
        self.loading = False
        log.info("node %s heard from its peers: serving", self.name)

    def _commit_timer(self) -> None:
        loop = self.loop
        assert loop is not None
        if self.stopped:
            return
        try:
            if self.save_scheduled and not self.engine.saving():
                self.save_scheduled = False
                self.engine.save()
            if self.engine.sync_retry_due(time.monotonic()):
                # a failed sync, tried again after its backoff (nothing else would
                # sync what it left until the next write)
                self.engine.commit(True, wait=False)
            elif self.opts.durability != "fsync" and self.engine.pending():
                now = time.monotonic()
                sync = (self.opts.durability == "buffered"
                        and now - self._last_sync >= SYNC_INTERVAL_S)
                # The once-a-second fsync runs in the background: the loop never
                # waits for the disk (buffered mode promises power-loss safety
                # within about a second, not at acknowledgement).
                started = time.monotonic_ns() if self.trace is None else self.trace.begin()
                self.engine.commit(sync, wait=False)
                if self.trace is not None:
                    self.trace.took("group_commit", started)
                if sync:
                    self._last_sync = now
            elif self.engine.reclaimable() and self._may_reclaim():
                started = time.monotonic_ns() if self.trace is None else self.trace.begin()
                self.engine.reclaim()
                if self.trace is not None:
                    self.trace.took("group_commit", started)  # (the timer's work)
        except Exception:
            log.exception("commit failed")
        loop.call_later(COMMIT_INTERVAL_S[self.opts.durability], self._commit_timer)

    def _may_reclaim(self) -> bool:
        """Whether the commit timer frees a slice of a wiped db now: at each idle tick,
        but in fsync mode (where a commit's own transaction frees one, and the timer's
        would fsync in the loop) every RECLAIM_FSYNC_S only."""
        if self.opts.durability != "fsync":
            return True
        now = time.monotonic()
        if now - self._last_reclaim < RECLAIM_FSYNC_S:
            return False
        self._last_reclaim = now
        return True

    # --- lifecycle -------------------------------------------------------------------

    @property
    def listen_on(self) -> str | list[str]:
        """The host argument of create_server: the address, or the addresses, to bind."""
        addrs = self.opts.bind_addresses
        return addrs[0] if len(addrs) == 1 else addrs

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.limits.maxclients = fit_maxclients(self.limits.maxclients)
        give_back_freed_memory()
        _tune_gc()
        opts = self.opts
        servers = []
        try:
            if opts.port:
                self.server = await self.loop.create_server(
                    lambda: ClientConnection(self), self.listen_on, opts.port,
                    reuse_address=True, backlog=1024)
                servers.append(self.server)
            if opts.tls_port:
                self.tls_server = await self.loop.create_server(
                    lambda: ClientConnection(self), self.listen_on, opts.tls_port,
                    reuse_address=True, backlog=1024, ssl=self.client_tls)
                servers.append(self.tls_server)
            if self.cluster_port:
                # A node that serves TLS only serves its cluster port over TLS too.
                self.cluster_server = await self.loop.create_server(
                    lambda: ClientConnection(self, cluster_view=True), self.listen_on,
                    self.cluster_port, reuse_address=True, backlog=1024,
                    ssl=None if opts.port else self.client_tls)
        except OSError:
            for server in servers:
                server.close()
            raise
        self.loop.call_later(0, self._tick)
        if opts.latency_trace > 0:
            self.trace_on(opts.latency_trace)
        self.loop.call_later(COMMIT_INTERVAL_S[opts.durability], self._commit_timer)
        log.info("node %s listening on %s port %s, TLS port %s, cluster port %s (engine=%s "
                 "durability=%s n=%d r=%d w=%d, peer links over %s)", self.name, opts.bind,
                 opts.port or "none", opts.tls_port or "none", self.cluster_port or "none",
                 self.engine.name, opts.durability, opts.n, opts.r, opts.w,
                 "TLS" if opts.tls_cluster else "TCP")

    async def serve_forever(self) -> None:
        await self.start()
        stop = self.stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()

    def request_stop(self, why: str) -> bool:
        """Stop the node as SIGTERM does (SHUTDOWN): after this turn, its store synced;
        False when it does not serve until told to stop (a node run by a test)."""
        stop = self.stop_event
        if stop is None or stop.is_set():
            return stop is not None
        log.warning("node %s stopping: %s", self.name, why)
        self.loop.call_soon(stop.set)  # type: ignore[union-attr]
        return True

    async def stop(self) -> None:
        self.stopped = True
        if self.server is not None:
            self.server.close()
        if self.tls_server is not None:
            self.tls_server.close()
        if self.cluster_server is not None:
            self.cluster_server.close()
        for link in self.links.values():
            link.close()
        for inbound in list(self.inbound):
            inbound.close()
        for conn in list(self.clients.values()):
            if conn.transport is not None:
                conn.flush()
                conn.transport.close()
        self.scripts.stop()
        driver.shutdown(self.engine)
        log.info("node %s stopped", self.name)

    # --- what commands read of the server (commands/context.py) ----------------------

    def figures(self) -> ServerFigures:
        """The server's figures for INFO, LASTSAVE and CONFIG GET (commands/info.py)."""
        return ServerFigures(
            build=native.running(),
            run_id=self.run_id,
            port=self.opts.port,
            tls_port=self.opts.tls_port,
            cluster_port=self.cluster_port,
            started=self.started,
            last_save=self.engine.synced_at or self.started,
            saving=self.engine.saving() or self.save_scheduled,
            save_failed=self.engine.last_sync_failed(),
            saves=self.saves,
            actor=self.actor.hex(),
            engine=self.engine.name,
            durability=self.opts.durability,
            loading=self.loading,
            connected_clients=len(self.clients),
            maxclients=self.limits.maxclients,
            connections_received=self.connections_received,
            commands_processed=self.commands_processed,
            ops_per_sec=self.ops_rate.per_sec(),
            flushes=self.flushes,
            peer_writes=self.peer_writes,
            client_writes=self.client_writes,
            client_read_pauses=self.paused_clients,
            rejected_connections=self.rejected_connections,
            evicted_clients=self.evicted_clients,
            peer_links_accepted=self.peer_auth.accepted,
            peer_links_refused=self.peer_auth.refusals,
            bind=" ".join(self.opts.bind_addresses),
            pubsub_channels=len(self.pubsub.subs.tables["channels"]),
            pubsub_patterns=len(self.pubsub.subs.tables["patterns"]),
            pubsubshard_channels=len(self.pubsub.subs.tables["shard"]),
            pubsub_delivered=self.pubsub.subs.delivered,
            calls=self.callstats,
            net_input=self.net_input,
            net_output=self.net_output,
            reads_processed=self.reads_processed,
            clients_memory=sum(c.memory() for c in self.clients.values()),
            affinity_handed=self.affinity.handed,
            affinity_taken=self.affinity.taken,
            affinity_failed=self.affinity.failed,
            affinity_in_flight=len(self.affinity.pending),
        )

    def save(self, schedule: bool) -> str:
        """Start a sync of this node's storage to disk in the background (SAVE, BGSAVE
        [SCHEDULE]): "started", "scheduled" (one runs: this one starts when it ends),
        "busy" (one runs, no SCHEDULE) or "memory" (nothing is kept on disk)."""
        engine = self.engine
        if engine.name == "memory":
            return "memory"
        if engine.saving():
            if not schedule:
                return "busy"
            self.save_scheduled = True
            return "scheduled"
        self.saves += 1
        engine.save()
        return "started"

    def sync_state(self) -> tuple[int, int, bool]:
        """The engine's syncs ended, those failed, and whether one runs (SAVE waits)."""
        engine = self.engine
        return engine.syncs, engine.sync_failures, engine.saving() or self.save_scheduled

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: the counters INFO stats shows start again from 0."""
        self.commands_processed = 0
        self.ops_rate.reset()
        self.connections_received = 0
        self.flushes = 0
        self.peer_writes = 0
        self.client_writes = 0
        self.net_input = self.net_output = self.reads_processed = 0
        self.callstats.reset()
        self.affinity.reset_stats()
        stats = self.node.stats  # (in place: every mechanism holds it)
        for f in dataclasses.fields(stats):
            setattr(stats, f.name, 0)
