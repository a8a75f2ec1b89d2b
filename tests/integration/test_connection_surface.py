"""What tools read and run beside data commands, on a real 3-node cluster: CLIENT KILL,
INFO's sections, SLOWLOG, LATENCY, CONFIG of their settings, compared with redis-server
where the replies are the same."""

from __future__ import annotations

import socket

import pytest
import redis

from .conftest import HOST, Cluster, parse_info, raw_command, wait_until
from .test_protocol_edge import talk

pytestmark = pytest.mark.timeout(60)


def test_client_kill_closes_the_client_it_names(cluster: Cluster) -> None:
    victim = cluster.client(0).connection_pool.get_connection()
    victim.send_command("CLIENT", "ID")
    vid = victim.read_response()
    killer = cluster.client(0)
    assert killer.execute_command("CLIENT", "KILL", "ID", vid) == 1
    with pytest.raises(redis.ConnectionError):
        victim.send_command("PING")
        victim.read_response()
    victim.disconnect()
    # a client of another node is not this node's to kill
    assert cluster.client(1).execute_command("CLIENT", "KILL", "ID", vid) == 0
    # ADDR, and the old form
    other = cluster.client(0).connection_pool.get_connection()
    other.send_command("CLIENT", "INFO")
    info = other.read_response()
    text = info.decode() if isinstance(info, bytes) else info
    addr = dict(f.split("=", 1) for f in text.split())["addr"]
    assert killer.execute_command("CLIENT", "KILL", addr) in (b"OK", "OK", True)
    with pytest.raises(redis.ConnectionError):
        other.send_command("PING")
        other.read_response()
    other.disconnect()


def test_client_kill_errors_follow_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    script = (b"CLIENT KILL 1.2.3.4:5\r\nCLIENT KILL ID 99999\r\n"
              b"CLIENT KILL ADDR 1.2.3.4:5 SKIPME no\r\nCLIENT KILL foo bar\r\n"
              b"CLIENT KILL ID abc\r\nCLIENT KILL TYPE foo\r\nCLIENT KILL USER nobody\r\n"
              b"CLIENT KILL ID 1 SKIPME maybe\r\nCLIENT KILL ID\r\nPING\r\n")
    ours, _ = talk(cluster.ports[0], script)
    theirs, _ = talk(real_redis.port, script)  # type: ignore[attr-defined]
    assert ours == theirs


def test_info_has_redis_sections_and_fields(cluster: Cluster) -> None:
    c = cluster.client(0)
    c.set("surface:k", "v")
    with pytest.raises(redis.ResponseError):
        c.execute_command("INCR", "surface:k")
    text = raw_command(c, "INFO", "ALL")
    assert isinstance(text, str | bytes)
    text = text.decode() if isinstance(text, bytes) else text
    titles = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    for title in ("Server", "Clients", "Memory", "Persistence", "Stats", "Replication",
                  "CPU", "Modules", "Commandstats", "Errorstats", "Latencystats",
                  "Cluster", "Keyspace"):
        assert title in titles
    info = parse_info(text)
    assert int(info["used_memory"]) > 0 and info["mem_allocator"]
    assert float(info["used_cpu_user"]) > 0
    assert info["role"] == "master" and info["aof_enabled"] == "0"
    assert info["cmdstat_incr"].startswith("calls=1,") and info["cmdstat_incr"].endswith(
        "failed_calls=1")
    assert int(info["errorstat_ERR"].split("=")[1]) >= 1
    assert info["latency_percentiles_usec_set"].startswith("p50=")
    default = raw_command(c, "INFO")
    assert isinstance(default, str | bytes)
    default = default.decode() if isinstance(default, bytes) else default
    assert "# Commandstats" not in default and "# Errorstats" in default


def test_slowlog_and_latency_monitor(cluster: Cluster) -> None:
    c = cluster.client(2)
    try:
        c.config_set("slowlog-log-slower-than", 0)
        assert c.config_get("slowlog-*") == {"slowlog-log-slower-than": "0",
                                             "slowlog-max-len": "128"}
        c.slowlog_reset()
        c.get("surface:slow")
        entries = c.slowlog_get(5)
        assert any(e["command"] == b"GET surface:slow" for e in entries)
        assert c.slowlog_len() >= 1
        c.config_set("latency-monitor-threshold", 0)
        assert c.execute_command("LATENCY", "LATEST") == []
    finally:
        c.config_set("slowlog-log-slower-than", 10000)


def test_monitor_streams_the_commands_this_node_receives(cluster: Cluster) -> None:
    mon = cluster.client(1).connection_pool.get_connection()
    try:
        mon.send_command("MONITOR")
        assert mon.read_response() in (b"OK", "OK")
        c = cluster.client(1)
        c.set("surface:m", 'a "quoted"\nvalue\x01')
        cluster.client(0).get("surface:elsewhere")  # another node: not shown here
        c.get("surface:m")
        lines = []
        while len(lines) < 2:
            line = mon.read_response()
            line = line.decode() if isinstance(line, bytes) else line
            if "surface:" in line:
                lines.append(line)
        stamp, rest = lines[0].split(" ", 1)
        float(stamp)
        assert rest.startswith("[0 127.0.0.1:")
        assert rest.endswith('] "SET" "surface:m" "a \\"quoted\\"\\nvalue\\x01"')
        assert lines[1].endswith('"GET" "surface:m"')
    finally:
        mon.disconnect()


READS = [("SET", "ks:s", "v"), ("HSET", "ks:h", "f", "v"), ("RPUSH", "ks:l", "a"),
         ("SADD", "ks:set", "m"), ("ZADD", "ks:z", "1", "m"),
         ("GET", "ks:s"), ("GET", "ks:none"), ("MGET", "ks:s", "ks:none", "ks:s"),
         ("STRLEN", "ks:s"), ("EXISTS", "ks:s", "ks:none"), ("TYPE", "ks:none"),
         ("HGET", "ks:h", "f"), ("HGET", "ks:h", "nofield"), ("HGET", "ks:none", "f"),
         ("HGETALL", "ks:h"), ("LRANGE", "ks:l", "0", "-1"), ("LLEN", "ks:none"),
         ("SMEMBERS", "ks:set"), ("SISMEMBER", "ks:none", "m"), ("ZSCORE", "ks:z", "m"),
         ("ZRANGE", "ks:none", "0", "-1"), ("INCR", "ks:n"), ("DEL", "ks:none")]


def _stats(client: redis.Redis) -> dict[str, str]:
    raw = raw_command(client, "INFO", "stats")
    return parse_info(raw if isinstance(raw, str) else raw.decode())


def test_keyspace_hits_and_misses_count_reads_as_redis_does(cluster: Cluster,
                                                             real_redis: redis.Redis) -> None:
    """A read of an existing key is a hit, of a missing key a miss (writes count
    neither); CONFIG RESETSTAT starts them again from 0."""
    counts = []
    for r in (cluster.client(0), real_redis):
        r.delete(*{args[1] for args in READS})
        r.config_resetstat()
        for args in READS:
            r.execute_command(*args)
        s = _stats(r)
        counts.append((int(s["keyspace_hits"]), int(s["keyspace_misses"])))
        r.config_resetstat()
        s = _stats(r)
        assert (s["keyspace_hits"], s["keyspace_misses"]) == ("0", "0")
    ours, theirs = counts
    assert theirs[0] > 0 and theirs[1] > 0
    assert ours == theirs


def test_instantaneous_ops_per_sec_follows_the_commands_served(cluster: Cluster) -> None:
    c = cluster.client(1)

    def busy() -> bool:
        pipe = c.pipeline(transaction=False)
        for _ in range(200):
            pipe.ping()
        pipe.execute()
        return int(_stats(c)["instantaneous_ops_per_sec"]) > 0

    wait_until(busy, 10, what="instantaneous_ops_per_sec above 0 while commands run")


def _fields(line: str) -> dict[str, str]:
    return dict(f.split("=", 1) for f in line.split())


def _client_named(admin: redis.Redis, name: str) -> dict[str, str]:
    listed = raw_command(admin, "CLIENT", "LIST")
    text = listed if isinstance(listed, str) else listed.decode()
    for line in text.splitlines():
        fields = _fields(line)
        if fields.get("name") == name:
            return fields
    raise AssertionError(f"no client named {name} in CLIENT LIST")


def _named_socket(port: int, name: str) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(b"CLIENT SETNAME " + name.encode() + b"\r\n")
    assert sock.recv(100) == b"+OK\r\n"
    return sock


def test_client_no_evict_shows_flag_e_as_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    for r in (cluster.client(0, single_connection_client=True),
              redis.Redis(port=real_redis.port, single_connection_client=True,  # type: ignore[attr-defined]
                          decode_responses=True)):
        assert _fields(r.execute_command("CLIENT", "INFO"))["flags"] == "N"
        assert r.execute_command("CLIENT", "NO-EVICT", "on") in ("OK", True)
        assert _fields(r.execute_command("CLIENT", "INFO"))["flags"] == "e"
        r.execute_command("CLIENT", "NO-EVICT", "off")
        assert _fields(r.execute_command("CLIENT", "INFO"))["flags"] == "N"
        r.close()


def test_a_client_that_said_no_evict_is_never_evicted(cluster: Cluster) -> None:
    """Over maxmemory-clients the biggest clients are closed, but never one that said
    CLIENT NO-EVICT on, however much it holds; it finishes its command."""
    admin = cluster.client(1, socket_timeout=30)
    before = int(_stats(admin)["evicted_clients"])
    kept = _named_socket(cluster.ports[1], "kept")
    other = _named_socket(cluster.ports[1], "other")
    try:
        kept.sendall(b"CLIENT NO-EVICT on\r\n")
        assert kept.recv(100) == b"+OK\r\n"
        assert admin.config_set("maxmemory-clients", "3mb") is True
        head = b"*3\r\n$3\r\nSET\r\n$7\r\nnoevict\r\n$3000000\r\n"
        kept.sendall(head + b"v" * 2_000_000)  # the biggest: 2 MB held
        wait_until(lambda: int(_client_named(admin, "kept")["qbuf"]) >= 2_000_000, 30,
                   what="the kept client's input to be held")
        try:
            other.sendall(head + b"o" * 1_500_000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        wait_until(lambda: int(_stats(admin)["evicted_clients"]) > before, 30,
                   what="a client to be evicted")
        assert _client_named(admin, "kept")["flags"] == "e"
        kept.sendall(b"v" * 1_000_000 + b"\r\n")
        assert kept.recv(100) == b"+OK\r\n"
        assert len(admin.get("noevict")) == 3_000_000
        with pytest.raises(AssertionError):
            _client_named(admin, "other")
    finally:
        admin.config_set("maxmemory-clients", "2gb")
        kept.close()
        other.close()


def test_client_list_reports_the_query_buffer_as_redis(cluster: Cluster,
                                                       real_redis: redis.Redis) -> None:
    """A partial command: qbuf is its bytes not yet parsed into arguments, argv-mem the
    arguments read so far, the same as redis-server's."""
    for admin, port in ((cluster.client(2), cluster.ports[2]),
                        (real_redis, real_redis.port)):  # type: ignore[attr-defined]
        sock = _named_socket(port, "partial")
        try:
            sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + b"v" * 40)
            wait_until(lambda a=admin: _client_named(a, "partial")["qbuf"] == "40", 10,
                       what="qbuf of the partial command")
            assert _client_named(admin, "partial")["argv-mem"] == "4"
        finally:
            sock.close()


def test_client_list_reports_unsent_replies_as_omem(cluster: Cluster) -> None:
    admin = cluster.client(0)
    admin.set("omem:big", "x" * 100_000)
    sock = _named_socket(cluster.ports[0], "reader")
    try:
        assert _client_named(admin, "reader")["omem"] == "0"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET omem:big\r\n" * 100)
        wait_until(lambda: int(_client_named(admin, "reader")["omem"]) > 100_000, 30,
                   what="the unread replies counted in omem")
    finally:
        sock.close()


def test_client_list_idle_is_the_time_since_the_last_command(cluster: Cluster) -> None:
    admin = cluster.client(1)
    sock = _named_socket(cluster.ports[1], "sleeper")
    try:
        wait_until(lambda: int(_client_named(admin, "sleeper")["idle"]) >= 2, 20,
                   what="the sleeping client's idle seconds to grow")
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"
        assert int(_client_named(admin, "sleeper")["idle"]) < 2
        assert _client_named(admin, "sleeper")["cmd"] == "ping"
    finally:
        sock.close()
