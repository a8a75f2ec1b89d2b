"""redis-benchmark smoke runs against a live cluster: every test completes with no error
reply (redis-benchmark 7 exits non-zero on the first one) and the data is really there.

No throughput is asserted here (that is `make bench`'s job): only that a user pointing
redis-benchmark at a node gets a clean run.
"""

from __future__ import annotations

import csv
import io
import subprocess

import pytest

from tests.integration.conftest import HOST, Cluster

pytestmark = pytest.mark.timeout(120)

TESTS = "set,get,incr,mset,ping"
WANT_ROWS = {"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"}


def bench(port: int, *args: str) -> dict[str, dict[str, str]]:
    """Run redis-benchmark --csv; returns its rows by test name after checking the run."""
    proc = subprocess.run(["redis-benchmark", "-h", HOST, "-p", str(port), "-t", TESTS,
                           "--csv", *args], capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"redis-benchmark exited {proc.returncode}:\n{out[-3000:]}"
    errors = [ln for ln in out.splitlines() if "error" in ln.lower()]
    assert not errors, "\n".join(errors[:10])
    rows = {r["test"]: r for r in csv.DictReader(io.StringIO(proc.stdout))}
    assert set(rows) == WANT_ROWS, proc.stdout
    for name, row in rows.items():
        assert float(row["rps"]) > 0, f"{name}: {row}"
    return rows


@pytest.mark.compat(client="redis-benchmark", family="benchmark")
def test_pipelined_run_completes_without_errors(cluster: Cluster) -> None:
    """`-P 16`, 50 clients, fixed key names: afterwards the counter holds exactly the
    number of INCRs sent (no increment lost or doubled) and the SET key is there."""
    c = cluster.client(1)
    c.delete("counter:__rand_int__", "key:__rand_int__")
    bench(cluster.ports[0], "-n", "20000", "-P", "16")
    assert c.get("counter:__rand_int__") == "20000"
    assert c.get("key:__rand_int__") == "VXK"  # the default 3-byte payload, as in Redis
    assert cluster.client(2).get("counter:__rand_int__") == "20000"


@pytest.mark.compat(client="redis-benchmark", family="benchmark")
def test_unpipelined_run_with_random_keys(cluster: Cluster) -> None:
    """`-P 1` with `-r`: keys spread over the ring; every INCR is counted."""
    n = 2000
    bench(cluster.ports[2], "-n", str(n), "-P", "1", "-c", "10", "-r", "1000", "-d", "16")
    c = cluster.client(0)
    counters = list(c.scan_iter(match="counter:0*", count=500))
    assert counters, "no counter:* key after the INCR test"
    assert sum(int(v) for v in c.mget(counters)) == n
    keys = list(c.scan_iter(match="key:0*", count=500))
    assert 0 < len(keys) <= 1000
    values = c.mget(keys[:50])
    assert all(v is not None and len(v) == 16 for v in values), values
