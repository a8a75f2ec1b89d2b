"""MEMORY STATS, DOCTOR, MALLOC-STATS, PURGE: this node's memory in Redis' shapes.

The figures are INFO memory's (info.py): Python has no allocator total, so the totals
are the process's resident set and its peak; what Redis measures apart (dataset,
allocator fragmentation) is not measured here and reads 0 (ratios 1). keys.count is the
keys this node holds replicas of (tombstones included, as of the last fold of its hash
trees), not the cluster's.

`db.N` is there for each database this node holds keys of (its key counts', as INFO
keyspace's), as in Redis. dynredis keeps no hash table per database: its key index is a
map of key to digest per partition (the anti-entropy hash trees and the keys written
since their last fold, every database's keys together), and its expiry index a map of moments per partition and database (the key
counts). overhead.hashtable.main is the bytes of those maps' tables shared out among
the databases by their keys in each partition, overhead.hashtable.expires the bytes of
the database's expiry maps, overhead.hashtable.slot-to-keys 0 (no such index). Both
are in overhead.total.
"""

from __future__ import annotations

from typing import Any

from ..core.localstore import LocalStore
from ..resp import encode as resp
from ..resp.encode import Verbatim
from .context import Context
from .info import memory_section
from .server import cmd_memory  # noqa: F401 (the MEMORY container, registered first)
from .table import subcommand

# Redis' MEMORY DOCTOR thresholds (object.c getMemoryDoctorReport).
SMALL_INSTANCE = 5 * 1024 * 1024
BIG_CLIENT_BUFFERS = 200 * 1024  # per client, on average

DOCTOR_EMPTY = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector "
    "can't be used in these conditions. Please, leave for your mission on Earth and fill "
    "it with some data. The new Sam and I will be back to our programming as soon as I "
    "finished rebooting.")
DOCTOR_FINE = ("Hi Sam, I can't find any memory issue in your instance. I can only "
               "account for what occurs on this base.")
DOCTOR_PEAK = (
    " * Peak memory: In the past this instance used more than 150% the memory that is "
    "currently using. The allocator is normally not able to release memory after a peak, "
    "so you can expect to see a big fragmentation ratio, however this is actually harmless "
    "and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) "
    "is currently bigger than expected, the memory will be used as soon as you fill the "
    "Redis instance with more data. If the memory peak was only occasional and you want "
    "to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only "
    "other option is to shutdown and restart the instance.\n\n")
DOCTOR_CLIENTS = (
    " * Big client buffers: The clients output buffers are in general very big, that's "
    "not normal. Probably there are clients that don't read their replies fast enough, "
    "or use blocking commands in a way that fills their buffers. Please check "
    "`client-output-buffer-limit` and CLIENT LIST to find them.\n\n")


def db_overheads(local: LocalStore) -> dict[int, tuple[int, int]]:
    """Each database this node holds keys of: (bytes of its share of the key maps,
    bytes of its expiry maps) (module docstring)."""
    out: dict[int, list[int]] = {}
    for p, dbs in local.counts.tallies.items():
        held = sum(t.keys for t in dbs.values())
        mapped = local.index_bytes(p) if held else 0
        for db, t in dbs.items():
            if not t.keys:
                continue
            f = out.get(db)
            if f is None:
                f = out[db] = [0, 0]
            f[0] += mapped * t.keys // held
            f[1] += t.expiry_bytes()
    return {db: (f[0], f[1]) for db, f in sorted(out.items())}


def _stats(c: Context) -> dict[str, Any]:
    f = c.figures()
    mem = memory_section(f, c.node, c.cluster_view)
    total, peak = mem["used_memory"], mem["used_memory_peak"]
    local = c.node.local
    keys = local.count()
    stats: dict[str, Any] = {
        "peak.allocated": peak, "total.allocated": total, "startup.allocated": 0,
        "replication.backlog": 0, "clients.slaves": 0, "clients.normal": f.clients_memory,
        "cluster.links": 0, "aof.buffer": 0, "lua.caches": 0, "functions.caches": 0}
    overhead = f.clients_memory
    for db, (main, expires) in db_overheads(local).items():
        stats[f"db.{db}"] = {"overhead.hashtable.main": main,
                             "overhead.hashtable.expires": expires,
                             "overhead.hashtable.slot-to-keys": 0}
        overhead += main + expires
    return stats | {
        "overhead.total": overhead, "keys.count": keys,
        "keys.bytes-per-key": total // keys if keys else 0,
        "dataset.bytes": 0, "dataset.percentage": 0.0,
        "peak.percentage": 100.0 * total / peak if peak else 0.0,
        "allocator.allocated": total, "allocator.active": total,
        "allocator.resident": total, "allocator-fragmentation.ratio": 1.0,
        "allocator-fragmentation.bytes": 0, "allocator-rss.ratio": 1.0,
        "allocator-rss.bytes": 0, "rss-overhead.ratio": 1.0, "rss-overhead.bytes": 0,
        "fragmentation": 1.0, "fragmentation.bytes": 0,
    }


@subcommand("memory", "stats", 2, (), summary="Returns details about this node's memory "
            "usage.", since="4.0.0")
def cmd_memory_stats(c: Context, args: list[bytes]) -> bytes:
    return resp.encode(_stats(c), c.proto)


def doctor_report(stats: dict[str, Any], clients: int) -> str:
    """Redis' report for these figures: its greeting when memory is too small to judge,
    else the issues found (a peak over 150% of now, big client buffers) or none."""
    total = stats["total.allocated"]
    if total < SMALL_INSTANCE:
        return DOCTOR_EMPTY
    found = []
    if stats["peak.allocated"] > total * 3 // 2:
        found.append(DOCTOR_PEAK)
    if clients and stats["clients.normal"] // clients > BIG_CLIENT_BUFFERS:
        found.append(DOCTOR_CLIENTS)
    if not found:
        return DOCTOR_FINE
    return ("Sam, I detected a few issues in this Redis instance memory implants:\n\n"
            + "".join(found) + "I'm here to keep you safe, Sam. I want to help you.\n")


@subcommand("memory", "doctor", 2, (), summary="Outputs a memory problems report.",
            since="4.0.0")
def cmd_memory_doctor(c: Context, args: list[bytes]) -> bytes:
    report = doctor_report(_stats(c), c.figures().connected_clients)
    return resp.encode(Verbatim(report), c.proto)


@subcommand("memory", "malloc-stats", 2, (), summary="Returns the allocator statistics.",
            since="4.0.0")
def cmd_memory_malloc_stats(c: Context, args: list[bytes]) -> bytes:
    """As a Redis built without jemalloc answers (INFO: mem_allocator libc)."""
    return resp.encode(Verbatim("Stats not supported for the current allocator"), c.proto)


@subcommand("memory", "purge", 2, (), summary="Asks the allocator to release memory "
            "(nothing to do for Python's).", since="4.0.0")
def cmd_memory_purge(c: Context, args: list[bytes]) -> bytes:
    return resp.OK
