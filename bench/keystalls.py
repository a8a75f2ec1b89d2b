"""How long each node's event loop stalls when a request of a few bytes walks many keys
or many elements (issue 12: "no freeze over 100 ms from any request of under 1 KB").

Fills a 3-node cluster (started as bench/stalls.py starts one, or --port) with --keys
string keys and six collections of --elements elements each (a hash, a sorted set, two
sets, a list of strings and one of numbers), then, with a prober PINGing every node
every 5 ms (bench/stalls.py's), runs one after another: DBSIZE, KEYS *, SCAN 0 COUNT
10^7, HLEN, the reads of a whole collection (HGETALL, HKEYS, HVALS, HRANDFIELD -n
WITHVALUES, ZRANGE 0 -1 with and without WITHSCORES, ZREVRANGE, ZRANGEBYSCORE, LRANGE
0 -1, SORT ALPHA of the list, SORT of the numbers, SMEMBERS, SRANDMEMBER -n, SINTER and
SUNION of the set and a second one overlapping it by half), HSCAN / SSCAN / ZSCAN 0
(the first scan of a key builds its scan order: an HSCAN again shows a later call),
ZRANGEBYLEX - + LIMIT 0 10, ZINTERCARD, SORT BY nosort GET #, LPOS and LREM of a
missing item, RENAME of the hash, DEL of
the renamed hash and an HSET of it right after, COPY of the set, SUNIONSTORE of the set,
ZUNIONSTORE and ZRANGESTORE 0 -1 of the sorted set, RENAME of the list, DEL of the four
copies, LTRIM of the list to 1,000 items, ZREMRANGEBYRANK keeping 1,000 members, a push
and a pop of 3,000, UNLINK of the sorted set, DEL of the list, EXPIRE of the set (1 s,
then reaped), FLUSHALL. For each it prints the longest PING round trip per node and the
reply (or error). `--redis PORT` runs the same against a redis-server for comparison
(one node).

Usage:
    python bench/keystalls.py [--keys 100000] [--elements 200000] [--port P | --redis P]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.stalls import NODES, longest, probe, start_cluster, stop_cluster  # noqa: E402


def fill(c: redis.Redis, keys: int, elements: int) -> None:
    for start in range(0, keys, 5000):
        c.mset({f"k:{i}": "v" for i in range(start, min(keys, start + 5000))})
    for start in range(0, elements, 2000):
        end = min(elements, start + 2000)
        c.hset("c:h", mapping={f"f{i}": "v" for i in range(start, end)})
        c.zadd("c:z", {f"m{i}": i for i in range(start, end)})
        c.sadd("c:s", *[f"m{i}" for i in range(start, end)])
        c.sadd("c:s2", *[f"m{i + elements // 2}" for i in range(start, end)])
        c.rpush("c:l", *[f"i{i}" for i in range(start, end)])
        c.rpush("c:n", *[(i * 7919) % elements for i in range(start, end)])


def actions(c: redis.Redis, n: int) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("DBSIZE", c.dbsize),
        ("KEYS *", lambda: len(c.keys("*"))),
        ("SCAN 0 COUNT 10^7", lambda: len(c.scan(0, count=10**7)[1])),
        ("HLEN", lambda: c.hlen("c:h")),
        ("HGETALL", lambda: len(c.hgetall("c:h"))),
        ("HKEYS", lambda: len(c.hkeys("c:h"))),
        ("HVALS", lambda: len(c.hvals("c:h"))),
        ("HRANDFIELD -n WITHVALUES", lambda: len(c.execute_command(
            "HRANDFIELD", "c:h", -n, "WITHVALUES"))),
        ("ZRANGE 0 -1", lambda: len(c.zrange("c:z", 0, -1))),
        ("ZRANGE 0 -1 WITHSCORES", lambda: len(c.zrange("c:z", 0, -1, withscores=True))),
        ("ZREVRANGE 0 -1", lambda: len(c.zrevrange("c:z", 0, -1))),
        ("ZRANGEBYSCORE -inf +inf", lambda: len(c.zrangebyscore("c:z", "-inf", "+inf"))),
        ("LRANGE 0 -1", lambda: len(c.lrange("c:l", 0, -1))),
        ("SORT list ALPHA", lambda: len(c.sort("c:l", alpha=True))),
        ("SORT list of numbers", lambda: len(c.sort("c:n"))),
        ("SMEMBERS", lambda: len(c.smembers("c:s"))),
        ("SRANDMEMBER -n", lambda: len(c.srandmember("c:s", -n))),
        ("SINTER 2 sets", lambda: len(c.sinter("c:s", "c:s2"))),
        ("SUNION 2 sets", lambda: len(c.sunion("c:s", "c:s2"))),
        ("HSCAN 0 (first)", lambda: len(c.hscan("c:h", 0)[1])),
        ("HSCAN 0 again", lambda: len(c.hscan("c:h", 0)[1])),
        ("SSCAN 0", lambda: len(c.sscan("c:s", 0)[1])),
        ("ZSCAN 0", lambda: len(c.zscan("c:z", 0)[1])),
        ("ZRANGEBYLEX - + LIMIT 0 10", lambda: len(c.zrangebylex("c:z", "-", "+", 0, 10))),
        ("ZINTERCARD 2 sets", lambda: c.zintercard(2, ["c:z", "c:s"])),
        ("SORT BY nosort GET #", lambda: len(c.sort("c:l", by="nosort", get="#"))),
        ("LPOS missing", lambda: c.lpos("c:l", "nope")),
        ("LREM missing", lambda: c.lrem("c:l", 0, "nope")),
        ("RENAME hash", lambda: c.rename("c:h", "c:h2")),
        ("DEL renamed hash", lambda: c.delete("c:h2")),
        ("HSET of it right after", lambda: c.hset("c:h2", "f", "v")),
        ("COPY set", lambda: c.copy("c:s", "c:sc")),
        ("SUNIONSTORE set", lambda: c.sunionstore("c:s3", ["c:s"])),
        ("ZUNIONSTORE zset", lambda: c.zunionstore("c:z2", ["c:z"])),
        ("ZRANGESTORE 0 -1", lambda: c.zrangestore("c:z3", "c:z", 0, -1)),
        ("RENAME list", lambda: c.rename("c:l", "c:l2")),
        ("DEL copies", lambda: c.delete("c:sc", "c:s3", "c:z2", "c:z3")),
        ("LTRIM list 0 999", lambda: c.ltrim("c:l2", 0, 999)),
        ("ZREMRANGEBYRANK 1000 -1", lambda: c.zremrangebyrank("c:z", 1000, -1)),
        ("RPUSH list again", lambda: c.rpush("c:l2", *[f"j{i}" for i in range(2000)])),
        ("LPOP list 3000", lambda: len(c.lpop("c:l2", 3000) or [])),
        ("UNLINK sorted set", lambda: c.unlink("c:z")),
        ("DEL list", lambda: c.delete("c:l2")),
        ("EXPIRE set 1, reaped", lambda: (c.expire("c:s", 1), time.sleep(2.5))[0]),
        ("FLUSHALL", c.flushall),
    ]


def measure(ports: list[int], args: argparse.Namespace) -> None:
    c = redis.Redis(port=ports[0], socket_timeout=300)
    fill(c, args.keys, args.elements)
    ours, theirs = mp.Pipe()
    prober = mp.Process(target=probe, args=(ports, 0.005, theirs))
    prober.start()
    time.sleep(1.0)
    windows = []
    for name, run in actions(c, args.elements):
        t0 = time.monotonic()
        try:
            reply: object = run()
        except redis.RedisError as exc:
            reply = f"error: {exc}"
        took = time.monotonic() - t0
        time.sleep(1.0)
        windows.append((name, t0, time.monotonic(), took, reply))
    ours.send("stop")
    rounds = ours.recv()
    prober.join()
    build = "redis" if args.redis else c.info("server").get("dynredis_build")
    print(f"{args.keys:,} keys, collections of {args.elements:,} elements; build: {build}")
    print(f"{'action':<24}{'took s':>8}  " + "".join(f"{'node ' + str(i) + ' ms':>12}"
                                                     for i in range(len(ports))) + "  reply")
    for name, t0, t1, took, reply in windows:
        cells = "".join(f"{longest(rounds[i], t0, t1):>12.1f}" for i in range(len(ports)))
        print(f"{name:<24}{took:>8.2f}  {cells}  {str(reply)[:40]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--elements", type=int, default=200_000)
    ap.add_argument("--port", type=int, default=0, help="a running cluster's first port")
    ap.add_argument("--redis", type=int, default=0, help="a redis-server's port instead")
    args = ap.parse_args()
    if args.redis or args.port:
        measure([args.redis] if args.redis else [args.port + i for i in range(NODES)], args)
        return
    data_dir = tempfile.mkdtemp(prefix="dynredis-keystalls-")
    try:
        base = start_cluster(data_dir)
        measure([base + i for i in range(NODES)], args)
    finally:
        stop_cluster(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
