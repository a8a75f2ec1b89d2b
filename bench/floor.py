"""The floor under dynredis' CPU per request: what no Python node on LMDB can go below.

Two measurements, each beside redis-server in the same run (the machine's speed drifts):

* **The face**: a Python server on uvloop that parses requests with hiredis' reader and
  answers ``+OK`` to each, nothing else (no command table, no store, no peers): its CPU
  per request under redis-benchmark against redis-server's, SET and GET at ``-P 1`` and
  ``-P 16``, medians of rounds alternating between the two. What is left of a dynredis
  node's CPU per request above this line is its own work.
  With `--cluster`, a 3-node dynredis cluster (N=3 R=2 W=2, its defaults) runs the same
  rounds, and the table says how much of its CPU per request lies above the floor
  (what is left after one face and, for SET, three LMDB puts).
* **The store**: LMDB puts as dynredis' engine makes them (writemap, no sync, one write
  transaction per batch, cursor putmulti), random keys of a store holding ``--keys``
  keys, batches the size of a 5 ms group commit at ``--rate`` writes a second; beside it
  a dict's set of the same keys (what redis-server's SET does). A 3-node SET stores
  three copies: three puts.

Usage:
    python bench/floor.py                  # both, 3 rounds
    python bench/floor.py --rounds 5 --requests 200000
    python bench/floor.py --only store --keys 1000000
    python bench/floor.py --cluster        # a 3-node cluster in the same rounds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rbench  # noqa: E402

TESTS = (("set", 1), ("get", 1), ("set", 16), ("get", 16))


def serve_null(port: int) -> None:
    """The face's floor: parse with hiredis, answer +OK per request (runs until killed)."""
    import hiredis
    import uvloop

    class Null(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.reader = hiredis.Reader()

        def data_received(self, data: bytes) -> None:
            reader = self.reader
            reader.feed(data)
            n = 0
            while reader.gets() is not False:
                n += 1
            if n:
                self.transport.write(b"+OK\r\n" * n)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Null, rbench.HOST, port)
        await asyncio.Event().wait()

    uvloop.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind((rbench.HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise rbench.BenchError(f"server on {port} exited ({proc.returncode})")
        try:
            socket.create_connection((rbench.HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise rbench.BenchError(f"nothing listens on {port} after {timeout:.0f}s")


def face(rounds: int, requests: int, cluster: bool, lmdb_put_us: float | None) -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        raise rbench.BenchError("redis-server and redis-benchmark are needed (redis-tools)")
    rport, nport = free_port(), free_port()
    procs = [
        subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", rbench.HOST, "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL),
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--null-server", str(nport)]),
    ]
    servers = {"redis-server": (rport, [procs[0].pid]), "python null": (nport, [procs[1].pid])}
    with contextlib.ExitStack() as stack:
        try:
            wait_port(rport, procs[0])
            wait_port(nport, procs[1])
            if cluster:
                import run as benchrun  # bench/run.py: `make bench`'s cluster runner

                base = free_port_run(3)
                system = stack.enter_context(benchrun.dynredis_cluster("floor", 3, base))
                servers["dynredis 3-node"] = (system.port, list(system.pids))
                print(f"dynredis build: {system.build}")  # (pure: about 2.5x the CPU)
            cpu: dict[tuple[str, str, int], list[float]] = {}
            for _ in range(rounds):
                for test, depth in TESTS:
                    for name, (port, pids) in servers.items():
                        cmd = rbench.command(port, test, requests, 100_000, 64, 50, depth)
                        run = rbench.run(cmd, pids, timeout=600)
                        cpu.setdefault((name, test, depth), []).append(
                            run.cpu_seconds * 1e6 / requests)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=10)
    print(f"the face: CPU µs per request, median of {rounds} rounds "
          f"({requests} requests, 50 clients, -d 64)")
    head = "| test     | redis-server | python null | null / redis |"
    rule = "| -------- | -----------: | ----------: | -----------: |"
    if cluster:
        head += " dynredis 3-node | above the floor |"
        rule += " --------------: | --------------: |"
    print(head)
    print(rule)
    for test, depth in TESTS:
        r = statistics.median(cpu[("redis-server", test, depth)])
        n = statistics.median(cpu[("python null", test, depth)])
        line = f"| {test.upper()} -P{depth:<2} | {r:12.2f} | {n:11.2f} | {n / r:11.2f}x |"
        if cluster:
            d = statistics.median(cpu[("dynredis 3-node", test, depth)])
            floor = n + (3 * lmdb_put_us if test == "set" and lmdb_put_us else 0.0)
            line += f" {d:15.2f} | {d - floor:15.2f} |"
        print(line)
    if cluster:
        print("  above the floor: the cluster's CPU per request less one face (python null)"
              + (" and, for SET, three LMDB puts (the store's figure above)"
                 if lmdb_put_us else ""))


def free_port_run(count: int) -> int:
    """A base port with `count` free ports from it, and their cluster ports (+10000)."""
    for _ in range(200):
        base = random.randint(20_000, 50_000)
        ports = [base + i for i in range(count)] + [base + 10_000 + i for i in range(count)]
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind((rbench.HOST, port))
        except OSError:
            continue
        return base
    raise rbench.BenchError("no free port range")


def store(keys: int, rate: int, puts: int) -> float:
    import lmdb

    batch = max(1, rate * 5 // 1000)  # a 5 ms group commit's writes
    names = [b"\x00\x07key:%012d" % i for i in range(keys)]  # a partition prefix + key
    value = b"v" * 100  # a 64-byte value with its clock and header
    path = tempfile.mkdtemp(prefix="dynredis-floor-")
    try:
        env = lmdb.open(path, map_size=1 << 36, sync=False, metasync=True, writemap=True,
                        readahead=False, max_dbs=4)
        db = env.open_db(b"data")
        with env.begin(write=True, db=db) as txn:
            cur = txn.cursor()
            cur.putmulti([(k, value) for k in names])
        rnd = random.Random(1)
        batches = [[(rnd.choice(names), value) for _ in range(batch)]
                   for _ in range(max(1, puts // batch))]
        t0 = time.process_time()
        for items in batches:
            with env.begin(write=True, db=db) as txn:
                cur = txn.cursor()
                cur.putmulti(items)
        lmdb_us = (time.process_time() - t0) * 1e6 / (len(batches) * batch)
        env.close()
        held = dict.fromkeys(names, value)
        t0 = time.process_time()
        for items in batches:
            for k, v in items:
                held[k] = v
        dict_us = (time.process_time() - t0) * 1e6 / (len(batches) * batch)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    print(f"the store: {keys} keys held, batches of {batch} (5 ms at {rate}/s), "
          f"{len(batches) * batch} puts")
    print(f"  LMDB put: {lmdb_us:.2f} µs (CPU) each; a 3-node SET's three: {3 * lmdb_us:.2f}")
    print(f"  dict set: {dict_us:.3f} µs each")
    return lmdb_us


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("face", "store"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=30_000, help="writes a second per node")
    ap.add_argument("--puts", type=int, default=300_000)
    ap.add_argument("--cluster", action="store_true",
                    help="also a 3-node dynredis cluster, in the same rounds")
    ap.add_argument("--null-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.null_server:
        serve_null(args.null_server)
        return 0
    lmdb_us = None
    if args.only in (None, "store"):
        lmdb_us = store(args.keys, args.rate, args.puts)
    if args.only in (None, "face"):
        face(args.rounds, args.requests, args.cluster, lmdb_us)
    return 0


if __name__ == "__main__":
    sys.exit(main())
