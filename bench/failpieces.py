"""The failure rows' event loops, piece by piece: for each state of node 3 (healthy, then
paused with SIGSTOP, then killed, as bench/failrows.py runs them) and each SET/GET row,
redis-benchmark's throughput and p99.9 beside each live node's pieces of loop work
(DYN.LATENCY's histograms: client_read, peer_read, flush, tick, walk, group_commit):

  pieces >= 0.5/1/2 ms   how many took that much CPU time (the node's own doing, whatever
                         the machine's load: a loaded machine stretches wall time, and
                         inflates CPU time less)
  blocked max/sum        wall - CPU - run-queue wait of a piece: time the loop thread
                         slept inside it (page faults waiting on writeback, locks)

With one replica down the coordinator waits for its one other live replica every time,
so every long piece of either shows in the tail; healthy, the faster of two replicas
hides the other's. Node 1 coordinates every request.

Usage: ``python bench/failpieces.py [--requests 50000] [--states healthy,paused,killed]
[--tests set,get] [--pipelines 1,16] [--base-port 7270] [--node-args "--durability none"]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import collrows  # noqa: E402
import rbench  # noqa: E402
import run as runner  # noqa: E402
import scalerows  # noqa: E402

KINDS = ("client_read", "peer_read", "flush", "tick", "walk", "group_commit")
THRESHOLDS_US = (500, 1000, 2000)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=50_000)
    p.add_argument("--keyspace", type=int, default=100_000)
    p.add_argument("--states", default="healthy,paused,killed")
    p.add_argument("--tests", default="set,get")
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--every", type=int, default=8, help="DYN.LATENCY ON's sampling")
    p.add_argument("--base-port", type=int,
                   default=runner._env_int("BENCH_PIECES_BASE_PORT", 7270))
    p.add_argument("--cluster-port-offset", type=int, default=50)
    p.add_argument("--node-args", default="",
                   help="extra `dynredis cluster` arguments, space-separated")
    return p.parse_args(argv)


def pieces(hists: dict[str, list[int]]) -> str:
    """The counts of pieces over each threshold (CPU) and their blocked time."""
    over = [sum(1 for k in KINDS for v in hists.get(k + "_cpu", []) if v >= t)
            for t in THRESHOLDS_US]
    blocked: dict[str, list[int]] = {}
    for k in KINDS:
        wall, cpu, queued = (hists.get(k + s, []) for s in ("", "_cpu", "_queued"))
        if wall and len(wall) == len(cpu) == len(queued):
            blocked[k] = [w - c - q for w, c, q in zip(wall, cpu, queued, strict=True)]
    top = " ".join(f"{k}={max(v) / 1000:.1f}/{sum(x for x in v if x > 0) / 1000:.0f}"
                   for k, v in blocked.items() if max(v) >= 1000)
    return (f"pieces >= 0.5/1/2 ms CPU: {'/'.join(map(str, over))}; "
            f"blocked max/sum ms: {top or 'none over 1 ms'}")


def run_row(args: argparse.Namespace, system: Any, live: list[int], nodes: list[Any],
            test: str, pipeline: int) -> None:
    for i in live:
        nodes[i].execute_command("DYN.LATENCY", "RESET")
    pids = [system.pids[i] for i in live]
    got = rbench.run(rbench.command(system.port, test, args.requests, args.keyspace, 64, 50,
                                    pipeline), pids, 300.0, tolerate_errors=True)
    s = got.summary
    head = f"-t {test} -P {pipeline}: " + (
        f"{s.rps:,.0f} req/s, p99.9 {s.p999_ms:.1f} ms, "
        f"{got.cpu_seconds / args.requests * 1e6:.1f} µs CPU/req" if s else got.error)
    print(f"  {head}", flush=True)
    for i in live:
        hists = json.loads(nodes[i].execute_command("DYN.LATENCY", "DUMP"))["hists"]
        print(f"    node{i + 1}: {pieces(hists)}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    extra = ["--cluster-port-offset", str(args.cluster_port_offset), *args.node_args.split()]
    with runner.dynredis_cluster("dynredis-pieces", 3, args.base_port, extra) as system:
        victim = system.pids[2]
        scalerows.fill_keys(system.port, args.keyspace, b"x" * 64, 300.0, print)
        collrows.wait_quiet(system.pids, rbench.total_cpu_seconds)
        nodes = [redis.Redis(host=rbench.HOST, port=args.base_port + i, socket_timeout=30)
                 for i in range(3)]
        for c in nodes:
            c.execute_command("DYN.LATENCY", "ON", str(args.every))
        try:
            for state in args.states.split(","):
                live = [0, 1, 2] if state == "healthy" else [0, 1]
                if state == "paused":
                    os.kill(victim, signal.SIGSTOP)
                elif state == "killed":
                    os.kill(victim, signal.SIGCONT)
                    collrows.wait_quiet(system.pids, rbench.total_cpu_seconds)
                    os.kill(victim, signal.SIGKILL)
                print(f"node 3 {state} (load {os.getloadavg()[0]:.1f})", flush=True)
                for pipeline in map(int, args.pipelines.split(",")):
                    for test in args.tests.split(","):
                        run_row(args, system, live, nodes, test, pipeline)
        finally:
            try:
                os.kill(victim, signal.SIGCONT)
            except ProcessLookupError:
                pass
            for c in nodes:
                c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
