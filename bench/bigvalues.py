"""Large values against a running cluster: what other clients see while they move, and
what the nodes hold afterwards (issue 12, findings 9 and 10).

Against the cluster on --port, --port+1, --port+2 (start one with `dynredis cluster
--detach --base-port PORT`):

1. two SETs of one key with a --mb MiB value through the first node, while a client
   writes small values through the second one after another: the time of each big SET
   and its reply, the small SETs' latencies (p50, p99, max) and errors, and the peers
   any node counts down afterwards;
2. --gets pipelined GETs of a 1 MiB value through the first node, with the small
   writes going on: how long, how many failed, the peers counted down afterwards;
3. --count values of 1 MiB (distinct keys, pipelined by 20) through the first node:
   every node's resident memory before and after (RssAnon: its heap; RSS also counts
   LMDB's mapped file pages).

Usage (0 skips a part):
    python bench/bigvalues.py --port 7000 [--mb 100] [--gets 1000] [--count 500]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import redis


def memory(client: redis.Redis) -> tuple[int, int]:
    """(RssAnon, VmRSS) of the node's process, in MB."""
    pid = client.info("server")["process_id"]
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("RssAnon", "VmRSS"):
                fields[name] = int(rest.split()[0]) >> 10
    return fields["RssAnon"], fields["VmRSS"]


class SmallWrites:
    """Small SETs through one node, one after another, in a thread."""

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(port=port, socket_timeout=30)
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                self.client.set(f"bench:small:{i % 1000}", "x")
            except redis.RedisError as exc:
                self.errors.append(str(exc))
            self.latencies.append(time.perf_counter() - t)
            i += 1

    def __enter__(self) -> SmallWrites:
        self.thread.start()
        time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(2)
        self.stop.set()
        self.thread.join()
        ms = sorted(x * 1000 for x in self.latencies)
        print(f"small SETs meanwhile: {len(ms)}, errors {len(self.errors)} "
              f"{self.errors[:2]}, p50 {ms[len(ms) // 2]:.1f} ms, "
              f"p99 {ms[int(len(ms) * 0.99)]:.1f} ms, max {ms[-1]:.1f} ms")


def members_down(port: int) -> None:
    for j in range(3):
        info = redis.Redis(port=port + j).info("dynamo")
        print(f"node {j}: members down {info['members_down'] or '-'}")


def big_sets(port: int, mb: int) -> None:
    big = redis.Redis(port=port, socket_timeout=300)
    value = os.urandom(1 << 20) * mb
    with SmallWrites(port + 1):
        for n, v in enumerate((value, value[1:] + b"!")):
            t = time.perf_counter()
            try:
                reply = str(big.set("bench:big", v))
            except redis.RedisError as exc:
                reply = f"error: {exc}"
            print(f"SET of {mb} MiB #{n + 1}: {reply} in {time.perf_counter() - t:.2f} s")
    members_down(port)
    t = time.perf_counter()
    print(f"DEL: {big.delete('bench:big')} in {time.perf_counter() - t:.2f} s")


def pipelined_gets(port: int, gets: int) -> None:
    c = redis.Redis(port=port, socket_timeout=300)
    value = os.urandom(1 << 20)
    c.set("bench:onemb", value)
    with SmallWrites(port + 2):
        t = time.perf_counter()
        pipe = c.pipeline(transaction=False)
        for _ in range(gets):
            pipe.get("bench:onemb")
        replies = pipe.execute(raise_on_error=False)
        bad = sum(1 for r in replies if r != value)
        print(f"{gets} pipelined GETs of 1 MiB: {bad} failed, "
              f"{time.perf_counter() - t:.2f} s")
    members_down(port)


def many_values(port: int, count: int) -> None:
    nodes = [redis.Redis(port=port + j, socket_timeout=60) for j in range(3)]
    before = [memory(c) for c in nodes]
    value = os.urandom(1 << 20)
    c = nodes[0]
    for start in range(0, count, 20):
        pipe = c.pipeline(transaction=False)
        for i in range(start, min(start + 20, count)):
            pipe.set(f"bench:mb:{i}", value[i % 1000:] + value[:i % 1000])
        pipe.execute()
    time.sleep(2)
    after = [memory(c) for c in nodes]
    for j in range(3):
        print(f"node {j}: RssAnon {before[j][0]} -> {after[j][0]} MB, "
              f"VmRSS {before[j][1]} -> {after[j][1]} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=7000)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--gets", type=int, default=1000)
    ap.add_argument("--count", type=int, default=500)
    args = ap.parse_args()
    if args.mb:
        big_sets(args.port, args.mb)
    if args.gets:
        pipelined_gets(args.port, args.gets)
    if args.count:
        many_values(args.port, args.count)


if __name__ == "__main__":
    main()
