"""One connection's commands take effect in the order it sent them, as in Redis, also
when it sends them without waiting for replies (a pipeline).

A node runs a window of a connection's commands at once; a read-then-write (DEL, GETDEL,
SET NX, EXPIRE ...) reads the key, then writes what it decided. Found with a raw client
that sent `SET k 1`, `DEL k`, `SET k 2` back to back: the second SET overtook the DEL
(waiting at the node's key gate, or between its read and its write) and was deleted by
it, or became a sibling older than the DEL's tombstone: SET answered OK and GET then
found nothing. Each history here runs on 20 keys through every node (so through keys'
own coordinators and through nodes that hand read-then-writes over to them).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import hiredis
import pytest
import redis

from .conftest import HOST, SOCKET_TIMEOUT_S, Cluster

pytestmark = pytest.mark.timeout(120)

KEYS_PER_HISTORY = 20


def send_back_to_back(port: int, commands: list[list[str]]) -> list[object]:
    """Send every command at once, one write each, then read one reply per command."""
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_S) as s:
        for words in commands:
            s.sendall(b"*%d\r\n" % len(words) + b"".join(
                b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words))
        reader = hiredis.Reader()
        replies: list[object] = []
        deadline = time.monotonic() + SOCKET_TIMEOUT_S
        while len(replies) < len(commands) and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                replies.append(reply)
        return replies


Check = Callable[[redis.Redis, str], bool]

HISTORIES: list[tuple[str, list[str], Check]] = [
    ("set-del-set", ["SET {k} 1", "DEL {k}", "SET {k} 2"], lambda c, k: c.get(k) == "2"),
    ("del-del-set", ["DEL {k}", "DEL {k}", "SET {k} 2"], lambda c, k: c.get(k) == "2"),
    ("set-getdel-set", ["SET {k} 1", "GETDEL {k}", "SET {k} 2"],
     lambda c, k: c.get(k) == "2"),
    ("del-setnx", ["SET {k} 1", "DEL {k}", "SET {k} 2 NX"], lambda c, k: c.get(k) == "2"),
    ("expire-set-persist", ["SET {k} 1", "EXPIRE {k} 100", "SET {k} 2", "PERSIST {k}"],
     lambda c, k: c.get(k) == "2" and c.ttl(k) == -1),
    ("sadd-srem-sadd", ["SADD {k} a", "SREM {k} a", "SADD {k} a"],
     lambda c, k: c.smembers(k) == {"a"}),
    ("rpush-lpop-rpush", ["RPUSH {k} a", "LPOP {k}", "RPUSH {k} b"],
     lambda c, k: c.lrange(k, 0, -1) == ["b"]),
]

# A collection command still in flight when a DEL of its key reads the key: the DEL
# waits for it (it would not see the element, which would survive it).
HISTORIES += [
    ("sadd-del-sadd", ["SADD {k} a", "DEL {k}", "SADD {k} b"],
     lambda c, k: c.smembers(k) == {"b"}),
    ("hset-del-hset", ["HSET {k} f 1", "DEL {k}", "HSET {k} g 2"],
     lambda c, k: c.hgetall(k) == {"g": "2"}),
    ("rpush-expire-type", ["RPUSH {k} a", "EXPIRE {k} 100", "RPUSH {k} b"],
     lambda c, k: c.ttl(k) > 0 and c.lrange(k, 0, -1) == ["a", "b"]),
    ("zadd-rename", ["ZADD {k} 1 a", "RENAME {k} {k}:to", "ZADD {k} 2 b"],
     lambda c, k: c.zrange(k, 0, -1) == ["b"] and c.zrange(k + ":to", 0, -1) == ["a"]),
]


@pytest.mark.parametrize("name,history,check", HISTORIES, ids=[h[0] for h in HISTORIES])
def test_a_connections_commands_take_effect_in_the_order_sent(
        cluster: Cluster, name: str, history: list[str], check: Check) -> None:
    wrong = []
    for i in range(cluster.nodes):
        reader = cluster.client((i + 1) % cluster.nodes)  # read through another node
        for n in range(KEYS_PER_HISTORY):
            key = f"order:{name}:{i}:{n}"
            replies = send_back_to_back(cluster.ports[i],
                                        [c.format(k=key).split() for c in history])
            assert len(replies) == len(history), replies
            assert not any(isinstance(r, hiredis.ReplyError) for r in replies), replies
            if not check(reader, key):
                wrong.append((key, replies))
    assert not wrong, f"{len(wrong)} of {cluster.nodes * KEYS_PER_HISTORY}: {wrong[:3]}"


def test_exec_sees_the_watched_key_changed_by_the_clients_own_command_just_before(
        cluster: Cluster) -> None:
    """WATCH k, then a read-then-write of k (SET ... EX) and MULTI ... EXEC sent at once:
    EXEC's check must come after that write (Redis aborts: the client changed k)."""
    ran = []
    for i in range(cluster.nodes):
        for n in range(KEYS_PER_HISTORY // 2):
            key = f"order:watch:{i}:{n}"
            replies = send_back_to_back(cluster.ports[i], [
                ["SET", key, "0"], ["WATCH", key], ["SET", key, "1", "EX", "100"],
                ["MULTI"], ["SET", f"{key}:marker", "ran"], ["EXEC"]])
            assert len(replies) == 6, replies
            if replies[-1] is not None:
                ran.append((key, replies))
    assert not ran, f"EXEC ran after the watched key changed: {ran[:3]}"
