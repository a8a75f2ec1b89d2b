"""10^5 mixed bad inputs through a live node (issue 12, deliver 7): it answers them all,
stays responsive, and its memory returns near where it started.

The inputs are the fuzzer's (tests/fuzz/requests.py): malformed counts and lengths,
foreign element types, bodies longer or shorter than declared, unbalanced quotes, NUL
bytes, 64 KB lines, partial big bulks, AUTH, and valid commands among them, cut into
several writes; each on its own connection, closed by the client after it.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
from pathlib import Path

import pytest

from tests.fuzz.requests import build

from .conftest import HOST, ClusterFactory, wait_until

pytestmark = pytest.mark.timeout(600)

INPUTS = 100_000
DISTINCT = 2000  # inputs built, each sent INPUTS / DISTINCT times
THREADS = 8


class RandomDraw:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)


def inputs() -> list[list[bytes]]:
    """Mostly small inputs, one in twenty up to 100 KB (the 64 KB lines, big bulks)."""
    pool: list[list[bytes]] = []
    seed = 0
    while len(pool) < DISTINCT:
        chunks = build(RandomDraw(seed))[0]
        seed += 1
        size = sum(map(len, chunks))
        if size < 4096 or (size < 100_000 and seed % 20 == 0):
            pool.append(chunks)
    return pool


def send_all(port: int, pool: list[list[bytes]], count: int) -> int:
    """Each input on a connection of its own; returns how many connections failed."""
    failures = [0] * THREADS

    def worker(k: int) -> None:
        for i in range(k, count, THREADS):
            try:
                with socket.create_connection((HOST, port), timeout=30) as sock:
                    for chunk in pool[i % len(pool)]:
                        sock.sendall(chunk)
                    sock.shutdown(socket.SHUT_WR)
                    while sock.recv(65536):
                        pass
            except (BrokenPipeError, ConnectionResetError):
                pass  # the node refused the input and closed first: as it should
            except OSError as exc:
                if exc.errno != errno.ENOTCONN:  # (closed first, seen at shutdown)
                    failures[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(failures)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_a_node_takes_100000_bad_inputs_and_gives_the_memory_back(
        cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(nodes=1)
    port, pid = cluster.ports[0], cluster.pids[0]
    pool = inputs()
    assert send_all(port, pool, DISTINCT) == 0  # once each: allocator pools warm up
    wait_until(lambda: cluster.client(0).info("clients")["connected_clients"] == 1, 30,
               what="the warm-up connections to go")
    start = rss_mb(pid)
    assert send_all(port, pool, INPUTS) == 0
    c = cluster.client(0)
    assert c.ping() is True
    assert c.set("memory:after", "fine") is True and c.get("memory:after") == "fine"
    wait_until(lambda: c.info("clients")["connected_clients"] == 1, 30,
               what="every connection to be gone")
    assert c.info("stats")["total_connections_received"] >= INPUTS + DISTINCT
    wait_until(lambda: rss_mb(pid) < start + 30, 30,
               what=f"the node's RSS back near {start:.0f} MB (now {rss_mb(pid):.0f} MB)")
