"""Blocking pops on a real 3-node cluster (node processes, redis-py and raw sockets).

A client blocked through node 0 is woken by a push through node 2 (the wake-up delay is
measured and printed: run with -s to see it; nothing is asserted of it but that it came
before the command's 10 s timeout), timeouts answer Redis' nils, MULTI and scripts do
not block, a client that disconnects is forgotten, two clients blocked on one node are
served in the order they blocked, a blocked client's later commands wait for it, CLIENT
UNBLOCK.
Replies and errors of histories without races are compared byte for byte with a real
redis-server: there both connections go to the one server, here the blocked one to node
0 and the one that pushes to node 2.
"""

from __future__ import annotations

import select
import socket
import statistics
import time
from collections.abc import Iterator

import hiredis
import pytest

from tests.integration.conftest import HOST, Cluster, parse_info, resp_command, wait_until

pytestmark = pytest.mark.timeout(180)

WAKE_ROUNDS = 10
BLOCK_TIMEOUT = b"10"


class Conn:
    """A raw connection: replies as their bytes."""

    def __init__(self, port: int, proto: int = 2) -> None:
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=15)
        self.reader = hiredis.Reader()
        self.raw = b""
        if proto == 3:
            self.call(b"HELLO", b"3")

    def send(self, *args: bytes) -> None:
        self.sock.sendall(resp_command(*args))

    def ready(self) -> bool:
        """A reply is waiting to be read (without reading it)."""
        self.sock.setblocking(False)
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK))
        except BlockingIOError:
            return False
        finally:
            self.sock.settimeout(15)

    def read(self) -> bytes:
        """The next reply's bytes."""
        while True:
            got = self.reader.gets()
            if got is not False:
                raw, self.raw = self._split()
                return raw
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.raw += chunk
            self.reader.feed(chunk)

    def _split(self) -> tuple[bytes, bytes]:
        # One reply read: its bytes are what a fresh reader needs to parse it.
        probe = hiredis.Reader()
        for end in range(1, len(self.raw) + 1):
            probe.feed(self.raw[end - 1:end])
            if probe.gets() is not False:
                return self.raw[:end], self.raw[end:]
        raise AssertionError("no complete reply")

    def call(self, *args: bytes) -> bytes:
        self.send(*args)
        return self.read()

    def close(self) -> None:
        self.sock.close()


def parse(raw: bytes) -> object:
    reader = hiredis.Reader()
    reader.feed(raw)
    return reader.gets()


def blocked_clients(port: int) -> int:
    c = Conn(port)
    try:
        info = parse(c.call(b"INFO", b"clients"))
        assert isinstance(info, bytes)
        return int(parse_info(info.decode())["blocked_clients"])
    finally:
        c.close()


def wait_blocked(port: int, n: int) -> None:
    wait_until(lambda: blocked_clients(port) == n, 10, 0.01, f"{n} blocked clients")


def answered_or_blocked(conn: Conn, port: int, before: int) -> None:
    """Wait until `conn`'s command answered, or blocked (one more blocked client)."""
    wait_until(lambda: conn.ready() or blocked_clients(port) > before, 10, 0.01,
               "a reply or a blocked client")


@pytest.fixture
def nodes(cluster: Cluster) -> Iterator[tuple[int, int]]:
    """(port of node 0, port of node 2), the cluster emptied first."""
    for port in cluster.ports:
        Conn(port).call(b"FLUSHALL")
    yield cluster.ports[0], cluster.ports[2]


def wake_delays(blocked_port: int, push_port: int, block: tuple[bytes, ...],
                push: tuple[bytes, ...], expect: object) -> tuple[list[float], list[float]]:
    """WAKE_ROUNDS times: `block` through one node, `push` through another once it is
    blocked; (seconds from sending the push to the blocked client's reply, seconds the
    push itself took)."""
    wakes, pushes = [], []
    pusher = Conn(push_port)
    for _ in range(WAKE_ROUNDS):
        waiter = Conn(blocked_port)
        waiter.send(*block)
        wait_blocked(blocked_port, 1)
        t0 = time.monotonic()
        pusher.send(*push)
        arrived = {}  # when each reply's first bytes could be read
        while len(arrived) < 2:
            ready, _, _ = select.select([c.sock for c in (waiter, pusher)
                                         if c not in arrived], [], [], 15)
            assert ready, "no reply within 15 s"
            now = time.monotonic()
            for c in (waiter, pusher):
                if c.sock in ready:
                    arrived[c] = now
        reply = waiter.read()
        pusher.read()
        assert parse(reply) == expect  # an item, not the nil of the 10 s timeout
        wakes.append(arrived[waiter] - t0)
        pushes.append(arrived[pusher] - t0)
        waiter.close()
    pusher.close()
    return wakes, pushes


def report(what: str, wakes: list[float], pushes: list[float]) -> None:
    print(f"\n{what}: woken {statistics.median(wakes) * 1000:.1f} ms after the push was "
          f"sent (median of {len(wakes)}; min {min(wakes) * 1000:.1f}, max "
          f"{max(wakes) * 1000:.1f}); the push's own reply took "
          f"{statistics.median(pushes) * 1000:.1f} ms (median)")


# --- woken across nodes ----------------------------------------------------------------


def test_blpop_through_node_0_is_woken_by_rpush_through_node_2(nodes) -> None:
    n0, n2 = nodes
    wakes, pushes = wake_delays(n0, n2, (b"BLPOP", b"q", BLOCK_TIMEOUT),
                                (b"RPUSH", b"q", b"job"), [b"q", b"job"])
    report("BLPOP on node 0, RPUSH on node 2", wakes, pushes)
    assert Conn(n2).call(b"EXISTS", b"q") == b":0\r\n"


def test_bzpopmin_through_node_0_is_woken_by_zadd_through_node_2(nodes) -> None:
    n0, n2 = nodes
    wakes, pushes = wake_delays(n0, n2, (b"BZPOPMIN", b"z", BLOCK_TIMEOUT),
                                (b"ZADD", b"z", b"1.5", b"m"), [b"z", b"m", b"1.5"])
    report("BZPOPMIN on node 0, ZADD on node 2", wakes, pushes)


def test_blmove_and_brpoplpush_are_woken_across_nodes(nodes) -> None:
    n0, n2 = nodes
    wakes, pushes = wake_delays(n0, n2, (b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT",
                                         BLOCK_TIMEOUT), (b"RPUSH", b"src", b"x"), b"x")
    report("BLMOVE on node 0, RPUSH on node 2", wakes, pushes)
    pusher = Conn(n2)
    assert parse(pusher.call(b"LRANGE", b"dst", b"0", b"-1")) == [b"x"] * WAKE_ROUNDS
    assert pusher.call(b"EXISTS", b"src") == b":0\r\n"
    waiter = Conn(n0)
    waiter.send(b"BRPOPLPUSH", b"src", b"dst", BLOCK_TIMEOUT)
    wait_blocked(n0, 1)
    pusher.call(b"LPUSH", b"src", b"y")
    assert waiter.read() == b"$1\r\ny\r\n"
    assert parse(pusher.call(b"LINDEX", b"dst", b"0")) == b"y"


def test_blmpop_and_bzmpop_take_up_to_count_from_the_key_that_was_written(nodes) -> None:
    n0, n2 = nodes
    pusher = Conn(n2)
    waiter = Conn(n0)
    waiter.send(b"BLMPOP", BLOCK_TIMEOUT, b"2", b"a", b"b", b"RIGHT", b"COUNT", b"2")
    wait_blocked(n0, 1)
    pusher.call(b"RPUSH", b"b", b"1", b"2", b"3")
    assert parse(waiter.read()) == [b"b", [b"3", b"2"]]
    waiter.send(b"BZMPOP", BLOCK_TIMEOUT, b"2", b"z1", b"z2", b"MAX", b"COUNT", b"5")
    wait_blocked(n0, 1)
    pusher.call(b"ZADD", b"z2", b"1", b"a", b"2", b"b")
    assert parse(waiter.read()) == [b"z2", [[b"b", b"2"], [b"a", b"1"]]]


def test_clients_blocked_on_one_node_are_served_in_the_order_they_blocked(nodes) -> None:
    n0, n2 = nodes
    first, second = Conn(n0), Conn(n0)
    first.send(b"BRPOP", b"k", BLOCK_TIMEOUT)
    wait_blocked(n0, 1)
    second.send(b"BRPOP", b"k", BLOCK_TIMEOUT)
    wait_blocked(n0, 2)
    pusher = Conn(n2)
    pusher.call(b"RPUSH", b"k", b"one")
    assert parse(first.read()) == [b"k", b"one"]
    wait_blocked(n0, 1)  # the second one still waits
    assert not second.ready()
    pusher.call(b"RPUSH", b"k", b"two")
    assert parse(second.read()) == [b"k", b"two"]


# --- timeouts, MULTI, disconnects ----------------------------------------------------------


@pytest.mark.parametrize("proto", [2, 3])
def test_a_timeout_answers_nil_after_waiting_that_long(nodes, proto: int) -> None:
    n0, _ = nodes
    c = Conn(n0, proto)
    nil_array = b"*-1\r\n" if proto == 2 else b"_\r\n"
    for cmd in ((b"BLPOP", b"none", b"0.1"), (b"BRPOP", b"a", b"b", b"0.1"),
                (b"BLMOVE", b"none", b"d", b"LEFT", b"LEFT", b"0.1"),
                (b"BRPOPLPUSH", b"none", b"d", b"0.1"), (b"BZPOPMAX", b"none", b"0.1"),
                (b"BLMPOP", b"0.1", b"1", b"none", b"LEFT"),
                (b"BZMPOP", b"0.1", b"1", b"none", b"MIN")):
        t0 = time.monotonic()
        assert c.call(*cmd) == nil_array, cmd
        assert time.monotonic() - t0 >= 0.095, cmd  # it did wait (how much longer: load)
    assert blocked_clients(n0) == 0


def test_in_multi_they_do_not_block(nodes) -> None:
    n0, _ = nodes
    c = Conn(n0)
    c.call(b"RPUSH", b"l", b"a")
    for cmd in ((b"MULTI",), (b"BLPOP", b"none", b"0"), (b"BLPOP", b"l", b"0"),
                (b"BLMOVE", b"none", b"d", b"LEFT", b"LEFT", b"0"), (b"BZPOPMIN", b"none", b"0")):
        c.call(*cmd)
    assert c.call(b"EXEC") == b"*4\r\n*-1\r\n*2\r\n$1\r\nl\r\n$1\r\na\r\n$-1\r\n*-1\r\n"


SCRIPTS = [
    b"return redis.call('blmpop', 0, 1, KEYS[1], 'LEFT')",
    b"return redis.call('bzmpop', 0, 1, KEYS[1], 'MIN')",
    b"redis.call('rpush', KEYS[1], 'a') return redis.call('blmpop', 0, 1, KEYS[1], 'LEFT')",
    b"return redis.pcall('blpop', KEYS[1], 0)",
    b"return redis.pcall('bzpopmin', KEYS[1], 0)",
]


def test_in_a_script_they_do_not_block_or_are_refused_as_in_redis(
        cluster: Cluster, real_redis) -> None:
    """BLMPOP and BZMPOP in a script act as their non-blocking forms (a timeout of 0
    would otherwise wait forever); the others are not allowed from scripts."""

    def run(port: int) -> list[bytes]:
        c = Conn(port)
        try:
            c.call(b"FLUSHALL")
            out = [c.call(b"EVAL", script, b"1", b"k") for script in SCRIPTS]
            return out + [c.call(b"PING")]
        finally:
            c.close()

    n0 = cluster.ports[0]
    assert run(n0) == run(real_redis.port)
    assert blocked_clients(n0) == 0


def test_a_client_that_disconnects_while_blocked_is_forgotten_and_takes_nothing(nodes) -> None:
    n0, n2 = nodes
    gone = Conn(n0)
    gone.send(b"BLPOP", b"k", b"0")
    wait_blocked(n0, 1)
    gone.close()
    wait_blocked(n0, 0)
    pusher = Conn(n2)
    pusher.call(b"RPUSH", b"k", b"kept")
    time.sleep(1.5)  # past the retry every waited-on key gets each second
    assert parse(pusher.call(b"LRANGE", b"k", b"0", b"-1")) == [b"kept"]


def test_a_blocked_clients_later_commands_wait_for_it(nodes) -> None:
    n0, _ = nodes
    c = Conn(n0)
    c.send(b"BLPOP", b"q", b"0.3")
    c.send(b"RPUSH", b"q", b"z")  # runs only once the BLPOP has timed out
    assert c.read() == b"*-1\r\n"
    assert c.read() == b":1\r\n"


def test_client_unblock_ends_a_wait_as_a_timeout_or_an_error(nodes) -> None:
    n0, n2 = nodes
    waiter = Conn(n0)
    cid = parse(waiter.call(b"CLIENT", b"ID"))
    other = Conn(n0)
    assert other.call(b"CLIENT", b"UNBLOCK", b"%d" % cid) == b":0\r\n"  # not blocked
    waiter.send(b"BLPOP", b"k", b"0")
    wait_blocked(n0, 1)
    assert other.call(b"CLIENT", b"UNBLOCK", b"%d" % cid) == b":1\r\n"
    assert waiter.read() == b"*-1\r\n"
    waiter.send(b"BZPOPMIN", b"k", b"0")
    wait_blocked(n0, 1)
    assert other.call(b"CLIENT", b"UNBLOCK", b"%d" % cid, b"ERROR") == b":1\r\n"
    assert waiter.read() == b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    assert Conn(n2).call(b"CLIENT", b"UNBLOCK", b"%d" % cid) == b":0\r\n"  # another node


# --- against redis-server ------------------------------------------------------------------

# (setup through the other connection, the blocking command, what the other connection
# then sends once the first has blocked or answered, a final read of the state)
SCENARIOS: list[tuple[list[tuple[bytes, ...]], tuple[bytes, ...], list[tuple[bytes, ...]],
                      list[tuple[bytes, ...]]]] = [
    ([], (b"BLPOP", b"a", b"b", b"5"), [(b"RPUSH", b"b", b"x", b"y")],
     [(b"LRANGE", b"b", b"0", b"-1")]),
    ([(b"RPUSH", b"b", b"1")], (b"BLPOP", b"a", b"b", b"5"), [], [(b"EXISTS", b"b")]),
    ([(b"RPUSH", b"a", b"1", b"2")], (b"BRPOP", b"a", b"b", b"0"), [],
     [(b"LRANGE", b"a", b"0", b"-1")]),
    ([], (b"BRPOP", b"a", b"5"), [(b"LPUSH", b"a", b"1", b"2", b"3")],
     [(b"LRANGE", b"a", b"0", b"-1")]),
    ([(b"SET", b"s", b"v")], (b"BLPOP", b"none", b"s", b"5"), [], []),
    ([(b"SET", b"s", b"v")], (b"BLPOP", b"s", b"x"), [], []),
    ([], (b"BLPOP", b"a", b"-1"), [], []),
    ([], (b"BLPOP", b"a", b"0.05"), [], []),
    ([], (b"BLMPOP", b"5", b"2", b"a", b"b", b"LEFT", b"COUNT", b"2"),
     [(b"RPUSH", b"a", b"1", b"2", b"3")], [(b"LRANGE", b"a", b"0", b"-1")]),
    ([], (b"BLMPOP", b"5", b"0", b"a", b"LEFT"), [], []),
    ([], (b"BLMPOP", b"-1", b"1", b"a", b"LEFT", b"COUNT", b"0"), [], []),
    ([], (b"BLMOVE", b"src", b"dst", b"RIGHT", b"LEFT", b"5"), [(b"RPUSH", b"src", b"1", b"2")],
     [(b"LRANGE", b"src", b"0", b"-1"), (b"LRANGE", b"dst", b"0", b"-1")]),
    ([(b"SET", b"dst", b"v")], (b"BLMOVE", b"src", b"dst", b"LEFT", b"LEFT", b"5"),
     [(b"RPUSH", b"src", b"1")], [(b"LRANGE", b"src", b"0", b"-1")]),  # WRONGTYPE at wake
    ([], (b"BLMOVE", b"src", b"src", b"LEFT", b"RIGHT", b"5"), [(b"RPUSH", b"src", b"1", b"2")],
     [(b"LRANGE", b"src", b"0", b"-1")]),
    ([], (b"BLMOVE", b"src", b"dst", b"UP", b"LEFT", b"x"), [], []),
    ([], (b"BRPOPLPUSH", b"src", b"dst", b"5"), [(b"RPUSH", b"src", b"1", b"2")],
     [(b"LRANGE", b"dst", b"0", b"-1")]),
    ([], (b"BRPOPLPUSH", b"src", b"dst", b"0.05"), [], []),
    ([], (b"BZPOPMIN", b"z1", b"z2", b"5"), [(b"ZADD", b"z2", b"2", b"b", b"1", b"a")],
     [(b"ZRANGE", b"z2", b"0", b"-1", b"WITHSCORES")]),
    ([], (b"BZPOPMAX", b"z1", b"5"), [(b"ZADD", b"z1", b"1e-5", b"a", b"inf", b"b")],
     [(b"ZRANGE", b"z1", b"0", b"-1", b"WITHSCORES")]),
    ([(b"SET", b"s", b"v")], (b"BZPOPMIN", b"s", b"5"), [], []),
    ([], (b"BZMPOP", b"5", b"1", b"z", b"MIN", b"COUNT", b"2"),
     [(b"ZADD", b"z", b"3", b"c", b"1", b"a", b"2", b"b")], [(b"ZCARD", b"z")]),
    ([], (b"BZMPOP", b"inf", b"1", b"z", b"MIN"), [], []),
    ([], (b"BZMPOP", b"0.05", b"1", b"z", b"MAX"), [], []),
]


def run_scenario(blocked_port: int, other_port: int, proto: int,
                 scenario: tuple) -> list[bytes]:
    setup, blocking, wake, final = scenario
    waiter, other = Conn(blocked_port, proto), Conn(other_port, proto)
    try:
        for port in {blocked_port, other_port}:
            Conn(port).call(b"FLUSHALL")
        out = [other.call(*cmd) for cmd in setup]
        before = blocked_clients(blocked_port)
        waiter.send(*blocking)
        answered_or_blocked(waiter, blocked_port, before)
        out += [other.call(*cmd) for cmd in wake]
        out.append(waiter.read())
        out += [other.call(*cmd) for cmd in final]
        return out
    finally:
        waiter.close()
        other.close()


@pytest.mark.parametrize("proto", [2, 3])
def test_replies_and_errors_are_redis_own(cluster: Cluster, real_redis, proto: int) -> None:
    n0, n2 = cluster.ports[0], cluster.ports[2]
    for scenario in SCENARIOS:
        want = run_scenario(real_redis.port, real_redis.port, proto, scenario)
        got = run_scenario(n0, n2, proto, scenario)
        assert got == want, scenario
