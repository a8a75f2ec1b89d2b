"""bench/hostile.py --keyspace N: small requests whose work grows with the NUMBER OF KEYS
(issue 12: "no freeze over 100 ms from any request of under 1 KB").

The fill (pipelined, a third through each node at once): N 64-byte strings k:0000000...
in database 0, every tenth with a day's TTL; a few small collections of each type; a
key of 500 `a`s (a glob's worst case); N/10 keys in database 1 (FLUSHDB of a populated
database) and in database 3 (FLUSHDB ASYNC); one key in database 2 (RANDOMKEY and SCAN
of a database almost every key is outside of).

The requests: the keyspace walks (KEYS, SCAN with COUNT 10^9, MATCH, TYPE, glob
backtracking), RANDOMKEY, DBSIZE, INFO, CLUSTER slot and topology replies, MEMORY,
CLIENT, CONFIG SET of the object cache to 0 and back, DEBUG, WAIT, SWAPDB, scripts and
pipelines of them (a write of under 1 KB); then a mass expiry (PEXPIRE --expire-ms of
--expire keys, pipelined through every node, its row's quiet --expire-quiet s: active
expiry and the tombstone sweep at work) and the walks again over keys almost all
expired; the flushes last (FLUSHDB of database 1, FLUSHDB ASYNC of database 3, FLUSHALL).

The PEXPIREs go at the cluster's write rate (each a read then a write): 99,000 took
6 minutes on a loaded 2-core machine, so a run of a million keys with the default
--expire (99% of them) is long; --keyspace 100000 sweeps the expiry in minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

DB_FLUSH, DB_ONE, DB_ASYNC, DB_EMPTY = 1, 2, 3, 5
COLLECTIONS = 5  # of each type
BATCH = 2000  # commands a pipeline sends at once
BIG = 10**9
GLOB_KEY = "a" * 500
# Backtracks over GLOB_KEY in a naive matcher (each `*` retried at every position).
GLOB_WORST = "*a" * 12 + "*b"
PIPED = 40  # copies of a request in one write (each write under 1 KB)


def key(i: int) -> str:
    return f"k:{i:07d}"


def _value(i: int) -> str:
    return f"{i:064d}"


def _pipelined(port: int, commands: list[tuple[object, ...]], db: int = 0) -> None:
    c = redis.Redis(port=port, db=db, socket_timeout=600)
    for start in range(0, len(commands), BATCH):
        pipe = c.pipeline(transaction=False)
        for words in commands[start:start + BATCH]:
            pipe.execute_command(*words)
        pipe.execute(raise_on_error=False)
    c.close()


def spread(ports: list[int], commands: list[tuple[object, ...]], db: int = 0) -> None:
    """Send `commands` pipelined, a share through each node at once."""
    shares = [commands[i::len(ports)] for i in range(len(ports))]
    threads = [threading.Thread(target=_pipelined, args=(p, share, db))
               for p, share in zip(ports, shares, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def fill(ports: list[int], n: int) -> None:
    db0: list[tuple[object, ...]] = [
        ("SET", key(i), _value(i), *(("EX", 86400) if i % 10 == 0 else ())) for i in range(n)]
    for j in range(COLLECTIONS):
        db0 += [("HSET", f"h:{j}", *[w for f in range(100) for w in (f"f{f}", f)]),
                ("SADD", f"s:{j}", *range(100)),
                ("ZADD", f"z:{j}", *[w for f in range(100) for w in (f, f"m{f}")]),
                ("RPUSH", f"l:{j}", *range(100))]
    db0.append(("SET", GLOB_KEY, "x"))
    spread(ports, db0)
    for db in (DB_FLUSH, DB_ASYNC):
        spread(ports, [("SET", f"d{db}:{i}", _value(i)) for i in range(n // 10)], db)
    spread(ports, [("SET", "only", "x")], DB_ONE)


def in_db(port: int, db: int, *words: object) -> tuple[str, str, Callable[[], object]]:
    """A request sent on a connection that SELECTed `db`."""
    def run() -> object:
        c = redis.Redis(port=port, db=db, socket_timeout=600)
        try:
            return c.execute_command(*words)
        finally:
            c.close()
    return ("CALL", f"[db {db}] " + " ".join(map(str, words)), run)


def piped(c: redis.Redis, times: int, *words: object) -> tuple[str, str, Callable[[], object]]:
    """`times` copies of a request in one write."""
    def run() -> object:
        pipe = c.pipeline(transaction=False)
        for _ in range(times):
            pipe.execute_command(*words)
        return pipe.execute(raise_on_error=False)[-1]
    return ("CALL", f"{times} x " + " ".join(map(str, words)), run)


def requests(c: redis.Redis, ports: list[int], n: int, expire: int, expire_ms: int,
             expire_quiet: float) -> list[tuple[object, ...]]:
    """Every request, as its words or ("CALL", name, fn[, quiet s]); the expiry and the
    flushes last."""
    port = ports[0]
    slot = c.execute_command("CLUSTER", "KEYSLOT", key(1))
    cache = c.config_get("object-cache-max-memory").get("object-cache-max-memory", "0")
    walks: list[tuple[object, ...]] = [
        ("KEYS", "*"), ("KEYS", "nomatch*"), ("KEYS", "a*b*c*d*e*f*g"), ("KEYS", GLOB_WORST),
        ("KEYS", "k:00000[0-9]?"), ("KEYS", "*1"),
        ("SCAN", 0, "COUNT", BIG), ("SCAN", 0, "MATCH", "nomatch*", "COUNT", BIG),
        ("SCAN", 0, "TYPE", "hash", "COUNT", BIG), ("SCAN", 0, "TYPE", "nosuchtype", "COUNT", BIG),
        ("SCAN", 0, "MATCH", GLOB_WORST, "COUNT", BIG),
        ("RANDOMKEY",), ("DBSIZE",),
        in_db(port, DB_ONE, "RANDOMKEY"), in_db(port, DB_ONE, "SCAN", 0, "COUNT", BIG),
        in_db(port, DB_ONE, "KEYS", "*"), in_db(port, DB_ONE, "DBSIZE"),
        in_db(port, DB_EMPTY, "RANDOMKEY"), in_db(port, DB_EMPTY, "SCAN", 0, "COUNT", BIG),
        in_db(port, DB_EMPTY, "SCAN", 0, "COUNT", 1),
    ]
    return [
        *walks,
        ("INFO",), ("INFO", "keyspace"), ("INFO", "everything"), ("INFO", "all"),
        ("INFO", "memory"), ("INFO", "stats"), ("INFO", "commandstats"),
        ("CLUSTER", "COUNTKEYSINSLOT", slot), ("CLUSTER", "GETKEYSINSLOT", slot, BIG),
        ("CLUSTER", "SLOTS"), ("CLUSTER", "SHARDS"), ("CLUSTER", "NODES"),
        ("CLUSTER", "INFO"),
        ("MEMORY", "STATS"), ("MEMORY", "DOCTOR"), ("MEMORY", "MALLOC-STATS"),
        ("MEMORY", "PURGE"), ("MEMORY", "USAGE", key(1)),
        ("CLIENT", "LIST"), ("CLIENT", "INFO"),
        ("SWAPDB", 0, 1), ("SWAPDB", 1, 0),
        ("DEBUG", "OBJECT", key(1)), ("DEBUG", "SLEEP", 0), ("DEBUG", "RELOAD"),
        ("DEBUG", "CHANGE-REPL-ID"),
        ("SAVE",), ("BGSAVE",), ("BGREWRITEAOF",), ("LASTSAVE",),
        ("WAIT", 0, 0), ("WAIT", 2, 100), ("WAITAOF", 0, 0, 0),
        ("CONFIG", "SET", "object-cache-max-memory", 1),
        ("CONFIG", "SET", "object-cache-max-memory", cache),
        ("CONFIG", "SET", "maxmemory", "1mb"), ("CONFIG", "SET", "maxmemory", 0),
        ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
        ("CONFIG", "SET", "maxmemory-policy", "noeviction"),
        ("CONFIG", "GET", "*"), ("CONFIG", "RESETSTAT"),
        ("SLOWLOG", "GET", -1), ("LATENCY", "LATEST"), ("LATENCY", "HISTOGRAM"),
        ("COMMAND",), ("COMMAND", "DOCS"), ("COMMAND", "COUNT"),
        ("ACL", "LIST"), ("FUNCTION", "LIST"), ("SCRIPT", "FLUSH"), ("PUBSUB", "CHANNELS"),
        ("OBJECT", "FREQ", key(1)), ("TOUCH", *[key(i) for i in range(40)]),
        ("EXISTS", *[key(i) for i in range(40)]), ("MGET", *[key(i) for i in range(40)]),
        ("UNLINK", *[f"nokey{i}" for i in range(40)]),
        ("EVAL", "return #redis.call('KEYS', '*')", 0),
        ("EVAL", "return redis.call('DBSIZE')", 0),
        ("EVAL", "return #redis.call('SCAN', 0, 'COUNT', 1000000000)[2]", 0),
        ("EVAL", "for i = 1, 50 do redis.call('RANDOMKEY') end return 1", 0),
        ("MULTI", [("KEYS", "*"), ("DBSIZE",), ("SCAN", 0, "COUNT", BIG)]),
        piped(c, PIPED, "DBSIZE"), piped(c, PIPED, "INFO", "keyspace"),
        piped(c, 20, "KEYS", "nomatch*"), piped(c, 20, "SCAN", 0, "COUNT", BIG),
        piped(c, PIPED, "RANDOMKEY"), piped(c, 20, "CLUSTER", "COUNTKEYSINSLOT", slot),
        piped(c, 20, "CLUSTER", "GETKEYSINSLOT", slot, 10),
        # keys almost all expired
        ("CALL", f"PEXPIRE {expire_ms} of {expire} keys (pipelined, every node)",
         lambda: spread(ports, [("PEXPIRE", key(i), expire_ms) for i in range(expire)]),
         expire_quiet),
        *walks,
        piped(c, PIPED, "RANDOMKEY"),
        # destructive, last
        in_db(port, DB_FLUSH, "FLUSHDB"), in_db(port, DB_ASYNC, "FLUSHDB", "ASYNC"),
        ("FLUSHALL",),
    ]
