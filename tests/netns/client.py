"""A client of the namespace tests: runs inside a host's namespace, sets and gets keys
through one node until told to stop (SIGTERM), and records every operation, one JSON
line each, as it completes (so a history survives however the client ends).

    python -m tests.netns.client --node 172.28.0.11:7000 --id c1 --keys a,b,c \\
        --out history-c1.jsonl [--w 1 --r 1]

Each SET writes a value no other operation writes (`<id>:<seq>`). A SET is "ok" when
the node acknowledged it, "fail" on an error reply (it may still have been stored on
some replica) and "info" on a timeout or lost connection (unknown). Times are
CLOCK_MONOTONIC, the same for every process on the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time

import redis


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--r", type=int, default=0)
    ap.add_argument("--w", type=int, default=0)
    ap.add_argument("--pause", type=float, default=0.01)
    args = ap.parse_args()
    host, _, port = args.node.rpartition(":")
    keys = args.keys.split(",")
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    rng = random.Random(args.id)
    client = redis.Redis(host=host, port=int(port), socket_timeout=3,
                         socket_connect_timeout=3, decode_responses=True)
    seq = 0
    with open(args.out, "a", buffering=1) as out:
        while not stop:
            key = rng.choice(keys)
            write = rng.random() < 0.6
            seq += 1
            value = f"{args.id}:{seq}" if write else None
            t0 = time.monotonic()
            status, result, err = "ok", None, ""
            try:
                if args.r or args.w:
                    quorums = [x for k, v in (("R", args.r), ("W", args.w)) if v
                               for x in (k, v)]
                    client.execute_command("DYN.CONSISTENCY", *quorums)
                if write:
                    client.set(key, value)
                else:
                    result = client.get(key)
            except redis.ResponseError as exc:
                status, err = "fail", str(exc)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                status, err = "info", str(exc)
                client.close()
            out.write(json.dumps({"client": args.id, "op": "set" if write else "get",
                                  "key": key, "value": value if write else result,
                                  "t0": t0, "t1": time.monotonic(), "status": status,
                                  "err": err}) + "\n")
            time.sleep(args.pause)
    return 0


if __name__ == "__main__":
    sys.exit(main())
