"""DYN.LATENCY on a real 3-node cluster: after pipelined traffic through node 1, the
breakdown names every stage of the requests it coordinated, its replicas kept the same
requests, and each record's stamps run in order (no timing thresholds: only that the
figures describe the traffic that was sent)."""

from __future__ import annotations

import json

import pytest
import redis

from .conftest import Cluster

pytestmark = pytest.mark.timeout(120)

EVERY = 2
REQUESTS = 400  # of each, SET and GET, in pipelines of 16


def traffic(client: redis.Redis) -> None:
    for start in range(0, REQUESTS, 16):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 16):
            pipe.set(f"lat:{i}", "v" * 64)
        assert all(pipe.execute())
    for start in range(0, REQUESTS, 16):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 16):
            pipe.get(f"lat:{i}")
        assert pipe.execute() == ["v" * 64] * 16


def stages(client: redis.Redis) -> dict[str, list[int]]:
    rows = client.execute_command("DYN.LATENCY", "STAGES")
    return {r[0]: list(r[1:]) for r in rows}


def test_off_until_turned_on_and_bad_arguments_refused(cluster: Cluster) -> None:
    c = cluster.client(0)
    with pytest.raises(redis.ResponseError, match="latency trace is off"):
        c.execute_command("DYN.LATENCY", "STAGES")
    with pytest.raises(redis.ResponseError, match="positive integer"):
        c.execute_command("DYN.LATENCY", "ON", "0")
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        c.execute_command("DYN.LATENCY", "NOPE")
    help_lines = c.execute_command("DYN.LATENCY", "HELP")
    assert any("STAGES" in line for line in help_lines)


def test_breakdown_after_pipelined_traffic(cluster: Cluster) -> None:
    clients = [cluster.client(i) for i in range(3)]
    for c in clients:
        assert c.execute_command("DYN.LATENCY", "ON", str(EVERY))
        c.execute_command("DYN.LATENCY", "RESET")
    traffic(clients[0])

    got = stages(clients[0])
    for name in ("queued", "to_peers", "replica_rtt", "to_quorum", "in_order", "flush",
                 "total"):
        count, p50, p99, p999, top = got[name]
        # About one request in EVERY of the 2 x REQUESTS is followed (ids are shared with
        # the node's other requests, so not exactly).
        assert count >= REQUESTS // (2 * EVERY), (name, got[name])
        assert 0 <= p50 <= p99 <= p999 <= top, (name, got[name])
    assert got["total"][4] >= got["queued"][4]  # no stage is longer than a whole request
    assert got["loop_lag"][0] > 0 and got["client_read"][0] > 0

    dump = json.loads(clients[0].execute_command("DYN.LATENCY", "DUMP"))
    names = dump["names"]
    kinds = {names[row[0]] for row in dump["requests"]}
    assert kinds == {"SET", "GET"}
    for row in dump["requests"]:
        _kind, _reqid, read, dispatch, sent, quorum, written, nacks = row[:8]
        ordered = row[12]
        assert nacks >= 1
        assert read <= dispatch <= sent <= quorum <= ordered <= written, row
        acks = [row[9 + 2 * i] for i in range(nacks)]
        for i in range(nacks):
            assert names[row[8 + 2 * i]] in {cluster_name(cluster, 1), cluster_name(cluster, 2)}
            assert sent <= acks[i], row
        # W=2, R=2: the first replica's answer (and the node's own copy) make the quorum;
        # the third replica's may come after.
        assert min(acks) <= quorum, row

    # The replicas followed the same requests (same rule on the coordinator's ids).
    coordinated = {row[1] for row in dump["requests"]}
    for c in clients[1:]:
        rep = json.loads(c.execute_command("DYN.LATENCY", "DUMP"))
        rows = [r for r in rep["replica"] if rep["names"][r[0]] == dump["node"]]
        assert rows, "the replica kept no record of node 1's requests"
        assert coordinated & {r[1] for r in rows}
        assert {rep["names"][r[2]] for r in rows} == {"ps", "g"}
        for _src, _reqid, _kind, read, handled, _committed, sent in rows:
            assert read <= handled <= sent

    for c in clients:
        c.execute_command("DYN.LATENCY", "OFF")
    with pytest.raises(redis.ResponseError, match="latency trace is off"):
        clients[0].execute_command("DYN.LATENCY", "STAGES")
    traffic(clients[0])  # and the node serves on without it


def cluster_name(cluster: Cluster, i: int) -> str:
    return f"127.0.0.1:{cluster.ports[i]}"
