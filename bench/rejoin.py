"""How long a node that was down takes to hold every write acknowledged meanwhile.

A 3-node cluster (N=3, R=2, W=2, default settings) is started the README way
(`dynredis cluster --detach`) on free local ports. One node is killed (SIGKILL); writers
then set fresh keys for `--down-seconds`, recording each write the cluster acknowledged.
The dead node is started again the README way (`dynredis cluster --detach` restarts it),
and its cluster port is polled (`KEYS` there covers the partitions the node owns, from
its own data: nothing is read through a quorum, so polling repairs nothing) until it
holds every acknowledged key. Every key written is one the killed node owns, so the
poll sees all of them; each key is written once, so holding the key is holding the
write.

Prints the number of acknowledged writes, how many the node lacked at its restart and
a few moments after it, and the time until it lacked none, counted from the restart
command and from the moment the node answered again.

Usage: ``python bench/rejoin.py [--down-seconds 60] [--writers 4]``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from dynredis.core.keyslot import key_slot
from dynredis.localproc import pid_alive, port_free

HOST = "127.0.0.1"
OFFSET = 10000
NODES = 3
VICTIM = 2


def dynredis(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("dynredis")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "dynredis", *args]


def free_base() -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        if all(port_free(HOST, base + i) and port_free(HOST, base + OFFSET + i)
               for i in range(NODES)):
            return base
    raise RuntimeError("no free ports")


def owned_slots(client: redis.Redis, cluster_port: int) -> set[int]:
    """The hash slots whose master (partition owner) is the node at `cluster_port`."""
    slots: set[int] = set()
    for lo, hi, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
        if int(master[1]) == cluster_port:
            slots.update(range(lo, hi + 1))
    return slots


def keys_for(slots: set[int], prefix: str):
    """Fresh keys, each in one of `slots`."""
    i = 0
    while True:
        i += 1
        key = f"{prefix}{i}"
        if key_slot(key.encode()) in slots:
            yield key


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--down-seconds", type=float, default=60.0)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--max-wait", type=float, default=600.0,
                    help="give up this long after the restart")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="dynredis-rejoin-"))
    base = free_base()
    ports = [base + i for i in range(NODES)]
    start = subprocess.run(dynredis("cluster", "--nodes", str(NODES), "--base-port", str(base),
                                    "--data-dir", str(data), "--detach"),
                           capture_output=True, text=True, timeout=120)
    if start.returncode:
        print(start.stdout + start.stderr, file=sys.stderr)
        return 1
    try:
        return measure(args, data, ports)
    finally:
        subprocess.run(dynredis("stop", "--data-dir", str(data)), capture_output=True,
                       timeout=60)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


def measure(args: argparse.Namespace, data: Path, ports: list[int]) -> int:
    first = redis.Redis(host=HOST, port=ports[0], decode_responses=True)
    victim_cport = ports[VICTIM] + OFFSET
    slots = owned_slots(first, victim_cport)
    pids = [int(x) for x in (data / "cluster.pids").read_text().split()]
    os.kill(pids[VICTIM], signal.SIGKILL)
    while pid_alive(pids[VICTIM]):
        time.sleep(0.05)

    acked: list[str] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + args.down_seconds

    def writer(w: int) -> None:
        client = redis.Redis(host=HOST, port=ports[w % VICTIM], decode_responses=True,
                             socket_timeout=10)
        for key in keys_for(slots, f"rj{w}:"):
            if time.monotonic() >= stop_at:
                return
            try:
                client.set(key, key)
            except redis.RedisError:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                acked.append(key)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"node down for {args.down_seconds:.0f} s: {len(acked)} writes acknowledged "
          f"({len(acked) / args.down_seconds:.0f}/s), {errors[0]} refused")

    restarted = time.monotonic()
    again = subprocess.run(dynredis("cluster", "--nodes", str(NODES), "--data-dir", str(data),
                                    "--detach"), capture_output=True, text=True, timeout=120)
    if again.returncode:
        print(again.stdout + again.stderr, file=sys.stderr)
        return 1
    serving = time.monotonic()
    probe = redis.Redis(host=HOST, port=victim_cport, decode_responses=True, socket_timeout=30)
    wanted = set(acked)
    marks = [5, 10, 20, 30, 45, 60, 120, 300]
    while True:
        held = set(probe.keys("rj*"))
        missing = len(wanted - held)
        now = time.monotonic()
        while marks and now - serving >= marks[0]:
            print(f"  {marks.pop(0):>3} s after it served again: {missing} missing")
        if not missing:
            print(f"holds every acknowledged write {now - restarted:.1f} s after the restart "
                  f"command, {now - serving:.1f} s after it served again (restart took "
                  f"{serving - restarted:.1f} s)")
            return 0
        if now - restarted > args.max_wait:
            print(f"gave up after {args.max_wait:.0f} s: {missing} still missing")
            return 1
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
