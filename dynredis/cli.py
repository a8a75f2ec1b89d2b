"""The `dynredis` command: run a node, run or stop a local cluster, show a node's status."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hiredis

from . import adminstatus, memdebug
from . import clustersettings as settings
from .localproc import pid_alive, port_free
from .server import credentials, tls
from .server.app import NodeOptions, NodeServer

log = logging.getLogger("dynredis")


def _memory(raw: str) -> int:
    """A memory amount as Redis writes one (64mb, 1gb, 1048576)."""
    from .commands.server import memtoull

    n = memtoull(raw)
    if n is None or n > 2**63 - 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a memory amount (64mb, 1gb, ...)")
    return n


def _add_node_args(p: argparse.ArgumentParser) -> None:
    """The settings every node of a local cluster shares (default None: the recorded or
    default value applies, see clustersettings)."""
    d = settings.NODE_DEFAULTS
    p.add_argument("--n", type=int, help=f"replicas per key (default {d['n']})")
    p.add_argument("--r", type=int, help=f"read quorum (default {d['r']})")
    p.add_argument("--w", type=int, help=f"write quorum (default {d['w']})")
    p.add_argument("--engine", choices=("lmdb", "memory"), help="default lmdb")
    p.add_argument("--durability", choices=("none", "buffered", "fsync"),
                   help="default buffered")
    p.add_argument("--requirepass", default=None,
                   help="password clients must AUTH with; visible to every local user in "
                        "`ps`: prefer --requirepass-file or $DYNREDIS_REQUIREPASS")
    p.add_argument("--requirepass-file", default=None,
                   help="file whose first line is the password clients must AUTH with")
    p.add_argument("--bind", help="address(es) to listen on, separated by spaces or commas; "
                                  f"0.0.0.0 for every one (default {d['bind']})")
    p.add_argument("--ring-size", type=int, help="partitions, a power of two (default 256)")
    p.add_argument("--timeout-ms", type=int, help="quorum request timeout (default 2000)")
    p.add_argument("--ae-interval-ms", type=int,
                   help="anti-entropy: one partition exchange every this many ms (default 200)")
    p.add_argument("--tombstone-grace-ms", type=int,
                   help="deleted or expired objects are reaped after this long (default 600000)")
    p.add_argument("--phi-threshold", type=float,
                   help="failure detector: phi above which a peer counts as down (default 8)")
    p.add_argument("--object-cache-max-memory", type=_memory,
                   help="bytes of stored objects a node keeps in memory besides its engine, "
                        "as Redis writes memory (64mb, 1gb; default 64mb; 0: bounded by "
                        "count only)")
    p.add_argument("--tls-cert-file", help="TLS certificate (PEM) the node presents, to "
                                           "clients and to peers")
    p.add_argument("--tls-key-file", help="the private key of --tls-cert-file (PEM)")
    p.add_argument("--tls-ca-cert-file", help="CA certificate(s) (PEM) that client and peer "
                                              "certificates are checked against")
    p.add_argument("--tls-auth-clients", choices=("yes", "no", "optional"),
                   help="TLS clients must present a certificate signed by the CA: yes "
                        "(default, as Redis), no, optional (checked if presented)")


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dynredis", description=__doc__)
    sub = top.add_subparsers(dest="cmd", required=True)

    node = sub.add_parser("node", help="run one node in the foreground")
    node.add_argument("--port", type=int, default=7000,
                      help="port for plain (non-TLS) clients and peers; 0: none")
    node.add_argument("--cluster-port", type=int, default=None,
                      help="port for cluster-aware clients, where SCAN/KEYS/DBSIZE/RANDOMKEY "
                           "cover only this node's partitions (default: port + 10000; "
                           "0: none)")
    node.add_argument("--tls-port", type=int, default=0, help="port for TLS clients (and, "
                      "with --tls-cluster yes, peers); 0 (default): no TLS")
    node.add_argument("--tls-cluster", choices=("yes", "no"), default="no",
                      help="peer links use TLS: this node dials and is dialled on its "
                           "--tls-port (default no)")
    node.add_argument("--data-dir", default="./data/node")
    node.add_argument("--seeds", default="", help="comma-separated host:port of other nodes")
    node.add_argument("--cluster-secret-file", default=None,
                      help="file whose first line is the secret shared by the cluster's "
                           f"nodes (else ${credentials.ENV_SECRET}, else the one kept in "
                           "the data directory; a node without seeds makes one there)")
    node.add_argument("--announce-ip", "--cluster-announce-ip", dest="announce_ip",
                      default=None,
                      help="the address peers and clients should use for this node, where "
                           "it is not --bind (NAT, containers; needed with --bind 0.0.0.0); "
                           "its name in the ring and in CLUSTER SLOTS/SHARDS/NODES")
    node.add_argument("--announce-port", type=int, default=None,
                      help="the port peers and clients should use for this node's --port "
                           "(or --tls-port with --tls-cluster yes), where it differs")
    node.add_argument("--announce-cluster-port", type=int, default=None,
                      help="the port CLUSTER SLOTS/SHARDS/NODES give for this node's "
                           "--cluster-port, where it differs")
    node.add_argument("--zone", default="",
                      help="this node's zone (rack, data center): a key's N replicas span "
                           "distinct zones whenever the cluster has at least N")
    node.add_argument("--log-level", default="INFO")
    node.add_argument("--latency-trace", type=int, default=0, metavar="K",
                      help="follow one request in K through the node for DYN.LATENCY's "
                           "breakdown (0, the default: off; DYN.LATENCY ON turns it on "
                           "later)")
    _add_node_args(node)

    top.node_parser = node  # type: ignore[attr-defined]

    cl = sub.add_parser("cluster", help="run a local cluster of node processes")
    cl.add_argument("--nodes", type=int, default=3)
    cl.add_argument("--base-port", type=int, default=7000)
    cl.add_argument("--cluster-port-offset", type=int, default=None,
                    help="each node's cluster port is its port plus this (default 10000; "
                         "0: none)")
    cl.add_argument("--data-dir", default="./data")
    cl.add_argument("--detach", action="store_true",
                    help="return once the cluster is up; stop it with `dynredis stop` "
                         "(or `make stop`)")
    cl.add_argument("--ready-timeout", type=float, default=60.0,
                    help="seconds to wait for the nodes to serve (default 60); nodes "
                         "still starting then are left running")
    cl.add_argument("--tls", action="store_true", default=None,
                    help="every node serves TLS only, on its usual ports, and peers link "
                         "over TLS (needs --tls-cert-file, --tls-key-file, "
                         "--tls-ca-cert-file)")
    _add_node_args(cl)

    stop = sub.add_parser("stop", help="stop a cluster started with --detach")
    stop.add_argument("--data-dir", default="./data")

    st = sub.add_parser("status", help="print a node's INFO dynamo section")
    _add_probe_args(st)

    admin = sub.add_parser("admin", help="the cluster's membership")
    admin_sub = admin.add_subparsers(dest="admin_cmd", required=True)
    ast = admin_sub.add_parser("status", help="every member at a glance: zone, state, "
                               "partitions, transfers, hints, last anti-entropy")
    _add_probe_args(ast)
    ast.set_defaults(run=run_admin_status)
    # membership changes, staged then committed: the DYN.ADMIN requests
    changes = {
        "join": (["node"], "stage: NODE (host:port, as peers dial it) joins"),
        "leave": (["node"], "stage: NODE hands its partitions to the others, then stops"),
        "replace": (["old", "new"], "stage: NEW takes exactly OLD's partitions"),
        "remove": (["node"], "stage: NODE is gone for good; its replicas are rebuilt"),
        "plan": ([], "the transfers the staged changes make, ownership before and after"),
        "commit": ([], "start the staged changes"),
        "clear": ([], "forget the staged changes"),
        "show": ([], "the claimant, the staged changes, the change in progress"),
    }
    for op, (names, text) in changes.items():
        sp = admin_sub.add_parser(op, help=text)
        for name in names:
            sp.add_argument(name)
        _add_probe_args(sp)
        sp.set_defaults(run=run_admin_change, admin_args=names)
    return top


def _add_probe_args(p: argparse.ArgumentParser) -> None:
    """How to reach a node: address, password, a local cluster's directory."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7000)
    p.add_argument("--data-dir", default="./data",
                   help="a local cluster's directory: its password and TLS settings are "
                        "used for a node of it")
    p.add_argument("--password", default=None,
                   help="visible in `ps`: prefer $REDISCLI_AUTH or --password-file")
    p.add_argument("--password-file", default=None)


ENV_PREFIX = "DYNREDIS_"
# Options whose variable is read elsewhere: $DYNREDIS_REQUIREPASS is the password itself
# (credentials.py), never a default shown in `--help` or on a command line.
_NOT_FROM_ENV = frozenset({"help", "requirepass"})


def _env_options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """$DYNREDIS_<OPTION> -> the option it configures (DYNREDIS_SEEDS -> --seeds)."""
    return {ENV_PREFIX + a.dest.upper(): a for a in p._actions
            if a.option_strings and a.dest not in _NOT_FROM_ENV}


def _defaults_from_env(p: argparse.ArgumentParser, environ: dict[str, str]) -> None:
    """Configuration by environment, as containers are configured: each option of
    `dynredis node` takes its default from $DYNREDIS_<OPTION> (DYNREDIS_SEEDS,
    DYNREDIS_ANNOUNCE_IP, ...); the command line still wins."""
    for var, action in _env_options(p).items():
        raw = environ.get(var)
        if raw is None:
            continue
        try:
            value = action.type(raw) if callable(action.type) else raw
        except (TypeError, ValueError):
            p.error(f"${var}: invalid value {raw!r}")
        if action.choices is not None and value not in action.choices:
            p.error(f"${var}: {raw!r} is not one of {', '.join(map(str, action.choices))}")
        action.default = value


def node_env_vars() -> frozenset[str]:
    """The environment variables that configure `dynredis node`."""
    return frozenset(_env_options(_parser().node_parser))  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    if (sys.argv[1:] if argv is None else argv)[:1] == ["node"]:
        _defaults_from_env(parser.node_parser, dict(os.environ))  # type: ignore[attr-defined]
    args = parser.parse_args(argv)
    if args.cmd == "node":
        return run_node(args)
    if args.cmd == "cluster":
        return run_cluster(args)
    if args.cmd == "stop":
        return stop_cluster(args.data_dir)
    if args.cmd == "status":
        return run_status(args)
    if args.cmd == "admin":
        return int(args.run(args))
    return 2


def _node_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The node settings given on the command line (None where not given)."""
    return {k: getattr(args, k, None) for k in settings.NODE_DEFAULTS}


# --- one node -------------------------------------------------------------------------


def run_node(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = settings.resolve(_node_settings(args), None)
    seeds = tuple(x.strip() for x in args.seeds.split(",") if x.strip())
    try:
        secret, secret_from = credentials.cluster_secret(args.cluster_secret_file,
                                                         args.data_dir, bool(seeds))
        password = credentials.requirepass(args.requirepass, args.requirepass_file)
    except credentials.CredentialError as exc:
        print(f"dynredis: {exc}", file=sys.stderr)
        return 2
    if args.requirepass and not args.requirepass_file:
        log.warning("--requirepass on the command line is visible to every local user "
                    "(ps): prefer --requirepass-file or $%s", credentials.ENV_REQUIREPASS)
    if len(secret) < credentials.MIN_SECRET_LEN:
        log.warning("the cluster secret (from %s) has fewer than %d characters",
                    secret_from, credentials.MIN_SECRET_LEN)
    log.info("cluster secret from %s", secret_from)
    opts = NodeOptions(
        port=args.port, cluster_port=args.cluster_port, bind=s["bind"],
        announce_ip=args.announce_ip, announce_port=args.announce_port,
        announce_cluster_port=args.announce_cluster_port, zone=args.zone,
        data_dir=args.data_dir, seeds=seeds,
        n=s["n"], r=s["r"], w=s["w"], ring_size=s["ring_size"], timeout_ms=s["timeout_ms"],
        ae_interval_ms=s["ae_interval_ms"], tombstone_grace_ms=s["tombstone_grace_ms"],
        phi_threshold=s["phi_threshold"], engine=s["engine"], durability=s["durability"],
        object_cache_max_memory=s["object_cache_max_memory"],
        requirepass=password, cluster_secret=secret,
        tls_port=args.tls_port, tls_cert_file=s["tls_cert_file"],
        tls_key_file=s["tls_key_file"], tls_ca_cert_file=s["tls_ca_cert_file"],
        tls_auth_clients=s["tls_auth_clients"], tls_cluster=args.tls_cluster == "yes",
        latency_trace=args.latency_trace,
    )
    try:
        server = NodeServer(opts)
    except ValueError as exc:
        print(f"dynredis: {exc}", file=sys.stderr)
        return 2
    memdebug.install(server)
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


# --- talking to a node ----------------------------------------------------------------


class NodeError(Exception):
    """A node answered with an error (e.g. NOAUTH, WRONGPASS, LOADING)."""


@dataclass
class Probe:
    """How the CLI reaches the nodes of a cluster: password and TLS as the nodes need."""

    host: str = "127.0.0.1"
    password: str | None = None
    tls: ssl.SSLContext | None = None

    def command(self, port: int, *words: str, timeout: float = 2.0) -> object:
        """Send one command with a plain (or TLS) socket and return the parsed reply;
        an error reply raises NodeError."""
        with socket.create_connection((self.host, port), timeout=timeout) as raw:
            sock = (self.tls.wrap_socket(raw, server_hostname=self.host)
                    if self.tls is not None else raw)
            reader = hiredis.Reader(encoding="utf-8")
            cmds = ([("AUTH", self.password)] if self.password else []) + [words]
            payload = b"".join(
                b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%b\r\n" % (len(w.encode()), w.encode())
                                                for w in c) for c in cmds)
            sock.sendall(payload)
            replies: list[Any] = []
            while len(replies) < len(cmds):
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed")
                reader.feed(data)
                while (r := reader.gets()) is not False:
                    replies.append(r)
        for r in replies:
            if isinstance(r, hiredis.ReplyError):
                raise NodeError(str(r))
        return replies[-1]

    def info(self, port: int) -> dict[str, str]:
        text = self.command(port, "INFO", "dynamo")
        info = {}
        for line in str(text).splitlines():
            if ":" in line and not line.startswith("#"):
                k, _, v = line.partition(":")
                info[k] = v
        return info


def _auth_refused(message: str) -> bool:
    return message.startswith(("NOAUTH", "WRONGPASS", "NOPERM"))


def wait_ready(probe: Probe, ports: list[int], timeout: float,
               cluster_ports: list[int] | None = None,
               procs: list[subprocess.Popen] | None = None) -> bool:
    """True once every node answers (on its cluster port too, if given) and all agree on
    a ring that has every node; False after `timeout`, or as soon as one of `procs`
    (the node processes just started) has exited. A node that refuses the password
    raises NodeError at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs or ()):
            return False
        try:
            infos = [probe.info(p) for p in ports]
            pongs = [probe.command(p, "PING") for p in cluster_ports or ()]
        except NodeError as exc:
            if _auth_refused(str(exc)):
                raise
            time.sleep(0.1)  # LOADING: linking to its peers
            continue
        except (OSError, ConnectionError):
            time.sleep(0.1)
            continue
        epochs = {(i.get("ring_epoch"), i.get("ring_claimant")) for i in infos}
        if len(epochs) == 1 and all(i.get("ring_members") == str(len(ports)) for i in infos) \
                and all(not i.get("members_down") for i in infos) \
                and all(i.get("loading", "0") == "0" for i in infos) \
                and all(p == "PONG" for p in pongs):
            return True
        time.sleep(0.1)
    return False


def _client_tls(s: dict[str, Any]) -> ssl.SSLContext | None:
    """The CLI's TLS context for a cluster run with --tls (its certificate serves as the
    client certificate, as redis-cli --cert would)."""
    if not s["tls"]:
        return None
    return tls.client_context(s["tls_cert_file"], s["tls_key_file"], s["tls_ca_cert_file"])


def _probe(s: dict[str, Any]) -> Probe:
    password = None
    if s["requirepass_file"]:
        password = credentials.read_secret_file(s["requirepass_file"], "requirepass")
    return Probe(s["bind"], password, _client_tls(s))


def _self() -> str:
    """This tool as the user can type it again where they are: `dynredis` when their
    PATH finds this very script, else its path (`.venv/bin/dynredis` after `make`)."""
    argv0 = sys.argv[0]
    if not argv0 or os.path.basename(argv0) == "__main__.py":
        return f"{os.path.relpath(sys.executable)} -m dynredis"
    found = shutil.which("dynredis")
    if found and os.path.realpath(found) == os.path.realpath(argv0):
        return "dynredis"
    rel = os.path.relpath(argv0)
    if rel.startswith(".."):
        return os.path.abspath(argv0)
    return rel if rel.startswith(".") else "./" + rel


def _hint(what: str, data_dir: str, nodes: int = 3, port: int | None = None) -> str:
    """The command that does `what` (stop, cluster, status: `admin status`) for the cluster in
    `data_dir`: a make target when make ran this (DYNREDIS_HINTS=make), else this tool
    as the user can type it."""
    if os.environ.get("DYNREDIS_HINTS") == "make":
        extra = "" if os.path.normpath(data_dir) == "data" else f" DATA={data_dir}"
        if what == "cluster" and nodes != 3:
            extra += f" NODES={nodes}"
        if port is not None and port != 7000:
            extra += f" PORT={port}"
        return f"make {what}{extra}"
    if what == "cluster":
        return f"{_self()} cluster --detach --nodes {nodes} --data-dir {data_dir}"
    # `make status` is the cluster at a glance: so is the status a cluster's start names
    verb = "admin status" if what == "status" else what
    return f"{_self()} {verb}" + (f" --port {port}" if port is not None else "") \
        + f" --data-dir {data_dir}"


def _status_probe(args: argparse.Namespace) -> Probe:
    """A probe for the node at --host/--port: the local cluster's password and TLS
    settings when it is one of its nodes; --password-file, --password, $REDISCLI_AUTH."""
    recorded = None
    try:
        recorded = settings.load(args.data_dir)
    except ValueError:
        pass
    if recorded is not None and args.port in _record_ports(args.data_dir):
        probe = _probe(recorded)
        probe.host = args.host
    else:
        probe = Probe(args.host)
    if args.password_file:
        probe.password = credentials.read_secret_file(args.password_file, "password")
    elif args.password:
        probe.password = args.password
    elif os.environ.get("REDISCLI_AUTH"):
        probe.password = os.environ["REDISCLI_AUTH"]
    return probe


def _ask_node(args: argparse.Namespace, what: Callable[[Probe], None]) -> int:
    """Run `what` with a probe for the node of --host/--port; a node that does not
    answer is said so in one line (no traceback), exit status 1."""
    try:
        what(_status_probe(args))
    except ConnectionRefusedError:
        print(f"dynredis: no node answers on {args.host}:{args.port} (connection refused): "
              f"is it running? A local cluster starts with: {_hint('cluster', args.data_dir)}",
              file=sys.stderr)
        return 1
    except (credentials.CredentialError, NodeError, OSError) as exc:
        print(f"dynredis: {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def run_status(args: argparse.Namespace) -> int:
    def show(probe: Probe) -> None:
        for k, v in probe.info(args.port).items():
            print(f"{k}: {v}")

    return _ask_node(args, show)


def run_admin_status(args: argparse.Namespace) -> int:
    return _ask_node(args, lambda probe: adminstatus.show(probe, args.port, sys.stdout))


def run_admin_change(args: argparse.Namespace) -> int:
    """`dynredis admin join|leave|replace|remove|plan|commit|clear|show`: DYN.ADMIN to
    the node of --host/--port, which passes it to the claimant; its lines printed."""

    def ask(probe: Probe) -> None:
        words = [getattr(args, name) for name in args.admin_args]
        reply = probe.command(args.port, "DYN.ADMIN", args.admin_cmd, *words, timeout=10.0)
        for line in reply if isinstance(reply, list) else [reply]:
            print(line)

    return _ask_node(args, ask)


# --- a local cluster ------------------------------------------------------------------

NODE_LOG = "node.log"


def _pidfile(data_dir: str) -> str:
    return os.path.join(data_dir, "cluster.pids")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The cluster settings given on this command line (None where not given)."""
    given = _node_settings(args)
    given["cluster_port_offset"] = args.cluster_port_offset
    given["tls"] = args.tls
    for k in ("tls_cert_file", "tls_key_file", "tls_ca_cert_file"):
        if given[k]:
            given[k] = os.path.abspath(given[k])
    if args.requirepass_file:
        given["requirepass_file"] = os.path.abspath(args.requirepass_file)
    return given


def _password_given(args: argparse.Namespace) -> str | None:
    """A password given as a value (--requirepass, $DYNREDIS_REQUIREPASS): "" asks for
    none; None when not given."""
    if args.requirepass is not None:
        return args.requirepass
    return os.environ.get(credentials.ENV_REQUIREPASS)


def _keep_password(data_dir: str, password: str) -> str:
    """Store the cluster's password in its directory (mode 0600); the file's path."""
    path = os.path.abspath(os.path.join(data_dir, settings.PASSWORD_FILE))
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    credentials.write_secret_file(tmp, password)
    os.replace(tmp, path)
    return path


def _check_tls(s: dict[str, Any]) -> str | None:
    if s["tls"] and not (s["tls_cert_file"] and s["tls_key_file"] and s["tls_ca_cert_file"]):
        return ("--tls needs --tls-cert-file, --tls-key-file and --tls-ca-cert-file (the "
                "CLI presents that certificate to the nodes, as a TLS client)")
    return None


def run_cluster(args: argparse.Namespace) -> int:
    os.makedirs(args.data_dir, exist_ok=True)
    try:
        recorded = settings.load(args.data_dir)
    except ValueError as exc:
        print(f"dynredis: {exc}", file=sys.stderr)
        return 2
    if args.requirepass:
        print("dynredis: warning: --requirepass on the command line is visible to every "
              "local user (ps) while this command runs: prefer --requirepass-file or "
              f"${credentials.ENV_REQUIREPASS} (the nodes get it by file either way)",
              file=sys.stderr)
    given = _given(args)
    pids = _recorded_pids(args.data_dir)
    down = [i for i, pid in enumerate(pids) if not pid_alive(pid)]
    if pids and len(down) < len(pids):
        if not down:
            # With --detach (`make cluster`) asking for a running cluster is no error.
            print(f"dynredis: a cluster is already running on {args.data_dir} "
                  f"(stop it with: {_hint('stop', args.data_dir)})",
                  file=sys.stdout if args.detach else sys.stderr)
            return 0 if args.detach else 1
        s = recorded if recorded is not None else settings.resolve(given, None)
        password = _password_given(args)
        if recorded is None and password and not args.requirepass_file:
            # A cluster recorded by an earlier build: its password as given now.
            s["requirepass_file"] = _keep_password(args.data_dir, password)
        ports = _recorded_ports(args, len(pids))
        if not args.detach or len(pids) != args.nodes:
            print(f"dynredis: the cluster on {args.data_dir} runs, but its node(s) on port(s) "
                  f"{', '.join(str(ports[i]) for i in down)} are down; restart them with "
                  f"`{_hint('cluster', args.data_dir, len(pids))}` (they get the settings "
                  f"the cluster was started with), or stop it: "
                  f"{_hint('stop', args.data_dir)}",
                  file=sys.stderr)
            return 1
        ignored = settings.differences(given, s) if recorded is not None else []
        if recorded is not None and password is not None:
            ignored.append("--requirepass")
        if ignored:
            print(f"dynredis: warning: restarting with the settings the cluster was started "
                  f"with ({settings.path(args.data_dir)}); ignored: {', '.join(ignored)}",
                  file=sys.stderr)
        return _restart_down_nodes(args, s, pids, ports, down)
    s = settings.resolve(given, recorded)
    password = _password_given(args)
    if password is not None and not args.requirepass_file:
        s["requirepass_file"] = _keep_password(args.data_dir, password) if password else None
    problem = _check_tls(s)
    if problem:
        print(f"dynredis: {problem}", file=sys.stderr)
        return 2
    ports = [args.base_port + i for i in range(args.nodes)]
    offset = s["cluster_port_offset"]
    if offset and ports[-1] + offset > 65535:
        print(f"dynredis: cluster ports (port + {offset}) would pass 65535; choose a lower "
              "--base-port or --cluster-port-offset (0: no cluster ports)", file=sys.stderr)
        return 2
    cports = _cluster_ports(s, ports)
    taken = [p for p in ports + cports if not port_free(s["bind"], p)]
    if taken:
        print(f"dynredis: port(s) {', '.join(map(str, taken))} on {s['bind']} are in use by "
              "another program; choose another --base-port (or --cluster-port-offset)",
              file=sys.stderr)
        return 1
    try:
        probe = _probe(s)
    except (credentials.CredentialError, OSError, ssl.SSLError) as exc:
        print(f"dynredis: {exc}", file=sys.stderr)
        return 2
    settings.save(args.data_dir, s)
    n, r, w = _quorum(s, args.nodes)
    procs = [_spawn_node(args, s, port, ports) for port in ports]
    _write_pidfile(args.data_dir, [(p.pid, port) for p, port in zip(procs, ports, strict=True)])

    ready = _started(probe, ports, args.ready_timeout, cports, procs)
    if not ready and all(p.poll() is None for p in procs):
        # Alive but not ready: most likely reading a large store (a node walks every
        # record before it serves). Killing them would leave the user no cluster.
        print(f"dynredis: the nodes are still starting after {args.ready_timeout:g} s (a "
              f"node reads every record of its store before it serves); they are left "
              f"running: {_hint('status', args.data_dir, port=ports[0])} tells when they "
              f"are up, {_hint('stop', args.data_dir)} stops them (see node.log in each "
              f"node directory)", file=sys.stderr)
        if args.detach:
            return 1
        return _supervise(procs, args.data_dir)
    if not ready:
        print("dynredis: the cluster did not come up (see node.log in each node "
              "directory)" + _exits(args, procs, ports), file=sys.stderr)
        _terminate(procs)
        _forget_nodes(args.data_dir)
        return 1
    print(f"dynredis: {args.nodes}-node cluster up on {s['bind']} ports "
          f"{ports[0]}-{ports[-1]} (N={n} R={r} W={w}, engine {s['engine']}, "
          f"durability {s['durability']}, data in {args.data_dir})")
    cli = "redis-cli" + (f" --tls --cert {s['tls_cert_file']} --key {s['tls_key_file']} "
                         f"--cacert {s['tls_ca_cert_file']}" if s["tls"] else "")
    print(f"  connect:       {cli} -p {ports[0]}"
          + (f" --askpass (password in {s['requirepass_file']})" if s["requirepass_file"]
             else ""))
    print(f"  cluster mode:  {cli} -c -p {ports[0]}")
    if cports:
        print(f"  cluster ports: {cports[0]}-{cports[-1]} (cluster-aware clients are "
              "pointed there by CLUSTER SLOTS)")
    if args.detach:
        print(f"  status:        {_hint('status', args.data_dir, port=ports[0])}")
        print(f"  stop it with:  {_hint('stop', args.data_dir)}")
        return 0
    print("  press Ctrl-C to stop it")
    return _supervise(procs, args.data_dir)


def _supervise(procs: list[subprocess.Popen], data_dir: str) -> int:
    """The foreground `dynredis cluster`: report nodes that exit, stop all on Ctrl-C."""
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
    _forget_nodes(data_dir)
    print("dynredis: cluster stopped")
    return 0


def _node_dir(data_dir: str, port: int) -> str:
    """The data directory of the cluster's node on `port` (its log is NODE_LOG there)."""
    return os.path.join(data_dir, f"node-{port}")


def _started(probe: Probe, ports: list[int], timeout: float, cluster_ports: list[int],
             procs: list[subprocess.Popen]) -> bool:
    """`wait_ready` for nodes just started (`start`, `restart`): a refused password is
    said on stderr and is not ready."""
    try:
        return wait_ready(probe, ports, timeout, cluster_ports, procs)
    except NodeError as exc:
        print(f"dynredis: the nodes refused the cluster's password: {exc}", file=sys.stderr)
        return False


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


def _quorum(s: dict[str, Any], nodes: int) -> tuple[int, int, int]:
    """N, R and W of a local cluster: no more replicas than nodes, no quorum above N."""
    n = min(s["n"], nodes)
    return n, min(s["r"], n), min(s["w"], n)


def _spawn_node(args: argparse.Namespace, s: dict[str, Any], port: int,
                ports: list[int]) -> subprocess.Popen:
    """Start the node process of `port` (of the cluster on `ports`) with settings `s`,
    logging to its directory's node.log. Its command line holds no secret: the cluster
    secret and the password are passed as files."""
    offset = s["cluster_port_offset"]
    bind = s["bind"]
    addrs = [f"{bind}:{p}" for p in ports]
    n, r, w = _quorum(s, len(ports))
    node_dir = _node_dir(args.data_dir, port)
    os.makedirs(node_dir, exist_ok=True)
    secret_file = os.path.abspath(os.path.join(args.data_dir, credentials.SECRET_FILE))
    credentials.ensure_secret_file(secret_file)
    listen = (["--port", "0", "--tls-port", str(port), "--tls-cluster", "yes"] if s["tls"]
              else ["--port", str(port)])
    cmd = [sys.executable, "-m", "dynredis", "node", *listen,
           "--cluster-port", str(port + offset if offset else 0),
           "--bind", bind, "--data-dir", node_dir,
           "--seeds", ",".join(a for a in addrs if a != f"{bind}:{port}"),
           "--cluster-secret-file", secret_file,
           "--n", str(n), "--r", str(r), "--w", str(w),
           "--engine", s["engine"], "--durability", s["durability"],
           "--ring-size", str(s["ring_size"]), "--timeout-ms", str(s["timeout_ms"]),
           "--ae-interval-ms", str(s["ae_interval_ms"]),
           "--tombstone-grace-ms", str(s["tombstone_grace_ms"]),
           "--phi-threshold", str(s["phi_threshold"]),
           "--object-cache-max-memory", str(s["object_cache_max_memory"])]
    if s["requirepass_file"]:
        cmd += ["--requirepass-file", s["requirepass_file"]]
    for k in ("tls_cert_file", "tls_key_file", "tls_ca_cert_file"):
        if s[k]:
            cmd += ["--" + k.replace("_", "-"), s[k]]
    if s["tls_cert_file"]:
        cmd += ["--tls-auth-clients", s["tls_auth_clients"]]
    # The nodes take their password and secret from the files named above, never from
    # an environment this command was given.
    # Nor options from the environment ($DYNREDIS_<OPTION>): the cluster's settings are
    # on the command line.
    skip = node_env_vars() | {credentials.ENV_SECRET, credentials.ENV_REQUIREPASS}
    env = {k: v for k, v in os.environ.items() if k not in skip}
    with open(os.path.join(node_dir, NODE_LOG), "ab") as log_file:
        return subprocess.Popen(cmd, stdout=log_file, stderr=log_file, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=args.detach)


def _cluster_ports(s: dict[str, Any], ports: list[int]) -> list[int]:
    """The nodes' ports for cluster-aware clients (none with --cluster-port-offset 0)."""
    offset = s["cluster_port_offset"]
    return [p + offset for p in ports] if offset else []


def _restart_down_nodes(args: argparse.Namespace, s: dict[str, Any], pids: list[int],
                        ports: list[int], down: list[int]) -> int:
    """Start again the nodes of a detached cluster whose processes are gone (killed or
    crashed), on their ports and data directories and with the cluster's recorded
    settings; the others keep running."""
    try:
        probe = _probe(s)
    except (credentials.CredentialError, OSError, ssl.SSLError) as exc:
        print(f"dynredis: {exc}", file=sys.stderr)
        return 2
    procs = [_spawn_node(args, s, ports[i], ports) for i in down]
    for i, proc in zip(down, procs, strict=True):
        pids[i] = proc.pid
    _write_pidfile(args.data_dir, list(zip(pids, ports, strict=True)))
    cports = _cluster_ports(s, ports)
    restarted = ", ".join(str(ports[i]) for i in down)
    ready = _started(probe, ports, args.ready_timeout, cports, procs)
    if not ready:
        print(f"dynredis: restarted node(s) on port(s) {restarted}, but the cluster did not "
              f"come up within {args.ready_timeout:g} s (see node.log in each node directory"
              f"; a node reads every record of its store before it serves)"
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


def _read_numbers(path: str) -> list[int]:
    """The numbers a record file (`_write_pidfile`) holds; none if it is missing or
    unreadable."""
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _recorded_pids(data_dir: str) -> list[int]:
    """The process ids of the cluster's nodes, as last recorded."""
    return _read_numbers(_pidfile(data_dir))


def _record_ports(data_dir: str) -> list[int]:
    """The ports of the cluster's nodes as recorded (none for a stopped cluster)."""
    return _read_numbers(_portfile(data_dir))


def _recorded_ports(args: argparse.Namespace, count: int) -> list[int]:
    """The ports of the cluster's `count` nodes: as recorded, else (a record from an
    earlier build) --base-port upwards."""
    ports = _record_ports(args.data_dir)
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
