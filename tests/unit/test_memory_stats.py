"""MEMORY STATS gives `db.N` for each database this node holds keys of, in Redis' place
and shape (commands/memorystats.py), with the bytes of this node's key and expiry maps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import hiredis

from tests.unit.test_client_connection import one_client
from tests.unit.test_no_multi import request

# Redis 7.0's MEMORY STATS fields up to the databases' (redis-server 7.0.15).
REDIS_HEAD = ["peak.allocated", "total.allocated", "startup.allocated",
              "replication.backlog", "clients.slaves", "clients.normal", "cluster.links",
              "aof.buffer", "lua.caches", "functions.caches"]
DB_FIELDS = ["overhead.hashtable.main", "overhead.hashtable.expires",
             "overhead.hashtable.slot-to-keys"]


def replies(tmp_path: Path, *commands: tuple[bytes, ...]) -> list[Any]:
    async def run() -> bytes:
        srv, conn, transport = one_client(tmp_path)
        for words in commands:
            conn.data_received(request(*words))
            for _ in range(5):
                await asyncio.sleep(0)
        return transport.sent

    reader = hiredis.Reader(encoding="utf-8")
    reader.feed(asyncio.run(run()))
    out = []
    while (reply := reader.gets()) is not False:
        out.append(reply)
    return out


def as_map(flat: list[Any]) -> dict[str, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def test_memory_stats_lists_each_database_holding_keys(tmp_path: Path) -> None:
    *_, empty, stats = replies(
        tmp_path, (b"MEMORY", b"STATS"),
        (b"SET", b"a", b"1"), (b"SET", b"b", b"1", b"EX", b"100"), (b"SELECT", b"3"),
        (b"SET", b"c", b"1"), (b"SELECT", b"0"), (b"MEMORY", b"STATS"))
    assert not [k for k in as_map(empty) if k.startswith("db.")]  # no keys, no db.N
    fields = as_map(stats)
    names = list(fields)
    assert names[:len(REDIS_HEAD) + 2] == [*REDIS_HEAD, "db.0", "db.3"]
    assert names[len(REDIS_HEAD) + 2] == "overhead.total"
    db0, db3 = as_map(fields["db.0"]), as_map(fields["db.3"])
    assert list(db0) == list(db3) == DB_FIELDS
    assert db0["overhead.hashtable.main"] > 0 and db3["overhead.hashtable.main"] > 0
    assert db0["overhead.hashtable.expires"] > 0  # b has a TTL
    assert db3["overhead.hashtable.expires"] == 0  # no key of database 3 has one
    assert fields["overhead.total"] >= fields["clients.normal"] + sum(
        d["overhead.hashtable.main"] + d["overhead.hashtable.expires"] for d in (db0, db3))
