"""Two RENAMEs of one long list through one node, the second sent while the first writes
(issue 12: a client retried a RENAME and the list ended with 1,761,408 items of
1,000,000). Fills `t:l` with N items, sends `RENAME t:l t:lr` on one connection, waits
until `t:lr` exists (its first slices written), sends the same RENAME on another
connection to the same node (or, given PORT2, through another node), and prints both
replies and the destination's length: N and `no such key` when plans on one key run one
after the other (commands/plangate.py; through two nodes, cluster/affinity.py routes both
to the destination's node).

Usage:
    python bench/planrace.py PORT [N] [PORT2]
"""

from __future__ import annotations

import sys
import threading
import time

import redis


def main() -> None:
    port = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    port2 = int(sys.argv[3]) if len(sys.argv) > 3 else port
    r = redis.Redis(port=port, socket_timeout=300)
    r.delete("t:l", "t:lr")
    for i in range(0, n, 10_000):
        r.rpush("t:l", *range(i, min(n, i + 10_000)))
    out: dict[str, tuple[object, float]] = {}

    def rename(tag: str, through: int) -> None:
        c = redis.Redis(port=through, socket_timeout=300)
        t0 = time.monotonic()
        try:
            reply: object = c.rename("t:l", "t:lr")
        except redis.ResponseError as e:
            reply = str(e)
        out[tag] = (reply, round(time.monotonic() - t0, 2))

    first = threading.Thread(target=rename, args=("first", port))
    first.start()
    while not r.exists("t:lr"):
        time.sleep(0.001)
    part = r.llen("t:lr")
    second = threading.Thread(target=rename, args=("second", port2))
    second.start()
    first.join()
    second.join()
    print(f"n={n} ports={port},{port2} dst when the second was sent={part} replies={out} "
          f"LLEN t:lr={r.llen('t:lr')} EXISTS t:l={r.exists('t:l')}")


if __name__ == "__main__":
    main()
