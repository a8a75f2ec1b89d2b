"""Instructions per SET and per GET on an in-process coordinator, counted by callgrind.

A coordinator `Node` and its two replicas (N=3, R=2, W=2) live in this process, each
over its own engine (memory, or LMDB in a temporary directory), and are driven the
way the server drives them: a loop turn runs `--pipeline` requests (SET: a plain write
with the node's own context; GET: a quorum read of a key written before, every one a
hit), then ends as the server's turn ends (completions run, the outbox is taken, each
peer's messages go through the real wire encoding and decoding, `server.wire`), and
the replicas' answers come back the same way. The clock is simulated (1 ms a turn) and
no timer ticks run, so a run is deterministic: only the request path is counted.
Engines are committed every `COMMIT_EVERY` turns, as the buffered group commit does.

With `--down`, the third node is down from the start (killed): the coordinator counts
it down, nothing is delivered to it, and each write keeps a hint for it (no fallback
stands in on three nodes), as in the failure rows' killed state.

With `--face`, the coordinator is a whole `NodeServer` (memory engine unless `--engine`
says otherwise) and the requests come as RESP bytes into one client connection: the
figures then add the Redis face (request parsing, the command table, the command, the
reply slots and their encoding) to the node's cost. Its peer links write into buffers
that are delivered the same way, and its loop is a list of callbacks run at the end of
each turn. With `--nodes 1` that server is a cluster of its own (N=1 R=1 W=1), as
`bench/run.py`'s dynredis-1node: the face and the local path with no peer at all.

Instructions are counted by valgrind's callgrind over the whole process. To leave out
start-up (imports, engines, the first requests that fill caches) each figure is the
difference between two runs that differ only in the number of requests measured:

    per SET = (I(sets=big) - I(sets=small)) / (big - small)
    per GET = (I(sets=big, gets=big) - I(sets=big, gets=small)) / (big - small)

The figures cover the coordinator and both replicas (everything one request costs the
cluster), with the compiled build when it is current (see dynredis/native.py: the
build in use is printed).

Usage:
    python bench/callgrind.py                      # callgrind, memory engine, -P 16
    python bench/callgrind.py --engine lmdb --pipeline 1
    python bench/callgrind.py --face               # through a client connection
    python bench/callgrind.py --engine lmdb --value-size 1024 --small 500 --big 3000
    python bench/callgrind.py --face --server      # the nodes' code only (SERVER_ENTRIES)
    python bench/callgrind.py --face --server --nodes 1 --engine lmdb   # a 1-node cluster
    python bench/callgrind.py --engine lmdb --server --down   # node 3 killed: hints
    python bench/callgrind.py --run --sets 1000    # one plain run (no valgrind)
"""

from __future__ import annotations

import argparse
import functools
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMMIT_EVERY = 4  # turns between group commits (the buffered mode's timer, roughly)
VALUE = b"x" * 64  # redis-benchmark's -d 64
T0 = 1_000_000_000_000  # the simulated clock's start (ms)
MISSING_FROM = 10**9  # --missing GETs ask for keys from this one on (never written)


def key_of(i: int) -> bytes:
    return b"key:%012d" % i  # redis-benchmark's key:__rand_int__


class Cluster:
    """Three in-process nodes and the wire between them."""

    def __init__(self, engine: str, data_dir: str, down: bool = False) -> None:
        from dynredis.core.node import Config, Node
        from dynredis.core.ring import new_ring
        from dynredis.storage import open_engine

        self.names = ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]
        ring = new_ring(self.names, 256)
        self.nodes: dict[str, Any] = {}
        self.engines: dict[str, Any] = {}
        for i, name in enumerate(self.names):
            path = os.path.join(data_dir, f"n{i}")
            os.makedirs(path, exist_ok=True)
            eng = open_engine(engine, path, "buffered")
            self.engines[name] = eng
            self.nodes[name] = Node(name, b"actor%d" % i, eng, Config(n=3, r=2, w=2),
                                    ring=ring, members=set(self.names))
        self.now = T0
        self.turns = 0
        self.done = 0
        self.dead = {self.names[2]} if down else set()
        for name in self.dead:
            self.nodes[self.names[0]].peer_down(name)

    def end_of_event(self, name: str) -> dict[str, list[tuple]]:
        """What the server does at the end of a node's event: run completions, take
        the outbox."""
        node = self.nodes[name]
        while node.done:
            done = node.done
            node.done = []
            for cb, result in done:
                cb(result)
        node.ring_changed = False
        return node.take_outbox() if node.outbox else {}

    def deliver(self, src: str, box: dict[str, list[tuple]]) -> None:
        """Send every peer its messages through the wire encoding; each receiver
        handles its frame as one event and answers the same way."""
        from dynredis.server.wire import batch, unframe

        for dst, msgs in box.items():
            if dst in self.dead:
                continue
            frame = batch(msgs)
            body = frame[frame.index(b"\r\n") + 2 : -2]
            node = self.nodes[dst]
            node.now = self.now
            for msg in unframe(body):
                node.on_message(src, msg)
            reply = self.end_of_event(dst)
            if reply:
                self.deliver(dst, reply)

    def turn(self, coordinator: str, requests: list[Callable[[Any], None]]) -> None:
        self.now += 1
        node = self.nodes[coordinator]
        node.now = self.now
        for request in requests:
            request(node)
        box = self.end_of_event(coordinator)
        if box:
            self.deliver(coordinator, box)
        self.turns += 1
        if self.turns % COMMIT_EVERY == 0:
            for name, eng in self.engines.items():
                if name not in self.dead:
                    eng.commit(False, wait=True)

    def close(self) -> None:
        for name, eng in self.engines.items():
            if name not in self.dead:
                eng.close()


def run(engine: str, pipeline: int, sets: int, gets: int, keys: int = 0,
        down: bool = False) -> int:
    """SET keys 0..sets-1 (or 0..keys-1 over and over: overwrites), then GET keys
    0..gets-1, through the first node; returns how many requests got a reply."""
    from dynredis import native
    from dynredis.core import obj as objmod
    from dynredis.server.app import _tune_gc

    print(f"build: {native.running()}", file=sys.stderr)
    data_dir = tempfile.mkdtemp(prefix="dynredis-callgrind-")
    try:
        cluster = Cluster(engine, data_dir, down)
        _tune_gc()
        coordinator = cluster.names[0]
        answered = [0]

        def written(result: tuple) -> None:
            assert result[0] is None, result[0]
            answered[0] += 1

        def read(result: tuple) -> None:
            assert result[0] is None, result[0]
            sib = objmod.read_value(result[1], cluster.now)
            assert sib is not None and sib[2] == VALUE
            answered[0] += 1

        def set_request(key: bytes) -> Callable[[Any], None]:
            return lambda node: node.put(key, None, VALUE, 0, written)

        def get_request(key: bytes) -> Callable[[Any], None]:
            return lambda node: node.get(key, read)

        for start in range(0, sets, pipeline):
            cluster.turn(coordinator, [set_request(key_of(i % keys if keys else i))
                                       for i in range(start, min(sets, start + pipeline))])
        for start in range(0, gets, pipeline):
            cluster.turn(coordinator, [get_request(key_of(i % keys if keys else i))
                                       for i in range(start, min(gets, start + pipeline))])
        for name, node in cluster.nodes.items():
            if name not in cluster.dead:
                node.local.fold_some(1 << 62)  # folds every written key into the hash trees
        cluster.close()
        assert answered[0] == sets + gets, (answered[0], sets, gets)
        return answered[0]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


class _Loop:
    """The server's loop as far as a turn needs it: callbacks run at the turn's end."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], Any]] = []
        # The nodes' calls pass no arguments: a C-level append, as uvloop's call_soon is
        # C, so that the stand-in's own Python is not counted inside the nodes' entries.
        self.call_soon = self.soon.append

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """The scripting service's worker posts its results."""
        self.soon.append(lambda: fn(*args))

    def run(self) -> None:
        while self.soon:
            soon = self.soon[:]
            self.soon.clear()
            for fn in soon:
                fn()


class _Transport:
    """A transport that keeps what was written to it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        # C-level methods (as uvloop's are), not Python ones counted inside the nodes.
        self.write = self.sent.append
        self.writelines = self.sent.extend
        self.get_write_buffer_size = int  # () -> 0

    def take(self) -> bytes:
        out = b"".join(self.sent)
        self.sent.clear()
        return out

    def get_extra_info(self, name: str) -> None:
        return None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


def count_replies(reader: Any, data: bytes) -> int:
    """The replies complete in `data` (and what `reader`, a hiredis.Reader, held before
    it); none may be an error."""
    import hiredis

    reader.feed(data)
    count = 0
    while (reply := reader.gets()) is not False:
        assert not isinstance(reply, hiredis.ReplyError), reply
        count += 1
    return count


def run_face(pipeline: int, sets: int, gets: int, engine: str = "memory",
             nodes: int = 3, keys: int = 0, missing: bool = False) -> int:
    """As `run`, with the coordinator a NodeServer fed RESP through a client connection
    (alone with `nodes` 1: N=1 R=1 W=1); returns how many replies came back. With
    `missing`, the GETs ask for keys never written (nil replies)."""
    import hiredis

    from dynredis import native
    from dynredis.core.node import Config, Node
    from dynredis.core.ring import new_ring
    from dynredis.server.app import NodeOptions, NodeServer, _tune_gc
    from dynredis.server.client import ClientConnection
    from dynredis.server.peers import PeerLink
    from dynredis.server.wire import unframe
    from dynredis.storage import open_engine

    print(f"build: {native.running()}", file=sys.stderr)
    data_dir = tempfile.mkdtemp(prefix="dynredis-callgrind-")
    try:
        n, quorum = (1, 1) if nodes == 1 else (3, 2)
        srv = NodeServer(NodeOptions(port=7000, bind="10.0.0.1", data_dir=data_dir,
                                     engine=engine, n=n, r=quorum, w=quorum))
        loop = _Loop()
        srv.loop = loop  # type: ignore[assignment]
        names = [srv.name, "10.0.0.2:7000", "10.0.0.3:7000"][:nodes]
        ring = new_ring(names, 256)
        srv.node.members = set(names)
        srv.node.ring = ring
        srv.loading = False
        # The server's clock is the simulated one (1 ms a turn), as the nodes' is in
        # `run`: with the wall clock, a turn slowed by valgrind passed the server's
        # turn_ms and paused the client (a resume per turn, counted per request).
        clock = [srv.wall_clock()]  # (from the time the server started at)
        srv.wall_clock = lambda: clock[0]  # type: ignore[method-assign]
        replicas: dict[str, Any] = {}
        links: dict[str, _Transport] = {}
        for i, name in enumerate(names[1:]):
            eng = open_engine("memory", os.path.join(data_dir, f"n{i}"), "buffered")
            replicas[name] = Node(name, b"actor%d" % i, eng, Config(n=3, r=2, w=2),
                                  ring=ring, members=set(names))
            link = PeerLink(srv, name)
            link.transport = links[name] = _Transport()  # type: ignore[assignment]
            srv.links[name] = link
        conn = ClientConnection(srv)
        client = _Transport()
        conn.connection_made(client)  # type: ignore[arg-type]
        _tune_gc()
        replies = hiredis.Reader()
        readers = {name: hiredis.Reader() for name in links}
        answered = 0
        turns = 0

        def deliver() -> None:
            """Every peer's frames from the coordinator to the replica, its answers back
            to the coordinator, until none are left."""
            while any(t.sent for t in links.values()):
                for name, t in links.items():
                    data = t.take()
                    if not data:
                        continue
                    frames = readers[name]  # one per link, as PeerInbound's
                    frames.feed(data)
                    node = replicas[name]
                    node.now = srv.node.now
                    while (body := frames.gets()) is not False:
                        for msg in unframe(body):
                            node.on_message(srv.name, msg)
                    while node.done:
                        done, node.done = node.done, []
                        for cb, result in done:
                            cb(result)
                    node.ring_changed = False
                    back = node.take_outbox() if node.outbox else {}
                    for msgs in back.values():
                        srv.set_now()
                        for msg in msgs:
                            srv.node.on_message(name, msg)
                        srv.pump()
                loop.run()

        def turn(requests: bytes) -> None:
            nonlocal answered, turns
            clock[0] += 0.001
            conn.data_received(requests)
            loop.run()
            deliver()
            answered += count_replies(replies, client.take())
            turns += 1
            if turns % COMMIT_EVERY == 0:
                for node in [srv.node, *replicas.values()]:
                    node.engine.commit(False, wait=True)

        # A client's requests, each made by one format (the client's work, not the
        # node's: kept small in the count).
        set_format = b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
        get_format = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n"
        size = len(VALUE)
        def get_key(i: int) -> bytes:
            return key_of(MISSING_FROM + i if missing else i % keys if keys else i)

        for start in range(0, sets, pipeline):
            turn(b"".join([set_format % (len(k), k, size, VALUE) for k in
                           [key_of(i % keys if keys else i)
                            for i in range(start, min(sets, start + pipeline))]]))
        for start in range(0, gets, pipeline):
            turn(b"".join([get_format % (len(k), k) for k in
                           [get_key(i) for i in range(start, min(gets, start + pipeline))]]))
        for node in [srv.node, *replicas.values()]:
            node.local.fold_some(1 << 62)  # folds every written key into the hash trees
        assert answered == sets + gets, (answered, sets, gets)
        return answered
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run_clients(clients: int, pipeline: int, sets: int, gets: int,
                engine: str = "memory") -> int:
    """As `run_face`, with every node a NodeServer (the replicas too: their peer links'
    reading, their turn's end and their sends are counted) and `clients` client
    connections on the first, each sending `pipeline` requests a loop turn in a read
    of its own: `--clients 8 --pipeline 1` is a turn of redis-benchmark -c 50 -P 1 as
    a coordinator sees it (about 8 clients ready per turn, one request each). Peer
    frames go through the links' real framing into each receiver's PeerInbound."""
    import hiredis

    from dynredis import native
    from dynredis.core.ring import new_ring
    from dynredis.server.app import NodeOptions, NodeServer, _tune_gc
    from dynredis.server.client import ClientConnection
    from dynredis.server.peers import PeerInbound, PeerLink

    print(f"build: {native.running()}", file=sys.stderr)
    data_dir = tempfile.mkdtemp(prefix="dynredis-callgrind-")
    try:
        loop = _Loop()
        clock = [0.0]
        servers: list[Any] = []
        for i in range(3):
            srv = NodeServer(NodeOptions(port=7000, bind=f"10.0.0.{i + 1}",
                                         data_dir=os.path.join(data_dir, f"n{i}"),
                                         engine=engine, n=3, r=2, w=2))
            srv.loop = loop  # type: ignore[assignment]
            clock[0] = srv.wall_clock()
            # (a C-level call, as time.time is)
            srv.wall_clock = functools.partial(operator.getitem, clock, 0)  # type: ignore[method-assign]
            srv.loading = False
            servers.append(srv)
        names = [srv.name for srv in servers]
        ring = new_ring(names, 256)
        wires: list[tuple[_Transport, Any]] = []  # (a link's transport, its receiver)
        for srv in servers:
            srv.node.members = set(names)
            srv.node.ring = ring
            for other in servers:
                if other is srv:
                    continue
                link = PeerLink(srv, other.name)
                t = _Transport()
                link.transport = t  # type: ignore[assignment]
                srv.links[other.name] = link
                inbound = PeerInbound(other, srv.name, _Transport())  # type: ignore[arg-type]
                other.inbound.add(inbound)
                wires.append((t, inbound))
        conns = []
        for _ in range(clients):
            conn = ClientConnection(servers[0])
            t = _Transport()
            conn.connection_made(t)  # type: ignore[arg-type]
            conns.append((conn, t, hiredis.Reader()))
        _tune_gc()
        answered = 0
        turns = 0

        def deliver() -> None:
            """Every link's bytes to its receiver, a read each, until none are left."""
            while any(t.sent for t, _ in wires):
                for t, inbound in wires:
                    data = t.take()
                    if data:
                        inbound.data_received(data)
                loop.run()

        def turn(requests: list[bytes]) -> None:
            nonlocal answered, turns
            clock[0] += 0.001
            for (conn, _, _), data in zip(conns, requests, strict=True):
                if data:
                    conn.data_received(data)
            loop.run()
            deliver()
            for _, t, replies in conns:
                answered += count_replies(replies, t.take())
            turns += 1
            if turns % COMMIT_EVERY == 0:
                for srv in servers:
                    srv.engine.commit(False, wait=True)

        set_format = b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
        get_format = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n"
        size = len(VALUE)
        per_turn = clients * pipeline

        def requests(fmt: Callable[[bytes], bytes], start: int, end: int) -> list[bytes]:
            keys = [key_of(i) for i in range(start, min(end, start + per_turn))]
            return [b"".join(fmt(k) for k in keys[c * pipeline:(c + 1) * pipeline])
                    for c in range(clients)]

        for start in range(0, sets, per_turn):
            turn(requests(lambda k: set_format % (len(k), k, size, VALUE), start, sets))
        for start in range(0, gets, per_turn):
            turn(requests(lambda k: get_format % (len(k), k), start, gets))
        for srv in servers:
            srv.node.local.fold_some(1 << 62)
        assert answered == sets + gets, (answered, sets, gets)
        return answered
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


# With --server: the functions through which this script enters the nodes' code (the
# compiled build's names for them). Instructions are counted only inside them, so the
# figure leaves out this script's own work: building the requests, hiredis readers made
# per delivery, the stand-in loop and transports (about half of a -P 1 request's count).
SERVER_ENTRIES = (
    "CPyPy_client___ClientConnection___data_received",  # a client's requests
    "CPyPy_node___Node___on_message",  # a peer message, at a replica or the coordinator
    "CPyPy_peers___PeerInbound___data_received",  # a peer's frames (--clients)
    "CPyPy_node___Node___put", "CPyPy_node___Node___get",  # requests (without --face)
    "CPyPy_node___Node___take_outbox",
    "CPyPy_app___NodeServer___flush", "CPyPy_app___NodeServer___pump",
    "CPyPy_app___NodeServer___set_now",
    "CPyPy_wire___batch", "CPyPy_wire___unframe",  # peer frames made and read
    "CPyPy_localstore___LocalStore___fold_some",  # folds the writes into the hash trees
    "CPyPy_lmdb_engine___LmdbEngine___commit",  # the group commit
)


# Entries of the requests without --face only (the script calls them itself).
NODE_REQUESTS = ("CPyPy_node___Node___put", "CPyPy_node___Node___get")


def instructions(args: argparse.Namespace, sets: int, gets: int) -> int:
    """Instructions callgrind counts for one run of this script."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    if args.server:
        # Through a client connection (--face, --clients), Node.put and Node.get run
        # inside data_received (called as Python calls where a command holds the node
        # untyped): as entries they toggled counting off inside it, leaving out the
        # coordinator's whole read or write (--clients left them out until this said so).
        through_client = args.face or args.clients
        entries = [f for f in SERVER_ENTRIES if not (through_client and f in NODE_REQUESTS)]
        cmd += ["--collect-atstart=no", *(f"--toggle-collect={f}" for f in entries)]
    cmd += [sys.executable, os.path.abspath(__file__), "--run", "--engine", args.engine,
           "--pipeline", str(args.pipeline), "--sets", str(sets), "--gets", str(gets),
           "--value-size", str(args.value_size), "--keys", str(args.keys)]
    if args.down:
        cmd.append("--down")
    if args.face:
        cmd += ["--face", "--nodes", str(args.nodes)]
    if args.clients:
        cmd += ["--clients", str(args.clients)]
    if args.out:
        cmd[2] = f"--callgrind-out-file={args.out}-{sets}-{gets}"
    if args.missing:
        cmd.append("--missing")
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"callgrind run failed:\n{proc.stderr[-3000:]}")
    found = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
    if found is None:
        sys.exit(f"no instruction count in callgrind's output:\n{proc.stderr[-3000:]}")
    build = re.search(r"^build: (.*)$", proc.stderr, re.M)
    if build and args.verbose:
        print(f"  ({build.group(1)}) sets={sets} gets={gets}: {int(found.group(1)):,}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=("memory", "lmdb"), default="memory")
    ap.add_argument("--pipeline", type=int, default=16, help="requests per loop turn")
    ap.add_argument("--small", type=int, default=2000, help="requests in the short run")
    ap.add_argument("--big", type=int, default=12000, help="requests in the long run")
    ap.add_argument("--face", action="store_true",
                    help="requests as RESP through a client connection of a NodeServer")
    ap.add_argument("--nodes", type=int, choices=(1, 3), default=3,
                    help="with --face: 1 for a cluster of one node (N=1 R=1 W=1)")
    ap.add_argument("--clients", type=int, default=0,
                    help="every node a NodeServer, this many client connections each "
                         "sending --pipeline requests a turn (8 with -P 1: redis-benchmark "
                         "-c 50 -P 1's turns)")
    ap.add_argument("--out", help="keep callgrind's files as OUT-SETS-GETS")
    ap.add_argument("--run", action="store_true", help="one run, no valgrind")
    ap.add_argument("--sets", type=int, default=1000)
    ap.add_argument("--value-size", type=int, default=64,
                    help="bytes per value (redis-benchmark's -d)")
    ap.add_argument("--gets", type=int, default=0)
    ap.add_argument("--keys", type=int, default=0,
                    help="distinct keys the SETs cycle through (0: each SET a new key)")
    ap.add_argument("--missing", action="store_true",
                    help="with --face: the GETs ask for keys never written (nil replies)")
    ap.add_argument("--server", action="store_true",
                    help="count only inside the nodes' code (compiled build only), not this "
                         "script's driving of them")
    ap.add_argument("--down", action="store_true",
                    help="the third node down: the coordinator keeps a hint per write")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    global VALUE
    VALUE = b"x" * args.value_size
    if args.run:
        if args.clients:
            run_clients(args.clients, args.pipeline, args.sets, args.gets, args.engine)
        elif args.face:
            run_face(args.pipeline, args.sets, args.gets, args.engine, args.nodes,
                     args.keys, args.missing)
        else:
            run(args.engine, args.pipeline, args.sets, args.gets, args.keys, args.down)
        # Leave without the interpreter's final collection: what it frees (every
        # object written) grows with the number of requests, so it would be counted
        # per request, and it is no request's cost.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    from dynredis import native

    native.choose()
    if args.server and native.state != "compiled":
        sys.exit("--server counts inside the compiled functions: build them first")
    print(f"build: {native.state}; engine {args.engine}; "
          f"{'through a client connection; ' if args.face else ''}"
          f"{'1 node (N=1); ' if args.face and args.nodes == 1 else ''}"
          f"{f'3 NodeServers, {args.clients} clients; ' if args.clients else ''}"
          f"-P {args.pipeline}; "
          f"{args.value_size}-byte values; "
          f"{f'{args.keys} keys; ' if args.keys else ''}"
          f"{'GETs of keys never written; ' if args.missing else ''}"
          f"{'node 3 down; ' if args.down else ''}"
          f"{args.big - args.small} requests measured per figure"
          f"{'; inside the nodes only (--server)' if args.server else ''}")
    small, big = args.small, args.big
    set_small = instructions(args, small, 0)
    set_big = instructions(args, big, 0)
    get_small = instructions(args, big, small)
    get_big = instructions(args, big, big)
    per_set = (set_big - set_small) / (big - small)
    per_get = (get_big - get_small) / (big - small)
    print(f"instructions per SET: {per_set:,.0f}")
    print(f"instructions per GET: {per_get:,.0f}")


if __name__ == "__main__":
    main()
