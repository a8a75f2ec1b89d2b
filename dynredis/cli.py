"""The `dynredis` command: run a node, run or stop a local cluster, show a node's status."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import hiredis

from .localproc import pid_alive, port_free
from .server.app import NodeOptions, NodeServer


def _add_quorum_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=3, help="replicas per key (default 3)")
    p.add_argument("--r", type=int, default=2, help="read quorum (default 2)")
    p.add_argument("--w", type=int, default=2, help="write quorum (default 2)")
    p.add_argument("--engine", choices=("lmdb", "memory"), default="lmdb")
    p.add_argument("--durability", choices=("none", "buffered", "fsync"), default="buffered")
    p.add_argument("--requirepass", default=None, help="password clients must AUTH with")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--ring-size", type=int, default=256, help="partitions (power of two)")
    p.add_argument("--timeout-ms", type=int, default=2000, help="quorum request timeout")
    p.add_argument("--ae-interval-ms", type=int, default=200,
                   help="anti-entropy: one partition exchange every this many ms")
    p.add_argument("--tombstone-grace-ms", type=int, default=600_000,
                   help="deleted or expired objects are reaped after this long")
    p.add_argument("--phi-threshold", type=float, default=8.0,
                   help="failure detector: phi above which a peer counts as down")


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dynredis", description=__doc__)
    sub = top.add_subparsers(dest="cmd", required=True)

    node = sub.add_parser("node", help="run one node in the foreground")
    node.add_argument("--port", type=int, default=7000)
    node.add_argument("--cluster-port", type=int, default=None,
                      help="port for cluster-aware clients, where SCAN/KEYS/DBSIZE/RANDOMKEY "
                           "cover only this node's partitions (default: port + 10000; "
                           "0: none)")
    node.add_argument("--data-dir", default="./data/node")
    node.add_argument("--seeds", default="", help="comma-separated host:port of other nodes")
    node.add_argument("--cluster-secret", default=os.environ.get("DYNREDIS_CLUSTER_SECRET",
                                                                 "dynredis"))
    node.add_argument("--announce", default=None, help="host:port peers use for this node")
    node.add_argument("--log-level", default="INFO")
    _add_quorum_args(node)

    cl = sub.add_parser("cluster", help="run a local cluster of node processes")
    cl.add_argument("--nodes", type=int, default=3)
    cl.add_argument("--base-port", type=int, default=7000)
    cl.add_argument("--cluster-port-offset", type=int, default=10000,
                    help="each node's cluster port is its port plus this (0: none)")
    cl.add_argument("--data-dir", default="./data")
    cl.add_argument("--detach", action="store_true",
                    help="return once the cluster is up; stop it with `dynredis stop`")
    cl.add_argument("--ready-timeout", type=float, default=60.0)
    _add_quorum_args(cl)

    stop = sub.add_parser("stop", help="stop a cluster started with --detach")
    stop.add_argument("--data-dir", default="./data")

    st = sub.add_parser("status", help="print a node's INFO dynamo section")
    st.add_argument("--host", default="127.0.0.1")
    st.add_argument("--port", type=int, default=7000)
    st.add_argument("--password", default=None)
    return top


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "node":
        return run_node(args)
    if args.cmd == "cluster":
        return run_cluster(args)
    if args.cmd == "stop":
        return stop_cluster(args.data_dir)
    if args.cmd == "status":
        info = node_info(args.host, args.port, args.password)
        for k, v in info.items():
            print(f"{k}: {v}")
        return 0
    return 2


# --- one node -------------------------------------------------------------------------


def run_node(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    opts = NodeOptions(
        port=args.port, cluster_port=args.cluster_port, bind=args.bind,
        announce=args.announce, data_dir=args.data_dir,
        seeds=tuple(s.strip() for s in args.seeds.split(",") if s.strip()),
        n=args.n, r=args.r, w=args.w, ring_size=args.ring_size, timeout_ms=args.timeout_ms,
        ae_interval_ms=args.ae_interval_ms, tombstone_grace_ms=args.tombstone_grace_ms,
        phi_threshold=args.phi_threshold,
        engine=args.engine, durability=args.durability, requirepass=args.requirepass,
        cluster_secret=args.cluster_secret,
    )
    try:
        server = NodeServer(opts)
    except ValueError as exc:
        print(f"dynredis: {exc}", file=sys.stderr)
        return 2
    profile_path = os.environ.get("DYNREDIS_PROFILE")
    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        import uvloop
    except ImportError:
        asyncio.run(server.serve_forever())
    else:
        uvloop.run(server.serve_forever())
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{profile_path}.{args.port}")
    return 0


# --- a local cluster ------------------------------------------------------------------


def _command(host: str, port: int, *words: str, password: str | None = None,
             timeout: float = 2.0) -> object:
    """Send one command with a plain socket and return the parsed reply."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        reader = hiredis.Reader(encoding="utf-8")
        cmds = ([("AUTH", password)] if password else []) + [words]
        payload = b"".join(
            b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%b\r\n" % (len(w.encode()), w.encode())
                                            for w in c) for c in cmds)
        sock.sendall(payload)
        replies = []
        while len(replies) < len(cmds):
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            reader.feed(data)
            while (r := reader.gets()) is not False:
                replies.append(r)
        return replies[-1]


def node_info(host: str, port: int, password: str | None = None) -> dict[str, str]:
    text = _command(host, port, "INFO", "dynamo", password=password)
    if isinstance(text, Exception):
        raise text
    info = {}
    for line in str(text).splitlines():
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            info[k] = v
    return info


def wait_ready(host: str, ports: list[int], timeout: float, password: str | None = None,
               cluster_ports: list[int] | None = None,
               procs: list[subprocess.Popen] | None = None) -> bool:
    """True once every node answers (on its cluster port too, if given) and all agree on
    a ring that has every node; False after `timeout`, or as soon as one of `procs`
    (the node processes just started) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs or ()):
            return False
        try:
            infos = [node_info(host, p, password) for p in ports]
            pongs = [_command(host, p, "PING", password=password) for p in cluster_ports or ()]
        except (OSError, ConnectionError):
            time.sleep(0.1)
            continue
        epochs = {(i.get("ring_epoch"), i.get("ring_claimant")) for i in infos}
        if len(epochs) == 1 and all(i.get("ring_members") == str(len(ports)) for i in infos) \
                and all(not i.get("members_down") for i in infos) \
                and all(p == "PONG" for p in pongs):
            return True
        time.sleep(0.1)
    return False


NODE_LOG = "node.log"


def _pidfile(data_dir: str) -> str:
    return os.path.join(data_dir, "cluster.pids")


def run_cluster(args: argparse.Namespace) -> int:
    os.makedirs(args.data_dir, exist_ok=True)
    pids = _recorded_pids(args.data_dir)
    down = [i for i, pid in enumerate(pids) if not pid_alive(pid)]
    if pids and len(down) < len(pids):
        if not down:
            # With --detach (`make cluster`) asking for a running cluster is no error.
            print(f"dynredis: a cluster is already running on {args.data_dir} "
                  f"(stop it with: dynredis stop --data-dir {args.data_dir})",
                  file=sys.stdout if args.detach else sys.stderr)
            return 0 if args.detach else 1
        ports = _recorded_ports(args, len(pids))
        if not args.detach or len(pids) != args.nodes:
            print(f"dynredis: the cluster on {args.data_dir} runs, but its node(s) on port(s) "
                  f"{', '.join(str(ports[i]) for i in down)} are down; restart them with "
                  f"`dynredis cluster --detach --nodes {len(pids)}` (and the options it was "
                  f"started with), or stop it: dynredis stop --data-dir {args.data_dir}",
                  file=sys.stderr)
            return 1
        return _restart_down_nodes(args, pids, ports, down)
    ports = [args.base_port + i for i in range(args.nodes)]
    offset = args.cluster_port_offset
    if offset and ports[-1] + offset > 65535:
        print(f"dynredis: cluster ports (port + {offset}) would pass 65535; choose a lower "
              "--base-port or --cluster-port-offset (0: no cluster ports)", file=sys.stderr)
        return 2
    cports = _cluster_ports(args, ports)
    taken = [p for p in ports + cports if not port_free(args.bind, p)]
    if taken:
        print(f"dynredis: port(s) {', '.join(map(str, taken))} on {args.bind} are in use by "
              "another program; choose another --base-port (or --cluster-port-offset)",
              file=sys.stderr)
        return 1
    n, r, w = _quorum(args, args.nodes)
    procs = [_spawn_node(args, port, ports) for port in ports]
    _write_pidfile(args.data_dir, [(p.pid, port) for p, port in zip(procs, ports, strict=True)])

    if not wait_ready(args.bind, ports, args.ready_timeout, args.requirepass, cports, procs):
        print("dynredis: the cluster did not come up (see node.log in each node "
              "directory)" + _exits(args, procs, ports), file=sys.stderr)
        _terminate(procs)
        _forget_nodes(args.data_dir)
        return 1
    print(f"dynredis: {args.nodes}-node cluster up on {args.bind} ports "
          f"{ports[0]}-{ports[-1]} (N={n} R={r} W={w}, engine {args.engine}, "
          f"durability {args.durability}, data in {args.data_dir})")
    print(f"  connect:       redis-cli -p {ports[0]}")
    print(f"  cluster mode:  redis-cli -c -p {ports[0]}")
    if cports:
        print(f"  cluster ports: {cports[0]}-{cports[-1]} (cluster-aware clients are "
              "pointed there by CLUSTER SLOTS)")
    if args.detach:
        print(f"  stop it with:  dynredis stop --data-dir {args.data_dir}")
        return 0
    print("  press Ctrl-C to stop it")
    sys.stdout.flush()
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop:
        for p in procs:
            if p.poll() is not None and not getattr(p, "reported", False):
                p.reported = True  # type: ignore[attr-defined]
                print(f"dynredis: node pid {p.pid} exited with {p.returncode}", file=sys.stderr)
        time.sleep(0.2)
    _terminate(procs)
    _forget_nodes(args.data_dir)
    print("dynredis: cluster stopped")
    return 0


def _cluster_secret(data_dir: str) -> str:
    """The shared secret of the cluster's peer links, made on the cluster's first start."""
    secret_path = os.path.join(data_dir, "cluster.secret")
    if not os.path.exists(secret_path):
        with open(secret_path, "w") as f:
            f.write(secrets.token_hex(16))
        os.chmod(secret_path, 0o600)
    with open(secret_path) as f:
        return f.read().strip()


def _node_dir(data_dir: str, port: int) -> str:
    """The data directory of the cluster's node on `port` (its log is NODE_LOG there)."""
    return os.path.join(data_dir, f"node-{port}")


def _exits(args: argparse.Namespace, procs: list[subprocess.Popen], ports: list[int]) -> str:
    """What the nodes that exited said last (the last line of their node.log)."""
    said = []
    for p, port in zip(procs, ports, strict=True):
        if p.poll() is None:
            continue
        try:
            with open(os.path.join(_node_dir(args.data_dir, port), NODE_LOG), "rb") as f:
                lines = f.read()[-4096:].decode(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        said.append(f"\n  node on port {port} exited ({p.returncode})"
                    + (f": {lines[-1]}" if lines else ""))
    return "".join(said)


def _quorum(args: argparse.Namespace, nodes: int) -> tuple[int, int, int]:
    """N, R and W of a local cluster: no more replicas than nodes, no quorum above N."""
    n = min(args.n, nodes)
    return n, min(args.r, n), min(args.w, n)


def _spawn_node(args: argparse.Namespace, port: int, ports: list[int]) -> subprocess.Popen:
    """Start the node process of `port` (of the cluster on `ports`), logging to its
    directory's node.log."""
    offset = args.cluster_port_offset
    addrs = [f"{args.bind}:{p}" for p in ports]
    n, r, w = _quorum(args, len(ports))
    node_dir = _node_dir(args.data_dir, port)
    os.makedirs(node_dir, exist_ok=True)
    cmd = [sys.executable, "-m", "dynredis", "node", "--port", str(port),
           "--cluster-port", str(port + offset if offset else 0),
           "--bind", args.bind, "--data-dir", node_dir,
           "--seeds", ",".join(a for a in addrs if a != f"{args.bind}:{port}"),
           "--n", str(n), "--r", str(r), "--w", str(w),
           "--engine", args.engine, "--durability", args.durability,
           "--ring-size", str(args.ring_size), "--timeout-ms", str(args.timeout_ms),
           "--ae-interval-ms", str(args.ae_interval_ms),
           "--tombstone-grace-ms", str(args.tombstone_grace_ms),
           "--phi-threshold", str(args.phi_threshold)]
    if args.requirepass:
        cmd += ["--requirepass", args.requirepass]
    env = dict(os.environ, DYNREDIS_CLUSTER_SECRET=_cluster_secret(args.data_dir))
    with open(os.path.join(node_dir, NODE_LOG), "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=log, env=env,
                                start_new_session=args.detach)


def _cluster_ports(args: argparse.Namespace, ports: list[int]) -> list[int]:
    """The nodes' ports for cluster-aware clients (none with --cluster-port-offset 0)."""
    offset = args.cluster_port_offset
    return [p + offset for p in ports] if offset else []


def _restart_down_nodes(args: argparse.Namespace, pids: list[int], ports: list[int],
                        down: list[int]) -> int:
    """Start again the nodes of a detached cluster whose processes are gone (killed or
    crashed), on their ports and data directories; the others keep running."""
    procs = [_spawn_node(args, ports[i], ports) for i in down]
    for i, proc in zip(down, procs, strict=True):
        pids[i] = proc.pid
    _write_pidfile(args.data_dir, list(zip(pids, ports, strict=True)))
    cports = _cluster_ports(args, ports)
    restarted = ", ".join(str(ports[i]) for i in down)
    if not wait_ready(args.bind, ports, args.ready_timeout, args.requirepass, cports, procs):
        print(f"dynredis: restarted node(s) on port(s) {restarted}, but the cluster did not "
              "come up (see node.log in each node directory)"
              + _exits(args, procs, [ports[i] for i in down]), file=sys.stderr)
        return 1
    print(f"dynredis: restarted the node(s) on port(s) {restarted}; the cluster on "
          f"{args.data_dir} is up on ports {ports[0]}-{ports[-1]}")
    return 0


def _terminate(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _write_pidfile(data_dir: str, nodes: list[tuple[int, int]]) -> None:
    """Record each node's process id (``cluster.pids``, one per line, for `stop` and for
    scripts) and its port (``cluster.ports``, to restart a node that died)."""
    with open(_pidfile(data_dir), "w") as f:
        f.write("".join(f"{pid}\n" for pid, _ in nodes))
    with open(_portfile(data_dir), "w") as f:
        f.write("".join(f"{port}\n" for _, port in nodes))


def _portfile(data_dir: str) -> str:
    return os.path.join(data_dir, "cluster.ports")


def _recorded_pids(data_dir: str) -> list[int]:
    """The process ids of the cluster's nodes, as last recorded."""
    try:
        with open(_pidfile(data_dir)) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _recorded_ports(args: argparse.Namespace, count: int) -> list[int]:
    """The ports of the cluster's `count` nodes: as recorded, else (a record from an
    earlier build) --base-port upwards."""
    try:
        with open(_portfile(args.data_dir)) as f:
            ports = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        ports = []
    return ports if len(ports) == count else [args.base_port + i for i in range(count)]


def _forget_nodes(data_dir: str) -> None:
    """Remove the record of a stopped cluster's processes."""
    for path in (_pidfile(data_dir), _portfile(data_dir)):
        if os.path.exists(path):
            os.unlink(path)


def _alive_pids(data_dir: str) -> list[int]:
    return [pid for pid in _recorded_pids(data_dir) if pid_alive(pid)]


def stop_cluster(data_dir: str) -> int:
    pids = _alive_pids(data_dir)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive_pids(data_dir):
        time.sleep(0.1)
    for pid in _alive_pids(data_dir):
        os.kill(pid, signal.SIGKILL)
    _forget_nodes(data_dir)
    print(f"dynredis: stopped {len(pids)} node(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
