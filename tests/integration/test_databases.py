"""Numbered databases on a real 3-node cluster: SELECT 0..15 on the main port, each a
keyspace of its own across the cluster (every type, scripts, MULTI), FLUSHDB / DBSIZE /
SCAN / KEYS / RANDOMKEY / INFO keyspace per database, URLs with a database, and the two
ports' personas (a standalone Redis on the main port, a Redis Cluster node on the
cluster port)."""

from __future__ import annotations

import redis

from tests.integration.conftest import HOST, Cluster, parse_info, raw_command


def db_client(cluster: Cluster, i: int, db: int) -> redis.Redis:
    return cluster.client(i, db=db)


def test_a_key_set_in_db_3_through_one_node_is_in_db_3_through_another(cluster: Cluster) -> None:
    a, b, zero = db_client(cluster, 0, 3), db_client(cluster, 1, 3), cluster.client(2)
    try:
        zero.flushall()
        assert a.set("db:k", "three")
        assert b.get("db:k") == "three"
        assert zero.get("db:k") is None
        assert zero.set("db:k", "zero")
        assert b.get("db:k") == "three" and zero.get("db:k") == "zero"
        assert b.incr("db:n") == 1 and a.incr("db:n", 5) == 6 and zero.get("db:n") is None
        assert a.ttl("db:k") == -1 and a.expire("db:k", 100) and b.ttl("db:k") > 0
        assert zero.ttl("db:k") == -1
        assert b.delete("db:k") == 1 and zero.get("db:k") == "zero"
    finally:
        a.close()
        b.close()


def test_collections_are_per_database(cluster: Cluster) -> None:
    a, b, zero = db_client(cluster, 0, 5), db_client(cluster, 2, 5), cluster.client(1)
    try:
        zero.flushall()
        a.hset("db:h", mapping={"f": "1", "g": "2"})
        a.sadd("db:s", "x", "y")
        a.zadd("db:z", {"m": 1.5})
        a.rpush("db:l", "p", "q")
        assert b.hgetall("db:h") == {"f": "1", "g": "2"}
        assert b.smembers("db:s") == {"x", "y"}
        assert b.zrange("db:z", 0, -1, withscores=True) == [("m", 1.5)]
        assert b.lrange("db:l", 0, -1) == ["p", "q"]
        assert b.type("db:h") == "hash" and zero.type("db:h") == "none"
        assert zero.exists("db:h", "db:s", "db:z", "db:l") == 0
        assert b.lmpop(2, "db:none", "db:l", direction="LEFT") == ["db:l", ["p"]]
        assert b.zmpop(1, ["db:z"], min=True) == ["db:z", [["m", "1.5"]]]
    finally:
        a.close()
        b.close()


def test_flushdb_dbsize_scan_keys_randomkey_per_database(cluster: Cluster) -> None:
    zero = cluster.client(0)
    three, seven = db_client(cluster, 1, 3), db_client(cluster, 2, 7)
    try:
        zero.flushall()
        zero.mset({f"z{i}": i for i in range(20)})
        three.mset({f"t{i}": i for i in range(30)})
        three.expire("t0", 1000)
        three.hset("th", "f", "v")
        assert seven.dbsize() == 0 and seven.randomkey() is None and seven.keys() == []
        assert zero.dbsize() == 20 and three.dbsize() == 31
        assert sorted(three.keys("t?")) == sorted([f"t{i}" for i in range(10)] + ["th"])
        assert sorted(three.scan_iter(count=7)) == sorted([f"t{i}" for i in range(30)] + ["th"])
        assert sorted(three.scan_iter(match="t1*")) == sorted(
            ["t1"] + [f"t1{i}" for i in range(10)])
        assert list(three.scan_iter(_type="hash")) == ["th"]
        assert sorted(zero.scan_iter()) == sorted(f"z{i}" for i in range(20))
        assert three.randomkey().startswith("t")
        assert zero.randomkey().startswith("z")

        info = parse_info(raw_command(zero, "INFO", "keyspace"))
        assert info["db0"].startswith("keys=20,expires=0,")
        assert info["db3"].startswith("keys=31,expires=1,")
        assert "db7" not in info

        # FLUSHDB of db 3 leaves db 0 alone
        assert three.flushdb() is True
        assert three.dbsize() == 0 and three.keys() == [] and three.get("t1") is None
        assert zero.dbsize() == 20 and zero.get("z1") == "1"
        assert "db3" not in parse_info(raw_command(zero, "INFO", "keyspace"))
        # and FLUSHDB of db 0 leaves db 3 alone
        three.set("t1", "again")
        assert zero.flushdb() is True
        assert zero.dbsize() == 0 and three.get("t1") == "again"
        # FLUSHALL empties every database
        zero.set("z1", "1")
        assert seven.flushall() is True
        assert zero.dbsize() == 0 and three.dbsize() == 0
    finally:
        three.close()
        seven.close()


def test_select_is_checked_as_redis_checks_it(cluster: Cluster, real_redis: redis.Redis) -> None:
    conn = cluster.client(0, decode_responses=False)
    try:
        for arg in ("16", "-1", "x", "1.5", "01", "4294967296", "99999999999999999999"):
            ours, theirs = None, None
            try:
                conn.execute_command("SELECT", arg)
            except redis.ResponseError as e:
                ours = str(e)
            try:
                real_redis.execute_command("SELECT", arg)
            except redis.ResponseError as e:
                theirs = str(e)
            assert ours == theirs and ours is not None, arg
        assert conn.config_get("databases") == {"databases": "16"}
        assert conn.execute_command("SELECT", "15") is True
        conn.set("k15", "v")
        assert str(conn.client_info()["db"]) == "15"
        assert any(str(c["db"]) == "15" for c in conn.client_list())
    finally:
        conn.close()


def test_multi_exec_and_scripts_keep_the_connections_database(cluster: Cluster) -> None:
    four, zero = db_client(cluster, 0, 4), cluster.client(1)
    try:
        zero.flushall()
        with four.pipeline(transaction=True) as p:
            p.set("db:m", "in-4")
            p.execute_command("SELECT", "6")
            p.set("db:m", "in-6")
            p.execute_command("SELECT", "4")
            p.get("db:m")
            assert p.execute() == [True, True, True, True, "in-4"]
        assert db_client(cluster, 2, 6).get("db:m") == "in-6"
        assert zero.get("db:m") is None
        # a script's redis.call uses the caller's database, for KEYS and built names alike
        assert four.eval("redis.call('SET', KEYS[1], 'e'); "
                         "return {redis.call('GET', 'db:m'), KEYS[1]}", 1, "db:s") == ["in-4", "db:s"]
        assert four.get("db:s") == "e" and zero.get("db:s") is None
        # a lock's compare-and-delete through another node of the same database
        lock = db_client(cluster, 1, 4).lock("db:lock", timeout=10)
        assert lock.acquire(blocking=False)
        assert zero.get("db:lock") is None and four.get("db:lock") is not None
        lock.release()
        assert four.get("db:lock") is None
        # a script's SELECT is its own
        assert four.eval("redis.call('SELECT', 9); redis.call('SET', 'db:x', '9'); "
                         "return redis.call('GET', 'db:x')", 0) == "9"
        assert four.get("db:x") is None and db_client(cluster, 0, 9).get("db:x") == "9"
    finally:
        four.close()


def test_urls_with_a_database(cluster: Cluster) -> None:
    port = cluster.ports[1]
    r = redis.from_url(f"redis://{HOST}:{port}/3", decode_responses=True)
    zero = cluster.client(0)
    try:
        zero.flushall()
        r.set("url:k", "v")
        assert db_client(cluster, 2, 3).get("url:k") == "v" and zero.get("url:k") is None
        r3 = redis.from_url(f"redis://{HOST}:{port}/3", decode_responses=True, protocol=3)
        assert r3.get("url:k") == "v"
        r3.close()
    finally:
        r.close()


def test_the_main_port_is_a_standalone_redis_and_the_cluster_port_a_cluster_node(
        cluster: Cluster) -> None:
    main = cluster.client(0)
    info = main.info()
    assert info["cluster_enabled"] == 0 and info["redis_mode"] == "standalone"
    assert main.config_get("cluster-enabled") == {"cluster-enabled": "no"}
    fresh = cluster.client(0, protocol=3)
    try:
        assert fresh.execute_command("HELLO", "3")["mode"] == "standalone"
    finally:
        fresh.close()
    # cluster-aware clients still bootstrap from a main port (CLUSTER SLOTS answers)
    assert main.execute_command("CLUSTER", "KEYSLOT", "a") == 15495
    cport = cluster.cluster_client(0)
    try:
        info = cport.info()
        assert info["cluster_enabled"] == 1 and info["redis_mode"] == "cluster"
        assert cport.config_get("cluster-enabled") == {"cluster-enabled": "yes"}
        assert cport.execute_command("SELECT", "0") is True
        for arg in ("1", "16"):
            try:
                cport.execute_command("SELECT", arg)
                raise AssertionError("SELECT answered on the cluster port")
            except redis.ResponseError as e:
                assert str(e) == "SELECT is not allowed in cluster mode"
    finally:
        cport.close()


def test_swapdb_is_refused_clearly(cluster: Cluster) -> None:
    main = cluster.client(0)
    for args, text in ((("0", "1"), "SWAPDB is not supported"),
                       (("0", "16"), "DB index is out of range"),
                       (("x", "1"), "invalid first DB index")):
        try:
            main.execute_command("SWAPDB", *args)
            raise AssertionError("SWAPDB answered")
        except redis.ResponseError as e:
            assert str(e).startswith(text), str(e)


def test_reset_goes_back_to_db_0_and_the_cluster_port_counts_db_0_only(cluster: Cluster) -> None:
    conn = cluster.client(0, db=2)
    try:
        cluster.client(1).flushall()
        conn.set("db:two", "2")
        assert conn.execute_command("RESET") == "RESET"
        assert conn.get("db:two") is None and str(conn.client_info()["db"]) == "0"
        conn.set("db:zero", "0")
        lines = []
        for i in range(cluster.nodes):
            cport = cluster.cluster_client(i)
            try:
                lines.append(parse_info(raw_command(cport, "INFO", "keyspace")))
            finally:
                cport.close()
        assert all("db2" not in info for info in lines)
        assert sum(int(info["db0"].split(",")[0][5:]) for info in lines if "db0" in info) == 1
        assert "db2" in parse_info(raw_command(cluster.client(2), "INFO", "keyspace"))
    finally:
        conn.close()


def test_move_is_checked_as_redis_checks_it_and_moves_the_key(cluster: Cluster,
                                                              real_redis: redis.Redis) -> None:
    main = cluster.client(0)
    for args in (("k", "x"), ("k", "0"), ("k", "16"), ("k", "4294967296")):
        ours = theirs = None
        try:
            main.execute_command("MOVE", *args)
        except redis.ResponseError as e:
            ours = str(e)
        try:
            real_redis.execute_command("MOVE", *args)
        except redis.ResponseError as e:
            theirs = str(e)
        assert ours == theirs and ours is not None, args
    three, five = db_client(cluster, 1, 3), db_client(cluster, 2, 5)
    try:
        main.delete("mv:h", "mv:s")
        main.hset("mv:h", mapping={"f": "v", "g": "w"})
        main.expire("mv:h", 1000)
        assert main.move("mv:h", 3) is True
        assert main.exists("mv:h") == 0 and three.hgetall("mv:h") == {"f": "v", "g": "w"}
        assert 0 < three.ttl("mv:h") <= 1000
        assert main.move("mv:h", 3) is False  # no such key here
        main.set("mv:s", "zero")
        three.set("mv:s", "three")
        assert main.move("mv:s", 3) is False  # the destination exists: both stay
        assert main.get("mv:s") == "zero" and three.get("mv:s") == "three"
        assert three.move("mv:s", 5) is True and five.get("mv:s") == "three"
        assert _error(three, "MOVE", "mv:s", "3") == "source and destination objects are the same"
        cport = cluster.cluster_client(0)
        try:
            assert _error(cport, "MOVE", "mv:s", "3") == "MOVE is not allowed in cluster mode"
        finally:
            cport.close()
    finally:
        three.close()
        five.close()


def _error(conn: redis.Redis, *args: str) -> str:
    try:
        conn.execute_command(*args)
    except redis.ResponseError as e:
        return str(e)
    raise AssertionError(f"{args[0]} answered")


def test_pops_copy_and_watch_in_a_numbered_database(cluster: Cluster) -> None:
    three, other, zero = db_client(cluster, 0, 3), db_client(cluster, 1, 3), cluster.client(2)
    try:
        zero.flushall()
        three.rpush("db:l", "a", "b", "c")
        assert other.blpop(["db:none", "db:l"], 1) == ("db:l", "a")
        assert three.execute_command("BLMPOP", "1", "1", "db:l", "LEFT") == ["db:l", ["b"]]
        assert three.execute_command("LMPOP", "1", "db:l", "LEFT") == ["db:l", ["c"]]
        three.zadd("db:z", {"m": 1})
        assert other.execute_command("BZMPOP", "1", "1", "db:z", "MIN") == ["db:z", [["m", "1"]]]
        # COPY ... DB n on the main port copies into database n
        three.set("db:s", "v")
        assert three.copy("db:s", "db:s", destination_db=5) is True
        assert db_client(cluster, 2, 5).get("db:s") == "v" and zero.get("db:s") is None
        # WATCH watches the database's key: a write of database 0's key of that name
        # leaves it alone, a write of database 3's aborts the EXEC
        with three.pipeline() as pipe:
            pipe.watch("db:s")
            zero.set("db:s", "zero")
            pipe.multi()
            pipe.set("db:s", "mine")
            assert pipe.execute() == [True]
        with three.pipeline() as pipe:
            pipe.watch("db:s")
            other.set("db:s", "theirs")
            pipe.multi()
            pipe.set("db:s", "mine")
            try:
                pipe.execute()
                raise AssertionError("EXEC ran after a write of the watched key")
            except redis.WatchError:
                pass
        assert three.get("db:s") == "theirs" and zero.get("db:s") == "zero"
    finally:
        three.close()
        other.close()


def test_copy_to_another_database_on_the_cluster_port_is_refused_as_redis_cluster_does(
        cluster: Cluster) -> None:
    cport = cluster.cluster_client(0)
    try:
        cport.set("db:c", "v")
        assert _error(cport, "COPY", "db:c", "db:d", "DB", "3") == \
            "Copying to another database is not allowed in cluster mode"
        assert _error(cport, "COPY", "db:c", "db:d", "DB", "16") == "DB index is out of range"
        assert cport.copy("db:c", "db:d", destination_db=0) is True
    finally:
        cport.close()


def test_notifications_monitor_and_client_list_name_the_connections_database(
        cluster: Cluster) -> None:
    three, zero = db_client(cluster, 0, 3), cluster.client(0)
    listener = cluster.client(1)
    sub = listener.pubsub()
    mon = cluster.client(0).monitor()
    try:
        zero.config_set("notify-keyspace-events", "KEA")
        sub.psubscribe("__key*__:*")
        assert sub.get_message(timeout=5)["type"] == "psubscribe"
        with mon as m:
            three.set("db:n", "1")
            seen = m.next_command()
            while "db:n" not in seen["command"]:
                seen = m.next_command()
            assert seen["db"] == 3 and seen["command"] == "SET db:n 1"
        got = set()
        for _ in range(20):
            msg = sub.get_message(timeout=5)
            if msg is None:
                break
            if msg["type"] == "pmessage":
                got.add((msg["channel"], msg["data"]))
            if len(got) == 2:
                break
        assert got == {("__keyspace@3__:db:n", "set"), ("__keyevent@3__:set", "db:n")}
        assert str(three.client_info()["db"]) == "3"
        assert any(str(c["db"]) == "3" for c in zero.client_list())
    finally:
        zero.config_set("notify-keyspace-events", "")
        sub.close()
        listener.close()
        three.close()
