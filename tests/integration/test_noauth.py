"""What a client that has not authenticated gets, compared with a real redis-server run
with --requirepass (and enable-debug-command no, its default).

Redis checks a command's existence (and its subcommand's), its arity and, for a
`protected` command (DEBUG), the enable-debug-command setting before authentication: an
unauthenticated DEBUG SLEEP 0 got NOAUTH here where Redis answers that DEBUG is not
allowed, and `GET` with no key NOAUTH where Redis answers the wrong number of arguments.
And EXEC refused before it runs (NOAUTH, arity) answers EXECABORT with the reason, as
Redis' rejectCommand does.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import hiredis
import pytest
import redis

from .conftest import HOST, ClusterFactory, redis_server, resp_command

pytestmark = pytest.mark.timeout(120)

PASSWORD = "s3cret"

# Unauthenticated, each on both servers; none of them may run.
BEFORE_AUTH = (
    ("DEBUG", "SLEEP", "0"), ("DEBUG", "HELP"), ("debug", "jmap"), ("DEBUG", "OBJECT", "k"),
    ("DEBUG",), ("GET",), ("GET", "k"), ("GET", "a", "b"), ("SET", "k"), ("SET", "k", "v"),
    ("CONFIG",), ("CONFIG", "NOPE"), ("CONFIG", "GET"), ("CONFIG", "GET", "*"),
    ("CONFIG", "SET", "maxclients"), ("CONFIG", "SET", "maxclients", "10"),
    ("CLIENT", "NOPE"), ("CLIENT", "SETNAME", "a"), ("OBJECT", "HELP"), ("MEMORY", "nope"),
    ("NOPE",), ("NOPE", "x"), ("PING",), ("KEYS", "*"), ("FLUSHALL",), ("MULTI",),
    ("EXEC",), ("HELLO", "3"), ("AUTH",), ("EVAL", "return 1", "0"), ("SAVE",),
    ("MODULE", "LOAD", "/x.so"), ("MODULE", "LIST"), ("MODULE", "UNLOAD"), ("MODULE", "NOPE"),
)
# Then AUTH on the same connection, and what an authenticated client gets. EXEC refused
# before it runs answers EXECABORT with the reason, and discards its transaction.
AFTER_AUTH = (("AUTH", PASSWORD), ("DEBUG", "SLEEP", "0"), ("DEBUG",), ("CONFIG", "NOPE"),
              ("GET", "k"), ("DBSIZE",), ("EXEC", "x"), ("MULTI",), ("GET", "k"),
              ("EXEC", "x"), ("EXEC",), ("DISCARD",))


class Unauthenticated:
    """A raw connection that never authenticates unless told: each reply as hiredis
    parses it (errors as values, compared by their text)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.reader = hiredis.Reader()

    def __call__(self, *args: str) -> object:
        self.sock.sendall(resp_command(*(a.encode() for a in args)))
        reply = self.reader.gets()
        while reply is False:
            self.reader.feed(self.sock.recv(65536))
            reply = self.reader.gets()
        return str(reply) if isinstance(reply, Exception) else reply

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def secured_redis(free_port: Callable[[], int], tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[redis.Redis]:
    with redis_server(free_port, tmp_path_factory.mktemp("redis"), "--requirepass", PASSWORD,
                      "--enable-debug-command", "no", password=PASSWORD) as client:
        yield client


def test_an_unauthenticated_client_gets_what_redis_answers_it(
        cluster_factory: ClusterFactory, secured_redis: redis.Redis) -> None:
    node = cluster_factory("--requirepass", PASSWORD, "--n", "1", "--r", "1", "--w", "1",
                           nodes=1)
    ours, theirs = Unauthenticated(node.ports[0]), Unauthenticated(secured_redis.port)  # type: ignore[attr-defined]
    try:
        for cmd in BEFORE_AUTH + AFTER_AUTH:
            assert ours(*cmd) == theirs(*cmd), cmd
    finally:
        ours.close()
        theirs.close()
    assert node.client(0, password=PASSWORD).dbsize() == 0  # (FLUSHALL, SET: none ran)
