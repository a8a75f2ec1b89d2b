"""COMMAND INFO is byte for byte Redis' for every command both serve (RESP2 and RESP3),
except that container commands list only the subcommands dynredis serves."""

from __future__ import annotations

import socket

import redis

from dynredis.commands.table import lookup_full

from .conftest import HOST, Cluster, raw_command


def raw(port: int, payload: bytes) -> bytes:
    """Send `payload`, then PING as an end marker; the bytes answered before PONG."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(payload + b"PING\r\n")
        got = b""
        while not got.endswith(b"+PONG\r\n"):
            chunk = s.recv(1 << 16)
            assert chunk, got[-200:]
            got += chunk
    return got[: -len(b"+PONG\r\n")]


def test_command_info_is_redis_own(cluster: Cluster, real_redis: redis.Redis) -> None:
    names = sorted(raw_command(cluster.client(0), "COMMAND", "LIST"))
    theirs = set(raw_command(real_redis, "COMMAND", "LIST"))
    compared = 0
    for name in names:
        if name not in theirs or lookup_full(name.encode()).subcommands:  # type: ignore[union-attr]
            continue  # dynredis' own command, or a container (its subcommands differ)
        for hello in (b"", b"HELLO 3\r\n"):
            payload = hello + b"COMMAND INFO " + name.encode() + b"\r\n"
            assert raw(cluster.ports[0], payload).split(b"*1\r\n*10", 1)[1] == \
                raw(real_redis.port, payload).split(b"*1\r\n*10", 1)[1], name
        compared += 1
    assert compared > 50


def test_command_docs_is_redis_own(cluster: Cluster, real_redis: redis.Redis) -> None:
    """COMMAND DOCS: Redis' map (summary, complexity, arguments, history ...) for every
    command both serve; a container's lists the subcommands dynredis serves, each Redis'."""
    c = cluster.client(1, protocol=3)
    real = redis.Redis(host=HOST, port=real_redis.port, protocol=3,  # type: ignore[attr-defined]
                       decode_responses=True, socket_timeout=10)
    try:
        ours, theirs = raw_command(c, "COMMAND", "DOCS"), raw_command(real, "COMMAND", "DOCS")
        assert isinstance(ours, dict) and isinstance(theirs, dict)
        compared = 0
        for name, docs in ours.items():
            if name not in theirs:
                continue  # dynredis' own
            want = dict(theirs[name])
            subs = docs.pop("subcommands", {})
            assert set(subs) - set(want.pop("subcommands", {})) <= {
                "client|no-touch", "client|setinfo"}, name  # (Redis 7.2's)
            assert docs == want, name
            for sub, sub_docs in subs.items():
                if sub in theirs[name]["subcommands"]:
                    assert sub_docs == theirs[name]["subcommands"][sub], sub
            compared += 1
        assert compared > 200 and "arguments" in ours["set"]
        assert raw_command(c, "COMMAND", "DOCS", "object|encoding", "nosuch") == \
            raw_command(real, "COMMAND", "DOCS", "object|encoding", "nosuch")
        assert c.command_count() == len(raw_command(c, "COMMAND"))  # type: ignore[arg-type]
    finally:
        c.close()
        real.close()
