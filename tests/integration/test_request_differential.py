"""Fuzzed requests, sent to a real redis-server and to a node: both run what the
reference model of Redis' reading (tests/fuzz/redis_model.py) says they run, and refuse
what it refuses, with the same words.

This checks the model itself against Redis (the parser is checked against the model,
10^6 times under `make fuzz`), and the node end to end. The valid commands are ECHO and
PING, whose replies tell exactly which arguments ran.
"""

from __future__ import annotations

import random
import socket

import hiredis
import pytest
import redis

from tests.fuzz.redis_model import RedisReader
from tests.fuzz.requests import build_probes, expected_replies

from .conftest import HOST, Cluster

pytestmark = pytest.mark.timeout(300)

INPUTS = 300
# Ends every input: whatever state it left the reading in, the model says what comes
# back for it too, so that the last reply is known and nothing is waited for.
SENTINEL = b"*2\r\n$4\r\nECHO\r\n$8\r\nsentinel\r\n"


class RandomDraw:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)


def predicted(data: bytes) -> tuple[list[bytes | None], bytes | None]:
    model = RedisReader(512 << 20, lambda: False)
    model.read(data)
    return expected_replies(model.executed), model.error


def answers(port: int, data: bytes, count: int, closes: bool) -> tuple[list[object], bytes]:
    """The first `count` replies to `data` (and, if `closes`, that the server then closed),
    parsed and as they came."""
    reader = hiredis.Reader(encoding="latin-1")  # every byte as it is
    replies: list[object] = []
    raw = b""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(data)
        while len(replies) < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
            reader.feed(chunk)
            while (reply := reader.gets()) is not False:
                replies.append(reply)
        if closes and len(replies) == count:
            sock.settimeout(10)
            assert sock.recv(100) == b"", f"not closed after {data!r}"
    return replies, raw


def same_as_model(port: int, data: bytes) -> None:
    data += SENTINEL
    want, error = predicted(data)
    got, raw = answers(port, data, len(want) + (error is not None), error is not None)
    assert len(got) == len(want) + (error is not None), (data, want, error, got)
    for reply, expected in zip(got, want, strict=False):
        if expected is None:
            assert isinstance(reply, hiredis.ReplyError), (data, reply)
        else:
            assert reply == expected.decode("latin-1"), (data, want, got)
    if error is not None:
        assert isinstance(got[-1], hiredis.ReplyError), (data, got)
        # (hiredis decodes errors lossily: their bytes are compared as they came)
        assert raw.endswith(b"-ERR Protocol error: " + error + b"\r\n"), (data, raw, error)


@pytest.fixture(scope="module")
def inputs() -> list[bytes]:
    return [build_probes(RandomDraw(seed)) for seed in range(INPUTS)]


def test_redis_reads_fuzzed_requests_as_the_model_says(real_redis: redis.Redis,
                                                       inputs: list[bytes]) -> None:
    port = real_redis.port  # type: ignore[attr-defined]
    for data in inputs:
        same_as_model(port, data)


def test_a_node_reads_fuzzed_requests_as_redis_does(cluster: Cluster,
                                                    inputs: list[bytes]) -> None:
    for data in inputs:
        same_as_model(cluster.ports[0], data)
    assert cluster.client(0).ping() is True
