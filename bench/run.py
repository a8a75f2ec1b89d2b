"""Benchmark dynredis against a real redis-server with redis-benchmark.

Three systems are measured one after another (each is started, benchmarked and stopped
before the next one starts, so idle servers do not steal CPU on small machines):

* ``redis-server``: a plain Redis, no persistence;
* ``dynredis-1node``: a 1-node dynredis cluster with N=1 R=1 W=1;
* ``dynredis-3node``: a 3-node dynredis cluster with the defaults (N=3 R=2 W=2, lmdb
  engine, buffered durability).

The suites, in this order (``--suites`` picks some):

* strings: for every pipeline depth, SET and then GET as separate ``redis-benchmark``
  runs; around each run the CPU time (utime + stime) of every server process is read
  from ``/proc``, and p99.9 from redis-benchmark's latency distributions (bench/rbench.py);
* failures: the 3-node cluster healthy, with one replica paused, then killed
  (bench/failrows.py);
* sizes: 1 KB and 100 KB values; million: a million keys written, then SET and GET over
  them, and memory per key (bench/scalerows.py);
* collections: CPU per SADD, HSET, ZADD, RPUSH+LPOP and ZRANGE on one key of 10^2, 10^4
  and 10^6 elements, redis-server beside the 3-node dynredis, and memory per element
  (bench/collrows.py).

Usage: ``python bench/run.py [--suites strings,failures] [--requests 20000]`` (see
``--help``). The results tables are printed and written as markdown to
``bench/last-results.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dynredis.localproc import port_free

sys.path.insert(0, str(Path(__file__).resolve().parent))
import collrows  # noqa: E402  (bench/ is not a package)
import failrows  # noqa: E402
import rbench  # noqa: E402
import scalerows  # noqa: E402
from rbench import BenchError, total_cpu_seconds  # noqa: E402

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_MD = BENCH_DIR / "last-results.md"
REDIS_NAME = "redis-server"
DYN1_NAME = "dynredis-1node"
DYN3_NAME = "dynredis-3node"
DYN3_NODES = 3
TESTS = ("set", "get")


@dataclass(frozen=True)
class System:
    """A running server under test: its display name, client port and process ids."""

    name: str
    port: int
    pids: tuple[int, ...]
    build: str = ""  # dynredis: "compiled" or "pure (why)", from INFO server
    data_dir: Path | None = None  # dynredis: the cluster's data directory


@dataclass(frozen=True)
class Result:
    """One redis-benchmark run against one system, plus the server CPU it cost."""

    system: str
    pipeline: int
    test: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    cpu_seconds: float
    client_cpu_seconds: float = 0.0  # redis-benchmark's own utime + stime

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU time per request, in microseconds."""
        return self.cpu_seconds / self.requests * 1e6

    @property
    def client_cpu_us_per_request(self) -> float:
        """redis-benchmark's CPU time per request, in microseconds."""
        return self.client_cpu_seconds / self.requests * 1e6

    def cpu_bound_rps(self, cores: int) -> float:
        """The request rate at which server and client together would keep `cores` CPUs
        busy: a system measured near it is limited by this machine's CPUs, not by
        waiting (at ``-P 1`` on 2 cores, redis-benchmark alone takes a large share)."""
        per_request = self.cpu_us_per_request + self.client_cpu_us_per_request
        return cores * 1e6 / per_request if per_request > 0 else 0.0


# --- command line -------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    """Read an integer from the environment variable ``name``, or return ``default``."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"bench: ${name} must be an integer, got {value!r}") from None


def _pipelines(text: str) -> list[int]:
    """Parse a comma-separated list of pipeline depths, e.g. ``"1,16"``."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("pipeline depths must be integers >= 1")
    return values


def _sizes(text: str) -> list[int]:
    """Parse a comma-separated list of collection sizes, e.g. ``"100,10000"``."""
    try:
        values = [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of sizes: {text!r}") from None
    if not values or any(v < 10 for v in values) or values != sorted(set(values)):
        raise argparse.ArgumentTypeError("sizes must be increasing integers >= 10")
    return values


SUITES = ("strings", "failures", "sizes", "million", "collections")


def _suites(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    if not values or any(v not in SUITES for v in values):
        raise argparse.ArgumentTypeError(f"suites are {', '.join(SUITES)}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ports default to $BENCH_*_PORT or the standard ones."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", "-n", type=int, default=100_000,
                   help="requests per redis-benchmark run (default 100000)")
    p.add_argument("--keyspace", "-r", type=int, default=100_000,
                   help="random keyspace size, redis-benchmark -r (default 100000)")
    p.add_argument("--data-size", "-d", type=int, default=64,
                   help="value size in bytes, redis-benchmark -d (default 64)")
    p.add_argument("--clients", "-c", type=int, default=50,
                   help="parallel connections, redis-benchmark -c (default 50)")
    p.add_argument("--pipelines", type=_pipelines, default=[1, 16],
                   help="comma-separated pipeline depths, redis-benchmark -P (default 1,16)")
    p.add_argument("--suites", type=_suites, default=list(SUITES),
                   help="comma-separated, of: " + ", ".join(SUITES) + " (default: all)")
    p.add_argument("--fail-requests", type=int, default=50_000,
                   help="requests per failure row (default 50000)")
    p.add_argument("--size-requests", type=int, default=50_000,
                   help="requests per 1 KB row; a 100 KB row runs a twentieth "
                        "(default 50000)")
    p.add_argument("--size-pipeline", type=int, default=16,
                   help="redis-benchmark -P for the value-size rows (default 16)")
    p.add_argument("--million-keys", type=int, default=1_000_000,
                   help="keys written before the million rows (default 1000000)")
    p.add_argument("--million-requests", type=int, default=100_000,
                   help="requests per million-keys row (default 100000)")
    p.add_argument("--million-pipeline", type=int, default=16,
                   help="redis-benchmark -P for the million-keys rows (default 16)")
    p.add_argument("--coll-sizes", type=_sizes, default=[100, 10_000, 1_000_000],
                   help="elements in the one collection key, in increasing order "
                        "(default 100,10000,1000000; 100,10000 skips the million)")
    p.add_argument("--coll-requests", type=int, default=20_000,
                   help="requests per collection row on dynredis (redis-server: "
                        f"{collrows.REDIS_FACTOR}x; default 20000)")
    p.add_argument("--coll-clients", type=int, default=50,
                   help="connections for the collection rows (default 50)")
    p.add_argument("--coll-pipeline", type=int, default=16,
                   help="requests in flight per connection for the collection rows "
                        "(default 16)")
    p.add_argument("--redis-port", type=int, default=_env_int("BENCH_REDIS_PORT", 6479),
                   help="redis-server port (default $BENCH_REDIS_PORT or 6479)")
    p.add_argument("--dyn1-port", type=int, default=_env_int("BENCH_DYN1_PORT", 7480),
                   help="1-node dynredis port (default $BENCH_DYN1_PORT or 7480)")
    p.add_argument("--dyn3-base-port", type=int, default=_env_int("BENCH_DYN3_BASE_PORT", 7490),
                   help="3-node dynredis base port, uses base..base+2 "
                        "(default $BENCH_DYN3_BASE_PORT or 7490)")
    p.add_argument("--cluster-port-offset", type=int, default=None,
                   help="the dynredis clusters' cluster ports are their ports plus this "
                        "(`dynredis cluster`'s default 10000; 0: none), to keep a run "
                        "inside a range of ports")
    p.add_argument("--bench-timeout", type=float, default=900.0,
                   help="seconds one redis-benchmark run may take (default 900)")
    p.add_argument("--output", type=Path, default=RESULTS_MD,
                   help=f"markdown results file (default {RESULTS_MD})")
    args = p.parse_args(argv)
    for name in ("requests", "keyspace", "data_size", "clients", "fail_requests",
                 "size_requests", "size_pipeline", "million_keys", "million_requests",
                 "million_pipeline", "coll_requests",
                 "coll_clients", "coll_pipeline"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


# --- processes and ports ------------------------------------------------------------------


def check_tools() -> None:
    """Fail early if redis-server, redis-benchmark or /proc are missing."""
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found on PATH")
    if not Path("/proc/self/stat").exists():
        raise BenchError("/proc is not available; CPU time cannot be measured")


def check_ports_free(ports: dict[str, list[int]]) -> None:
    """Raise a clear error naming every busy port and how to choose another one."""
    busy = [f"{port} ({what})" for what, plist in ports.items() for port in plist
            if not port_free(HOST, port)]
    if busy:
        raise BenchError(
            "port(s) already in use: " + ", ".join(busy) + ". Stop whatever uses them or "
            "pick others with --redis-port/--dyn1-port/--dyn3-base-port "
            "(or $BENCH_REDIS_PORT/$BENCH_DYN1_PORT/$BENCH_DYN3_BASE_PORT).")


def wait_for_ping(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until HOST:port answers PING with +PONG; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"server on port {port} exited with code {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1.0) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"server on port {port} did not answer PING within {timeout:.0f}s")


def dynredis_command() -> list[str]:
    """The dynredis CLI: the console script if on PATH, else ``python -m dynredis``."""
    exe = shutil.which("dynredis")
    return [exe] if exe else [sys.executable, "-m", "dynredis"]


def read_pidfile(data_dir: Path) -> tuple[int, ...]:
    """The node pids a detached dynredis cluster recorded in ``cluster.pids``."""
    path = data_dir / "cluster.pids"
    try:
        pids = tuple(int(x) for x in path.read_text().split())
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read node pids from {path}: {exc}") from exc
    if not pids:
        raise BenchError(f"{path} lists no pids")
    return pids


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[System]:
    """Run a throwaway redis-server (no RDB, no AOF) for the duration of the block."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        log_path = Path(workdir) / "redis.log"
        cmd = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--dir", workdir,
               "--logfile", str(log_path)]
        # Own session: a terminal Ctrl-C reaches only us, and we stop the server ourselves.
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        try:
            try:
                wait_for_ping(port, timeout=15.0, proc=proc)
            except BenchError as exc:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise BenchError(f"{exc}\n--- {log_path} ---\n{tail}") from exc
            yield System(REDIS_NAME, port, (proc.pid,))
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM ``proc``, SIGKILL it if it is still alive after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def dynredis_cluster(name: str, nodes: int, base_port: int, extra: Sequence[str] = (),
                     checkout: Path | None = None) -> Iterator[System]:
    """Run ``dynredis cluster --detach`` in a temp data dir; always ``dynredis stop`` it.
    With `checkout`, that checkout's build (its .venv, run from it: the nodes run
    ``python -m dynredis`` in the working directory, bench/abpair.py)."""
    exe = [str(checkout / ".venv" / "bin" / "dynredis")] if checkout else dynredis_command()
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        data_dir = Path(tmp)
        cmd = [*exe, "cluster", "--nodes", str(nodes),
               "--base-port", str(base_port), "--data-dir", str(data_dir), "--detach", *extra]
        try:
            # --detach returns only once every node is up and the ring has formed.
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                                  cwd=checkout)
            if proc.returncode != 0:
                raise BenchError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}{node_logs(data_dir)}")
            for i in range(nodes):
                wait_for_ping(base_port + i, timeout=15.0)
            yield System(name, base_port, read_pidfile(data_dir), dynredis_build(base_port),
                         data_dir)
        finally:
            # Runs even if the start was interrupted half-way: stop whatever pids it wrote.
            stop = [*exe, "stop", "--data-dir", str(data_dir)]
            subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60, check=False)


def dynredis_build(port: int) -> str:
    """The ``dynredis_build`` field of a node's INFO server (compiled or pure)."""
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        data = b""
        while not data.endswith(b"\r\n\r\n") and len(data) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("dynredis_build:"):
            return line.split(":", 1)[1]
    return "unknown"


def node_logs(data_dir: Path, tail: int = 20) -> str:
    """The last lines of every node.log under ``data_dir``, for error messages."""
    out = []
    for log in sorted(data_dir.glob("node-*/node.log")):
        lines = log.read_text(errors="replace").splitlines()[-tail:]
        out.append(f"--- {log} ---\n" + "\n".join(lines) + "\n")
    return "".join(out)


# --- measurement --------------------------------------------------------------------------


def benchmark_command(args: argparse.Namespace, port: int, test: str, pipeline: int) -> list[str]:
    """The redis-benchmark command line for one test at one pipeline depth."""
    return rbench.command(port, test, args.requests, args.keyspace, args.data_size,
                          args.clients, pipeline)


def run_one(args: argparse.Namespace, system: System, test: str, pipeline: int) -> Result:
    """Run redis-benchmark once against ``system`` (see bench/rbench.py)."""
    got = rbench.run(benchmark_command(args, system.port, test, pipeline), system.pids,
                     args.bench_timeout)
    assert got.summary is not None  # rbench.run raises on any error
    s = got.summary
    return Result(system=system.name, pipeline=pipeline, test=test.upper(),
                  requests=args.requests, rps=s.rps, p50_ms=s.p50_ms, p99_ms=s.p99_ms,
                  p999_ms=s.p999_ms, cpu_seconds=got.cpu_seconds,
                  client_cpu_seconds=got.client_cpu_seconds)


def bench_system(args: argparse.Namespace, system: System) -> list[Result]:
    """All pipeline depths and tests against one system; SET before GET at each depth."""
    results = []
    for pipeline in args.pipelines:
        for test in TESTS:
            print(f"  {system.name}: -t {test} -P {pipeline} ...", end=" ", flush=True)
            result = run_one(args, system, test, pipeline)
            print(f"{result.rps:,.0f} req/s, {result.cpu_us_per_request:.1f} µs CPU/req",
                  flush=True)
            results.append(result)
    return results


Starter = Callable[[], contextlib.AbstractContextManager[System]]


def system_starters(args: argparse.Namespace, builds: dict[str, str]) -> list[Starter]:
    """Context-manager factories for the three systems, in benchmark order; each system
    is announced once started (its build noted in ``builds``)."""
    offset = ([] if args.cluster_port_offset is None
              else ["--cluster-port-offset", str(args.cluster_port_offset)])
    plain: list[Starter] = [
        lambda: redis_server(args.redis_port),
        lambda: dynredis_cluster(DYN1_NAME, 1, args.dyn1_port,
                                 ["--n", "1", "--r", "1", "--w", "1", *offset]),
        lambda: dynredis_cluster(DYN3_NAME, DYN3_NODES, args.dyn3_base_port, offset),
    ]

    @contextlib.contextmanager
    def announced(start: Starter) -> Iterator[System]:
        with start() as system:
            announce(system, builds)
            yield system

    return [lambda start=start: announced(start) for start in plain]


def run_all(args: argparse.Namespace, builds: dict[str, str]) -> list[Result]:
    """Start, benchmark and stop each system in turn; servers are stopped on any exit."""
    results: list[Result] = []
    for start in system_starters(args, builds):
        with start() as system:
            results += bench_system(args, system)
    return results


def announce(system: System, builds: dict[str, str]) -> None:
    """Print a started system's port and pids, and note a dynredis system's build."""
    build = f", build {system.build}" if system.build else ""
    print(f"{system.name}: port {system.port}, pids "
          f"{' '.join(map(str, system.pids))}{build}", flush=True)
    if system.build:
        builds[system.name] = system.build


def log(text: str) -> None:
    print(text, flush=True)


def run_collection_rows(args: argparse.Namespace, builds: dict[str, str]) -> tuple[str, str]:
    """The collection rows: redis-server and the 3-node dynredis, a fresh server for
    each family (see bench/collrows.py). Returns their text tables and markdown."""
    starters = system_starters(args, builds)
    try:
        ops, mems = collrows.run_collections(
            [starters[0], starters[2]], REDIS_NAME,
            args.coll_sizes, args.coll_requests, args.coll_clients, args.coll_pipeline,
            total_cpu_seconds, args.bench_timeout, log)
    except (RuntimeError, OSError) as exc:  # an error reply, a timeout, a lost connection
        raise BenchError(f"collection rows: {exc}") from exc
    text = "\n\n".join([
        collrows.text_table(collrows.OP_COLUMNS, collrows.op_rows(ops, REDIS_NAME, DYN3_NAME)),
        collrows.text_table(collrows.MEM_COLUMNS,
                            collrows.mem_rows(mems, REDIS_NAME, DYN3_NAME))])
    return text, collrows.markdown_section(
        ops, mems, REDIS_NAME, DYN3_NAME, args.coll_sizes, args.coll_requests,
        args.coll_clients, args.coll_pipeline)


def run_failure_rows(args: argparse.Namespace, builds: dict[str, str]) -> tuple[str, str]:
    """The failure rows (bench/failrows.py) on a fresh 3-node cluster: their text table
    and markdown section."""
    start = system_starters(args, builds)[2]
    try:
        results = failrows.run_failures(
            start, args.fail_requests, args.keyspace, args.data_size, args.clients,
            args.pipelines, min(args.bench_timeout, 300.0), total_cpu_seconds,
            collrows.wait_quiet, log)
    except (RuntimeError, OSError) as exc:
        raise BenchError(f"failure rows: {exc}") from exc
    return (collrows.text_table(failrows.COLUMNS, failrows.rows(results)),
            failrows.markdown_section(results, args.fail_requests, args.keyspace,
                                      args.data_size, args.clients, collrows.markdown_table))


def run_size_rows(args: argparse.Namespace, builds: dict[str, str]) -> tuple[str, str]:
    """SET/GET of 1 KB and 100 KB values on every system (bench/scalerows.py)."""
    try:
        rows = scalerows.run_sizes(system_starters(args, builds), args.size_requests,
                                   args.keyspace, args.clients, args.size_pipeline,
                                   args.bench_timeout, log)
    except (RuntimeError, OSError) as exc:
        raise BenchError(f"value-size rows: {exc}") from exc
    cells = scalerows.rows_cells(rows, REDIS_NAME)
    big = scalerows.size_requests(args.size_requests, scalerows.VALUE_SIZES[-1])
    return collrows.text_table(scalerows.ROW_COLUMNS, cells), "\n".join([
        "## Value sizes",
        "",
        f"- `redis-benchmark -t set|get -d 1024|102400 -c {args.clients} "
        f"-P {args.size_pipeline}`: {args.size_requests:,} requests per 1 KB row, "
        f"{big:,} per 100 KB row; keyspace -r "
        f"{scalerows.size_keyspace(args.keyspace, 1024):,} and "
        f"{scalerows.size_keyspace(args.keyspace, scalerows.VALUE_SIZES[-1]):,} "
        "(at most 100 MiB of values per node); each system on its own, "
        "CPU as in the strings table, beside redis-server's",
        "",
        collrows.markdown_table(scalerows.ROW_COLUMNS, cells),
        "",
    ])


def run_million_rows(args: argparse.Namespace, builds: dict[str, str]) -> tuple[str, str]:
    """A million keys written, then SET and GET over them, and memory per key, on
    redis-server and the 3-node dynredis (bench/scalerows.py)."""
    starters = system_starters(args, builds)
    try:
        rows, mems = scalerows.run_million(
            [starters[0], starters[2]], args.million_keys, args.million_requests,
            args.data_size, args.clients, args.million_pipeline, args.bench_timeout,
            lambda pids: collrows.wait_quiet(pids, total_cpu_seconds), log)
    except (RuntimeError, OSError) as exc:
        raise BenchError(f"million-keys rows: {exc}") from exc
    cells = scalerows.rows_cells(rows, REDIS_NAME)
    mem = scalerows.mem_cells(mems)
    text = "\n\n".join([collrows.text_table(scalerows.ROW_COLUMNS, cells),
                         collrows.text_table(scalerows.MEM_COLUMNS, mem)])
    return text, "\n".join([
        f"## {args.million_keys:,} keys",
        "",
        f"- every key `redis-benchmark -r {args.million_keys}` names written once first "
        f"(pipelined MSETs of {scalerows.FILL_BATCH} keys, {args.data_size}-byte values), "
        f"then `redis-benchmark -t set|get -n {args.million_requests} "
        f"-r {args.million_keys} -d {args.data_size} -c {args.clients} "
        f"-P {args.million_pipeline}`; redis-server, then the 3-node dynredis",
        "- memory, after the fill with the servers idle, divided by the keys written: "
        "VmRSS per process (dynredis: the mean of its three nodes, each a full replica; "
        "LMDB's mapped pages count) and its growth over the fill; disk: the blocks "
        "allocated to a node's data directory (LMDB's file is sparse); used_memory: "
        "redis-server's INFO",
        "",
        collrows.markdown_table(scalerows.ROW_COLUMNS, cells),
        "",
        collrows.markdown_table(scalerows.MEM_COLUMNS, mem),
        "",
    ])


SUITE_RUNNERS: dict[str, Callable[[argparse.Namespace, dict[str, str]], tuple[str, str]]] = {
    "failures": run_failure_rows,
    "sizes": run_size_rows,
    "million": run_million_rows,
    "collections": run_collection_rows,
}


# --- reporting ----------------------------------------------------------------------------


COLUMNS = ["system", "P", "test", "requests/s", "p50 ms", "p99 ms", "p99.9 ms", "rps vs redis",
           "CPU µs/req", "CPU/req vs redis", "client µs/req", "CPU-bound rps"]
RIGHT_ALIGNED = set(COLUMNS[3:]) | {"P"}


def _ratio(value: float, base: float | None) -> str:
    """``value / base`` formatted as ``0.42x``, or ``n/a`` without a usable baseline."""
    if base is None or base <= 0:
        return "n/a"
    return f"{value / base:.2f}x"


def table_rows(results: Sequence[Result], cores: int) -> list[list[str]]:
    """Format results as table cells, with ratios against redis-server (same P and test)
    and the rate at which server and client would use all `cores`."""
    base = {(r.pipeline, r.test): r for r in results if r.system == REDIS_NAME}
    rows = []
    for r in results:
        ref = base.get((r.pipeline, r.test))
        rows.append([
            r.system, str(r.pipeline), r.test, f"{r.rps:,.0f}", f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.3f}", f"{r.p999_ms:.3f}", _ratio(r.rps, ref.rps if ref else None),
            f"{r.cpu_us_per_request:.1f}",
            _ratio(r.cpu_us_per_request, ref.cpu_us_per_request if ref else None),
            f"{r.client_cpu_us_per_request:.1f}", f"{r.cpu_bound_rps(cores):,.0f}",
        ])
    return rows


def _align(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    """Pad cells to ``widths``: numbers right-aligned, text left-aligned."""
    return [c.rjust(w) if name in RIGHT_ALIGNED else c.ljust(w)
            for c, w, name in zip(cells, widths, COLUMNS, strict=True)]


def format_text_table(rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(x) for x in col) for col in zip(COLUMNS, *rows, strict=True)]
    lines = ["  ".join(_align(COLUMNS, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(_align(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def format_markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table with aligned columns."""
    widths = [max(3, *(len(x) for x in col)) for col in zip(COLUMNS, *rows, strict=True)]
    sep = [("-" * (w - 1) + ":") if name in RIGHT_ALIGNED else "-" * w
           for w, name in zip(widths, COLUMNS, strict=True)]
    lines = [_align(COLUMNS, widths), sep, *(_align(row, widths) for row in rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def nproc() -> int:
    """The CPUs available to this process (what ``nproc`` prints)."""
    return len(os.sched_getaffinity(0))


def tool_version(cmd: Sequence[str]) -> str:
    """First line of ``cmd``'s output (a ``--version`` call), or ``unknown``."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def markdown_report(args: argparse.Namespace, rows: Sequence[Sequence[str]],
                    builds: dict[str, str], sections: Sequence[str] = ()) -> str:
    """The whole markdown report: machine, date, parameters, legend and table (no
    strings table when `rows` is empty), then `sections` (the collection rows)."""
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    pipes = ",".join(map(str, args.pipelines))
    head = [
        "# dynredis vs redis-server",
        "",
        f"- date: {now}",
        f"- nproc: {nproc()}",
        f"- {tool_version(['redis-server', '--version'])}",
        "- dynredis build: " + (", ".join(f"`{k}` {v}" for k, v in builds.items()) or "n/a"),
        "",
    ]
    if not rows:
        return "\n".join([*head, *sections])
    return "\n".join([*head,
        "## Strings (redis-benchmark)",
        "",
        f"- command: `redis-benchmark -t set|get -n {args.requests} -r {args.keyspace} "
        f"-d {args.data_size} -c {args.clients} -P {{{pipes}}}` (SET run before GET)",
        f"- systems: `{REDIS_NAME}` (--save '' --appendonly no); `{DYN1_NAME}` "
        f"(N=1 R=1 W=1); `{DYN3_NAME}` (N=3 R=2 W=2, lmdb, buffered durability), "
        "all on 127.0.0.1, one system running at a time",
        "- p50/p99: redis-benchmark's latency summary; p99.9: the smallest latency its "
        "percentile distributions report with at least 99.9% of the requests at or below it",
        "- CPU µs/req: utime+stime of all server processes (from /proc) over the run, "
        "divided by the requests; client µs/req: redis-benchmark's own CPU the same way",
        "- CPU-bound rps: nproc x 10^6 / (server + client µs/req), the rate at which the "
        "server and redis-benchmark together would keep every CPU busy; a system measured "
        "near it is limited by this machine's CPUs",
        "",
        format_markdown_table(rows),
        "",
        *sections,
    ])


# --- main ---------------------------------------------------------------------------------


class Terminated(BaseException):
    """Raised from the SIGTERM/SIGHUP handler so every ``finally`` clean-up still runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    """Signal handler: unwind the stack (stopping the servers) by raising Terminated."""
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Check ports, run every benchmark, print the table and write the markdown report."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)
    try:
        check_tools()
        check_ports_free({
            REDIS_NAME: [args.redis_port],
            DYN1_NAME: [args.dyn1_port],
            DYN3_NAME: [args.dyn3_base_port + i for i in range(DYN3_NODES)],
        })
        results: list[Result] = []
        builds: dict[str, str] = {}
        texts: list[str] = []  # each suite's tables, printed together at the end
        sections: list[str] = []  # and their markdown, after the strings table
        for suite in SUITES:
            if suite not in args.suites:
                continue
            if suite == "strings":
                results = run_all(args, builds)
                texts.append(format_text_table(table_rows(results, nproc())))
                continue
            text, section = SUITE_RUNNERS[suite](args, builds)
            texts.append(text)
            sections.append(section)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"\nbench: got signal {exc.signum}; servers stopped", file=sys.stderr)
        return 128 + exc.signum
    for text in texts:
        print()
        print(text)
    rows = table_rows(results, nproc())
    args.output.write_text(markdown_report(args, rows, builds, sections))
    print(f"\nmarkdown written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
