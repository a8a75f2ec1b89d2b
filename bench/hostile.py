"""Small requests an attacker would send to make a node work in proportion to a large
collection (issue 12: "no freeze over 100 ms from any request of under 1 KB").

Against a running 3-node cluster (--port: its first node), it fills (unless --no-fill)
one collection of each type with --elements elements (hash a:h, set a:s, sorted set
a:z, list a:l) and a --mb MiB string a:str, then, with bench/stalls.py's prober PINGing
every node every 5 ms, sends through node 0 one after another every request below that
--only matches (each under 1 KB, each followed by a quiet second) and prints per
request the longest PING round trip of each node and the CPU (ms, /proc) each spent,
and the reply's start. The requests that change a key put it back (or work on a copy,
or come last).

With --keyspace N it sweeps instead the requests whose work grows with the number of
keys, over N keys (bench/keyspace.py: its fill and its requests).

Usage:
    python bench/hostile.py --port P [--elements 1000000] [--mb 100] [--no-fill]
                            [--only REGEX] [--skip REGEX] [--quiet 1.0] [--trace]
                            [--trace-ms 20]
    python bench/hostile.py --port P --keyspace 1000000 [--expire 990000]
                            [--expire-ms 500] [--expire-quiet 10] [--no-fill] ...
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import keyspace  # noqa: E402
from bench.stalls import NODES, cpu_ms, longest, node_pids, probe, slow_work  # noqa: E402

H, S, Z, L, STR, G = "a:h", "a:s", "a:z", "a:l", "a:str", "a:g"
GEO_MOST = 100_000  # members of the geo set a:g at most
LOOP = ("local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + #redis.call({call}) end "
        "return n")


def fill(c: redis.Redis, n: int, mb: int) -> None:
    step = 5000
    for start in range(0, n, step):
        end = min(n, start + step)
        pipe = c.pipeline(transaction=False)
        pipe.hset(H, mapping={f"f{i}": f"v{i}" for i in range(start, end)})
        pipe.sadd(S, *[f"m{i}" for i in range(start, end)])
        pipe.zadd(Z, {f"m{i}": i for i in range(start, end)})
        pipe.rpush(L, *[f"i{i}" for i in range(start, end)])
        if start < GEO_MOST:
            pipe.geoadd(G, [x for i in range(start, min(end, GEO_MOST))
                            for x in (-179.9 + 359.8 * (i * 7919 % n) / n,
                                      -84.9 + 169.8 * i / n, f"m{i}")])
        pipe.execute()
    c.set(STR, b"\x5a" * (mb << 20))


def requests(n: int, mb: int) -> list[tuple[object, ...]]:
    """Every request, as its words (or a ("MULTI", [...]) / ("WATCH", key, [...])
    group); the destructive ones last."""
    mid, big = n // 2, mb << 20
    loop = LOOP.format
    return [
        # hash
        ("HRANDFIELD", H, n), ("HRANDFIELD", H, n, "WITHVALUES"), ("HRANDFIELD", H, mid),
        ("HRANDFIELD", H, mid, "WITHVALUES"), ("HRANDFIELD", H, -n, "WITHVALUES"),
        ("HRANDFIELD", H, n * 3 // 5), ("HRANDFIELD", H, n // 4 - 1),
        ("HSCAN", H, 0, "COUNT", 10**9), ("HSCAN", H, 0, "MATCH", "nomatch*", "COUNT", 10**9),
        ("HGETALL", H), ("HKEYS", H), ("HVALS", H), ("HLEN", H), ("HSTRLEN", H, f"f{mid}"),
        ("HMGET", H, *[f"f{i}" for i in range(0, n, n // 40)]), ("HEXISTS", H, "nofield"),
        ("HINCRBY", H, "nofield", 1), ("HDEL", H, "nofield"), ("HSETNX", H, "f1", "x"),
        # set
        ("SRANDMEMBER", S, n), ("SRANDMEMBER", S, mid), ("SRANDMEMBER", S, n * 3 // 5),
        ("SRANDMEMBER", S, -n), ("SRANDMEMBER", S, -(n // 4 - 1)),
        ("SRANDMEMBER", S, n // 101), ("SMEMBERS", S),
        ("SSCAN", S, 0, "COUNT", 10**9), ("SSCAN", S, 0, "MATCH", "nomatch*", "COUNT", 10**9),
        ("SISMEMBER", S, "m1"), ("SMISMEMBER", S, *[f"m{i}" for i in range(40)]),
        ("SINTERCARD", 2, S, S, "LIMIT", 1), ("SINTERCARD", 1, S), ("SINTER", S, S),
        ("SUNION", S, S), ("SDIFF", S, S), ("SDIFF", S, "nokey"),
        ("SMOVE", S, "a:s2", "m1"), ("SMOVE", "a:s2", S, "m1"),
        ("SORT", S, "LIMIT", 0, 1), ("SORT", S, "ALPHA", "LIMIT", 0, 1),
        ("SORT", S, "BY", "nosort", "LIMIT", 0, 1),
        ("SORT_RO", S, "BY", "nosort", "GET", "#", "LIMIT", 0, 1),
        ("SORT", S, "BY", "w_*", "LIMIT", 0, 1),
        # sorted set
        ("ZRANDMEMBER", Z, n), ("ZRANDMEMBER", Z, n, "WITHSCORES"), ("ZRANDMEMBER", Z, mid),
        ("ZRANDMEMBER", Z, mid, "WITHSCORES"), ("ZRANDMEMBER", Z, -n),
        ("ZRANDMEMBER", Z, -n, "WITHSCORES"), ("ZRANDMEMBER", Z, n // 101),
        ("ZRANGE", Z, 0, -1), ("ZRANGE", Z, -1, -1), ("ZRANGE", Z, mid, mid + 10),
        ("ZRANGE", Z, 0, -1, "WITHSCORES"),
        ("ZRANGEBYSCORE", Z, "-inf", "+inf", "LIMIT", n - 10, 10),
        ("ZRANGEBYSCORE", Z, "-inf", "+inf", "LIMIT", 0, -1),
        ("ZREVRANGEBYSCORE", Z, "+inf", "-inf", "LIMIT", n - 10, 10),
        ("ZRANGEBYLEX", Z, "-", "+", "LIMIT", n - 10, 10),
        ("ZRANGE", Z, "(1", "+inf", "BYSCORE", "LIMIT", mid, 1),
        ("ZRANGE", Z, "+", "-", "BYLEX", "REV", "LIMIT", mid, 1),
        ("ZCOUNT", Z, "-inf", "+inf"), ("ZLEXCOUNT", Z, "-", "+"),
        ("ZRANK", Z, f"m{mid}"), ("ZRANK", Z, f"m{mid}", "WITHSCORE"),
        ("ZREVRANK", Z, f"m{mid}", "WITHSCORE"), ("ZSCORE", Z, "m1"),
        ("ZMSCORE", Z, *[f"m{i}" for i in range(40)]),
        ("ZSCAN", Z, 0, "COUNT", 10**9), ("ZSCAN", Z, 0, "MATCH", "nomatch*", "COUNT", 10**9),
        ("ZINTERCARD", 2, Z, Z, "LIMIT", 1), ("ZINTER", 2, Z, Z), ("ZUNION", 1, Z),
        ("ZDIFF", 2, Z, Z), ("ZINTER", 2, Z, S, "WITHSCORES"),
        ("ZREMRANGEBYSCORE", Z, n * 2, n * 3), ("ZREMRANGEBYLEX", Z, "[zz", "[zzz"),
        ("ZREMRANGEBYRANK", Z, n * 2, n * 3), ("ZADD", Z, "GT", "CH", 1, "m1"),
        ("ZINCRBY", Z, 0, f"m{mid}"), ("ZPOPMIN", Z, 0),
        # list
        ("LRANGE", L, 0, -1), ("LRANGE", L, mid, mid + 10), ("LINDEX", L, mid),
        ("LINDEX", L, -mid), ("LLEN", L), ("LSET", L, mid, f"i{mid}"),
        ("LPOS", L, "nomatch"), ("LPOS", L, "nomatch", "RANK", -1),
        ("LPOS", L, "nomatch", "COUNT", 0), ("LPOS", L, f"i{n - 1}", "MAXLEN", 0),
        ("LPOS", L, "i0", "RANK", 1, "COUNT", 0),
        ("LREM", L, 0, "nomatch"), ("LREM", L, -1, "nomatch"),
        ("LINSERT", L, "BEFORE", f"i{mid}", "x"), ("LREM", L, 1, "x"),
        ("LINSERT", L, "AFTER", "nomatch", "x"), ("LTRIM", L, 0, -1),
        ("LMOVE", L, L, "RIGHT", "LEFT"), ("LMOVE", L, L, "LEFT", "RIGHT"),
        ("RPOPLPUSH", L, L), ("LMOVE", L, L, "LEFT", "RIGHT"),
        ("SORT", L, "LIMIT", 0, 1), ("SORT", L, "ALPHA", "LIMIT", 0, 1),
        ("SORT", L, "BY", "nosort", "LIMIT", 0, 10), ("SORT", L, "BY", "nosort", "DESC",
                                                       "LIMIT", 0, 10),
        ("SORT", L, "BY", "nosort", "GET", "#", "GET", "nokey_*", "LIMIT", n - 10, 10),
        # geo (a sorted set of GEO_MOST members at most, all over the world)
        ("GEOSEARCH", G, "FROMLONLAT", 0, 0, "BYRADIUS", 40000, "km"),
        ("GEOSEARCH", G, "FROMLONLAT", 0, 0, "BYRADIUS", 40000, "km", "WITHDIST",
         "WITHCOORD", "WITHHASH", "ASC"),
        ("GEOSEARCH", G, "FROMLONLAT", 0, 0, "BYBOX", 40000, 40000, "km", "COUNT", 1),
        ("GEORADIUS_RO", G, 0, 0, 20000, "km", "COUNT", 3, "ANY"),
        # one write of 33 requests (under 1 KB): each moderate, together not
        ("PIPE", 33, ("MEMORY", "USAGE", H, "SAMPLES", 0)),
        ("PIPE", 33, ("SORT_RO", Z, "BY", "w_*", "LIMIT", 0, 1)),
        ("PIPE", 33, ("GEOSEARCH", G, "FROMMEMBER", "m1", "BYRADIUS", 500, "km", "COUNT", 1)),
        ("PIPE", 28, ("OBJECT", "ENCODING", STR)), ("PIPE", 28, ("EXPIRE", STR, 100000)),
        # the big string
        ("GET", STR), ("GETRANGE", STR, 0, -1), ("GETRANGE", STR, big // 2, big // 2 + 10),
        ("GETRANGE", STR, -10, -1), ("SUBSTR", STR, big // 2, big // 2 + 10),
        ("STRLEN", STR), ("BITCOUNT", STR), ("BITCOUNT", STR, 0, -1, "BIT"),
        ("BITCOUNT", STR, -5, -1), ("BITPOS", STR, 1), ("BITPOS", STR, 0),
        ("BITPOS", STR, 1, 0, -1, "BIT"), ("BITPOS", STR, 0, -1), ("GETBIT", STR, big * 4),
        ("BITFIELD_RO", STR, "GET", "u8", big * 4), ("LCS", STR, STR),
        ("LCS", STR, STR, "LEN"), ("LCS", STR, "nokey"), ("SETRANGE", STR, big // 2, "Z"),
        ("SETBIT", STR, big * 4, 0), ("APPEND", STR, ""), ("INCR", STR),
        ("PFCOUNT", STR), ("GETEX", STR), ("SET", STR, "x", "NX"),
        ("BITOP", "NOT", "a:strnot", STR), ("BITOP", "AND", "a:strand", STR, STR),
        # keys of every type
        *[cmd for k in (H, S, Z, L, STR) for cmd in (
            ("TYPE", k), ("OBJECT", "ENCODING", k), ("OBJECT", "FREQ", k),
            ("OBJECT", "IDLETIME", k), ("MEMORY", "USAGE", k),
            ("MEMORY", "USAGE", k, "SAMPLES", 0), ("DEBUG", "OBJECT", k), ("EXISTS", k),
            ("TTL", k), ("EXPIRE", k, 100000), ("PERSIST", k), ("TOUCH", k), ("DUMP", k),
            ("COPY", k, k + "c"), ("MOVE", k + "c", 1), ("RENAME", k, k + "r"),
            ("RENAME", k + "r", k))],
        ("DUMPRESTORE", H), ("DUMPRESTORE", Z),
        # scripts and transactions
        ("EVAL", loop(call="'ZRANGE', KEYS[1], 0, -1"), 1, Z, 1),
        ("EVAL", loop(call="'HGETALL', KEYS[1]"), 1, H, 1),
        ("EVAL", loop(call="'LRANGE', KEYS[1], 0, -1"), 1, L, 1),
        ("EVAL", loop(call="'SMEMBERS', KEYS[1]"), 1, S, 1),
        ("EVAL", loop(call="'GETRANGE', KEYS[1], 0, -1"), 1, STR, 1),
        ("EVAL", loop(call="'GET', KEYS[1]"), 1, STR, 1),
        ("EVAL", loop(call="'LINDEX', KEYS[1], ARGV[2]"), 1, L, 2000, mid),
        ("EVAL", loop(call="'ZRANGE', KEYS[1], ARGV[2], ARGV[2]"), 1, Z, 2000, mid),
        ("EVAL", "local i = 0 while i < 3e8 do i = i + 1 end return i", 0),
        ("EVAL", "return redis.call('SMEMBERS', KEYS[1])", 1, S),
        ("EVAL", "return redis.call('GET', KEYS[1])", 1, STR),
        ("EVAL", "return redis.call('HGETALL', KEYS[1])", 1, H),
        ("MULTI", [("ZRANGE", Z, 0, -1), ("LRANGE", L, 0, -1), ("HGETALL", H),
                   ("SMEMBERS", S)]),
        ("MULTI", [("ZRANGE", Z, 0, -1, "WITHSCORES")]),
        ("MULTI", [("SMEMBERS", S), ("HGETALL", H), ("ZRANGE", Z, 0, -1, "WITHSCORES"),
                   ("LRANGE", L, 0, -1)]),
        ("MULTI", [("GETRANGE", STR, 0, -1)]),
        ("MULTI", [("ZRANDMEMBER", Z, n, "WITHSCORES")]),
        ("MULTI", [("LPOS", L, "nomatch")] * 20),
        ("WATCH", H, [("HGETALL", H)]),
        ("WATCH", Z, [("ZRANGE", Z, 0, -1)]),
        # destructive, last
        ("RPUSH", L, *[f"p{i}" for i in range(3000)]),
        ("SPOP", S, n // 4), ("ZPOPMIN", Z, n // 4), ("LTRIM", L, n // 4, -1),
        ("SPOP", S, mid), ("ZPOPMIN", Z, n // 10), ("ZPOPMAX", Z, n // 10),
        ("LPOP", L, n // 10), ("RPOP", L, n // 10),
        ("GEOSEARCHSTORE", "a:gs", G, "FROMLONLAT", 0, 0, "BYRADIUS", 40000, "km"),
        ("GEOSEARCHSTORE", "a:gd", G, "FROMLONLAT", 0, 0, "BYRADIUS", 40000, "km", "ASC",
         "STOREDIST"),
        ("ZRANGESTORE", "a:zr", Z, 0, -1), ("SINTERSTORE", "a:si", S, S),
        ("SUNIONSTORE", "a:su", S), ("SORT", L, "BY", "nosort", "STORE", "a:ls"),
        ("ZREMRANGEBYRANK", Z, 0, n // 4), ("LTRIM", L, n // 4, -1),
        ("ZREMRANGEBYRANK", Z, 1000, -1), ("PEXPIRE", S, 300),
        ("HDEL", H, *[f"f{i}" for i in range(40)]), ("GETDEL", STR),
        ("DEL", H), ("UNLINK", Z), ("DEL", S, L), ("FLUSHALL",),
    ]


def send(c: redis.Redis, req: tuple[object, ...]) -> object:
    if req[0] == "CALL":  # ("CALL", name, fn[, quiet]): a request sent its own way
        return req[2]()  # type: ignore[operator]
    if req[0] == "PIPE":  # ("PIPE", n, words): n times the request in one write
        pipe = c.pipeline(transaction=False)
        for _ in range(req[1]):  # type: ignore[call-overload]
            pipe.execute_command(*req[2])  # type: ignore[misc]
        return pipe.execute()
    if req[0] == "MULTI":
        tx = c.pipeline(transaction=True)
        for words in req[1]:  # type: ignore[attr-defined]
            tx.execute_command(*words)
        return tx.execute()
    if req[0] == "WATCH":
        with c.pipeline(transaction=True) as tx:
            tx.watch(req[1])
            tx.multi()
            for words in req[2]:  # type: ignore[attr-defined]
                tx.execute_command(*words)
            return tx.execute()
    if req[0] == "DUMPRESTORE":
        dumped = c.dump(req[1])
        if dumped is None:
            return None
        return c.restore(f"{req[1]}d", 0, dumped, replace=True)
    return c.execute_command(*req)


def name_of(req: tuple[object, ...]) -> str:
    if req[0] == "CALL":
        return str(req[1])
    if req[0] in ("MULTI", "WATCH"):
        inner = "; ".join(" ".join(map(str, w))[:40] for w in req[-1])  # type: ignore
        return f"{req[0]} {req[1] if req[0] == 'WATCH' else ''} [{inner}]"[:110]
    return " ".join(str(w) for w in req)[:110]


def short(reply: object) -> str:
    if isinstance(reply, (list, dict)):
        return f"<{type(reply).__name__} of {len(reply)}>"
    if isinstance(reply, bytes) and len(reply) > 40:
        return f"<{len(reply)} bytes>"
    return str(reply)[:60]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--elements", type=int, default=1_000_000)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--no-fill", action="store_true")
    ap.add_argument("--only", default="", help="a regex: send only the requests it finds")
    ap.add_argument("--skip", default="", help="a regex: leave out the requests it finds")
    ap.add_argument("--quiet", type=float, default=1.0)
    ap.add_argument("--trace", action="store_true",
                    help="name each node's loop work over --trace-ms (wall/cpu/queued ms)")
    ap.add_argument("--trace-ms", type=float, default=20.0)
    ap.add_argument("--keyspace", type=int, default=0,
                    help="sweep the keyspace's requests over this many keys instead")
    ap.add_argument("--expire", type=int, default=0,
                    help="keys the mass expiry gives a TTL (default 99%% of --keyspace)")
    ap.add_argument("--expire-ms", type=int, default=500)
    ap.add_argument("--expire-quiet", type=float, default=10.0)
    args = ap.parse_args()
    ports = [args.port + i for i in range(NODES)]
    pids = node_pids(ports)
    c = redis.Redis(port=args.port, socket_timeout=600)
    if not args.no_fill:
        t0 = time.monotonic()
        if args.keyspace:
            keyspace.fill(ports, args.keyspace)
        else:
            fill(c, args.elements, args.mb)
        print(f"filled in {time.monotonic() - t0:.0f} s", flush=True)
    if args.keyspace:
        todo = keyspace.requests(c, ports, args.keyspace,
                                 args.expire or args.keyspace * 99 // 100, args.expire_ms,
                                 args.expire_quiet)
    else:
        todo = requests(args.elements, args.mb)
    print(f"{'request':<70}{'took s':>7}" + "".join(f"{'n' + str(i) + ' ms':>8}"
                                                    for i in range(NODES))
          + "".join(f"{'cpu' + str(i):>7}" for i in range(NODES)) + "  reply", flush=True)
    for req in todo:
        name = name_of(req)
        if (args.only and not re.search(args.only, name)) or (
                args.skip and re.search(args.skip, name)):
            continue
        nodes = [redis.Redis(port=p) for p in ports] if args.trace else []
        for n in nodes:
            n.execute_command("DYN.LATENCY", "ON", 1 << 30)
            n.execute_command("DYN.LATENCY", "RESET")
        quiet = float(req[3]) if req[0] == "CALL" and len(req) > 3 else args.quiet  # type: ignore[arg-type]
        line = row(c, pids, ports, req, name, quiet)
        print(f"{line}  {slow_work(nodes, args.trace_ms)}" if nodes else line, flush=True)


def row(c: redis.Redis, pids: list[int | None], ports: list[int], req: tuple[object, ...],
        name: str, quiet: float) -> str:
    """One request's line: each node's longest PING round trip from the request's start
    to the end of the quiet time after it, and each node's CPU meanwhile."""
    ours, theirs = mp.Pipe()
    prober = mp.Process(target=probe, args=(ports, 0.005, theirs))
    prober.start()
    time.sleep(0.3)
    cpu0 = [cpu_ms(p) for p in pids]
    t0 = time.monotonic()
    try:
        reply = short(send(c, req))
    except redis.RedisError as exc:
        reply = f"error: {str(exc)[:60]}"
    except (TypeError, ValueError, IndexError) as exc:  # redis-py's parse of the reply
        reply = f"client: {str(exc)[:60]}"
    took = time.monotonic() - t0
    time.sleep(quiet)
    cpu = [cpu_ms(p) - c0 for p, c0 in zip(pids, cpu0, strict=True)]
    t1 = time.monotonic()
    ours.send("stop")
    rounds = ours.recv()
    prober.join()
    stalls = "".join(f"{longest(rounds[i], t0, t1):>8.0f}" for i in range(NODES))
    cpus = "".join(f"{ms:>7.0f}" for ms in cpu)
    return f"{name[:69]:<70}{took:>7.2f}{stalls}{cpus}  {reply}"


if __name__ == "__main__":
    main()
