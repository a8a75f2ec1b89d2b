"""The server commands tools reach for (OBJECT, SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE,
MEMORY STATS and DOCTOR, DEBUG, COMMAND LIST), compared with a real redis-server where
the replies are comparable, and checked for what they mean in a cluster where they are
not."""

from __future__ import annotations

import time

import pytest
import redis

from .conftest import Cluster, ClusterFactory
from .test_commands_extra import Err, cli, key, resp2, same, same_bytes, wire

pytestmark = pytest.mark.timeout(120)
__all__ = ["resp2"]  # (the fixture, shared with test_commands_extra)

LONG = "x" * 65  # one byte past Redis' listpack value limit


def _encodings(k: str) -> list[tuple[str, ...]]:
    """Values of every encoding Redis 7.0 picks, each followed by OBJECT ENCODING and
    REFCOUNT of it (keys under `k`)."""
    cmds: list[tuple[str, ...]] = []
    for i, value in enumerate(["123", "9999", "10000", "-5", "0", "-0", "007", "+1", " 1",
                               "9223372036854775807", "9223372036854775808", "1.5", "",
                               "hello", "x" * 44, "x" * 45, "12345678901234567890123"]):
        cmds += [("SET", f"{k}s{i}", value), ("OBJECT", "ENCODING", f"{k}s{i}"),
                 ("OBJECT", "REFCOUNT", f"{k}s{i}")]
    many = [str(n) for n in range(513)]
    for name, write in (
            ("ctr", ("INCRBY", f"{k}ctr", "41")), ("big", ("INCRBY", f"{k}big", "99999")),
            ("list", ("RPUSH", f"{k}list", "a", "b")),
            ("iset", ("SADD", f"{k}iset", "1", "2", "-3")),
            ("mset", ("SADD", f"{k}mset", "1", "a")),
            ("bigiset", ("SADD", f"{k}bigiset", *many)),
            ("hash", ("HSET", f"{k}hash", "f", "v")),
            ("hlong", ("HSET", f"{k}hlong", "f", LONG)),
            ("hfield", ("HSET", f"{k}hfield", LONG, "v")),
            ("hmany", ("HSET", f"{k}hmany", *[x for n in many for x in (f"f{n}", "v")])),
            ("zset", ("ZADD", f"{k}zset", "1", "a", "2", "b")),
            ("zlong", ("ZADD", f"{k}zlong", "1", LONG)),
            ("zmany", ("ZADD", f"{k}zmany", *[x for n in many[:129] for x in (n, f"m{n}")]))):
        cmds += [write, ("OBJECT", "ENCODING", f"{k}{name}"), ("OBJECT", "REFCOUNT", f"{k}{name}")]
    # Growing past a limit one write at a time.
    cmds += [("SADD", f"{k}iset", "x"), ("OBJECT", "ENCODING", f"{k}iset"),
             ("HSET", f"{k}hash", "g", LONG), ("OBJECT", "ENCODING", f"{k}hash"),
             ("ZADD", f"{k}zset", "3", LONG), ("OBJECT", "ENCODING", f"{k}zset")]
    return cmds


def test_object_encoding_and_refcount_match_redis(cluster: Cluster,
                                                  real_redis: redis.Redis) -> None:
    k, missing = key("obj"), key("obj-missing")
    replies = same(cluster, real_redis, *_encodings(k),
                   ("OBJECT", "ENCODING", missing), ("OBJECT", "REFCOUNT", missing),
                   ("OBJECT", "IDLETIME", missing), ("OBJECT", "FREQ", missing),
                   ("OBJECT", "FREQ", f"{k}s0"), ("OBJECT", "HELP"), ("OBJECT", "help"),
                   ("OBJECT",), ("OBJECT", "ENCODING"), ("OBJECT", "ENCODING", k, k),
                   ("OBJECT", "BOGUS", k), ("OBJECT", "HELP", "x"),
                   ("COMMAND", "GETKEYS", "OBJECT", "ENCODING", k))
    assert {"int", "embstr", "raw", "quicklist", "intset", "hashtable", "listpack",
            "skiplist"} <= {r for r in replies if isinstance(r, str)}
    assert cluster.client(1).object("encoding", f"{k}s0") == "int"  # redis-py's own call


@pytest.mark.parametrize("proto", [2, 3])
def test_object_replies_are_byte_identical(cluster: Cluster, real_redis: redis.Redis,
                                           proto: int) -> None:
    k = key("objb")
    same_bytes(cluster, real_redis, proto, proto - 1,
               ("SET", k, "12"), ("OBJECT", "ENCODING", k), ("OBJECT", "REFCOUNT", k),
               ("OBJECT", "ENCODING", k + "nope"), ("OBJECT", "FREQ", k), ("OBJECT", "HELP"),
               ("OBJECT", "FREQ", k, "x"))


def test_object_idletime_counts_from_the_last_write(cluster: Cluster) -> None:
    k = key("idle")
    writer, reader = cluster.client(0), cluster.client(2)
    writer.set(k, "v")
    assert reader.object("idletime", k) in (0, 1)
    time.sleep(2.1)
    assert reader.object("idletime", k) >= 2  # (a read does not reset it)
    assert reader.object("idletime", k) >= 2
    writer.set(k, "w")
    assert reader.object("idletime", k) in (0, 1)
    writer.hset(k + "h", "f", "v")
    assert reader.object("idletime", k + "h") in (0, 1)


# --- SAVE, BGSAVE, LASTSAVE ---------------------------------------------------------------


def test_save_and_bgsave_sync_the_node_and_move_lastsave(cluster: Cluster) -> None:
    for j in range(cluster.nodes):
        c = cluster.client(j)
        before = c.info("persistence")
        # (a replica write from the last round may be synced in between: LASTSAVE moves)
        first = wire(c, "LASTSAVE")
        assert isinstance(first, int) and first >= before["rdb_last_save_time"]
        time.sleep(1.1)  # (LASTSAVE counts seconds)
        c.set(key("save"), "v")
        assert wire(c, "SAVE") == "OK"
        last = wire(c, "LASTSAVE")
        assert isinstance(last, int) and first < last <= time.time()
        after = c.info("persistence")
        assert after["rdb_last_save_time"] >= last
        assert after["rdb_saves"] == before["rdb_saves"] + 1
        # BGSAVE: started (or, while the node's own sync runs, refused as Redis does).
        assert wire(c, "BGSAVE") in ("Background saving started",
                                     Err("ResponseError: Background save already in progress"))
        assert c.bgsave() is True  # redis-py sends BGSAVE SCHEDULE
        assert wire(c, "BGREWRITEAOF") in ("Background append only file rewriting started",
                                           "Background append only file rewriting scheduled")
        assert wire(c, "BGSAVE", "SCHEDULE", "x") == Err("ResponseError: syntax error")
        assert wire(c, "BGSAVE", "NOW") == Err("ResponseError: syntax error")
        assert wire(c, "SAVE", "x") == \
            Err("ResponseError: wrong number of arguments for 'save' command")
        assert c.lastsave().timestamp() >= last - 1  # redis-py parses it as a time


def test_save_is_refused_without_a_disk(cluster_factory: ClusterFactory) -> None:
    mem = cluster_factory("--engine", "memory", "--n", "1", "--r", "1", "--w", "1", nodes=1)
    c = mem.client(0)
    refusal = Err("ResponseError: this node keeps its data in memory only (--engine memory): "
                  "there is no disk to save to")
    assert wire(c, "SAVE") == refusal
    assert wire(c, "BGSAVE") == refusal
    assert wire(c, "BGREWRITEAOF") == refusal
    assert isinstance(wire(c, "LASTSAVE"), int)


# --- DEBUG, MEMORY, COMMAND LIST -----------------------------------------------------------


def test_debug_is_refused_as_redis_refuses_it_by_default(cluster: Cluster,
                                                         real_redis: redis.Redis) -> None:
    k = key("dbg")
    same(cluster, real_redis, ("SET", k, "v"), ("DEBUG", "SLEEP", "0"), ("DEBUG", "OBJECT", k),
         ("DEBUG", "HELP"), ("DEBUG", "JMAP"), ("DEBUG", "SET-ACTIVE-EXPIRE", "0"), ("DEBUG",),
         ("CONFIG", "GET", "enable-debug-command"),
         ("CONFIG", "SET", "enable-debug-command", "yes"))
    assert cli(cluster.ports[1], "DEBUG", "SLEEP", "0") == \
        cli(real_redis.port, "DEBUG", "SLEEP", "0")  # type: ignore[attr-defined]


def test_module_lists_none_and_refuses_loading_as_redis_does(cluster: Cluster,
                                                             real_redis: redis.Redis) -> None:
    """Tools ask MODULE LIST whether RedisJSON or RediSearch is there: the answer is an
    empty list, as from a plain Redis; loading a module is refused as Redis 7.0
    refuses it by default, also inside MULTI (the transaction fails)."""
    same(cluster, real_redis, ("MODULE", "LIST"), ("MODULE", "HELP"),
         ("MODULE", "LOAD", "/tmp/x.so"), ("MODULE", "LOADEX", "/tmp/x.so", "ARGS", "a"),
         ("MODULE", "UNLOAD", "x"), ("MODULE", "LIST", "x"), ("MODULE", "UNLOAD"),
         ("MODULE", "BOGUS"), ("MODULE",), ("CONFIG", "GET", "enable-module-command"),
         ("CONFIG", "SET", "enable-module-command", "yes"))
    assert cluster.client(0).module_list() == real_redis.module_list() == []
    for side in (cluster.client(1), real_redis):
        tx = side.pipeline(transaction=True)
        tx.execute_command("MODULE", "LOAD", "/tmp/x.so")
        tx.execute_command("MODULE", "LIST")
        with pytest.raises(redis.exceptions.ResponseError, match="MODULE command not allowed"):
            tx.execute()
    port = real_redis.port  # type: ignore[attr-defined]
    assert cli(cluster.ports[2], "MODULE", "LOAD", "/tmp/x.so") == \
        cli(port, "MODULE", "LOAD", "/tmp/x.so")


def test_role_and_command_help_as_redis_answers(cluster: Cluster, real_redis: redis.Redis
                                                ) -> None:
    """ROLE answers as a Redis master with no replica (what INFO replication says):
    clients that ask it for a writable node find one in every node. COMMAND HELP is
    Redis' text, less the one subcommand not served here (GETKEYSANDFLAGS)."""
    same(cluster, real_redis, ("ROLE",), ("ROLE", "x"), ("COMMAND", "HELP", "x"))
    assert cluster.client(1).execute_command("ROLE") == ["master", 0, []]
    ours = wire(cluster.client(0), "COMMAND", "HELP")
    theirs = wire(real_redis, "COMMAND", "HELP")
    at = theirs.index("GETKEYSANDFLAGS <full-command>")
    assert ours == theirs[:at] + theirs[at + 2:]
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        cluster.client(0).execute_command("COMMAND", "GETKEYSANDFLAGS", "GET", "k")


# The README's "not served" row: each of them answers Redis' own error for a command or
# subcommand it does not know, on the main port and on the cluster port.
NOT_SERVED = (("XADD", "s", "*", "f", "v"), ("XRANGE", "s", "-", "+"), ("DUMP", "k"),
              ("RESTORE", "k", "0", "x"), ("MIGRATE", "h", "1", "k", "0", "0"),
              ("REPLICAOF", "NO", "ONE"), ("SLAVEOF", "NO", "ONE"), ("SYNC",),
              ("PSYNC", "?", "-1"), ("REPLCONF", "listening-port", "1"), ("FAILOVER",),
              ("LOLWUT",), ("COMMAND", "GETKEYSANDFLAGS", "GET", "k"),
              ("LATENCY", "DOCTOR"), ("LATENCY", "GRAPH", "command"))
NOT_SERVED_CLUSTER = (("CLUSTER", "ADDSLOTS", "1"), ("CLUSTER", "SETSLOT", "1", "STABLE"),
                      ("CLUSTER", "MEET", "127.0.0.1", "1"), ("CLUSTER", "FORGET", "x"))


def test_what_the_readme_says_is_not_served_answers_unknown(cluster: Cluster) -> None:
    main, port = cluster.client(0), redis.Redis(port=cluster.cluster_ports[1],
                                                decode_responses=True)
    try:
        for args in NOT_SERVED:
            for side in (main, port):
                with pytest.raises(redis.ResponseError, match="^unknown (sub)?command '"):
                    side.execute_command(*args)
        for args in NOT_SERVED_CLUSTER:
            with pytest.raises(redis.ResponseError, match="^unknown subcommand '"):
                port.execute_command(*args)
    finally:
        port.close()


def test_memory_stats_and_doctor_in_redis_shape(cluster: Cluster, real_redis: redis.Redis,
                                                resp2: tuple[list[redis.Redis], redis.Redis]
                                                ) -> None:
    for c, real in ((cluster.client(0), real_redis), (resp2[0][1], resp2[1])):
        for side in (c, real):
            side.set("memory-stats-key", "v")  # (database 0 holds a key on both)
        stats = c.memory_stats()  # redis-py parses it (RESP3 and RESP2)
        want = real.memory_stats()
        assert set(stats) == set(want)  # (both hold keys of database 0 only)
        assert stats["total.allocated"] > 0 and stats["peak.allocated"] >= \
            stats["total.allocated"] > stats["keys.count"] >= 0
        for name, value in stats.items():
            assert type(value) is type(want[name]), name
        assert stats["db.0"].keys() == want["db.0"].keys()
        assert all(type(v) is int for v in stats["db.0"].values())
    for j in range(cluster.nodes):
        report = wire(cluster.client(j), "MEMORY", "DOCTOR")
        assert isinstance(report, str) and report.startswith(("Hi Sam", "Sam"))
    same(cluster, real_redis, ("MEMORY", "HELP"), ("MEMORY", "PURGE"), ("MEMORY", "STATS", "x"),
         ("MEMORY", "DOCTOR", "x"), ("MEMORY", "MALLOC-STATS", "x"))
    assert isinstance(wire(cluster.client(2), "MEMORY", "MALLOC-STATS"), str)


def test_command_list_names_subcommands_and_filters(cluster: Cluster,
                                                    real_redis: redis.Redis) -> None:
    ours = cluster.client(0)
    listed = set(ours.command_list())
    theirs = set(real_redis.command_list())
    assert {"config|get", "object|encoding", "memory|stats", "get"} <= listed
    own = {"getctx", "setctx", "delctx", "dyn.admin", "dyn.consistency", "dyn.latency"}
    # Besides Redis' (7.0): dynredis' own and CLIENT's 7.2 subcommands (NO-TOUCH, SETINFO).
    assert {name.split("|")[0] for name in listed - theirs} <= own | {"client"}
    assert len(listed) > ours.command_count()  # the count is of commands alone, as Redis'
    for how, arg in (("PATTERN", "object*"), ("pattern", "CONFIG|*"), ("ACLCAT", "admin"),
                     ("aclcat", "Dangerous"), ("MODULE", "x"), ("PATTERN", "nosuch*")):
        mine = set(wire(ours, "COMMAND", "LIST", "FILTERBY", how, arg))  # type: ignore[arg-type]
        real = set(wire(real_redis, "COMMAND", "LIST", "FILTERBY", how, arg))  # type: ignore[arg-type]
        assert mine & theirs == real & listed and mine <= listed, (how, arg)
    same(cluster, real_redis, ("COMMAND", "LIST", "FILTERBY"), ("COMMAND", "LIST", "x"),
         ("COMMAND", "LIST", "FILTERBY", "BOGUS", "x"),
         ("COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "b"), ("COMMAND", "COUNT", "x"))
