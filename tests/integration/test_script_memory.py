"""A script that reads a large collection again and again leaves a node's memory where it
was (issue 12, "no unbounded memory").

`EVAL "return #redis.call('HGETALL', KEYS[1])"` on a hash of a million fields grew its
node by 25-50 MB a call, kept for good: the reply's parts stayed in reference cycles
(a closure handing itself to the loop, a run's callbacks naming the run) that only
Python's cyclic collector frees, and in a node doing little else it ran a full
collection only every few dozen calls. Measured on a real node, where the collector
runs as it does for users.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dynredis import memdebug

from .conftest import ClusterFactory, wait_until

pytestmark = pytest.mark.timeout(300)

FIELDS = 100_000
CALLS = 25
SCRIPT = "return #redis.call('HGETALL', KEYS[1])"


def rss_mb(pid: int) -> float:
    return memdebug.rss_kb(pid) / 1024


def test_scripts_reading_a_large_hash_leave_the_nodes_memory_where_it_was(
        cluster_factory: ClusterFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "memory.txt"
    monkeypatch.setenv("DYNREDIS_MEMDEBUG", str(report))  # what a failure shows
    cluster = cluster_factory(nodes=1)
    c = cluster.client(0)
    pid = cluster.pids[0]
    for start in range(0, FIELDS, 10_000):
        c.hset("big:h", mapping={f"f{i}": i for i in range(start, start + 10_000)})
    for _ in range(3):  # the allocator's pools and Lua's heap at their working size
        assert c.eval(SCRIPT, 1, "big:h") == 2 * FIELDS
    before = rss_mb(pid)
    # one call's reply: ~1.3 MB of RESP, ~10 MB as the Lua table the script sees
    for _ in range(CALLS):
        assert c.eval(SCRIPT, 1, "big:h") == 2 * FIELDS
    after = rss_mb(pid)
    if after > before + 40:
        os.kill(pid, signal.SIGUSR2)
        wait_until(lambda: report.exists() and "lua:" in report.read_text(), 30,
                   what="the node's memory report")
        pytest.fail(f"the node grew {before:.0f} -> {after:.0f} MB over {CALLS} calls:\n"
                    + report.read_text())
