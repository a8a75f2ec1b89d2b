"""The collection rows of `make bench`: cost per command against the size of one collection.

For each family (set, hash, sorted set, list) a fresh redis-server and then a fresh
3-node dynredis cluster (N=3 R=2 W=2) get one key, grown to each size in turn (exactly
that many elements, filled with variadic commands of 1000 elements, pipelined). At each
size, commands that keep the size constant run against it and the CPU time of every
server process is read from /proc around them:

- SADD of a member already there (a new version of its record in dynredis: an SADD of a
  member that is there counts as an addition), HSET of an existing field, ZADD of a new
  score for an existing member: random elements of the collection;
- RPUSH then LPOP (one request = the pair), so the list keeps its length;
- ZRANGE of the 10 members around the middle (by rank).

Memory per element: the resident set size (VmRSS from /proc/PID/status, so LMDB's
mapped pages count too; its anonymous part is shown beside it) of each server process
just before and just after the fill to the largest size, the growth divided by the
elements added; for dynredis the mean over the three nodes, each of which holds a full
replica (N=3 on three nodes).
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiredis
from pipeload import command, run_load

HOST = "127.0.0.1"
FILL_CHUNK = 1000  # elements per variadic fill command
REDIS_FACTOR = 10  # redis-server gets this many times the requests (the CPU clock ticks 10 ms)
QUIET_CPU_SHARE = 0.05  # the servers count as idle below this share of one CPU
QUIET_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Op:
    """A command measured at each size: `make(size, rng)` builds one request."""

    name: str
    make: Callable[[int, random.Random], bytes]
    replies: int = 1


@dataclass(frozen=True)
class Family:
    name: str
    key: bytes
    fill: Callable[[int, int], bytes]  # one variadic command adding elements start..end-1
    ops: tuple[Op, ...]


def _sadd(size: int, rng: random.Random) -> bytes:
    return command(b"SADD", b"bench:set", b"member:%d" % rng.randrange(size))


def _hset(size: int, rng: random.Random) -> bytes:
    return command(b"HSET", b"bench:hash", b"field:%d" % rng.randrange(size),
                   b"value:%010d" % rng.randrange(10**9))


def _zadd(size: int, rng: random.Random) -> bytes:
    return command(b"ZADD", b"bench:zset", rng.randrange(10 * size),
                   b"member:%d" % rng.randrange(size))


def _zrange(size: int, rng: random.Random) -> bytes:
    mid = size // 2
    return command(b"ZRANGE", b"bench:zset", max(0, mid - 5), mid + 4)


def _rpush_lpop(size: int, rng: random.Random) -> bytes:
    return (command(b"RPUSH", b"bench:list", b"item:%d" % rng.randrange(10**9))
            + command(b"LPOP", b"bench:list"))


def _fill(cmd: bytes, key: bytes, element: Callable[[int], list[bytes]]) -> Callable[[int, int],
                                                                                     bytes]:
    def make(start: int, end: int) -> bytes:
        args: list[bytes] = [cmd, key]
        for i in range(start, end):
            args += element(i)
        return command(*args)
    return make


FAMILIES = (
    Family("set", b"bench:set", _fill(b"SADD", b"bench:set", lambda i: [b"member:%d" % i]),
           (Op("SADD", _sadd),)),
    Family("hash", b"bench:hash",
           _fill(b"HSET", b"bench:hash", lambda i: [b"field:%d" % i, b"value:%010d" % i]),
           (Op("HSET", _hset),)),
    Family("sorted set", b"bench:zset",
           _fill(b"ZADD", b"bench:zset", lambda i: [b"%d" % (10 * i), b"member:%d" % i]),
           (Op("ZADD", _zadd), Op("ZRANGE 10 mid", _zrange))),
    Family("list", b"bench:list", _fill(b"RPUSH", b"bench:list", lambda i: [b"item:%d" % i]),
           (Op("RPUSH+LPOP", _rpush_lpop, replies=2),)),
)


@dataclass(frozen=True)
class OpResult:
    system: str
    op: str
    size: int
    requests: int
    rps: float
    cpu_seconds: float

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


@dataclass(frozen=True)
class MemResult:
    system: str
    family: str
    added: int  # elements added by the fill measured
    size: int  # elements held after it
    rss_bytes: float  # RSS growth per process (mean over processes)
    anon_bytes: float

    @property
    def rss_per_element(self) -> float:
        return self.rss_bytes / self.added

    @property
    def anon_per_element(self) -> float:
        return self.anon_bytes / self.added


def rss(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of `pid` in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["RssAnon"]


def wait_quiet(pids: Sequence[int], cpu_of: Callable[[Sequence[int]], float]) -> None:
    """Wait until the servers are idle (replicas done with what the last command sent
    them, so its work is not counted against the next one), at most QUIET_TIMEOUT_S."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    before = cpu_of(pids)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = cpu_of(pids)
        if now - before < 0.3 * QUIET_CPU_SHARE:
            return
        before = now


def fill(port: int, family: Family, start: int, end: int, timeout: float,
         log: Callable[[str], None]) -> None:
    """Add elements start..end-1 to the family's key, exactly.

    On a loaded machine a fill command may time out (NOQUORUM) although a replica
    applied it: the count is checked after, failed chunks of a set, hash or sorted set
    are sent again (adding them twice changes nothing) and a list is trimmed or topped
    up to its size. Such retries are logged: they are part of what was seen."""
    chunks = [(s, min(end, s + FILL_CHUNK)) for s in range(start, end, FILL_CHUNK)]
    for _attempt in range(4):
        res = run_load(HOST, port, [family.fill(a, b) for a, b in chunks], clients=1,
                       pipeline=8, timeout=timeout)
        if not res.errors:
            break
        log(f"  fill of {family.name} to {end:,}: {res.errors} commands failed "
            f"({res.first_errors[0]}), sent again")
        if family.name == "list":
            break
        chunks = [chunks[i] for i in res.failed]
    else:
        raise RuntimeError(f"filling {family.key!r} to {end:,}: still failing, e.g. "
                           f"{res.first_errors}")
    count = _count(port, family)
    if family.name == "list" and count != end:
        if count > end:
            run_load(HOST, port, [command(b"LTRIM", family.key, 0, end - 1)])
        else:
            run_load(HOST, port, [family.fill(count, end)])
        count = _count(port, family)
    if count != end:
        raise RuntimeError(f"{family.key!r} holds {count:,} elements, not {end:,}")


COUNTERS = {"set": b"SCARD", "hash": b"HLEN", "sorted set": b"ZCARD", "list": b"LLEN"}


def _count(port: int, family: Family) -> int:
    with socket.create_connection((HOST, port), timeout=60) as sock:
        sock.sendall(command(COUNTERS[family.name], family.key))
        reader = hiredis.Reader()
        while (reply := reader.gets()) is False:
            reader.feed(sock.recv(4096))
    if not isinstance(reply, int):
        raise RuntimeError(f"{COUNTERS[family.name]!r} answered {reply!r}")
    return reply


def bench_family(system: Any, family: Family, sizes: Sequence[int], requests: int,
                 clients: int, pipeline: int, cpu_of: Callable[[Sequence[int]], float],
                 timeout: float, log: Callable[[str], None]) -> tuple[list[OpResult],
                                                                       MemResult | None]:
    """Grow `family`'s key through `sizes` on `system`, measuring its ops at each."""
    rng = random.Random(14)
    results: list[OpResult] = []
    mem = None
    held = 0
    for size in sizes:
        wait_quiet(system.pids, cpu_of)
        before = [rss(pid) for pid in system.pids]
        t0 = time.perf_counter()
        fill(system.port, family, held, size, timeout, log)
        wait_quiet(system.pids, cpu_of)
        after = [rss(pid) for pid in system.pids]
        n = len(system.pids)
        mem = MemResult(system.name, family.name, size - held, size,
                        sum(a[0] - b[0] for a, b in zip(after, before, strict=True)) / n,
                        sum(a[1] - b[1] for a, b in zip(after, before, strict=True)) / n)
        log(f"  {system.name}: {family.name} filled to {size:,} in "
            f"{time.perf_counter() - t0:.1f}s")
        held = size
        for op in family.ops:
            reqs = [op.make(size, rng) for _ in range(requests)]
            wait_quiet(system.pids, cpu_of)
            cpu0 = cpu_of(system.pids)
            res = run_load(HOST, system.port, reqs, op.replies, clients, pipeline, timeout)
            cpu = cpu_of(system.pids) - cpu0
            if res.errors:
                raise RuntimeError(f"{op.name} at {size:,} on {system.name}: {res.errors} "
                                   f"errors, e.g. {res.first_errors}")
            r = OpResult(system.name, op.name, size, requests, res.rps, cpu)
            log(f"  {system.name}: {op.name} at {size:,}: {r.rps:,.0f} req/s, "
                f"{r.cpu_us:.1f} µs CPU/req")
            results.append(r)
    return results, mem


def run_collections(starters: Sequence[Callable[[], contextlib.AbstractContextManager[Any]]],
                    redis_name: str, sizes: Sequence[int], requests: int, clients: int,
                    pipeline: int, cpu_of: Callable[[Sequence[int]], float],
                    timeout: float, log: Callable[[str], None] = print,
                    ) -> tuple[list[OpResult], list[MemResult]]:
    """Every family on every system (a fresh server per family and system)."""
    ops: list[OpResult] = []
    mems: list[MemResult] = []
    for family in FAMILIES:
        for start in starters:
            with start() as system:
                n = requests * REDIS_FACTOR if system.name == redis_name else requests
                got, mem = bench_family(system, family, sizes, n, clients, pipeline, cpu_of,
                                        timeout, log)
                ops += got
                if mem is not None:
                    mems.append(mem)
    return ops, mems


# --- reporting ------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def op_rows(results: Sequence[OpResult], redis_name: str, dyn_name: str) -> list[list[str]]:
    """One row per (command, size): redis-server and dynredis side by side."""
    by = {(r.system, r.op, r.size): r for r in results}
    keys = sorted({(r.op, r.size) for r in results},
                  key=lambda k: ([r.op for r in results].index(k[0]), k[1]))
    rows = []
    for op, size in keys:
        red, dyn = by.get((redis_name, op, size)), by.get((dyn_name, op, size))
        rows.append([op, f"{size:,}",
                     f"{red.rps:,.0f}" if red else "-", f"{red.cpu_us:.1f}" if red else "-",
                     f"{dyn.rps:,.0f}" if dyn else "-", f"{dyn.cpu_us:.1f}" if dyn else "-",
                     _ratio(dyn.cpu_us, red.cpu_us) if red and dyn else "n/a"])
    return rows


OP_COLUMNS = ["command", "elements", "redis req/s", "redis µs/req", "dynredis req/s",
              "dynredis µs/req", "CPU vs redis"]


def mem_rows(mems: Sequence[MemResult], redis_name: str, dyn_name: str) -> list[list[str]]:
    by = {(m.system, m.family): m for m in mems}
    rows = []
    for family in FAMILIES:
        red, dyn = by.get((redis_name, family.name)), by.get((dyn_name, family.name))
        if red is None or dyn is None:
            continue
        rows.append([family.name, f"{dyn.added:,} -> {dyn.size:,}",
                     f"{red.rss_per_element:.0f}", f"{dyn.rss_per_element:.0f}",
                     f"{dyn.anon_per_element:.0f}",
                     _ratio(dyn.rss_per_element, red.rss_per_element)])
    return rows


MEM_COLUMNS = ["family", "elements added", "redis B/elem (RSS)", "dynredis node B/elem (RSS)",
               "of which anon", "vs redis"]


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(3, len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if i else "-" * w
                            for i, w in enumerate(widths)) + " |"
    return "\n".join([line(columns), sep, *(line(r) for r in rows)])


def text_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    out = ["  ".join(c.rjust(w) if i else c.ljust(w)
                     for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
           for cells in [columns, *rows]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_section(ops: Sequence[OpResult], mems: Sequence[MemResult], redis_name: str,
                     dyn_name: str, sizes: Sequence[int], requests: int, clients: int,
                     pipeline: int) -> str:
    return "\n".join([
        "## Collections: one key of each size",
        "",
        f"- sizes: {', '.join(f'{s:,}' for s in sizes)} elements in one key; each system "
        "and family on a fresh server; `dynredis` is the 3-node cluster (N=3 R=2 W=2, "
        "lmdb, buffered durability), every client on node 1 (its coordinator)",
        f"- load: bench/pipeload.py, {clients} connections x {pipeline} requests in flight, "
        f"{requests:,} requests per row on dynredis and {requests * REDIS_FACTOR:,} on "
        "redis-server; SADD/HSET/ZADD of random existing elements (sizes stay put), "
        "RPUSH+LPOP as one request (two commands), ZRANGE of the 10 members around the "
        "middle rank",
        "- µs/req: utime+stime of every server process (all three nodes) from /proc over "
        "the row, per request",
        "- memory: VmRSS growth of each server process over the fill to the largest size "
        "(so LMDB's mapped pages count), per element added; dynredis: the mean of its "
        "three nodes (each holds a full replica); anon: the RssAnon part",
        "",
        markdown_table(OP_COLUMNS, op_rows(ops, redis_name, dyn_name)),
        "",
        markdown_table(MEM_COLUMNS, mem_rows(mems, redis_name, dyn_name)),
        "",
    ])
