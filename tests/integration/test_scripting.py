"""Lua scripts and functions on a real 3-node cluster: loaded through one node and used
through the others, kept across restarts, caught up by a node that was down, BUSY and
SCRIPT KILL while a script loops, and a script's client waiting for its reply."""

from __future__ import annotations

import hashlib
import socket
import time

import pytest
import redis

from .conftest import HOST, Cluster, resp_command, wait_until

pytestmark = pytest.mark.timeout(240)

LIB = """#!lua name=counters
local function bump(keys, args)
  return redis.call('incrby', keys[1], args[1])
end
redis.register_function('bump', bump)
redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end,
                        flags={'no-writes'}}
"""


def library_names(client: redis.Redis) -> list[str]:
    """FUNCTION LIST's library names (RESP2: each library a flat list of pairs)."""
    return sorted(dict(zip(lib[::2], lib[1::2], strict=True))["library_name"]
                  for lib in client.function_list())


def test_a_script_loaded_through_one_node_runs_through_every_node(cluster: Cluster) -> None:
    a, b, c = cluster.clients
    sha = a.script_load("return {KEYS[1], ARGV[1], redis.call('get', KEYS[1])}")
    a.set("sk", "v1")
    for client in (b, c):
        assert client.script_exists(sha) == [True]
        assert client.evalsha(sha, 1, "sk", "arg") == ["sk", "arg", "v1"]


def test_script_flush_through_one_node_flushes_every_node(cluster: Cluster) -> None:
    a, b, c = cluster.clients
    sha = b.script_load("return 'flushed?'")
    assert a.evalsha(sha, 0) == "flushed?"
    c.script_flush()
    for client in (a, b, c):
        assert client.script_exists(sha) == [False]
        with pytest.raises(redis.exceptions.NoScriptError):
            client.evalsha(sha, 0)


def test_a_function_library_loaded_through_one_node_is_called_through_the_others(
        cluster: Cluster) -> None:
    a, b, c = cluster.clients
    a.function_flush()
    assert b.function_load(LIB) == "counters"
    assert a.fcall("bump", 1, "fk", 5) == 5
    assert c.fcall("bump", 1, "fk", 2) == 7
    assert c.fcall_ro("peek", 1, "fk") == "7"
    with pytest.raises(redis.ResponseError, match="write flag using \\*_ro"):
        a.fcall_ro("bump", 1, "fk", 1)
    assert library_names(c) == ["counters"]
    c.function_delete("counters")
    with pytest.raises(redis.ResponseError, match="Function not found"):
        a.fcall("bump", 1, "fk", 1)


def test_function_dump_from_one_node_restores_through_another(cluster: Cluster) -> None:
    a, b, c = cluster.clients
    a.function_flush()
    a.function_load(LIB)
    payload = a.function_dump()
    b.function_flush()
    with pytest.raises(redis.ResponseError, match="Function not found"):
        c.fcall("bump", 1, "dk", 1)
    assert c.function_restore(payload) is True
    assert a.fcall("bump", 1, "dk", 3) == 3
    with pytest.raises(redis.ResponseError, match="Library counters already exists"):
        b.function_restore(payload)
    assert b.function_restore(payload, "REPLACE") is True


def test_scripts_and_functions_survive_a_restart_and_reach_a_node_that_was_down(
        cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cl: Cluster = cluster_factory()
    a = cl.client(0)
    sha = a.script_load("return 'kept'")
    a.function_load(LIB)
    cl.kill_node(1)
    # loaded while node 1 is down: it must catch up once it is back
    late = cl.client(2).script_load("return 'late'")
    cl.client(2).function_load(LIB.replace("counters", "later").replace("'bump'", "'bump2'")
                               .replace("'peek'", "'peek2'"))
    cl.restart_node(1)
    b = cl.client(1)
    assert b.evalsha(sha, 0) == "kept"
    assert b.fcall("bump", 1, "rk", 4) == 4
    wait_until(lambda: b.script_exists(late) == [True], 15, what="the late script on node 1")
    assert b.evalsha(late, 0) == "late"
    wait_until(lambda: library_names(b) == ["counters", "later"], 15,
               what="the late library on node 1")
    assert b.fcall("bump2", 1, "rk", 1) == 5
    # every node restarted: nothing was in memory only
    cl.stop()
    cl.start()
    cl.wait_healthy()
    for client in cl.clients:
        assert client.evalsha(sha, 0) == "kept"
        assert client.fcall_ro("peek2", 1, "rk") == "5"


def _send(sock: socket.socket, *args: bytes) -> None:
    sock.sendall(resp_command(*args))


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_a_long_script_gets_other_clients_busy_until_script_kill(cluster: Cluster) -> None:
    c0 = cluster.client(0)
    c0.config_set("busy-reply-threshold", "100")
    try:
        with socket.create_connection((HOST, cluster.ports[0]), timeout=30) as looping:
            _send(looping, b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0")
            wait_until(lambda: _busy(c0), 20, what="BUSY from the node")
            # the node's other work goes on: another node's clients are not affected
            assert cluster.client(1).set("busy-k", "v") is True
            assert c0.execute_command("SCRIPT", "KILL") in ("OK", b"OK", True)
            reply = _read_line(looping)
            assert reply.startswith(b"-ERR Script killed by user with SCRIPT KILL...")
        assert c0.ping() is True
        with pytest.raises(redis.ResponseError, match="NOTBUSY"):
            c0.script_kill()
    finally:
        c0.config_set("busy-reply-threshold", "5000")


def _busy(client: redis.Redis) -> bool:
    try:
        client.get("anything")
    except redis.exceptions.BusyLoadingError:
        return False
    except redis.ResponseError as exc:
        return str(exc).startswith("BUSY")
    return False


def test_a_script_that_wrote_cannot_be_killed(cluster: Cluster) -> None:
    c0 = cluster.client(0)
    c0.config_set("busy-reply-threshold", "100")
    try:
        with socket.create_connection((HOST, cluster.ports[0]), timeout=30) as looping:
            _send(looping, b"EVAL", b"redis.call('set', KEYS[1], 'x') "
                  b"local t = redis.call('time') while tonumber(redis.call('time')[1]) < "
                  b"tonumber(t[1]) + 2 do end return 'done'", b"1", b"wrote")
            time.sleep(0.3)
            with pytest.raises(redis.ResponseError, match="UNKILLABLE"):
                c0.script_kill()
            assert _read_line(looping) == b"$4\r\n"
        assert c0.get("wrote") == "x"
    finally:
        c0.config_set("busy-reply-threshold", "5000")


def test_a_pipelined_command_after_a_script_sees_its_write(cluster: Cluster) -> None:
    p = cluster.client(1).pipeline(transaction=False)
    for i in range(20):
        p.eval("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])", 1,
               "pipe", str(i))
        p.get("pipe")
    replies = p.execute()
    assert replies == [str(i // 2) for i in range(40)]


def test_write_commands_are_refused_in_read_only_scripts(cluster: Cluster) -> None:
    c = cluster.client(2)
    c.set("ro", "1")
    assert c.eval_ro("return redis.call('get', KEYS[1])", 1, "ro") == "1"
    with pytest.raises(redis.ResponseError, match="Write commands are not allowed from "
                                                  "read-only scripts"):
        c.eval_ro("return redis.call('set', KEYS[1], '2')", 1, "ro")
    with pytest.raises(redis.ResponseError, match="not allowed from script"):
        c.eval("return redis.call('multi')", 0)
    assert c.get("ro") == "1"


def test_a_script_that_failed_to_compile_is_not_remembered_as_in_redis(
        cluster: Cluster, real_redis: redis.Redis) -> None:
    """EVAL or SCRIPT LOAD of code that does not compile leaves no script behind: EVALSHA
    answers NOSCRIPT on every node and SCRIPT EXISTS 0, as redis-server does; a script that
    compiled but failed while running is remembered."""
    bad = "syntax error("
    failing = "return redis.call('nosuchcommand')"
    for r in (*cluster.clients, real_redis):
        with pytest.raises(redis.exceptions.ResponseError, match="Error compiling script"):
            r.eval(bad, 0)
        with pytest.raises(redis.exceptions.ResponseError, match="Error compiling script"):
            r.script_load(bad)
        with pytest.raises(redis.exceptions.ResponseError, match="Unknown Redis command"):
            r.eval(failing, 0)
    bad_sha = hashlib.sha1(bad.encode()).hexdigest()
    failing_sha = hashlib.sha1(failing.encode()).hexdigest()
    for r in (*cluster.clients, real_redis):
        assert r.script_exists(bad_sha) == [False]
        with pytest.raises(redis.exceptions.NoScriptError,
                           match="No matching script. Please use EVAL."):
            r.evalsha(bad_sha, 0)
    # the one that compiled is remembered by the node that ran it (Redis' EVAL cache)
    for r in (*cluster.clients, real_redis):
        assert r.script_exists(failing_sha) == [True]
        with pytest.raises(redis.exceptions.ResponseError, match="Unknown Redis command"):
            r.evalsha(failing_sha, 0)
