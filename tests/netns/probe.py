"""Questions the namespace tests ask a node from inside a namespace; answers as JSON.

    python -m tests.netns.probe info  --node IP:PORT        INFO dynamo as a dict
    python -m tests.netns.probe state --node IP:PORT --keys a,b [--r 3]
                                                            {key: sorted siblings}
    python -m tests.netns.probe cmd   --node IP:PORT WORD...  any command's reply
"""

from __future__ import annotations

import argparse
import json
import sys

import redis


def _client(node: str) -> redis.Redis:
    host, _, port = node.rpartition(":")
    return redis.Redis(host=host, port=int(port), socket_timeout=5, socket_connect_timeout=5,
                       decode_responses=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("info", "state", "cmd"))
    ap.add_argument("--node", required=True)
    ap.add_argument("--keys", default="")
    ap.add_argument("--r", type=int, default=0)
    ap.add_argument("words", nargs="*")
    args = ap.parse_intermixed_args()
    c = _client(args.node)
    if args.what == "info":
        conn = c.connection_pool.get_connection()
        conn.send_command("INFO", "dynamo")
        text = conn.read_response()
        out: object = dict(line.split(":", 1) for line in str(text).splitlines()
                           if ":" in line and not line.startswith("#"))
    elif args.what == "cmd":
        out = c.execute_command(*args.words)
    else:
        if args.r:
            c.execute_command("DYN.CONSISTENCY", "R", args.r)
        state = {}
        for key in args.keys.split(","):
            reply = c.execute_command("GETCTX", key)
            state[key] = sorted(reply[1]) if reply else []
        out = state
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
