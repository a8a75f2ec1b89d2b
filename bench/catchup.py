"""A coordinator that lacks writes its peers can no longer list one by one: their answers
are the whole key (core/collsync.py). Measures the loop work that takes on each node.

Against a running 3-node cluster (--port: its first node, which must have bench/hostile.py's
collections, e.g. filled by `bench/hostile.py --only NOTHING`), with --prep: node 0 is
stopped (SIGSTOP) while node 1 adds one element to each of a:h, a:s, a:z and a:l, then
nodes 1 and 2 are killed and started again (`dynredis cluster --detach`: their logs of
recent events are gone). Then, with or without --prep, node 0 runs the MULTI of
bench/hostile.py [ZRANGE a:z 0 -1; LRANGE a:l 0 -1; HGETALL a:h; SMEMBERS a:s] (or the
one command --command names) and each node's CPU and longest loop work (DYN.LATENCY,
as hostile.py --trace) are printed, --wait seconds after the reply (a late answer is
still decoded).

Usage:
    python bench/catchup.py --port P --data-dir DIR [--prep] [--command 'LRANGE a:l 0 -1']
                            [--wait 1]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.stalls import NODES, cpu_ms, node_pids, slow_work  # noqa: E402

MULTI = [("ZRANGE", "a:z", 0, -1), ("LRANGE", "a:l", 0, -1), ("HGETALL", "a:h"),
         ("SMEMBERS", "a:s")]


def serving(ports: list[int], within: float = 600.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if all(redis.Redis(port=p).ping() for p in ports):
                return
        except redis.RedisError:
            pass
        time.sleep(1)
    raise SystemExit("the nodes do not serve")


def prep(ports: list[int], pids: list[int | None], data_dir: str) -> None:
    """Node 0 misses a write of each collection; nodes 1 and 2 restart."""
    assert all(pids), pids
    os.kill(pids[0], signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        time.sleep(12)  # (its peers count it down)
        c1 = redis.Redis(port=ports[1], socket_timeout=60)
        c1.hset("a:h", "late", "1")
        c1.sadd("a:s", "late")
        c1.zadd("a:z", {"late": 0.5})
        c1.rpush("a:l", "late")
    finally:
        os.kill(pids[0], signal.SIGCONT)  # type: ignore[arg-type]
    time.sleep(10)
    for pid in pids[1:]:
        os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
    time.sleep(2)
    cli = Path(sys.executable).parent / "dynredis"
    # (the dead nodes, with the settings the data directory keeps; a slow start exits 1)
    subprocess.run([str(cli), "cluster", "--data-dir", data_dir, "--detach"],
                   stdout=subprocess.DEVNULL, check=False)
    serving(ports)
    time.sleep(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--prep", action="store_true")
    ap.add_argument("--command", default="", help="one command instead of the MULTI")
    ap.add_argument("--wait", type=float, default=1.0)
    args = ap.parse_args()
    ports = [args.port + i for i in range(NODES)]
    if args.prep:
        prep(ports, node_pids(ports), args.data_dir)
    pids = node_pids(ports)
    nodes = [redis.Redis(port=p, socket_timeout=600) for p in ports]
    for n in nodes:
        n.execute_command("DYN.LATENCY", "ON", 1 << 30)
        n.execute_command("DYN.LATENCY", "RESET")
    cpu0 = [cpu_ms(p) for p in pids]
    c = redis.Redis(port=args.port, socket_timeout=600)
    t0 = time.monotonic()
    try:
        if args.command:
            reply = c.execute_command(*args.command.split())
        else:
            tx = c.pipeline(transaction=True)
            for words in MULTI:
                tx.execute_command(*words)
            reply = tx.execute()
        said = f"{len(reply)} items" if isinstance(reply, list) else str(reply)[:60]
        if isinstance(reply, list) and reply and isinstance(reply[0], list):
            said = str([len(r) for r in reply])
    except redis.RedisError as exc:
        said = f"error: {exc}"
    took = time.monotonic() - t0
    time.sleep(args.wait)
    cpu = [cpu_ms(p) - c0 for p, c0 in zip(pids, cpu0, strict=True)]
    print(f"reply {said} in {took:.1f} s; cpu ms {cpu}")
    print(slow_work(nodes, 20))


if __name__ == "__main__":
    main()
