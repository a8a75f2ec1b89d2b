"""The value-size and million-key rows of `make bench`.

Sizes: SET then GET with 1 KB and 100 KB values (redis-benchmark -d) on each system. The
requests of a row are capped so that it moves at most requests x 4 KiB of values (a
100 KB row runs a twentieth of a 1 KB row's requests and takes seconds), and its keyspace
so that it holds at most SIZE_BUDGET bytes of values per node.

Million: the keys redis-benchmark names with ``-r 1000000`` (``key:`` and 12 digits) are
all written first, each once, pipelined MSETs of FILL_BATCH keys (every one acknowledged,
failed ones sent again), so the store holds 10^6 keys, far beyond any object cache; then
a SET and a GET row over that keyspace. Memory per key, once the fill is done and the
servers are idle: each process's resident set (VmRSS, so LMDB's mapped pages count; its
growth over the fill too) and, for dynredis, the disk its node's data directory takes
(allocated blocks: LMDB's data file is sparse, its apparent size is the map size), against
redis-server's used_memory and RSS, divided by the keys written.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiredis
import rbench
from pipeload import command, run_load

TESTS = ("set", "get")
VALUE_SIZES = (1024, 102_400)
BYTES_PER_REQUEST_CAP = 4096  # a row moves at most requests x this many value bytes
SIZE_BUDGET = 100 << 20  # value bytes a sizes row may leave on each node
MIN_REQUESTS = 1000
FILL_BATCH = 20  # keys per MSET of the million fill


@dataclass(frozen=True)
class Row:
    """One redis-benchmark run: a system at a value size (or keyspace) and test."""

    system: str
    label: str  # "1 KB", "100 KB", "10^6 keys"
    test: str
    requests: int
    rps: float
    p999_ms: float
    cpu_seconds: float

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


def size_label(size: int) -> str:
    return f"{size // 1024} KB" if size % 1024 == 0 else f"{size} B"


def size_requests(requests: int, size: int) -> int:
    """Requests for a row of `size`-byte values: `requests`, fewer for large values."""
    return max(MIN_REQUESTS, min(requests, requests * BYTES_PER_REQUEST_CAP // size))


def size_keyspace(keyspace: int, size: int) -> int:
    return max(1, min(keyspace, SIZE_BUDGET // size))


def bench_row(system: Any, label: str, test: str, requests: int, keyspace: int,
              size: int, clients: int, pipeline: int, timeout: float,
              log: Callable[[str], None]) -> Row:
    cmd = rbench.command(system.port, test, requests, keyspace, size, clients, pipeline)
    got = rbench.run(cmd, system.pids, timeout)
    assert got.summary is not None  # rbench.run raises on an error
    row = Row(system.name, label, test.upper(), requests, got.summary.rps,
              got.summary.p999_ms, got.cpu_seconds)
    log(f"  {system.name}: {label} -t {test}: {row.rps:,.0f} req/s, p99.9 "
        f"{row.p999_ms:.1f} ms, {row.cpu_us:.1f} µs CPU/req")
    return row


def run_sizes(starters: Sequence[Callable[[], contextlib.AbstractContextManager[Any]]],
              requests: int, keyspace: int, clients: int, pipeline: int, timeout: float,
              log: Callable[[str], None] = print) -> list[Row]:
    """SET and GET at each of VALUE_SIZES on each system, one system at a time."""
    rows = []
    for start in starters:
        with start() as system:
            for size in VALUE_SIZES:
                n = size_requests(requests, size)
                for test in TESTS:
                    rows.append(bench_row(system, size_label(size), test, n,
                                          size_keyspace(keyspace, size), size, clients,
                                          pipeline, timeout, log))
    return rows


# --- the million keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """What a system holds once `keys` keys are written (per process: the mean)."""

    system: str
    keys: int
    rss_bytes: float  # VmRSS per process after the fill
    rss_growth_bytes: float  # VmRSS per process after minus before the fill
    disk_bytes: float | None  # dynredis: allocated size of a node's data directory
    used_memory: float | None  # redis-server: INFO memory used_memory

    def per_key(self, value: float | None) -> str:
        return "-" if value is None else f"{value / self.keys:.0f}"


def vm_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise rbench.BenchError(f"no VmRSS for process {pid}")


def allocated_bytes(directory: Path) -> int:
    """Disk blocks allocated to the files under `directory` (sparse files count what
    they hold, not their apparent size)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


def million_key(i: int) -> bytes:
    """The i-th key as redis-benchmark -r names it (`key:` and 12 digits)."""
    return b"key:%012d" % i


def fill_keys(port: int, keys: int, value: bytes, timeout: float,
              log: Callable[[str], None]) -> None:
    """Write keys 0..keys-1 once each (MSETs of FILL_BATCH), retrying failed batches."""
    batches = [(s, min(keys, s + FILL_BATCH)) for s in range(0, keys, FILL_BATCH)]

    def mset(a: int, b: int) -> bytes:
        args: list[bytes] = [b"MSET"]
        for i in range(a, b):
            args += [million_key(i), value]
        return command(*args)

    for _attempt in range(4):
        res = run_load(rbench.HOST, port, [mset(a, b) for a, b in batches], clients=50,
                       pipeline=4, timeout=timeout)
        if not res.errors:
            return
        log(f"  fill: {res.errors} MSETs failed ({res.first_errors[0]}), sent again")
        batches = [batches[i] for i in res.failed]
    raise rbench.BenchError(f"the million fill still fails, e.g. {res.first_errors}")


def used_memory(port: int) -> int:
    with socket.create_connection((rbench.HOST, port), timeout=30) as sock:
        sock.sendall(command(b"INFO", b"memory"))
        reader = hiredis.Reader()
        while (reply := reader.gets()) is False:
            reader.feed(sock.recv(65536))
    for line in reply.decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise rbench.BenchError("INFO memory has no used_memory")


def run_million(starters: Sequence[Callable[[], contextlib.AbstractContextManager[Any]]],
                keys: int, requests: int, data_size: int, clients: int, pipeline: int,
                timeout: float, wait_quiet: Callable[[Sequence[int]], None],
                log: Callable[[str], None] = print) -> tuple[list[Row], list[Memory]]:
    """Fill `keys` keys on each system, take its memory, then a SET and a GET row."""
    rows: list[Row] = []
    mems: list[Memory] = []
    label = f"{keys:,} keys"
    for start in starters:
        with start() as system:
            wait_quiet(system.pids)
            before = [vm_rss(p) for p in system.pids]
            t0 = time.perf_counter()
            fill_keys(system.port, keys, b"x" * data_size, timeout, log)
            wait_quiet(system.pids)
            log(f"  {system.name}: {keys:,} keys written in {time.perf_counter() - t0:.0f}s")
            after = [vm_rss(p) for p in system.pids]
            n = len(system.pids)
            data_dir = getattr(system, "data_dir", None)
            disk = None
            if data_dir is not None:
                nodes = sorted(p for p in Path(data_dir).glob("node-*") if p.is_dir())
                disk = sum(allocated_bytes(p) for p in nodes) / max(1, len(nodes))
            mem = Memory(system.name, keys, sum(after) / n,
                         sum(a - b for a, b in zip(after, before, strict=True)) / n, disk,
                         None if data_dir is not None else used_memory(system.port))
            mems.append(mem)
            for test in TESTS:
                rows.append(bench_row(system, label, test, requests, keys, data_size,
                                      clients, pipeline, timeout, log))
    return rows, mems


# --- reporting ----------------------------------------------------------------------------


ROW_COLUMNS = ["system", "values", "test", "requests", "requests/s", "p99.9 ms",
               "CPU µs/req", "CPU vs redis"]


def rows_cells(rows: Sequence[Row], redis_name: str) -> list[list[str]]:
    base = {(r.label, r.test): r for r in rows if r.system == redis_name}
    out = []
    for r in rows:
        ref = base.get((r.label, r.test))
        out.append([r.system, r.label, r.test, f"{r.requests:,}", f"{r.rps:,.0f}",
                    f"{r.p999_ms:.1f}", f"{r.cpu_us:.1f}",
                    f"{r.cpu_us / ref.cpu_us:.1f}x" if ref and ref.cpu_us > 0 else "n/a"])
    return out


MEM_COLUMNS = ["system", "keys", "RSS MB/process", "RSS B/key", "RSS growth B/key",
               "disk B/key (node)", "used_memory B/key"]


def mem_cells(mems: Sequence[Memory]) -> list[list[str]]:
    return [[m.system, f"{m.keys:,}", f"{m.rss_bytes / 2**20:.0f}", m.per_key(m.rss_bytes),
             m.per_key(m.rss_growth_bytes), m.per_key(m.disk_bytes),
             m.per_key(m.used_memory)] for m in mems]
