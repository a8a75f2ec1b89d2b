"""The failure rows of `make bench`: a 3-node cluster (N=3 R=2 W=2) with one replica
paused, then killed, against the same cluster healthy.

Every client connects to node 1, which coordinates; node 3 is the replica that fails.
With N=3 on three nodes every node holds every key, so a coordinator needs one of the
two other replicas for its quorum of two and must not wait for the one that does not
answer. One cluster, in this order:

1. healthy: SET and GET at each pipeline depth, after every key of the keyspace was
   written once (not measured: redis-benchmark -r's key names, pipelined MSETs), so
   that every state finds the store holding the same keys and every GET of every row
   reads a value (a warm-up of random SETs leaves the healthy GETs missing a third of
   the keys the failure rows' GETs find, after the SET rows between them);
2. paused: node 3 stopped with SIGSTOP for all of its rows (its sockets stay open and
   nothing answers), resumed with SIGCONT after them, then the cluster left to settle;
3. killed: node 3 killed with SIGKILL before its rows (its connections are reset).

For each row: requests/s and p99.9 (bench/rbench.py), the CPU time of the nodes still
running per request, the ratio of both to the healthy row (the goal: throughput at least
half, p99.9 at most twice the healthy one), and whether any request failed: redis-benchmark
stops at the first error reply and says which, and after each row CHECK_KEYS SETs and
GETs of distinct keys through node 1 (redis-py) must all succeed and read back what was
written.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import rbench
import redis
import scalerows

TESTS = ("set", "get")
STATES = ("healthy", "paused", "killed")
CHECK_KEYS = 300
GOAL = 2.0  # the failure rows' throughput and p99.9 stay within this factor of healthy


@dataclass(frozen=True)
class FailResult:
    state: str  # one of STATES
    pipeline: int
    test: str
    requests: int
    rps: float
    p999_ms: float
    cpu_seconds: float  # of the nodes still running
    error: str = ""  # what stopped redis-benchmark, empty when every request succeeded
    check_errors: int = 0  # of the CHECK_KEYS SETs and GETs after the row
    check_total: int = 0
    first_check_error: str = ""

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


def within_goal(row: FailResult, healthy: FailResult | None) -> bool | None:
    """Whether a row kept throughput >= 1/GOAL and p99.9 <= GOAL x the healthy row's,
    with no failed request; None without a healthy row to compare with."""
    if healthy is None or healthy.error or healthy.rps <= 0:
        return None
    if row.error or row.check_errors:
        return False
    return row.rps * GOAL >= healthy.rps and row.p999_ms <= GOAL * healthy.p999_ms


COLUMNS = ["replica 3", "P", "test", "requests/s", "p99.9 ms", "CPU µs/req",
           "rps vs healthy", "p99.9 vs healthy", "within 2x", "failed requests",
           "check after"]


def rows(results: Sequence[FailResult]) -> list[list[str]]:
    """Table cells: each row beside the healthy row of the same depth and test."""
    healthy = {(r.pipeline, r.test): r for r in results if r.state == "healthy"}
    out = []
    for r in results:
        base = healthy.get((r.pipeline, r.test))
        ok = within_goal(r, base)
        usable = base is not None and not base.error and not r.error
        out.append([
            r.state, str(r.pipeline), r.test,
            "-" if r.error else f"{r.rps:,.0f}",
            "-" if r.error else f"{r.p999_ms:.1f}",
            f"{r.cpu_us:.1f}" if not r.error else "-",
            f"{r.rps / base.rps:.2f}x" if usable and base and base.rps > 0 else "n/a",
            f"{r.p999_ms / base.p999_ms:.2f}x"
            if usable and base and base.p999_ms > 0 else "n/a",
            "n/a" if ok is None or r.state == "healthy" else ("yes" if ok else "NO"),
            r.error or "none",
            f"{r.check_errors}/{r.check_total} failed"
            + (f" ({r.first_check_error})" if r.first_check_error else ""),
        ])
    return out


def check(port: int, state: str, round_: int) -> tuple[int, int, str]:
    """CHECK_KEYS SETs then GETs of distinct keys through ``port``, one at a time:
    (errors, commands, the first error). A GET that does not read back its SET's
    value counts as an error too."""
    errors, first = 0, ""
    client = redis.Redis(host=rbench.HOST, port=port, socket_timeout=10.0)
    try:
        keys = [f"bench:check:{state}:{round_}:{i}" for i in range(CHECK_KEYS)]
        for key in keys:
            try:
                client.set(key, key)
            except redis.RedisError as exc:
                errors += 1
                first = first or f"SET: {exc}"
        for key in keys:
            try:
                got = client.get(key)
            except redis.RedisError as exc:
                errors += 1
                first = first or f"GET: {exc}"
                continue
            if got != key.encode():
                errors += 1
                first = first or f"GET {key} read {got!r}"
    finally:
        client.close()
    return errors, 2 * CHECK_KEYS, first


def measure(system: Any, state: str, live: Sequence[int], requests: int, keyspace: int,
            data_size: int, clients: int, pipelines: Sequence[int], timeout: float,
            log: Callable[[str], None]) -> list[FailResult]:
    out = []
    for pipeline in pipelines:
        for test in TESTS:
            cmd = rbench.command(system.port, test, requests, keyspace, data_size, clients,
                                 pipeline)
            got = rbench.run(cmd, live, timeout, tolerate_errors=True)
            errors, total, first = check(system.port, state, len(out) + 10 * pipeline)
            s = got.summary
            r = FailResult(state, pipeline, test.upper(), requests, s.rps if s else 0.0,
                           s.p999_ms if s else 0.0, got.cpu_seconds, got.error, errors,
                           total, first)
            log(f"  {state}: -t {test} -P {pipeline}: "
                + (f"FAILED: {r.error}" if r.error else
                   f"{r.rps:,.0f} req/s, p99.9 {r.p999_ms:.1f} ms, {r.cpu_us:.1f} µs CPU/req")
                + f"; check: {errors}/{total} failed")
            out.append(r)
    return out


def victim_index(system: Any) -> int:
    """Which of ``system.pids`` is node 3 (port base+2), from the cluster's records."""
    ports_file = system.data_dir / "cluster.ports"
    ports = [int(x) for x in ports_file.read_text().split()]
    return ports.index(system.port + 2)


def run_failures(start: Callable[[], contextlib.AbstractContextManager[Any]], requests: int,
                 keyspace: int, data_size: int, clients: int, pipelines: Sequence[int],
                 timeout: float, cpu_of: Callable[[Sequence[int]], float],
                 wait_quiet: Callable[[Sequence[int], Callable[[Sequence[int]], float]], None],
                 log: Callable[[str], None] = print) -> list[FailResult]:
    """Healthy, paused and killed rows on one 3-node cluster (see the module docstring).
    The paused node is always resumed, and the cluster always stopped."""
    results: list[FailResult] = []
    with start() as system:
        i = victim_index(system)
        victim = system.pids[i]
        live = [p for j, p in enumerate(system.pids) if j != i]
        args = (requests, keyspace, data_size, clients, pipelines, timeout, log)
        # Warm up (not measured): the healthy rows would otherwise alone pay for a fresh
        # store's first writes of the keyspace, and read fewer keys that exist.
        log(f"  writing the {keyspace:,} keys of the keyspace once")
        scalerows.fill_keys(system.port, keyspace, b"x" * data_size, timeout, log)
        wait_quiet(system.pids, cpu_of)
        results += measure(system, "healthy", system.pids, *args)
        wait_quiet(system.pids, cpu_of)
        log(f"  pausing node 3 (pid {victim}) with SIGSTOP")
        os.kill(victim, signal.SIGSTOP)
        try:
            results += measure(system, "paused", live, *args)
        finally:
            os.kill(victim, signal.SIGCONT)
        log("  node 3 resumed; letting the cluster settle")
        wait_quiet(system.pids, cpu_of)
        log(f"  killing node 3 (pid {victim}) with SIGKILL")
        os.kill(victim, signal.SIGKILL)
        results += measure(system, "killed", live, *args)
    return results


def markdown_section(results: Sequence[FailResult], requests: int, keyspace: int,
                     data_size: int, clients: int, table: Callable[[Sequence[str],
                                                                    Sequence[Sequence[str]]],
                                                                   str]) -> str:
    return "\n".join([
        "## Failures: one replica of three paused, then killed",
        "",
        f"- `redis-benchmark -t set|get -n {requests} -r {keyspace} -d {data_size} "
        f"-c {clients}` through node 1 of a 3-node cluster (N=3 R=2 W=2, lmdb, buffered "
        "durability); node 3 healthy, then stopped with SIGSTOP for all its rows (resumed "
        "after), then killed with SIGKILL before its rows; one cluster for all of them, every "
        "key of the keyspace written once before the first row",
        "- within 2x: requests/s at least half and p99.9 at most twice the healthy row's, "
        "and no failed request; CPU µs/req: the nodes still running (with everything on "
        "one machine, a node that stops frees CPU for the others: a failure row can be "
        "faster than the healthy one)",
        "- failed requests: what stopped redis-benchmark (it stops at the first error "
        f"reply); check after: {CHECK_KEYS} SETs then {CHECK_KEYS} GETs of distinct keys "
        "through node 1 (redis-py) after the row, each read must return its write",
        "",
        table(COLUMNS, rows(results)),
        "",
    ])
