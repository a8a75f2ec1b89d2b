"""Commands handed to their key's first up replica (cluster/affinity.py) while one
replica is paused (SIGSTOP) and not yet counted down: a plain SET, then RENAME, COPY and
SET NX through node 0 into a key whose first replica is node 0 itself ("self"), node 1
("other": the command is handed over) or the paused node 2 ("paused"). Each command gets
its own pause: node 2 is stopped, plain SETs go through nodes 0 and 1 for WAIT seconds
(as traffic would: the nodes find node 2 silent after silent_ms), the command is timed,
node 2 resumes, and the script waits until node 0 sees every member up again. Prints each
reply, its time and what the source and destination hold after.

Usage (a running 3-node cluster, N=3, on ports PORT..PORT+2, the nodes started with
`dynredis node --port P` as `dynredis cluster` does):
    python bench/pausedhandover.py PORT CLUSTER_PORT_OFFSET [REPEAT] [WAIT]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import redis


def pid_of(port: int) -> int:
    out = subprocess.run(["pgrep", "-f", f"dynredis node --port {port} "],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0])


def first_replica(c: redis.Redis, key: str, offset: int) -> int:
    """The main port of the node CLUSTER SLOTS names as key's master."""
    slot = c.execute_command("CLUSTER", "KEYSLOT", key)
    for lo, hi, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
        if lo <= slot <= hi:
            return int(master[1]) - offset
    raise AssertionError(f"no range holds slot {slot}")


def run(c: redis.Redis, op: str, src: str, dst: str) -> object:
    try:
        if op == "SET":
            return c.execute_command("SET", dst, "v")
        if op == "RENAME":
            return c.execute_command("RENAME", src, dst)
        if op == "COPY":
            return c.execute_command("COPY", src, dst, "REPLACE")
        return c.execute_command("SET", dst, "v", "NX")
    except redis.RedisError as e:
        return f"ERR {e}"[:72]


def main() -> None:
    base, offset = int(sys.argv[1]), int(sys.argv[2])
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    wait = float(sys.argv[4]) if len(sys.argv) > 4 else 0.05
    ports = [base, base + 1, base + 2]
    c0 = redis.Redis(port=ports[0], socket_timeout=120, decode_responses=True)
    plain = [redis.Redis(port=p, socket_timeout=10) for p in ports[:2]]
    names = dict(zip(ports, ("self", "other", "paused"), strict=True))
    dst: dict[str, str] = {}
    for i in range(10_000):
        dst.setdefault(names[first_replica(c0, f"dst{i}", offset)], f"dst{i}")
        if len(dst) == 3:
            break
    pid = pid_of(ports[2])
    cases = [("SET", "plain")] + [(op, case) for case in ("self", "other", "paused")
                                  for op in ("RENAME", "COPY", "SETNX")]
    for rep in range(repeat):
        for op, case in cases:
            key, src = dst.get(case, "plain"), f"src{rep}-{op}-{case}"
            c0.set(src, "v")
            c0.delete(key)
            time.sleep(0.3)
            os.kill(pid, signal.SIGSTOP)
            try:
                until = time.monotonic() + wait
                while time.monotonic() < until:
                    for p in plain:
                        p.set("plain-traffic", "v")
                    time.sleep(0.05)
                t0 = time.monotonic()
                reply = run(c0, op, src, key)
                ms = (time.monotonic() - t0) * 1000
            finally:
                os.kill(pid, signal.SIGCONT)
            t1 = time.monotonic()
            while c0.info("dynamo")["members_down"] and time.monotonic() - t1 < 30:
                time.sleep(0.1)
            held = (c0.exists(src), c0.get(key))
            print(f"{op:6} first replica={case:6} -> {reply!s:74} {ms:8.1f} ms"
                  f"  (src, dst)={held}")
        time.sleep(1)
    info = c0.info("dynamo")
    print("node 0: affinity_handed", info["affinity_handed"], "affinity_failed",
          info["affinity_failed"])


if __name__ == "__main__":
    main()
