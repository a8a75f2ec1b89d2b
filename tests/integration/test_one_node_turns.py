"""On a 1-node cluster (N=1) every write is acknowledged as it is made, so a command made
of many writes is one long chain of operations that finish at once. The node must still
answer other clients while it runs: a FLUSHDB of 600,000 keys answered nobody for 24-34 s,
a RENAME of a million-item list for 6.8 s (core/driver.py SETTLE_BUDGET)."""

from __future__ import annotations

import socket

import hiredis
import redis

from .conftest import HOST, ClusterFactory

KEYS = 40_000


def test_other_clients_see_a_flushdb_progress_on_a_one_node_cluster(
        cluster_factory: ClusterFactory) -> None:
    c = cluster_factory(nodes=1)
    port = c.ports[0]
    r = redis.Redis(host=HOST, port=port, socket_timeout=60)
    pipe = r.pipeline(transaction=False)
    for i in range(0, KEYS, 1000):
        pipe.mset({f"k{j}": "v" for j in range(i, i + 1000)})
    pipe.execute()
    assert r.dbsize() == KEYS
    flusher = socket.create_connection((HOST, port), timeout=120)
    reader = hiredis.Reader()
    flusher.sendall(b"*1\r\n$7\r\nFLUSHDB\r\n")
    flusher.setblocking(False)
    seen: list[int] = []  # DBSIZE answers while the FLUSHDB has not answered
    reply = False
    while reply is False:
        seen.append(r.dbsize())
        try:
            data = flusher.recv(1024)
        except BlockingIOError:
            continue
        assert data, "the node closed the FLUSHDB connection"
        reader.feed(data)
        reply = reader.gets()
    flusher.close()
    assert reply == b"OK"
    assert r.dbsize() == 0
    # Some answer came while the deletes were under way: neither all keys nor none.
    assert any(0 < n < KEYS for n in seen), sorted(set(seen))[:5]
    r.close()
