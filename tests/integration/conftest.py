"""Fixtures for integration tests against real dynredis node processes.

Clusters are started exactly the README way (`dynredis cluster ... --detach`) in a
temporary data directory on a randomly chosen free port range, and always stopped at
teardown (`dynredis stop`, then SIGKILL of any pid still alive). Every wait is bounded.
When a test fails, the tail of each live cluster's node.log files is attached to the
failure report.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from dynredis.localproc import pid_alive, port_free

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 30.0
# Below Linux's ephemeral ports (32768 up) with the cluster ports too: a port there may be
# taken by a dial's own end while its node is down (it failed to bind on restart).
PORT_RANGE = (10000, 22000)
PORTS_ENV = "DYNREDIS_TEST_PORTS"  # "LO-HI": another range (runs side by side keep apart)


DEFAULT_CLUSTER_PORT_OFFSET = 10000  # `dynredis cluster`'s own: a node's cluster port is port + this


def _ranges() -> tuple[tuple[int, int], int]:
    """The range client ports are taken from and the cluster-port offset. Given a range
    in $DYNREDIS_TEST_PORTS, its lower half holds the client ports and its upper half the
    cluster ports, so that no port a test binds falls outside it."""
    given = os.environ.get(PORTS_ENV)
    if not given:
        return PORT_RANGE, DEFAULT_CLUSTER_PORT_OFFSET
    lo, _, hi = given.partition("-")
    half = (int(hi) - int(lo)) // 2
    return (int(lo), int(lo) + half), half


(_CLIENT_PORTS, CLUSTER_PORT_OFFSET) = _ranges()
SOCKET_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 40

# Every cluster and process started by these fixtures, so that a failing test can show
# their logs and an interpreter exit can never leave a node running.
_LIVE_CLUSTERS: list[Cluster] = []
_LIVE_PROCS: list[subprocess.Popen] = []


def first_replica_of(cluster: Cluster, key: str) -> int:
    """The index of the node CLUSTER SLOTS names as `key`'s master: its first replica,
    where commands that read and write it run (cluster/affinity.py)."""
    slot = cluster.client(0).execute_command("CLUSTER", "KEYSLOT", key)
    for lo, hi, master, *_ in cluster.client(0).execute_command("CLUSTER", "SLOTS"):
        if int(lo) <= slot <= int(hi):
            return cluster.cluster_ports.index(int(master[1]))
    raise AssertionError(f"no slot range holds {slot}")


# --- ports ---------------------------------------------------------------------------


def free_port_range(count: int, attempts: int = 200, offset: int = 0) -> int:
    """A base port such that base .. base+count-1 can all be bound on 127.0.0.1 (and,
    with `offset`, base+offset .. base+offset+count-1 too: the nodes' cluster ports)."""
    rng = random.Random()
    lo, hi = _CLIENT_PORTS
    for _ in range(attempts):
        base = rng.randrange(lo, hi - count)
        if all(port_free(HOST, base + i)
               and (not offset or port_free(HOST, base + offset + i))
               for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found in {lo}-{hi} "
                       f"(${PORTS_ENV} sets another range)")


# --- processes -----------------------------------------------------------------------


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def wait_until(pred: Callable[[], object], timeout: float, interval: float = 0.1,
               what: str = "condition") -> object:
    """Poll `pred` until it returns a truthy value (returned) or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


def dynredis_cmd(*args: str) -> list[str]:
    """The `dynredis` console script, falling back to `python -m dynredis`."""
    exe = shutil.which("dynredis")
    return [exe, *args] if exe else [sys.executable, "-m", "dynredis", *args]


def cluster_cmd(*args: str) -> list[str]:
    """`dynredis cluster ARGS` with the tests' cluster-port offset (the ports' range)."""
    return dynredis_cmd("cluster", "--cluster-port-offset", str(CLUSTER_PORT_OFFSET), *args)


def parse_info(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


def raw_command(client: redis.Redis, *args: str) -> object:
    """Send one command and return the reply as parsed from the wire, bypassing redis-py's
    per-command response callbacks (which turn INFO into a dict of guessed types)."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        reply = conn.read_response()
    except BaseException:
        conn.disconnect()
        raise
    finally:
        client.connection_pool.release(conn)
    if isinstance(reply, redis.ResponseError):
        raise reply
    return reply


def resp_command(*args: bytes) -> bytes:
    """One command as a client sends it: a RESP array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(data[-lines:])


# --- the cluster handle --------------------------------------------------------------


@dataclass
class Cluster:
    data_dir: Path
    base_port: int
    nodes: int = 3
    options: tuple[str, ...] = ()
    pids: list[int] = field(default_factory=list)
    cmdlines: list[list[str]] = field(default_factory=list)
    up: list[bool] = field(default_factory=list)
    start_output: str = ""
    _clients: dict[int, redis.Redis] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(self.nodes)]

    @property
    def cluster_ports(self) -> list[int]:
        """Each node's cluster port (README "Cluster-aware clients")."""
        return [p + CLUSTER_PORT_OFFSET for p in self.ports]

    def node_dir(self, i: int) -> Path:
        return self.data_dir / f"node-{self.ports[i]}"

    def log_path(self, i: int) -> Path:
        return self.node_dir(i) / "node.log"

    @property
    def secret(self) -> str:
        return (self.data_dir / "cluster.secret").read_text().strip()

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Run `dynredis cluster ... --detach` and record the node pids and command lines."""
        cmd = cluster_cmd("--nodes", str(self.nodes),
                           "--base-port", str(self.base_port),
                           "--data-dir", str(self.data_dir), "--detach", *self.options)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=START_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            self._read_pids()
            self.kill_all()
            raise RuntimeError(f"`{' '.join(cmd)}` did not return within {START_TIMEOUT_S}s\n"
                               + self.log_tails()) from exc
        self.start_output = proc.stdout + proc.stderr
        self._read_pids()
        if proc.returncode != 0:
            self.kill_all()
            raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n"
                               f"{self.start_output}\n{self.log_tails()}")
        self.cmdlines = [self._cmdline(pid) for pid in self.pids]
        self.up = [True] * self.nodes
        if self not in _LIVE_CLUSTERS:
            _LIVE_CLUSTERS.append(self)

    def _read_pids(self) -> None:
        try:
            text = (self.data_dir / "cluster.pids").read_text()
        except OSError:
            self.pids = []
            return
        self.pids = [int(x) for x in text.split()]

    def _write_pids(self) -> None:
        """Keep D/cluster.pids current so that `dynredis stop` also stops restarted nodes."""
        (self.data_dir / "cluster.pids").write_text("\n".join(map(str, self.pids)) + "\n")

    @staticmethod
    def _cmdline(pid: int) -> list[str]:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [a.decode() for a in raw.split(b"\0") if a]

    def stop(self) -> None:
        """`dynredis stop --data-dir D`, then SIGKILL of any pid still alive."""
        self.close_clients()
        pids = list(self.pids)
        try:
            subprocess.run(dynredis_cmd("stop", "--data-dir", str(self.data_dir)),
                           capture_output=True, text=True, timeout=STOP_TIMEOUT_S,
                           stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.pids = pids
            self.kill_all()
            self.up = [False] * self.nodes
            if self in _LIVE_CLUSTERS:
                _LIVE_CLUSTERS.remove(self)

    def kill_all(self) -> None:
        for pid in self.pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for pid in self.pids:
            wait_dead(pid, 10)

    def kill_node(self, i: int, sig: int = signal.SIGKILL, timeout: float = 15.0) -> None:
        """Send `sig` to node i's process and wait (bounded) until it is gone."""
        pid = self.pids[i]
        # Refresh the command line while the process still exists.
        if pid_alive(pid):
            self.cmdlines[i] = self._cmdline(pid)
        self._drop_client(i)
        os.kill(pid, sig)
        if not wait_dead(pid, timeout):
            raise AssertionError(f"node {i} (pid {pid}) still alive {timeout}s after {sig!r}")
        self.up[i] = False

    def restart_node(self, i: int, timeout: float = HEALTH_TIMEOUT_S) -> None:
        """Re-run node i's original command line; wait until the cluster is whole again."""
        assert not pid_alive(self.pids[i]), f"node {i} is still running"
        env = dict(os.environ, DYNREDIS_CLUSTER_SECRET=self.secret)
        with open(self.log_path(i), "ab") as log:
            proc = subprocess.Popen(self.cmdlines[i], stdout=log, stderr=log, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        _LIVE_PROCS.append(proc)
        # Reap the child as soon as it exits, so it never lingers as a zombie that
        # `dynredis stop` (which probes pids with kill -0) would wait for.
        threading.Thread(target=proc.wait, daemon=True).start()
        self.pids[i] = proc.pid
        self._write_pids()
        self.up[i] = True
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> None:
        """Every running node answers PING and sees all members, none of them down."""
        live = [i for i in range(self.nodes) if self.up[i]]

        def healthy() -> bool:
            for i in live:
                if not pid_alive(self.pids[i]):
                    raise AssertionError(f"node {i} died:\n{tail(self.log_path(i))}")
                c = self.client(i)
                if not c.ping():
                    return False
                info = self.info(i)
                if info.get("members_down") or info.get("ring_members") != str(self.nodes):
                    return False
            return True

        wait_until(healthy, timeout, what="all nodes up with members_down empty")

    # --- access ----------------------------------------------------------------------

    def client(self, i: int, **kw: object) -> redis.Redis:
        """A redis-py client for node i (decode_responses=True); cached unless kw given."""
        if kw:
            opts = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": 5,
                    "decode_responses": True, **kw}
            return redis.Redis(host=HOST, port=self.ports[i], **opts)  # type: ignore[arg-type]
        c = self._clients.get(i)
        if c is None:
            c = self._clients[i] = redis.Redis(host=HOST, port=self.ports[i],
                                               socket_timeout=SOCKET_TIMEOUT_S,
                                               socket_connect_timeout=5,
                                               decode_responses=True)
        return c

    def cluster_client(self, i: int) -> redis.Redis:
        """A new redis-py client for node i's cluster port (the caller closes it): there
        SCAN, KEYS, DBSIZE and RANDOMKEY cover only the partitions node i owns."""
        return redis.Redis(host=HOST, port=self.cluster_ports[i], socket_timeout=SOCKET_TIMEOUT_S,
                           socket_connect_timeout=5, decode_responses=True)

    @property
    def clients(self) -> list[redis.Redis]:
        return [self.client(i) for i in range(self.nodes)]

    def _drop_client(self, i: int) -> None:
        c = self._clients.pop(i, None)
        if c is not None:
            c.close()

    def close_clients(self) -> None:
        for i in list(self._clients):
            self._drop_client(i)

    def info(self, i: int) -> dict[str, str]:
        """INFO dynamo of node i as a dict of strings."""
        raw = raw_command(self.client(i), "INFO", "dynamo")
        assert isinstance(raw, str), f"INFO dynamo answered {raw!r}"
        return parse_info(raw)

    def cli(self, i: int, *args: str, timeout: float = 30.0) -> str:
        """Run `redis-cli -p PORT args...`; returns stdout without the final newline."""
        proc = subprocess.run(["redis-cli", "-h", HOST, "-p", str(self.ports[i]), *args],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"redis-cli {args} exited {proc.returncode}: {proc.stderr}"
        return proc.stdout.removesuffix("\n")

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        parts = []
        for i in range(self.nodes):
            parts.append(f"----- node {i} ({self.log_path(i)}), last {lines} lines -----\n"
                         + tail(self.log_path(i), lines))
        return "\n".join(parts)


# --- fixtures ------------------------------------------------------------------------


class ClusterFactory:
    """Starts clusters on free ports in fresh data dirs; stops all of them on close()."""

    def __init__(self, tmp_root: Path) -> None:
        self.tmp_root = tmp_root
        self.started: list[Cluster] = []
        self._count = 0

    def __call__(self, *options: str, nodes: int = 3, data_dir: Path | None = None,
                 attempts: int = 3) -> Cluster:
        last: Exception | None = None
        for _ in range(attempts):
            self._count += 1
            base = free_port_range(nodes, offset=CLUSTER_PORT_OFFSET)
            d = data_dir or self.tmp_root / f"cluster{self._count}"
            c = Cluster(data_dir=d, base_port=base, nodes=nodes, options=tuple(options))
            self.started.append(c)
            try:
                c.start()
                return c
            except RuntimeError as exc:
                # Most likely another process took one of the ports after the bind
                # test; try another range (a genuine failure repeats every time).
                last = exc
                if data_dir is not None:
                    break
                shutil.rmtree(d, ignore_errors=True)
        raise RuntimeError(f"could not start a cluster: {last}")

    def close(self) -> None:
        for c in self.started:
            c.stop()


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[ClusterFactory]:
    """Function-scoped: clusters started by the test are stopped after it."""
    factory = ClusterFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def module_cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFactory]:
    """Module-scoped: clusters are shared by a test module and stopped after it."""
    factory = ClusterFactory(tmp_path_factory.mktemp("dynredis"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: ClusterFactory) -> Cluster:
    """A default 3-node cluster (N=3 R=2 W=2, lmdb, buffered) shared by a module."""
    return module_cluster_factory()


@pytest.fixture(scope="module")
def free_port() -> Callable[[], int]:
    return lambda: free_port_range(1)


@contextlib.contextmanager
def redis_server(free_port: Callable[[], int], workdir: Path, *options: str,
                 password: str | None = None) -> Iterator[redis.Redis]:
    """A real redis-server (with extra `options`) and a client of it; stopped after."""
    proc = None
    client = None
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", HOST,
                                 "--save", "", "--appendonly", "no", "--dir", str(workdir),
                                 *options],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        _LIVE_PROCS.append(proc)
        client = redis.Redis(host=HOST, port=port, socket_timeout=SOCKET_TIMEOUT_S,
                             password=password, decode_responses=True)
        try:
            wait_until(lambda c=client, p=proc: p.poll() is None and c.ping(), 10,
                       interval=0.05, what="redis-server to answer PING")
            break
        except AssertionError:
            proc.kill()
            proc.wait(10)
            proc = None
    if proc is None or client is None:
        raise RuntimeError("could not start redis-server")
    client.port = port  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def real_redis(free_port: Callable[[], int], tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[redis.Redis]:
    """A real redis-server to compare error texts with; stopped at teardown."""
    with redis_server(free_port, tmp_path_factory.mktemp("redis")) as client:
        yield client


# --- failure diagnostics and last-resort cleanup -------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _LIVE_CLUSTERS:
        for c in _LIVE_CLUSTERS:
            rep.sections.append((f"dynredis node logs ({c.data_dir}, ports {c.ports})",
                                 c.log_tails()))


def _kill_leftovers() -> None:
    for c in list(_LIVE_CLUSTERS):
        c.kill_all()
    for p in _LIVE_PROCS:
        if p.poll() is None:
            p.kill()


atexit.register(_kill_leftovers)
