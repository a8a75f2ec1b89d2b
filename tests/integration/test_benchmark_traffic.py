"""redis-benchmark traffic against a real 3-node cluster, then consistency checks.

With `-r 10000`, redis-benchmark replaces `__rand_int__` in its default SET/GET key
`key:__rand_int__` by a 12-digit zero-padded number in 0..9999, so the keys it writes
are key:000000000000 .. key:000000009999; the SET value is `-d` bytes of data.

redis-benchmark prints "Error from server: ..." and exits 1 on the first error reply.
It also asks for CONFIG GET save/appendonly first; dynredis answers them (as a
redis-server without persistence settings would), so the benchmark prints no
"WARNING: Could not fetch server CONFIG" and no other warning.
"""

from __future__ import annotations

import random
import re
import subprocess

import pytest

from .conftest import HOST, Cluster, wait_until

pytestmark = pytest.mark.timeout(180)

KEYSPACE = 10_000
VALUE_SIZE = 64


def bench_key(n: int) -> str:
    return f"key:{n:012d}"


def run_benchmark(port: int, requests: int, pipeline: int) -> str:
    cmd = ["redis-benchmark", "-h", HOST, "-p", str(port), "-t", "set,get",
           "-n", str(requests), "-r", str(KEYSPACE), "-d", str(VALUE_SIZE),
           "-c", "20", "-P", str(pipeline), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{output}"
    # Progress lines are separated by carriage returns; look at every fragment.
    lines = [x.strip() for x in re.split(r"[\r\n]+", output) if x.strip()]
    bad = [x for x in lines if re.search(r"error|err\b|timeout|refused|reset", x, re.I)]
    assert not bad, f"redis-benchmark reported errors:\n{output}"
    warnings = [x for x in lines if "WARNING" in x]
    assert not warnings, output
    # Both tests ran to completion and printed their summary line.
    for test in ("SET", "GET"):
        assert any(re.match(rf"{test}: [\d.]+ requests per second", x) for x in lines), output
    return output


def benchmark_keys(cluster: Cluster, node: int = 0) -> dict[str, bytes]:
    """Every key:NNNNNNNNNNNN that exists, with its value, read through `node`."""
    client = cluster.client(node, decode_responses=False)
    found: dict[str, bytes] = {}
    try:
        names = [bench_key(n) for n in range(KEYSPACE)]
        for start in range(0, KEYSPACE, 500):
            chunk = names[start:start + 500]
            for k, v in zip(chunk, client.mget(chunk), strict=True):
                if v is not None:
                    found[k] = v
    finally:
        client.close()
    return found


def check_cluster_after_traffic(cluster: Cluster) -> None:
    # Every node still answers and still sees the whole ring.
    for j in range(cluster.nodes):
        assert cluster.client(j).ping() is True
        assert cluster.cli(j, "PING") == "PONG"
    cluster.wait_healthy(timeout=10)

    found = benchmark_keys(cluster)
    assert found, "the benchmark wrote no key:<12 digits> keys"
    assert all(len(v) == VALUE_SIZE for v in found.values())

    # A sample of benchmark keys (key:000000001234 when it was hit) reads back
    # byte-for-byte identically through every node, with redis-py and redis-cli.
    rng = random.Random(1234)
    sample = sorted(rng.sample(sorted(found), min(50, len(found))))
    if bench_key(1234) in found:
        sample.append(bench_key(1234))
    readers = [cluster.client(j, decode_responses=False) for j in range(cluster.nodes)]
    try:
        for k in sample:
            values = [r.get(k) for r in readers]
            assert values == [found[k]] * cluster.nodes, f"{k} differs between nodes"
            for j in range(cluster.nodes):
                ctx, siblings = readers[j].execute_command("GETCTX", k)
                assert siblings == [found[k]], f"{k} has siblings via node {j}: {siblings}"
        k = sample[0]
        cli_values = {cluster.cli(j, "GET", k) for j in range(cluster.nodes)}
        assert len(cli_values) == 1
    finally:
        for r in readers:
            r.close()

    # Keys the benchmark never chose do not exist anywhere.
    missing = [bench_key(n) for n in range(KEYSPACE) if bench_key(n) not in found][:20]
    for j in range(cluster.nodes):
        if missing:
            assert cluster.client(j).exists(*missing) == 0

    # DBSIZE on a main port counts the whole cluster; on a cluster port, the keys of the
    # partitions the node owns, which add up over the nodes to the number of keys
    # (replication to owners may trail the acks briefly).
    own = [cluster.cluster_client(j) for j in range(cluster.nodes)]

    def dbsize_total() -> bool:
        return (all(cluster.client(j).dbsize() == len(found) for j in range(cluster.nodes))
                and sum(o.dbsize() for o in own) == len(found))

    try:
        wait_until(dbsize_total, 10, what=f"DBSIZE == {len(found)} on every node")
    finally:
        for o in own:
            o.close()


def test_benchmark_pipelined_set_get(cluster: Cluster) -> None:
    run_benchmark(cluster.ports[0], requests=20_000, pipeline=16)
    check_cluster_after_traffic(cluster)


def test_benchmark_unpipelined_set_get(cluster: Cluster) -> None:
    run_benchmark(cluster.ports[1], requests=4_000, pipeline=1)
    check_cluster_after_traffic(cluster)


def test_benchmark_through_every_node_then_reads_agree(cluster: Cluster) -> None:
    for j in range(cluster.nodes):
        run_benchmark(cluster.ports[j], requests=6_000, pipeline=16)
    check_cluster_after_traffic(cluster)
