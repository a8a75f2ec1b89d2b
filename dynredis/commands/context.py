"""What a command handler may use: its `Context`, and nothing else.

A handler is `handler(c: Context, args) -> reply bytes, or None after deferring`. The
context names, and types, everything a command may touch:

  replies         `proto`, `nil`, `defer()`, `defer_blocking()`, `close_after_reply()`
  blocking pops   `may_block`, `start_blocking()`, `park(waiter)`, `end_blocking()`
  the node        `node` (NodeRequests: its requests and the placement they read), and
                  the connection's own writes `put`, `put_ok`, `incr` (remembered for
                  WAIT) with its quorum overrides `r`, `w`
  the client      `Client`: id, name, user, authentication, MULTI queue, last write ...
  the server      narrow facilities by name: `users`, `limits`, `keyscan`, `clients`,
                  `figures()`, `reset_stats()`, `cluster_port_of()`, `topology_replies`,
                  `evict_clients()`, and `retry_until()` for commands that wait (WAIT):
                  timers are the server's, never a command's

The client connection (server/client.py) implements it; `tests/unit/test_context.py`
type-checks the command modules and the connection against these Protocols (mypy), so
a handler reaching for anything not named here, or a connection that stops providing
it, fails the suite. Nothing here imports the server: the server depends on this
module, not the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.antientropy import AntiEntropy
    from ..core.blocking import Blocking, Waiter
    from ..core.changes import AdminCallback
    from ..core.clock import VV, Clock
    from ..core.collcoord import CollCoordinator
    from ..core.config import Config, Stats
    from ..core.engine import Pinned
    from ..core.graveyard import Graveyard
    from ..core.handoff import Handoff
    from ..core.localstore import LocalStore
    from ..core.membership import Membership
    from ..core.probes import HeldOp
    from ..core.quorum import Result
    from ..core.ring import Ring
    from ..core.shape import Unread
    from ..core.transfers import Transfers
    from ..core.watches import Watches
    from ..server.streamed import Streamed
    from .table import Command

Done = Callable[["Result"], Any]
"""A request's completion callback: called with (error or None, object or None)."""


class Slot(Protocol):
    """A reply position reserved by `defer()`, filled once the answer is known."""

    def set(self, reply: bytes) -> None: ...


class NodeRequests(Protocol):
    """The node as a command sees it (core/node.py `Node`): its request entry points and
    the membership and placement a reply may describe. Time is the node's `now` (ms),
    set by the server before each event."""

    @property
    def name(self) -> str: ...
    @property
    def now(self) -> int: ...
    @property
    def cfg(self) -> Config: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def members(self) -> set[str]: ...
    @property
    def down(self) -> set[str]: ...
    @property
    def ring(self) -> Ring: ...
    @property
    def local(self) -> LocalStore: ...
    @property
    def coll(self) -> CollCoordinator: ...  # commands on hashes, sets, sorted sets, lists
    @property
    def blocking(self) -> Blocking: ...  # clients blocked on keys here (BLPOP ...)
    @property
    def watches(self) -> Watches: ...  # the keys watched for them, on their replicas
    @property
    def graveyard(self) -> Graveyard: ...  # frees big containers a slice a loop turn

    @property
    def hints(self) -> int: ...  # hints kept for down primaries

    def member_status(self, peer: str) -> str: ...

    def owned_partitions(self) -> list[int]: ...

    def in_flight(self) -> int: ...  # operations waiting on answers

    def get(self, key: bytes, cb: Done, r: int | None = None, whole: bool = True) -> None: ...

    # `get` whose `cb` gets the sibling a plain GET sees (obj.read_value), not the object
    def get_value(self, key: bytes, cb: Callable[[tuple[str | None, Any]], Any],
                  r: int | None = None, whole: bool = True) -> None: ...

    def put(self, key: bytes, ctx: VV | None, data: Any, expire_at: int,
            cb: Done, w: int | None = None) -> None: ...

    def stored_range(self, key: bytes, value: Unread, start: int, end: int
                     ) -> bytes | None: ...

    def pin_value(self, key: bytes, value: Unread) -> tuple[Any, Pinned] | None: ...

    def incr(self, key: bytes, delta: int, cb: Done, w: int | None = None) -> None: ...

    def held_by(self, key: bytes, written: Clock, cb: Callable[[int], None],
                enough: int | None = None) -> HeldOp: ...

    def flush_all(self, cb: Done) -> None: ...

    def admin(self, op: str, args: list[str], cb: AdminCallback) -> None: ...

    # what INFO dynamo reports of the mechanisms
    @property
    def membership(self) -> Membership: ...
    @property
    def anti_entropy(self) -> AntiEntropy: ...
    @property
    def handoff(self) -> Handoff: ...
    @property
    def transfers(self) -> Transfers: ...


class AclUser(Protocol):
    """An ACL user, as the commands that show or check one use it."""

    @property
    def name(self) -> str: ...
    @property
    def nopass(self) -> bool: ...

    def getuser(self, proto: int) -> bytes: ...

    def describe(self) -> str: ...

    def denial(self, cmd: Command, args: list[bytes]) -> tuple[str, str] | None: ...


class Users(Protocol):
    """The cluster's ACL users (server/acl_table.py)."""

    def get(self, name: str) -> AclUser | None: ...

    def names(self) -> list[str]: ...

    def default_open(self) -> bool: ...

    def restrictions(self, name: str) -> Any: ...

    def authenticate(self, name: str, password: bytes) -> AclUser | None: ...

    def set_user(self, name: str, rules: list[str]) -> None: ...

    def delete(self, name: str) -> bool: ...


class Limits(Protocol):
    """The client limits CONFIG GET/SET read and change (server/limits.py)."""

    maxclients: int
    query_buffer: int
    output: dict[str, Any]  # client class -> server.limits.OutputLimit
    maxmemory_clients: int


Answer = Callable[[tuple], None]


class KeyWalks(Protocol):
    """Cluster-wide keyspace walks (cluster/keyscan.py); `own`: this node's own
    partitions only (a connection on the cluster port); `db`: the numbered database
    walked (keys come back as its clients name them). `keyspace` counts every database."""

    def scan(self, cursor: int, count: int, match: bytes | None, want: bool | str,
             own: bool, cb: Answer, db: int = 0) -> None: ...

    def keys(self, match: bytes | None, own: bool, cb: Answer, db: int = 0) -> None: ...

    def dbsize(self, own: bool, cb: Answer, db: int = 0) -> None: ...

    def keyspace(self, own: bool, cb: Answer) -> None: ...

    def randomkey(self, own: bool, cb: Answer, db: int = 0) -> None: ...


class Retry(Protocol):
    """A wait the server times for a command (see Context.retry_until)."""

    def again(self) -> None:
        """Ask once more after the pause, if the deadline is not that close and the
        client is still connected (else nothing: the deadline answers, or no one
        is left to answer)."""

    def stop(self) -> None:
        """The command has its answer: no more asking, no deadline."""


@dataclass
class ServerFigures:
    """What the server knows of itself, for INFO, LASTSAVE and CONFIG GET (the commands
    render it)."""

    build: str  # compiled, or pure and why (dynredis/native.py)
    run_id: str
    port: int
    tls_port: int
    cluster_port: int
    started: float  # unix time
    actor: str  # hex
    engine: str
    durability: str
    loading: bool  # not yet heard from its peers
    connected_clients: int
    maxclients: int
    connections_received: int
    commands_processed: int
    flushes: int
    peer_writes: int
    client_writes: int
    client_read_pauses: int
    rejected_connections: int
    evicted_clients: int
    peer_links_accepted: int
    peer_links_refused: int
    bind: str = ""  # the addresses it listens on
    # pub/sub on this node: its clients' channels, patterns and shard channels, and the
    # messages it delivered to them
    pubsub_channels: int = 0
    pubsub_patterns: int = 0
    pubsubshard_channels: int = 0
    pubsub_delivered: int = 0
    calls: Any = None  # commands/callstats.py CallStats
    clients_memory: int = 0  # bytes all clients make the node hold
    net_input: int = 0  # bytes read from clients
    net_output: int = 0  # bytes written to clients
    reads_processed: int = 0
    ops_per_sec: int = 0  # instantaneous_ops_per_sec (server/opsrate.py)
    last_save: float = 0.0  # unix time the last sync to disk ended, else the start (LASTSAVE)
    saving: bool = False  # a background sync runs or is scheduled (BGSAVE)
    saves: int = 0  # SAVEs and BGSAVEs started
    save_failed: bool = False  # the last sync to disk failed (retried: storage/syncretry.py)
    # commands handed to their key's first up replica (cluster/affinity.py): handed to
    # another node, taken from others, failed (the target lost), waiting for an answer
    affinity_handed: int = 0
    affinity_taken: int = 0
    affinity_failed: int = 0
    affinity_in_flight: int = 0


class Client(Protocol):
    """A client connection's own state, as CLIENT, AUTH, HELLO, MULTI and WAIT see it."""

    @property
    def id(self) -> int: ...
    @property
    def peer(self) -> str: ...  # its address
    @property
    def local(self) -> str: ...  # the address it connected to
    @property
    def last_cmd(self) -> str: ...
    @property
    def cluster_view(self) -> bool: ...  # on the cluster port (own partitions only)
    @property
    def last_write(self) -> tuple[bytes, Clock] | None: ...  # WAIT's: key, object
    @property
    def blocked(self) -> Any: ...  # a blocking pop in progress: True during its first
    # attempt, then its core/blocking.Waiter while it waits; None: none (CLIENT UNBLOCK)

    name: bytes | None
    lib_name: str
    lib_ver: str
    proto: int
    authed: bool
    user: str
    perms: Any  # the user's restrictions (server/acl_users.User), None: may run all
    r: int | None  # this connection's R and W (DYN.QUORUM), None: the node's
    w: int | None
    db: int  # the selected database (commands/databases.py: handlers get keys as stored)
    tx: list[tuple[Command, list[bytes]]] | None  # MULTI's queue
    tx_failed: bool
    @property
    def subs(self) -> Any: ...  # its pub/sub subscriptions (server/subscriptions.SubState)
    reply_mode: str  # CLIENT REPLY: on, off, skip
    silent: bool  # the running command's reply is dropped (CLIENT REPLY OFF/SKIP)
    watch: Any  # WATCH's state (commands/watch.py WatchState), None: nothing watched

    no_evict: bool  # CLIENT NO-EVICT on: never closed by maxmemory-clients

    def age(self) -> int: ...

    def idle(self) -> int: ...  # seconds since its last command

    def query_bytes(self) -> int: ...  # input not parsed into arguments yet (qbuf)

    def argv_bytes(self) -> int: ...  # arguments of the command being read (argv-mem)

    def output_bytes(self) -> int: ...  # replies not written yet (omem)

    def kill(self) -> None: ...  # CLIENT KILL: closed at once, its unsent replies lost


class Context(Client, Protocol):
    """Everything a command handler may use (see the module docstring)."""

    # --- replies
    @property
    def nil(self) -> bytes: ...

    def defer(self) -> Slot: ...

    def defer_blocking(self) -> Slot: ...

    def close_after_reply(self) -> None: ...

    # --- blocking pops (commands/blocking.py)
    @property
    def may_block(self) -> bool: ...  # False in EXEC and in scripts: no waiting there

    def start_blocking(self) -> None:
        """Run none of this client's later commands until `end_blocking`."""

    def park(self, waiter: Waiter) -> bool:
        """The command waits (the core's `waiter`), until its deadline at the latest;
        False if the client is gone (the caller then forgets the waiter)."""
        ...

    def end_blocking(self) -> None:
        """The blocking command answered: go on with the client's later commands."""
    def start_monitor(self) -> None: ...  # MONITOR: this client gets every command's line

    def monitor_feed(self, cmd: Command, args: list[bytes]) -> None: ...  # (MULTI's queue)

    def pause_clients(self, until: int, writes_only: bool) -> None: ...  # CLIENT PAUSE

    def unpause_clients(self) -> None: ...

    def shutdown_node(self) -> bool: ...  # SHUTDOWN: stop this node (False: it cannot)

    # --- the node, and this connection's writes (remembered for WAIT)
    @property
    def node(self) -> NodeRequests: ...

    def put(self, key: bytes, ctx: VV | None, data: Any, expire_at: int,
            cb: Done, w: int | None = None) -> None: ...

    def put_ok(self, key: bytes, data: bytes, expire_at: int) -> None: ...

    def send_stored(self, slot: Slot, key: bytes, value: Unread, before: bytes,
                    after: bytes, span: tuple[int, int] | None = None) -> bool: ...

    def send_pinned(self, slot: Slot, pinned: tuple[Any, Pinned], before: bytes,
                    after: bytes) -> bool: ...

    def send_streamed(self, slot: Slot, reply: Streamed) -> bool: ...

    def may_stream(self, slot: Slot) -> bool: ...

    def incr(self, key: bytes, delta: int, cb: Done, w: int | None = None) -> None: ...

    # --- the server's facilities
    @property
    def users(self) -> Users: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def keyscan(self) -> KeyWalks: ...
    @property
    def scripts(self) -> Any: ...  # Lua scripts and functions (server/scripts.py)
    @property
    def affinity(self) -> Any: ...  # handing commands to a key's coordinator (cluster/affinity.py)
    @property
    def pubsub(self) -> Any: ...  # pub/sub and keyspace notifications (server/subscriptions.py)
    @property
    def callstats(self) -> Any: ...  # command figures, slow log (commands/callstats.py)
    @property
    def watchers(self) -> Any: ...  # the keys this node's clients WATCH (commands/watch.py)
    @property
    def clients(self) -> Mapping[int, Client]: ...
    @property
    def topology_replies(self) -> dict[tuple[str, int], tuple[tuple, bytes]]: ...

    def figures(self) -> ServerFigures: ...

    def reset_stats(self) -> None: ...

    def save(self, schedule: bool) -> str:
        """Start a sync of this node's storage to disk in the background (server/app.py
        `save`): "started", "scheduled", "busy" or "memory"."""
        ...

    def sync_state(self) -> tuple[int, int, bool]:
        """The storage engine's syncs ended, those failed, whether one runs or waits."""
        ...

    def evict_clients(self) -> None: ...

    def cluster_port_of(self, member: str) -> int: ...

    def retry_until(self, timeout_ms: int, every_ms: int, ask: Callable[[], None],
                    expired: Callable[[], None]) -> Retry:
        """Call `ask` again `every_ms` after each `Retry.again()`, and `expired` at
        the deadline (`timeout_ms` from now; 0: none), each as an event of its own
        (the node's clock set before, its effects sent after), until `Retry.stop()`."""
        ...
