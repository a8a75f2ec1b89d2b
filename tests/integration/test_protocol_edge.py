"""Bad input at the protocol edge never crashes a node or disturbs other clients;
inline commands and MULTI/EXEC batches work as in Redis."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from .conftest import HOST, Cluster, resp_command

pytestmark = pytest.mark.timeout(120)


def talk(port: int, payload: bytes, wait: float = 0.5) -> tuple[bytes, bool]:
    """Send raw bytes; return what came back and whether the server closed the socket."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(payload)
        sock.settimeout(wait)
        data = b""
        closed = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                closed = True
                break
            data += chunk
        return data, closed


def healthy(cluster: Cluster) -> None:
    for i in range(cluster.nodes):
        assert cluster.client(i).ping() is True
    assert cluster.client(1).get("edge:sentinel") == "still here"


@pytest.fixture(scope="module", autouse=True)
def sentinel(cluster: Cluster) -> None:
    assert cluster.client(0).set("edge:sentinel", "still here")


def test_inline_commands(cluster: Cluster) -> None:
    data, closed = talk(cluster.ports[0],
                        b"PING\r\nSET edge:inline \"a b\\x41\"\r\nGET edge:inline\r\n"
                        b"  \r\nECHO 'it\\'s'\r\n")
    assert data == b"+PONG\r\n+OK\r\n$4\r\na bA\r\n$4\r\nit's\r\n"
    assert not closed
    healthy(cluster)


def test_unbalanced_quotes_get_an_error_and_a_closed_connection(cluster: Cluster) -> None:
    data, closed = talk(cluster.ports[0], b'SET k "oops\r\n')
    assert data == b"-ERR Protocol error: unbalanced quotes in request\r\n"
    assert closed
    healthy(cluster)


@pytest.mark.parametrize("payload", [
    b"*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*1\r\n$-7\r\n",
    b"*1\r\n*1\r\n$4\r\nPING\r\n",
    b"*1\r\n$x\r\n",
])
def test_malformed_frames_get_an_error_and_a_closed_connection(
        cluster: Cluster, payload: bytes) -> None:
    data, closed = talk(cluster.ports[1], payload)
    assert data.startswith(b"-ERR Protocol error"), data
    assert closed
    healthy(cluster)


def test_empty_and_negative_counts_are_ignored_as_in_redis(cluster: Cluster) -> None:
    data, closed = talk(cluster.ports[1], b"*-5\r\n*0\r\n*-1\r\nPING\r\n")
    assert (data, closed) == (b"+PONG\r\n", False)


def test_lines_not_starting_with_a_star_are_inline_commands_as_in_redis(
        cluster: Cluster, real_redis: redis.Redis) -> None:
    payload = b"-ERR I am not a command\r\n$3\r\n*1\r\n$4\r\nPING\r\n"
    ours, _ = talk(cluster.ports[0], payload)
    port = real_redis.connection_pool.connection_kwargs["port"]
    theirs, _ = talk(port, payload)
    assert ours == theirs


def test_a_command_split_across_reads_after_a_whole_argument_stays_one_command(
        cluster: Cluster) -> None:
    """A pipelining client (redis-cli --pipe) may have a TCP read end right after a
    complete argument of a command; the rest, starting with `$`, is that command's
    continuation, never inline commands. hiredis' reader reports len() == 0 there once it
    has consumed over 1 KiB of its buffer, so sizes around that mark are all tried."""
    for pad in range(960, 1000):
        rest = b"$10\r\nedge:split\r\n$%d\r\nok%d\r\n" % (len(str(pad)) + 2, pad)
        want = b"+OK\r\n+OK\r\n$%d\r\nok%d\r\n" % (len(str(pad)) + 2, pad)
        with socket.create_connection((HOST, cluster.ports[1]), timeout=5) as sock:
            sock.sendall(resp_command(b"SET", b"edge:pad", b"x" * pad) + b"*3\r\n$3\r\nSET\r\n")
            time.sleep(0.02)  # the node reads this part on its own
            sock.sendall(rest + resp_command(b"GET", b"edge:split"))
            got = b""
            while len(got) < len(want) and b"-" not in got:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        assert got == want, f"a {pad}-byte value, then a command split: {got!r}"
    healthy(cluster)


def test_a_stalled_half_frame_does_not_block_anyone(cluster: Cluster) -> None:
    with socket.create_connection((HOST, cluster.ports[0]), timeout=5) as stuck:
        stuck.sendall(b"*3\r\n$3\r\nSET\r\n$9\r\nedge:half\r\n$100\r\nonly-some")
        with socket.create_connection((HOST, cluster.ports[0]), timeout=5) as big:
            big.sendall(b"*1\r\n$600000000\r\nabc")  # announces 600 MB, then stalls
            healthy(cluster)
            assert cluster.client(0).set("edge:other", "fine")
            assert cluster.client(2).get("edge:other") == "fine"
    assert cluster.client(0).get("edge:half") is None


def test_unknown_commands_and_wrong_arity_keep_the_connection(cluster: Cluster) -> None:
    data, closed = talk(cluster.ports[2], b"*1\r\n$5\r\nNOPE!\r\n*1\r\n$3\r\nGET\r\n"
                                          b"*1\r\n$4\r\nPING\r\n")
    assert data == (b"-ERR unknown command 'NOPE!', with args beginning with: \r\n"
                    b"-ERR wrong number of arguments for 'get' command\r\n+PONG\r\n")
    assert not closed


def test_multi_exec_runs_the_batch_in_order(cluster: Cluster) -> None:
    r = cluster.client(0)
    pipe = r.pipeline(transaction=True)
    pipe.set("edge:tx", 10).incr("edge:tx").get("edge:tx").incrby("edge:tx", 5)
    assert pipe.execute() == [True, 11, "11", 16]
    assert cluster.client(1).get("edge:tx") == "16"


def test_multi_errors_follow_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    script = (b"MULTI\r\nMULTI\r\nSET edge:a 1\r\nGET\r\nEXEC\r\nEXEC\r\nDISCARD\r\n"
              b"MULTI\r\nSET edge:a 2\r\nDISCARD\r\nGET edge:a\r\n")
    ours, _ = talk(cluster.ports[0], script)
    port = real_redis.connection_pool.connection_kwargs["port"]
    theirs, _ = talk(port, script)
    assert ours == theirs


def test_watch_errors_follow_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    script = (b"WATCH\r\nMULTI\r\nWATCH edge:w\r\nUNWATCH\r\nSET edge:w 1\r\nEXEC\r\n"
              b"WATCH edge:w\r\nSET edge:w 2\r\nMULTI\r\nGET edge:w\r\nEXEC\r\n"
              b"WATCH edge:w\r\nMULTI\r\nNOSUCH\r\nEXEC\r\nMULTI\r\nGET edge:w\r\nEXEC\r\n")
    ours, _ = talk(cluster.ports[0], script)
    port = real_redis.connection_pool.connection_kwargs["port"]
    theirs, _ = talk(port, script)
    assert ours == theirs
    assert b"*-1\r\n" in ours  # the watched key's own write aborted one EXEC
