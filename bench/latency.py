"""Where a request's time goes: redis-benchmark against a 3-node cluster (N=3 R=2 W=2,
every client on node 1) with the nodes' latency trace on (DYN.LATENCY, server/latency.py),
then each stage of the sampled requests: p50, p99, p99.9 and its share of the time, for
all of them and for the slowest 0.1%; and the nodes' event-loop lag, the duration of each
kind of loop work and GC pauses.

Node 1 coordinates every request (the client's node); its records are joined with the
records its replicas kept of the same requests (both sample by request id), on one
clock (CLOCK_MONOTONIC is the host's), into one timeline per request:

  queued          node 1 read the bytes -> dispatched the command (window, gate, turn)
  to_peers        dispatched -> its peer messages left (the rest of the turn, the batch)
  link_out        left -> the replica read them (its loop busy, the socket)
  replica_batch   read -> handled (the frame's earlier messages)
  replica_to_ack  handled -> its answer left (the rest of its turn; commit in fsync mode)
  link_back       left -> node 1 read the answer (node 1's loop busy, the socket)
  to_quorum       read -> quorum met (the answer's batch)
  in_order        quorum -> the replies before it in the pipeline are in too
  flush           -> the reply written (the rest of node 1's loop turn)

The first answer is followed (W=2, R=2: node 1's own copy and one replica's). The time a
request spends in a socket before node 1 reads it, and its reply after, is outside
what the nodes see: redis-benchmark's own figures are printed beside.

Usage: ``python bench/latency.py [--requests 100000] [--pipeline 16] [--every 4]
[--tests set,get]``; ``make bench BENCH_ARGS="--suites latency"`` runs it in the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rbench  # noqa: E402
import run as runner  # noqa: E402

STAGES = ("queued", "to_peers", "link_out", "replica_batch", "replica_to_ack", "link_back",
          "to_quorum", "in_order", "flush")
NODE_HISTS = ("loop_lag", "client_read", "peer_read", "flush", "tick", "walk", "group_commit",
              "gc_gen0", "gc_gen1", "gc_gen2")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--keyspace", type=int, default=100_000)
    p.add_argument("--data-size", type=int, default=64)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--every", type=int, default=4, help="follow one request in this many")
    p.add_argument("--tests", default="set,get")
    p.add_argument("--base-port", type=int,
                   default=runner._env_int("BENCH_LATENCY_BASE_PORT", 7260))
    p.add_argument("--bench-timeout", type=float, default=600.0)
    p.add_argument("--node-args", default="",
                   help="extra `dynredis cluster` arguments, space-separated")
    p.add_argument("--killed", action="store_true",
                   help="node 3 killed (SIGKILL) before the runs, as make bench's failure "
                        "rows: where a request waits while its coordinator keeps hints")
    return p.parse_args(argv)


def pct(values: list[int], fraction: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.999999) - 1))]


def ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def timelines(coord: dict[str, Any], replicas: list[dict[str, Any]]) -> list[dict[str, int]]:
    """One dict of stage -> µs (and `total`) per request node `coord` completed."""
    name = coord["node"]
    seen: dict[str, dict[int, list[Any]]] = {}
    for dump in replicas:
        names = dump["names"]
        seen[dump["node"]] = {row[1]: row for row in dump["replica"]
                              if names[row[0]] == name}
    out = []
    for row in coord["requests"]:
        _kind, reqid, read, dispatch, sent, quorum, written, nacks = row[:8]
        if not nacks or not sent:
            continue
        acks = [(coord["names"][row[8 + 2 * i]], row[9 + 2 * i]) for i in range(nacks)]
        peer, ack_read = min(acks, key=lambda a: a[1])
        rep = seen.get(peer, {}).get(reqid)
        if rep is None:
            continue  # (its replica's record was not kept: it was restarted, or reset)
        _src, _reqid, _k, r_read, r_handled, _committed, r_sent = rep
        ordered = row[12] or written
        stamps = [read, dispatch, sent, r_read, r_handled, r_sent, ack_read, quorum, ordered,
                  written]
        line = {stage: max(0, stamps[i + 1] - stamps[i]) // 1000
                for i, stage in enumerate(STAGES)}
        line["total"] = max(0, written - read) // 1000
        out.append(line)
    return out


def stage_table(lines: list[dict[str, int]]) -> list[list[str]]:
    """Per stage: p50, p99, p99.9 (ms) and share of the total time, over all requests and
    over the slowest 0.1% of them (at least one)."""
    if not lines:
        return []
    slow_n = max(1, len(lines) // 1000)
    slowest = sorted(lines, key=lambda t: t["total"], reverse=True)[:slow_n]
    total_all = sum(t["total"] for t in lines) or 1
    total_slow = sum(t["total"] for t in slowest) or 1
    rows = []
    for stage in (*STAGES, "total"):
        values = [t[stage] for t in lines]
        rows.append([stage, ms(pct(values, 0.5)), ms(pct(values, 0.99)),
                     ms(pct(values, 0.999)),
                     f"{100 * sum(values) / total_all:.0f}%",
                     f"{100 * sum(t[stage] for t in slowest) / total_slow:.0f}%",
                     ms(sum(t[stage] for t in slowest) / slow_n)])
    return rows


def hist_rows(dumps: list[dict[str, Any]], seconds: float) -> list[list[str]]:
    """Per node and histogram: count, p50, p99, p99.9, max (ms) and the share of the run's
    wall time it took (loop lag: not a share, the time a timer waited)."""
    rows = []
    for i, dump in enumerate(dumps, 1):
        for name in NODE_HISTS:
            values = dump["hists"].get(name)
            if not values:
                continue
            share = "" if name == "loop_lag" else f"{100 * sum(values) / 1e6 / seconds:.0f}%"
            rows.append([f"node{i}", name, str(len(values)), ms(pct(values, 0.5)),
                         ms(pct(values, 0.99)), ms(pct(values, 0.999)), ms(max(values)), share])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    all_rows = [header, *rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in
                               enumerate(zip(r, widths, strict=True)))
                     for r in all_rows)


def run_test(args: argparse.Namespace, system: runner.System, test: str,
             clients: list[redis.Redis]) -> dict[str, Any]:
    for c in clients:
        c.execute_command("DYN.LATENCY", "RESET")
    cmd = rbench.command(system.port, test, args.requests, args.keyspace, args.data_size,
                         args.clients, args.pipeline)
    started = time.monotonic()
    got = rbench.run(cmd, system.pids, args.bench_timeout)
    seconds = time.monotonic() - started
    dumps = [json.loads(c.execute_command("DYN.LATENCY", "DUMP")) for c in clients]
    assert got.summary is not None
    return {"test": test.upper(), "summary": got.summary, "cpu": got.cpu_seconds,
            "seconds": seconds, "dumps": dumps}


def report(args: argparse.Namespace, result: dict[str, Any]) -> str:
    s = result["summary"]
    dumps = result["dumps"]
    lines = timelines(dumps[0], dumps[1:])
    out = [f"## {result['test']} -P {args.pipeline}: redis-benchmark {s.rps:,.0f} req/s, "
           f"p50 {s.p50_ms:.2f} ms, p99 {s.p99_ms:.2f} ms, p99.9 {s.p999_ms:.2f} ms; "
           f"{len(lines)} requests followed (1 in {args.every}); server CPU "
           f"{result['cpu'] / args.requests * 1e6:.1f} µs/request", ""]
    out.append(table(["stage", "p50 ms", "p99 ms", "p99.9 ms", "share", "share slowest 0.1%",
                      "slowest 0.1% mean ms"], stage_table(lines)))
    out.append("")
    out.append(table(["node", "loop work / pause", "count", "p50 ms", "p99 ms", "p99.9 ms",
                      "max ms", "of wall time"], hist_rows(dumps, result["seconds"])))
    for i, dump in enumerate(dumps, 1):
        g = dump.get("gc", {})
        out.append(f"node{i} gc: collections by generation "
                   f"{[x['collections'] for x in g.get('stats', [])]}, counts {g.get('count')}, "
                   f"threshold {g.get('threshold')}, frozen {g.get('frozen')}, collected "
                   f"{[sum(dump['hists'].get(f'gc_gen{n}_collected', [])) for n in range(3)]}")
    return "\n".join(out)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run(args: argparse.Namespace) -> str:
    extra = args.node_args.split()
    texts = [f"# Latency breakdown ({os.cpu_count()} cores, load average {loadavg()} "
             "at the start)", ""]
    with runner.dynredis_cluster("dynredis-latency", 3, args.base_port, extra) as system:
        alive = 3
        if args.killed:
            os.kill(system.pids[2], signal.SIGKILL)
            system = replace(system, pids=system.pids[:2])
            alive = 2
            time.sleep(4.0)  # its peers count it down (the detector, the links reset)
        clients = [redis.Redis(host=runner.HOST, port=args.base_port + i, socket_timeout=30)
                   for i in range(alive)]
        try:
            for c in clients:
                c.execute_command("DYN.LATENCY", "ON", str(args.every))
            for test in args.tests.split(","):
                print(f"  -t {test} -P {args.pipeline} ...", flush=True)
                texts.append(report(args, run_test(args, system, test, clients)))
                texts.append("")
        finally:
            for c in clients:
                c.close()
    texts.append(f"load average {loadavg()} at the end")
    return "\n".join(texts)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
