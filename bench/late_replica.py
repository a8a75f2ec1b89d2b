"""What a replica that missed a write of a large value spends when it gets it late
(issue 12: a node held 300-600 ms where 60-150 was usual, with timeouts and repairs).

Starts a 3-node cluster (as bench/stalls.py), SETs a --mb MiB value, then --rounds
times: pauses a replica (SIGSTOP), SETs another value of that size (W=2 still met, the
paused replica gets it later: from its socket, or as a hint or repair), resumes it
--paused seconds later and waits --after seconds. Prints, per round, the resumed
replica's longest peer read (wall/cpu/queued ms, from its latency trace) and the
counters the write moved on every node (hints created and delivered, timeouts ...).

Usage:
    python bench/late_replica.py [--mb 100] [--rounds 4] [--paused 4] [--after 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time

import redis
from stalls import counters, node_pids, start_cluster, stop_cluster

NODES = 3


def longest(node: redis.Redis, name: str) -> str:
    """`name`'s longest run since the last reset, as wall/cpu/queued ms."""
    top = {}
    for row in node.execute_command("DYN.LATENCY", "STAGES"):
        stage = row[0].decode() if isinstance(row[0], bytes) else row[0]
        top[stage] = row[5] // 1000
    return "/".join(str(top.get(name + s, "-")) for s in ("", "_cpu", "_queued"))


def run(port: int, args: argparse.Namespace) -> None:
    ports = [port + i for i in range(NODES)]
    pids = node_pids(ports)
    nodes = [redis.Redis(port=p, socket_timeout=120) for p in ports]
    for n in nodes:
        n.execute_command("DYN.LATENCY", "ON", 1 << 30)
    value = os.urandom(1 << 20)
    nodes[0].set("late:big", value * args.mb)
    time.sleep(args.after)
    print(f"build: {nodes[0].info('server').get('dynredis_build')}")
    for r in range(args.rounds):
        victim = 1 + r % (NODES - 1)
        pid = pids[victim]
        assert pid is not None, "the nodes must be processes of this machine"
        for n in nodes:
            n.execute_command("DYN.LATENCY", "RESET")
        before = [counters(n) for n in nodes]
        os.kill(pid, signal.SIGSTOP)
        try:
            nodes[0].set("late:big", bytes([r]) + value[1:] + value * (args.mb - 1))
            time.sleep(args.paused)
        finally:
            os.kill(pid, signal.SIGCONT)
        time.sleep(args.after)
        moved = " ".join(f"n{i}:{k}+{v}" for i, (n, c0) in enumerate(zip(nodes, before,
                                                                          strict=True))
                         for k, v in counters(n, c0).items() if v)
        print(f"round {r}: node {victim} resumed, longest peer read (wall/cpu/queued ms) "
              f"{longest(nodes[victim], 'peer_read')}  {moved}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--paused", type=float, default=4.0, help="s a replica stays paused")
    ap.add_argument("--after", type=float, default=10.0, help="s to wait after resuming it")
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="dynredis-late-")
    try:
        run(start_cluster(data_dir), args)
    finally:
        stop_cluster(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
