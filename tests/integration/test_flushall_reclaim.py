"""FLUSHALL on LMDB nodes: each node swaps in empty dbs at once and its commit timer
frees the old entries a slice at a time (storage/lmdb_engine.py, `reclaim`); a node
killed after the FLUSHALL comes back without what it removed and with what was written
after it."""

from __future__ import annotations

import signal
import time

import lmdb
import pytest

from .conftest import ClusterFactory, wait_until

pytestmark = pytest.mark.timeout(240)

KEYS = 30_000  # a few reclaim slices per node (8,192 entries each)


def _db_names(path: str) -> set[bytes]:
    """The named dbs of a node's environment, read beside the running node."""
    env = lmdb.open(path, readonly=True, lock=True, max_dbs=16, subdir=True)
    try:
        with env.begin() as txn:
            return {bytes(k) for k in txn.cursor().iternext(values=False)}
    finally:
        env.close()


def test_flushall_frees_the_old_entries_in_the_background_and_survives_a_crash(
        cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory("--r", "1", "--w", "3")
    c = cluster.client(0)
    for start in range(0, KEYS, 1000):
        c.mset({f"old:{i}": "v" for i in range(start, start + 1000)})
    assert c.flushall() is True
    c.set("after", "kept")
    paths = [str(cluster.node_dir(i) / "lmdb") for i in range(cluster.nodes)]

    def reclaimed() -> bool:
        return all(_db_names(p) == {b"meta", b"data.1", b"long.1"} for p in paths)

    wait_until(reclaimed, 60, what="every node to free the wiped dbs")
    time.sleep(0.5)  # (buffered: the group commit has written "after" to the OS)
    cluster.kill_node(1, signal.SIGKILL)
    cluster.restart_node(1)
    r = cluster.client(1)
    assert r.get("after") == "kept"
    assert r.dbsize() == 1
    assert r.mget([f"old:{i}" for i in range(0, KEYS, 997)]) == [None] * len(
        range(0, KEYS, 997))
