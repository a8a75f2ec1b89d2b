"""WATCH / UNWATCH and EXEC's check, on one in-process node (no sockets): writes
through the connection's own node mark a watch dirty, writes that reach the replicas
some other way are found by EXEC's quorum read of the versions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dynredis.commands.table import lookup
from dynredis.commands.watch import Watchers, WatchState, command_keys, unmark
from dynredis.server.app import NodeOptions, NodeServer
from dynredis.server.client import ClientConnection

from .test_client_connection import FakeTransport

Send = Callable[[ClientConnection, str], Awaitable[bytes]]


def run_with(tmp_path: Path, body: Callable[[NodeServer, Send], Awaitable[None]]) -> None:
    async def main() -> None:
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="memory",
                                     n=1, r=1, w=1))
        srv.loop = asyncio.get_running_loop()

        async def send(conn: ClientConnection, line: str) -> bytes:
            t = conn.transport
            assert isinstance(t, FakeTransport)
            t.sent = b""
            conn.data_received(line.encode() + b"\r\n")
            for _ in range(200):
                await asyncio.sleep(0)
                if not conn.waiting and t.sent:
                    break
            return t.sent

        await body(srv, send)

    asyncio.run(main())


def client(srv: NodeServer) -> ClientConnection:
    conn = ClientConnection(srv)
    conn.connection_made(FakeTransport())  # type: ignore[arg-type]
    return conn


async def written_elsewhere(srv: NodeServer, key: bytes, value: bytes) -> None:
    """A write that reaches the key's replicas without passing this node's clients
    (as one coordinated by another node does)."""
    done = asyncio.get_running_loop().create_future()
    srv.node.put(key, None, value, 0, done.set_result)
    srv.pump()
    assert (await done)[0] is None


def test_exec_runs_when_no_watched_key_changed(tmp_path: Path) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a = client(srv)
        assert await send(a, "SET k 1") == b"+OK\r\n"
        assert await send(a, "HSET h f v") == b":1\r\n"
        assert await send(a, "RPUSH l x") == b":1\r\n"
        assert await send(a, "WATCH k h l absent") == b"+OK\r\n"
        assert await send(a, "GET k") == b"$1\r\n1\r\n"
        assert await send(a, "MULTI") == b"+OK\r\n"
        assert await send(a, "SET k 2") == b"+QUEUED\r\n"
        assert await send(a, "EXEC") == b"*1\r\n+OK\r\n"
        assert await send(a, "GET k") == b"$1\r\n2\r\n"

    run_with(tmp_path, body)


@pytest.mark.parametrize("change", ["SET k 9", "DEL k", "INCR n", "HSET h f w", "HDEL h f",
                                    "SADD s m2", "RPUSH l y", "EXPIRE k 100", "SET absent 1"])
def test_a_write_by_another_client_of_this_node_aborts_exec(tmp_path: Path,
                                                            change: str) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a, b = client(srv), client(srv)
        for setup in ("SET k 1", "SET n 1", "HSET h f v", "SADD s m", "RPUSH l x"):
            await send(b, setup)
        key = change.split()[1]
        assert await send(a, f"WATCH {key}") == b"+OK\r\n"
        await send(b, change)
        assert await send(a, "MULTI") == b"+OK\r\n"
        assert await send(a, "SET other 1") == b"+QUEUED\r\n"
        assert await send(a, "EXEC") == b"*-1\r\n"
        assert await send(a, "EXISTS other") == b":0\r\n"

    run_with(tmp_path, body)


def test_a_write_that_reached_the_replicas_otherwise_aborts_exec(tmp_path: Path) -> None:
    """Not through this node's clients: only EXEC's quorum read can see it."""

    async def body(srv: NodeServer, send: Send) -> None:
        a = client(srv)
        await send(a, "SET k 1")
        assert await send(a, "WATCH k") == b"+OK\r\n"
        await written_elsewhere(srv, b"k", b"1")  # the same value: still a new version
        assert not next(iter(srv.watchers.by_key[b"k"])).dirty
        await send(a, "MULTI")
        await send(a, "SET k 2")
        assert await send(a, "EXEC") == b"*-1\r\n"
        assert await send(a, "GET k") == b"$1\r\n1\r\n"
        # a key that appears counts as well
        assert await send(a, "WATCH fresh") == b"+OK\r\n"
        await written_elsewhere(srv, b"fresh", b"x")
        await send(a, "MULTI")
        assert await send(a, "EXEC") == b"*-1\r\n"

    run_with(tmp_path, body)


def test_own_writes_abort_and_exec_discard_unwatch_reset_forget(tmp_path: Path) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a = client(srv)
        await send(a, "WATCH k")
        await send(a, "SET k 1")  # this client's own write, as in Redis
        await send(a, "MULTI")
        assert await send(a, "EXEC") == b"*-1\r\n"
        assert not srv.watchers.states  # EXEC ended the watch
        for end in ("UNWATCH", "MULTI\r\nDISCARD", "RESET"):
            await send(a, "WATCH k")
            await send(a, end)
            assert not srv.watchers.states, end
            await send(a, "SET k 2")
            await send(a, "MULTI")
            assert await send(a, "EXEC") == b"*0\r\n", end

    run_with(tmp_path, body)


def test_watch_inside_multi_is_an_error_that_leaves_the_transaction(tmp_path: Path) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a = client(srv)
        await send(a, "MULTI")
        assert await send(a, "WATCH k") == b"-ERR WATCH inside MULTI is not allowed\r\n"
        assert await send(a, "UNWATCH") == b"+QUEUED\r\n"  # queued, as in Redis
        assert await send(a, "SET k 1") == b"+QUEUED\r\n"
        assert await send(a, "EXEC") == b"*2\r\n+OK\r\n+OK\r\n"

    run_with(tmp_path, body)


def test_an_aborted_exec_answers_null_in_resp3_and_execabort_unwatches(tmp_path: Path) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a, b = client(srv), client(srv)
        await send(a, "HELLO 3")
        await send(a, "WATCH k")
        await send(b, "SET k 1")
        await send(a, "MULTI")
        assert await send(a, "EXEC") == b"_\r\n"
        await send(a, "WATCH k")
        await send(a, "MULTI")
        await send(a, "NOSUCHCOMMAND")
        assert (await send(a, "EXEC")).startswith(b"-EXECABORT")
        assert not srv.watchers.states

    run_with(tmp_path, body)


def test_a_closed_client_leaves_no_watch_behind(tmp_path: Path) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a = client(srv)
        await send(a, "WATCH k1 k2")
        assert set(srv.watchers.by_key) == {b"k1", b"k2"}
        a.connection_lost(None)
        assert not srv.watchers.by_key and not srv.watchers.states

    run_with(tmp_path, body)


@pytest.mark.parametrize("failing", ["INCR k", "LPUSH k 1", "INCRBYFLOAT k 1"])
def test_a_write_that_answers_an_error_marks_no_watch(tmp_path: Path, failing: str) -> None:
    """As Redis (checked against redis-server): a write command that fails wrote
    nothing and touches no watch, the watching client's own or another's; a write that
    changed the key after it still aborts."""
    async def body(srv: NodeServer, send: Send) -> None:
        a, b = client(srv), client(srv)
        await send(a, "SET k x")
        for writer in (a, b):
            assert await send(a, "WATCH k") == b"+OK\r\n"
            assert (await send(writer, failing))[:1] == b"-"
            await send(a, "MULTI")
            assert await send(a, "EXEC") == b"*0\r\n"
        assert await send(a, "WATCH k") == b"+OK\r\n"
        assert (await send(a, failing))[:1] == b"-"
        await send(b, "SET k y")
        await send(a, "MULTI")
        assert await send(a, "EXEC") == b"*-1\r\n"
        await send(a, "SET k x")

    run_with(tmp_path, body)


@pytest.mark.parametrize("reply, stands", [
    (b"-ERR value is not an integer or out of range\r\n", False),
    (b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", False),
    (b"-NOQUORUM write needed 2 of 3 replicas, got 1\r\n", True),
    (b"-TIMEOUT write\r\n", True),
    (b"-ERR internal error: the reply to this command was lost\r\n", True)])
def test_a_mark_stands_unless_the_error_says_nothing_was_written(reply: bytes,
                                                                 stands: bool) -> None:
    """A write refused with NOQUORUM or TIMEOUT may have landed on some replica (EXEC's
    quorum read need not see it): its mark stays."""
    watchers = Watchers()
    a, b = WatchState(), WatchState()
    watchers.add(b"k", a)
    watchers.add(b"k", b)
    cmd = lookup(b"incr")
    assert cmd is not None
    marked = watchers.wrote(cmd, [b"incr", b"k"])
    assert marked is not None and a.dirty and b.dirty
    unmark(marked, reply)
    assert (a.dirty, b.dirty) == (stands, stands)


def test_the_keys_a_write_touches() -> None:
    def keys(line: str) -> list[bytes]:
        args = line.encode().split()
        cmd = lookup(args[0])
        assert cmd is not None
        return command_keys(cmd, args)

    assert keys("SET k v") == [b"k"]
    assert keys("MSET a 1 b 2") == [b"a", b"b"]
    assert keys("DEL a b c") == [b"a", b"b", b"c"]
    assert keys("EVAL body 2 a b argv") == [b"a", b"b"]
    assert keys("FCALL f 1 a argv") == [b"a"]
    assert keys("SINTERSTORE d a b") == [b"d", b"a", b"b"]


def test_client_reply_off_and_skip_drop_replies_in_order(tmp_path: Path) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a = client(srv)
        assert await send(a, "CLIENT REPLY OFF") == b""
        assert await send(a, "SET k 1") == b""  # a deferred reply, dropped
        assert await send(a, "PING") == b""
        assert await send(a, "CLIENT REPLY ON") == b"+OK\r\n"
        assert await send(a, "CLIENT REPLY SKIP") == b""
        assert await send(a, "GET k") == b""
        assert await send(a, "GET k") == b"$1\r\n1\r\n"
        assert await send(a, "CLIENT REPLY maybe") == b"-ERR syntax error\r\n"

    run_with(tmp_path, body)


def test_client_pause_holds_commands_until_unpause(tmp_path: Path) -> None:
    async def body(srv: NodeServer, send: Send) -> None:
        a, b = client(srv), client(srv)
        assert await send(a, "CLIENT PAUSE 100000 WRITE") == b"+OK\r\n"
        assert await send(b, "GET k") == b"$-1\r\n"  # reads go on
        assert await send(b, "SET k 1") == b""  # a write waits
        assert b.postponed is not None
        assert await send(a, "CLIENT UNPAUSE") == b"+OK\r\n"
        for _ in range(50):
            await asyncio.sleep(0)
        t = b.transport
        assert isinstance(t, FakeTransport) and t.sent == b"+OK\r\n"
        assert await send(b, "GET k") == b"$1\r\n1\r\n"
        assert await send(a, "CLIENT PAUSE 100000 ALL") == b"+OK\r\n"
        assert await send(b, "GET k") == b""  # everything waits
        srv.end_pause()
        for _ in range(50):
            await asyncio.sleep(0)
        assert t.sent == b"$1\r\n1\r\n"
        assert await send(a, "CLIENT PAUSE x") == (
            b"-ERR timeout is not an integer or out of range\r\n")
        assert await send(a, "CLIENT PAUSE 10 SOME") == (
            b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n")

    run_with(tmp_path, body)
